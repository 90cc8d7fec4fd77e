//! Tests for the worker protocol's handling of plaintext.

use super::*;

#[test]
fn plaintext_never_prints_its_content() {
    let secret = "Mrs Jones in bay 4 needs her insulin";
    let request = WorkerRequest::Seal {
        group: GroupId::from_bytes([1; 16]),
        client_msg: ClientMessageId::from_bytes([2; 16]),
        expires_at: UnixMillis(5),
        envelope: Plaintext::new(secret.as_bytes().to_vec()),
    };
    let printed = format!("{request:?}");
    assert!(!printed.contains("insulin"), "{printed}");
    assert!(printed.contains(&format!("Plaintext({} bytes)", secret.len())));
}

#[test]
fn plaintext_is_encoded_as_its_bytes() {
    // `transparent`: the worker protocol's bytes did not change when the
    // newtype was introduced.
    let bytes = postcard::to_allocvec(&Plaintext::new(vec![7, 8])).unwrap();
    assert_eq!(bytes, postcard::to_allocvec(&vec![7u8, 8]).unwrap());
}

#[test]
fn a_passcode_and_a_page_key_never_print() {
    let request = WorkerRequest::SetPasscode {
        passcode: PasscodeText::new("582914".into()),
        page_key: PageKey::new(vec![0xab; 32]),
        org: OrgId::from_bytes([1; 16]),
        device: DeviceId::from_bytes([2; 16]),
        policy: PhonePolicy::default(),
        now: UnixMillis(5),
    };
    let printed = format!("{request:?}");
    assert!(!printed.contains("582914"), "{printed}");
    assert!(!printed.contains("171"), "no byte of the key: {printed}");
    assert!(printed.contains("PasscodeText(***)") && printed.contains("PageKey(***)"));
    let answer = UnlockOutcome::Unlocked {
        page_key: PageKey::new(vec![0xab; 32]),
        policy: PhonePolicy::default(),
    };
    assert!(!format!("{answer:?}").contains("171"));
}
