//! Tests for group profiles: the rules, and the bytes version 1 writes.

use super::*;
use crate::hex;

#[test]
fn profiles_outside_the_rules_are_refused() {
    assert!(GroupProfile::new(GroupKind::Clinical, RetentionSecs::days(30), "Too long").is_err());
    assert!(GroupProfile::new(GroupKind::Social, RetentionSecs::days(14), " ").is_err());
    assert!(GroupProfile::new(GroupKind::Social, RetentionSecs::days(14), "x".repeat(81)).is_err());
    assert_eq!(
        GroupProfile::new(GroupKind::Social, RetentionSecs::days(14), "  Tea room ")
            .map(|p| p.name),
        Ok("Tea room".to_owned())
    );
    assert!(GroupProfile::from_bytes(b"junk").is_err());
}

/// Frozen: members on a later version must still read what version 1 wrote.
#[test]
fn frozen_profile_bytes_v1() {
    let profile = GroupProfile::new(GroupKind::Clinical, RetentionSecs::DAY, "Ward").unwrap();
    let frozen = "010080a3050457617264";
    assert_eq!(hex::encode(&profile.to_bytes()), frozen);
    assert_eq!(
        GroupProfile::from_bytes(&hex::decode(frozen).unwrap()).unwrap(),
        profile
    );
}
