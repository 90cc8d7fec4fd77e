//! The lock record's rules: what opens it, for how long without the relay, and what a clock turned back or a run of wrong guesses does.

use super::*;

const ORG: OrgId = OrgId::from_bytes([3; 16]);
const DEVICE: DeviceId = DeviceId::from_bytes([4; 16]);
const HOUR: u64 = 60 * 60 * 1000;
const T0: UnixMillis = UnixMillis(1_800_000_000_000);

fn typed(s: &str) -> PasscodeText {
    PasscodeText::new(s.to_owned())
}

fn new_lock(code: &str) -> NewLock {
    make(
        &typed(code),
        ORG,
        DEVICE,
        DataKey::from_bytes([7; KEY_LEN]),
        &PageKey::new(vec![9; KEY_LEN]),
        PhonePolicy::default(),
        T0,
    )
    .expect("a lock")
}

fn share_of(lock: &NewLock) -> Share {
    Share::from_bytes(lock.secrets.share[..].try_into().expect("32 bytes"))
}

fn stretched(code: &str) -> Stretched {
    stretch_typed(&typed(code), ORG, DEVICE).expect("stretched")
}

#[test]
fn the_right_passcode_and_the_relays_share_open_both_keys_and_nothing_else_does() {
    let lock = new_lock("483920");
    let share = share_of(&lock);
    let (worker, page) = open(&lock.record, &stretched("483920"), &share).expect("opens");
    assert_eq!(*worker.to_bytes(), [7; KEY_LEN]);
    assert_eq!(page.as_bytes(), &[9; KEY_LEN]);
    // The verifier the relay keeps is the one the passcode gives.
    assert_eq!(
        &lock.secrets.verifier[..],
        &stretched("483920").verifier().as_bytes()[..]
    );
    assert!(open(&lock.record, &stretched("483921"), &share).is_err());
    let other_share = Share::from_bytes([0; SHARE_LEN]);
    assert!(open(&lock.record, &stretched("483920"), &other_share).is_err());
    // Swapping the two wrapped keys does not pass one off as the other.
    let mut swapped = lock.record.clone();
    std::mem::swap(&mut swapped.worker_key, &mut swapped.page_key);
    assert!(open(&swapped, &stretched("483920"), &share).is_err());
    // Nothing secret prints.
    let printed = format!("{lock:?}");
    assert!(
        !printed.contains("verifier") && !printed.contains("lock_private"),
        "{printed}"
    );
}

#[test]
fn a_passcode_that_breaks_the_rules_is_refused_with_its_reason() {
    let refused = make(
        &typed("123456"),
        ORG,
        DEVICE,
        DataKey::from_bytes([7; KEY_LEN]),
        &PageKey::new(vec![9; KEY_LEN]),
        PhonePolicy::default(),
        T0,
    )
    .expect_err("too easy");
    assert_eq!(refused.kind, WorkerErrorKind::Passcode);
    assert!(refused.message.contains("123456"), "{}", refused.message);
}

#[test]
fn without_the_relay_it_opens_within_the_grace_period_and_not_after() {
    let lock = new_lock("483920");
    let mut record = lock.record.clone();
    let status = record.status(UnixMillis(T0.0 + HOUR));
    assert_eq!(status.offline_until, Some(UnixMillis(T0.0 + 12 * HOUR)));
    assert!(!status.away_too_long);
    match record.try_offline(&stretched("483920"), UnixMillis(T0.0 + 11 * HOUR)) {
        OfflineTry::Opened(share) => assert_eq!(share, share_of(&lock)),
        other => panic!("{other:?}"),
    }
    // Thirteen hours on, the copy is deleted when the app opens.
    let status = record.status(UnixMillis(T0.0 + 13 * HOUR));
    assert_eq!(status.offline_until, None);
    assert!(record.offline.is_none());
    // Turning the clock back does not bring it back.
    assert!(matches!(
        record.try_offline(&stretched("483920"), UnixMillis(T0.0 + HOUR)),
        OfflineTry::Unavailable
    ));
}

#[test]
fn a_clock_turned_back_after_the_phone_saw_a_later_time_does_not_extend_the_grace() {
    let mut record = new_lock("483920").record;
    // The phone saw 13 hours on (for example at its last opening) ...
    record.status(UnixMillis(T0.0 + 13 * HOUR));
    // ... and the finder sets the clock back to an hour after the unlock.
    assert!(matches!(
        record.try_offline(&stretched("483920"), UnixMillis(T0.0 + HOUR)),
        OfflineTry::Unavailable
    ));
}

#[test]
fn five_wrong_passcodes_without_the_relay_delete_the_offline_copy() {
    let mut record = new_lock("483920").record;
    let now = UnixMillis(T0.0 + HOUR);
    for left in (0..LOCAL_GUESSES).rev() {
        match record.try_offline(&stretched("000111"), now) {
            OfflineTry::Wrong { left: l } => assert_eq!(l, left),
            other => panic!("{other:?}"),
        }
    }
    assert!(record.offline.is_none());
    assert!(matches!(
        record.try_offline(&stretched("483920"), now),
        OfflineTry::Unavailable
    ));
}

#[test]
fn an_unlock_with_the_relay_renews_the_copy_and_resets_the_count() {
    let lock = new_lock("483920");
    let mut record = lock.record.clone();
    let later = UnixMillis(T0.0 + 20 * HOUR);
    assert!(matches!(
        record.try_offline(&stretched("000111"), UnixMillis(T0.0 + HOUR)),
        OfflineTry::Wrong { left: 4 }
    ));
    let policy = PhonePolicy {
        offline_unlock_secs: 2 * 60 * 60,
        ..PhonePolicy::default()
    };
    record
        .unlocked_with_relay(&stretched("483920"), &share_of(&lock), policy, later)
        .expect("renewed");
    assert_eq!(record.offline_failures, 0);
    assert_eq!(record.last_relay_unlock, later);
    assert_eq!(
        record.status(later).offline_until,
        Some(UnixMillis(later.0 + 2 * HOUR))
    );
    // An organisation that allows no offline unlock: no copy is kept.
    record
        .unlocked_with_relay(
            &stretched("483920"),
            &share_of(&lock),
            PhonePolicy {
                offline_unlock_secs: 0,
                ..PhonePolicy::default()
            },
            later,
        )
        .expect("renewed");
    assert!(record.offline.is_none());
}

#[test]
fn a_phone_that_has_not_unlocked_with_the_relay_for_a_week_must_wipe() {
    let mut record = new_lock("483920").record;
    assert!(
        !record
            .status(UnixMillis(T0.0 + 6 * 24 * HOUR))
            .away_too_long
    );
    assert!(
        record
            .status(UnixMillis(T0.0 + 8 * 24 * HOUR))
            .away_too_long
    );
}

#[test]
fn a_guess_is_counted_before_it_is_tried_so_racing_tabs_cannot_add_guesses() {
    let mut record = new_lock("483920").record;
    let now = UnixMillis(T0.0 + HOUR);
    // Five tabs claim a guess each before any of them has tried it.
    let claimed: Vec<_> = (0..7).map(|_| record.claim_offline_guess(now)).collect();
    assert_eq!(claimed.iter().filter(|c| c.is_some()).count(), 5);
    assert!(record.claim_offline_guess(now).is_none());
    // Even the right passcode, tried in a sixth tab, finds nothing left.
    assert!(matches!(
        record.try_offline(&stretched("483920"), now),
        OfflineTry::Unavailable
    ));
}

#[test]
fn a_relay_cannot_stretch_the_offline_grace_beyond_what_the_phone_allows() {
    let lock = new_lock("483920");
    let mut record = lock.record.clone();
    let policy = PhonePolicy {
        offline_unlock_secs: u64::MAX,
        ..PhonePolicy::default()
    };
    record
        .unlocked_with_relay(&stretched("483920"), &share_of(&lock), policy, T0)
        .expect("renewed");
    assert_eq!(
        record.status(T0).offline_until,
        Some(UnixMillis(T0.0 + MAX_OFFLINE_UNLOCK_SECS * 1000))
    );
    // Never past the time the phone wipes itself.
    let short = bounded(PhonePolicy {
        max_offline_secs: 3600,
        ..PhonePolicy::default()
    });
    assert_eq!(short.offline_unlock_secs, 3600);
}
