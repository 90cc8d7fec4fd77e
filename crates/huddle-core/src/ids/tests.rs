//! Tests for identifier printing and parsing.

use super::*;

#[test]
fn ids_print_as_hex_and_parse_back() {
    let id = GroupId::from_bytes([0xab; 16]);
    let text = id.to_string();
    assert_eq!(text, "abababababababababababababababab");
    assert_eq!(text.parse::<GroupId>(), Ok(id));
    assert_eq!(
        "ABABABABABABABABABABABABABABABAB".parse::<GroupId>(),
        Ok(id)
    );
    assert_eq!(format!("{id:?}"), format!("GroupId({text})"));
}

#[test]
fn malformed_ids_are_refused() {
    for bad in [
        "",
        "abc",
        "zz000000000000000000000000000000",
        &"0".repeat(33),
        "é".repeat(16).as_str(),
    ] {
        assert_eq!(bad.parse::<DeviceId>(), Err(ParseIdError), "{bad:?}");
    }
}
