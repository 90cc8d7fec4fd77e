//! The passcode's rules, its keys and its proof.

use super::*;

const ORG: OrgId = OrgId::from_bytes([1; 16]);
const DEVICE: DeviceId = DeviceId::from_bytes([2; 16]);

fn stretched(typed: &str) -> Stretched {
    stretch(
        &Passcode::new(typed).expect("a valid passcode"),
        ORG,
        DEVICE,
    )
}

#[test]
fn a_passcode_is_six_digits_or_more_or_four_words_or_more() {
    assert_eq!(
        Passcode::new("48291").err(),
        Some(PasscodeError::TooFewDigits)
    );
    assert_eq!(Passcode::new("123456").err(), Some(PasscodeError::TooEasy));
    assert_eq!(Passcode::new("987654").err(), Some(PasscodeError::TooEasy));
    assert_eq!(Passcode::new("000000").err(), Some(PasscodeError::TooEasy));
    for easy in [
        "121212", "123123", "890123", "210987", "112233", "123321", "1212121",
    ] {
        assert_eq!(
            Passcode::new(easy).err(),
            Some(PasscodeError::TooEasy),
            "{easy}"
        );
    }
    // Digits with spaces are not words, and short or repeated words are
    // not a passphrase.
    assert_eq!(Passcode::new("1 2 3 4").err(), Some(PasscodeError::Mixed));
    assert_eq!(
        Passcode::new("a b c d").err(),
        Some(PasscodeError::WordsTooShort)
    );
    assert_eq!(
        Passcode::new("kettle kettle kettle kettle").err(),
        Some(PasscodeError::TooEasy)
    );
    assert!(Passcode::new("go to the shop now").is_ok());
    assert!(Passcode::new("don't stop the night-shift").is_ok());
    assert!(Passcode::new("482915").is_ok());
    assert!(Passcode::new(" 4829157 ").is_ok());
    assert_eq!(Passcode::new("abc123").err(), Some(PasscodeError::Mixed));
    assert_eq!(
        Passcode::new("kettle lamp").err(),
        Some(PasscodeError::TooFewWords)
    );
    assert!(Passcode::new("kettle lamp orchard river").is_ok());
    assert_eq!(
        Passcode::new(&"9".repeat(MAX_LEN + 1)).err(),
        Some(PasscodeError::TooLong)
    );
    assert_eq!(
        format!("{:?}", Passcode::new("482915")),
        "Ok(Passcode(***))"
    );
}

#[test]
fn keys_come_from_the_passcode_the_device_and_the_share_and_nothing_prints() {
    let words = stretched("Kettle  lamp orchard RIVER");
    // The same passphrase, typed differently, is the same passcode.
    let again = stretched("kettle lamp orchard river");
    assert_eq!(words.verifier(), again.verifier());
    // Frozen: the stretch (Argon2id at OWASP's minimum) and the derivations
    // must never change, or every phone's data would no longer open. The
    // value was computed independently, with the reference Argon2id
    // (RFC 9106: 19 MiB, 2 passes, 1 lane, salt = organisation || device)
    // and HKDF-SHA-384 (RFC 5869).
    assert_eq!(
        crate::hex::encode(words.verifier().as_bytes()),
        "e67ffcec67243e2cad86229e12ebcac0d96edd907deab1319ef9fd9d615e8b7ab8781ce9ba52c8167f74484c35ecb8d0"
    );
    let other_device = stretch(
        &Passcode::new("kettle lamp orchard river").expect("valid"),
        ORG,
        DeviceId::from_bytes([3; 16]),
    );
    assert_ne!(words.verifier(), other_device.verifier());

    let share = Share::from_bytes([9; SHARE_LEN]);
    let data_key = [5u8; KEY_LEN];
    let wrapped = wrap(
        &words.unlock_key(&share),
        [1; NONCE_LEN],
        "page data key",
        &data_key,
    );
    let opened = unwrap(&again.unlock_key(&share), "page data key", &wrapped).expect("opens");
    assert_eq!(opened.as_slice(), &data_key);
    // Without the relay's share, or with another passcode, or for another
    // purpose, it does not open.
    let other_share = Share::from_bytes([8; SHARE_LEN]);
    assert!(unwrap(&words.unlock_key(&other_share), "page data key", &wrapped).is_err());
    assert!(unwrap(
        &stretched("482915").unlock_key(&share),
        "page data key",
        &wrapped
    )
    .is_err());
    assert!(unwrap(&words.unlock_key(&share), "worker data key", &wrapped).is_err());
    assert!(unwrap(&words.offline_key(), "page data key", &wrapped).is_err());

    for printed in [
        format!("{words:?}"),
        format!("{:?}", words.verifier()),
        format!("{share:?}"),
    ] {
        assert!(printed.ends_with("(***)"), "{printed}");
    }
}

#[test]
fn the_relay_checks_a_proof_for_its_nonce_and_this_device_only() {
    let right = stretched("482915").verifier();
    let wrong = stretched("482916").verifier();
    let nonce = [7u8; NONCE_LEN_UNLOCK];
    let proof = right.proof(&nonce, DEVICE);
    assert!(right.check(&nonce, DEVICE, &proof));
    assert!(!right.check(&nonce, DEVICE, &wrong.proof(&nonce, DEVICE)));
    assert!(
        !right.check(&[8u8; NONCE_LEN_UNLOCK], DEVICE, &proof),
        "a replayed proof"
    );
    assert!(!right.check(&nonce, DeviceId::from_bytes([3; 16]), &proof));
    assert!(!right.check(&nonce, DEVICE, &proof[..PROOF_LEN - 1]));
    assert!(!right.check(&nonce, DEVICE, &[]));
}

#[test]
fn a_passcode_typed_to_unlock_takes_the_form_it_was_chosen_in() {
    let org = OrgId::from_bytes([1; 16]);
    let device = DeviceId::from_bytes([2; 16]);
    let chosen = Passcode::new("Maple  river Candle stone").expect("a passphrase");
    let typed = Passcode::typed("  maple river candle   STONE ").expect("typed");
    assert_eq!(
        stretch(&chosen, org, device).verifier(),
        stretch(&typed, org, device).verifier()
    );
    // What the rules would refuse today still unlocks (and is not refused
    // before the relay counts it).
    assert!(Passcode::new("123456").is_err());
    assert!(Passcode::typed("123456").is_ok());
    assert_eq!(
        Passcode::typed(&"9".repeat(MAX_LEN + 1)).err(),
        Some(PasscodeError::TooLong)
    );
    // What could never have been chosen is not worth a guess.
    assert_eq!(
        Passcode::typed("48392").err(),
        Some(PasscodeError::TooFewDigits)
    );
    assert_eq!(
        Passcode::typed("maple river").err(),
        Some(PasscodeError::TooFewWords)
    );
}
