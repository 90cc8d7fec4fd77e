//! Tests for hex encoding and decoding.

use super::*;

fn check(text: &str, expected: Option<&[u8]>) {
    assert_eq!(decode(text).as_deref(), expected, "decoding {text:?}");
}

#[test]
fn decodes_both_cases_and_refuses_anything_else() {
    check("", Some(&[]));
    check("00ff10", Some(&[0x00, 0xff, 0x10]));
    check("ABcd", Some(&[0xab, 0xcd]));
    check("abc", None);
    check("zz", None);
    check("0g", None);
    check("é0", None);
}

#[test]
fn round_trips_and_fixed_lengths() {
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(decode(&encode(&bytes)), Some(bytes));
    assert_eq!(encode(&[0x0a, 0xb0]), "0ab0");
    assert_eq!(decode_array::<2>("0ab0"), Some([0x0a, 0xb0]));
    assert_eq!(decode_array::<2>("0ab0ff"), None);
    assert_eq!(decode_array::<3>("0ab0"), None);
}
