//! Tests for device keys, credentials and safety numbers.

use super::*;

fn identity(n: u8) -> DeviceIdentity {
    DeviceIdentity {
        org: OrgId::from_bytes([1; 16]),
        user: UserId::from_bytes([n; 16]),
        device: DeviceId::from_bytes([n + 100; 16]),
    }
}

#[test]
fn credentials_round_trip_and_reject_anything_else() {
    let id = identity(2);
    let bytes = id.to_credential_bytes();
    assert_eq!(DeviceIdentity::from_credential_bytes(&bytes), Some(id));
    assert_eq!(DeviceIdentity::from_credential_bytes(b"alice"), None);
    let mut wrong_magic = bytes.clone();
    wrong_magic[0] = b'X';
    assert_eq!(DeviceIdentity::from_credential_bytes(&wrong_magic), None);
    assert_eq!(DeviceIdentity::from_credential_bytes(&bytes[..51]), None);
}

#[test]
fn a_device_key_survives_export_and_restore_and_mismatches_are_refused() {
    let signer = DeviceSigner::generate().unwrap();
    let (private, public) = signer.export();
    let restored = DeviceSigner::restore(&private, &public).unwrap();
    let signature = restored.sign_challenge(b"challenge").unwrap();
    assert!(verify_device_signature(&public, b"challenge", &signature));
    assert!(!verify_device_signature(&public, b"other", &signature));

    let other = DeviceSigner::generate().unwrap();
    assert!(DeviceSigner::restore(&private, other.public_key()).is_err());
    assert!(DeviceSigner::restore(b"junk", &public).is_err());
    assert!(!format!("{signer:?}").contains(&format!("{:?}", &private[..4])));
}

#[test]
fn safety_numbers_are_stable_symmetric_and_key_bound() {
    let alice = DeviceSigner::generate().unwrap();
    let bob = DeviceSigner::generate().unwrap();
    let fa = Fingerprint::of(&identity(1), alice.public_key());
    let fb = Fingerprint::of(&identity(2), bob.public_key());
    assert_eq!(fa, Fingerprint::of(&identity(1), alice.public_key()));
    assert_ne!(fa, Fingerprint::of(&identity(1), bob.public_key()));
    assert_ne!(fa, Fingerprint::of(&identity(3), alice.public_key()));

    let seen_by_alice = SafetyNumber::between(fa, fb);
    let seen_by_bob = SafetyNumber::between(fb, fa);
    assert_eq!(seen_by_alice, seen_by_bob);
    let text = seen_by_alice.to_string();
    assert_eq!(text.len(), 12 * 5 + 11, "{text}");
    assert!(text
        .split(' ')
        .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
    assert!(seen_by_bob.matches_qr(&seen_by_alice.qr_payload()));
    let impostor = Fingerprint::of(&identity(2), DeviceSigner::generate().unwrap().public_key());
    assert!(!SafetyNumber::between(fa, impostor).matches_qr(&seen_by_alice.qr_payload()));
}
