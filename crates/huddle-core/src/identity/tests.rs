//! Tests for credentials and safety numbers.

use super::*;

fn identity(n: u8) -> DeviceIdentity {
    DeviceIdentity {
        org: OrgId::from_bytes([1; 16]),
        user: UserId::from_bytes([n; 16]),
        device: DeviceId::from_bytes([n + 100; 16]),
    }
}

/// A stand-in public key: fingerprints hash whatever bytes they are given.
fn key(n: u8) -> Vec<u8> {
    vec![n; 97]
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
fn safety_numbers_are_stable_symmetric_and_key_bound() {
    let fa = Fingerprint::of(&identity(1), &key(1));
    let fb = Fingerprint::of(&identity(2), &key(2));
    assert_eq!(fa, Fingerprint::of(&identity(1), &key(1)));
    assert_ne!(fa, Fingerprint::of(&identity(1), &key(2)));
    assert_ne!(fa, Fingerprint::of(&identity(3), &key(1)));

    let seen_by_alice = SafetyNumber::between(fa, fb);
    let seen_by_bob = SafetyNumber::between(fb, fa);
    assert_eq!(seen_by_alice, seen_by_bob);
    let text = seen_by_alice.to_string();
    assert_eq!(text.len(), 12 * 5 + 11, "{text}");
    assert!(text
        .split(' ')
        .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
    assert!(seen_by_bob.matches_qr(&seen_by_alice.qr_payload()));
    let impostor = Fingerprint::of(&identity(2), &key(9));
    assert!(!SafetyNumber::between(fa, impostor).matches_qr(&seen_by_alice.qr_payload()));
}

#[test]
fn a_fingerprint_is_frozen() {
    // Safety numbers people have compared must not change with a new
    // version: the same identity and key give the same digits for ever.
    assert_eq!(
        Fingerprint::of(&identity(1), &key(1)).to_string(),
        FROZEN_FINGERPRINT
    );
}

/// Computed once by this implementation; see `a_fingerprint_is_frozen`.
const FROZEN_FINGERPRINT: &str = "74926 36953 15765 28716 71890 69425";

#[test]
fn the_qr_code_is_text_a_barcode_reader_returns_exactly_and_its_digits_group_as_shown() {
    let number = SafetyNumber::between(
        Fingerprint::of(&identity(1), &key(1)),
        Fingerprint::of(&identity(2), &key(2)),
    );
    let payload = number.qr_payload();
    // Upper case, digits and the QR alphanumeric punctuation only.
    assert!(payload
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || "-:".contains(c)));
    assert_eq!(payload.len(), "HUDDLE-SN1:".len() + 60);
    assert!(number.matches_qr(&format!("{payload}\n")));
    assert!(!number.matches_qr(&payload[..payload.len() - 1]));
    assert!(!number.matches_qr(""));
    assert_eq!(number.groups().join(" "), number.to_string());
}
