//! Tests of the retention limits and of expiry under clock skew.

use super::*;

#[test]
fn every_kind_has_a_sane_policy() {
    for kind in GroupKind::ALL {
        let p = kind.retention_policy();
        assert!(p.min <= p.default && p.default <= p.max, "{kind:?}");
        assert_eq!(kind.check_retention(p.default), Ok(p.default));
        assert!(
            p.max <= RetentionSecs::days(90),
            "{kind:?} keeps messages too long"
        );
    }
}

#[test]
fn retention_outside_the_limits_is_refused_with_the_limit() {
    use RetentionError::{TooLong, TooShort};
    let check = |kind: GroupKind, secs: u64, expected: Result<(), RetentionError>| {
        let got = kind.check_retention(RetentionSecs(secs)).map(|_| ());
        assert_eq!(got, expected, "{kind:?} {secs}s");
    };
    let min = |kind: GroupKind| kind.retention_policy().min;
    let max = |kind: GroupKind| kind.retention_policy().max;
    let (clinical, social, broadcast) = (
        GroupKind::Clinical,
        GroupKind::Social,
        GroupKind::EmergencyBroadcast,
    );
    check(
        clinical,
        60,
        Err(TooShort {
            kind: clinical,
            min: min(clinical),
        }),
    );
    check(clinical, 300, Ok(()));
    check(
        clinical,
        8 * 86_400,
        Err(TooLong {
            kind: clinical,
            max: max(clinical),
        }),
    );
    check(social, 90 * 86_400, Ok(()));
    check(
        social,
        91 * 86_400,
        Err(TooLong {
            kind: social,
            max: max(social),
        }),
    );
    check(
        broadcast,
        1_800,
        Err(TooShort {
            kind: broadcast,
            min: min(broadcast),
        }),
    );
    assert_eq!(min(clinical), RetentionSecs::minutes(5));
    assert_eq!(max(clinical), RetentionSecs::days(7));
    assert_eq!(max(social), RetentionSecs::days(90));
    assert_eq!(min(broadcast), RetentionSecs::HOUR);
}

#[test]
fn retention_reads_as_plain_english() {
    let check = |secs: u64, expected: &str| assert_eq!(RetentionSecs(secs).to_string(), expected);
    check(1, "1 second");
    check(90, "90 seconds");
    check(300, "5 minutes");
    check(3_600, "1 hour");
    check(5_400, "90 minutes");
    check(86_400, "1 day");
    check(3 * 86_400, "3 days");
    check(14 * 86_400, "2 weeks");
}

#[test]
fn expiry_respects_honest_clocks_and_caps_fast_ones() {
    let retention = RetentionSecs::HOUR;
    let now = UnixMillis(1_800_000_000_000);
    let skew = MAX_CLOCK_SKEW_MILLIS;
    let hour = retention.as_millis();

    // An honest sender: the claim stands.
    let honest = now.saturating_add(retention);
    assert_eq!(effective_expiry(honest, now, retention), Ok(honest));

    // A sender a little fast, within the skew: the claim stands.
    let slightly_fast = now.saturating_add_millis(hour + skew);
    assert_eq!(
        effective_expiry(slightly_fast, now, retention),
        Ok(slightly_fast)
    );

    // A sender a day fast cannot make the message outlive its retention.
    let day_fast = now.saturating_add_millis(hour + 86_400_000);
    assert_eq!(
        effective_expiry(day_fast, now, retention),
        Ok(now.saturating_add_millis(hour + skew))
    );

    // A slow sender only shortens the message's life.
    let slow = now.saturating_add_millis(hour / 2);
    assert_eq!(effective_expiry(slow, now, retention), Ok(slow));

    // A claim already past by more than the skew is refused.
    let stale = now.saturating_sub_millis(skew + 1);
    assert_eq!(
        effective_expiry(stale, now, retention),
        Err(ExpiryError::ExpiredOnArrival)
    );
    let just_past = now.saturating_sub_millis(skew);
    assert_eq!(effective_expiry(just_past, now, retention), Ok(just_past));
}

#[test]
fn expiry_never_overflows() {
    let far = UnixMillis(u64::MAX - 1);
    assert_eq!(
        effective_expiry(UnixMillis(u64::MAX), far, RetentionSecs(u64::MAX)),
        Ok(UnixMillis(u64::MAX))
    );
}

#[test]
fn group_kinds_serialise_as_stable_names() {
    let names: Vec<String> = GroupKind::ALL
        .iter()
        .map(|k| serde_json::to_string(k).expect("serialise"))
        .collect();
    assert_eq!(
        names,
        [
            "\"clinical\"",
            "\"operational\"",
            "\"social\"",
            "\"emergency_broadcast\"",
            "\"direct\""
        ]
    );
}
