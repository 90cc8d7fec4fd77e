//! Tests for device keys.

use super::*;

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
