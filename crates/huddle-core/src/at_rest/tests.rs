//! Tests for at-rest encryption: the Wycheproof AES-GCM vectors through the wrapper, natively and in wasm, and record binding.

use super::*;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

macro_rules! both {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        fn $name() $body
    };
}

both! {
    /// Every Wycheproof AES-GCM case the wrapper can express (256-bit key,
    /// 96-bit nonce, 128-bit tag) must give the expected result: valid
    /// cases encrypt to the exact bytes and decrypt back, invalid cases are
    /// refused. Other key, nonce and tag sizes cannot be passed to the
    /// wrapper at all: its types fix them.
    fn wycheproof_aes_256_gcm_vectors_pass_through_the_wrapper() {
        use wycheproof::aead::{TestName, TestSet};
        use wycheproof::TestResult;
        let set = TestSet::load(TestName::AesGcm).expect("the Wycheproof AES-GCM vectors");
        let (mut valid, mut invalid, mut not_expressible) = (0, 0, 0);
        for group in &set.test_groups {
            let fits = group.key_size == 256 && group.nonce_size == 96 && group.tag_size == 128;
            if !fits {
                not_expressible += group.tests.len();
                continue;
            }
            for test in &group.tests {
                let key = DataKey::from_bytes(test.key.as_slice().try_into().expect("256-bit key"));
                let nonce: [u8; NONCE_LEN] = test.nonce.as_slice().try_into().expect("96-bit nonce");
                let mut expected = test.ct.to_vec();
                expected.extend_from_slice(&test.tag);
                let opened = decrypt(&key, &nonce, &test.aad, &expected);
                match test.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        assert_eq!(encrypt(&key, &nonce, &test.aad, &test.pt), expected, "tc {}", test.tc_id);
                        assert_eq!(opened.as_ref().map(|p| p.as_slice()), Ok(&test.pt[..]), "tc {}", test.tc_id);
                        valid += 1;
                    }
                    TestResult::Invalid => {
                        assert!(opened.is_err(), "tc {} ({}) must be refused", test.tc_id, test.comment);
                        invalid += 1;
                    }
                }
            }
        }
        // Wycheproof 0.7 holds 39 valid and 27 invalid cases of this shape.
        assert_eq!((valid, invalid), (39, 27), "cases run");
        assert!(not_expressible > 0);
    }
}

both! {
    fn records_open_only_under_their_key_store_and_id() {
        let key = DataKey::from_bytes([7; 32]);
        let sealed = seal_record(&key, [1; 12], "messages", b"id-1", b"Handover at 8");
        assert_eq!(open_record(&key, "messages", b"id-1", &sealed).unwrap().as_slice(), b"Handover at 8");
        assert!(!sealed.windows(8).any(|w| w == b"Handover"), "no plaintext in the record");
        assert_eq!(open_record(&key, "messages", b"id-2", &sealed), Err(AtRestError::Unauthentic));
        assert_eq!(open_record(&key, "outbox", b"id-1", &sealed), Err(AtRestError::Unauthentic));
        assert_eq!(open_record(&key, "message", b"sid-1", &sealed), Err(AtRestError::Unauthentic));
        let other = DataKey::from_bytes([8; 32]);
        assert_eq!(open_record(&other, "messages", b"id-1", &sealed), Err(AtRestError::Unauthentic));
        for index in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[index] ^= 0x01;
            assert!(open_record(&key, "messages", b"id-1", &bad).is_err());
        }
        assert_eq!(open_record(&key, "messages", b"id-1", &[]), Err(AtRestError::Truncated));
        assert_eq!(open_record(&key, "messages", b"id-1", &sealed[..20]), Err(AtRestError::Truncated));
        assert_eq!(open_record(&key, "messages", b"id-1", &[2; 40]), Err(AtRestError::UnknownVersion(2)));
        assert_eq!(format!("{key:?}"), "DataKey(***)");
    }
}
