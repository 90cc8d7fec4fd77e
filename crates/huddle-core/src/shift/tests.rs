//! Tests for shift offers: the limits of an offer, and the rule that settles a shift the same way on every phone.

use super::*;

const POSTER: UserId = UserId::from_bytes([1; 16]);
const BEN: UserId = UserId::from_bytes([2; 16]);
const CAROL: UserId = UserId::from_bytes([3; 16]);
const ADMIN: UserId = UserId::from_bytes([4; 16]);

fn id(author: UserId, n: u8) -> MessageRef {
    MessageRef {
        author,
        client_msg: ClientMessageId::from_bytes([n; 16]),
    }
}

fn offer() -> MessageRef {
    id(POSTER, 100)
}

fn answer(author: UserId, n: u8, action: ShiftAction) -> Answer {
    Answer {
        id: id(author, n),
        by_administrator: author == ADMIN,
        action,
    }
}

fn late_shift() -> Shift {
    Shift {
        day: 20_500,
        start: 14 * 60,
        end: 22 * 60,
        unit: "Rowan unit".into(),
        role: "Senior carer".into(),
        note: String::new(),
    }
}

#[test]
fn an_offer_needs_a_role_real_times_a_length_and_short_fields() {
    assert_eq!(late_shift().check(), Ok(()));
    let mut shift = late_shift();
    shift.role = "  ".into();
    assert_eq!(shift.check(), Err(ShiftError::NoRole));
    let mut shift = late_shift();
    shift.end = MINUTES_PER_DAY;
    assert_eq!(shift.check(), Err(ShiftError::NotATime));
    let mut shift = late_shift();
    shift.end = shift.start;
    assert_eq!(shift.check(), Err(ShiftError::NoLength));
    let mut shift = late_shift();
    shift.note = "x".repeat(MAX_NOTE_BYTES + 1);
    assert!(matches!(
        shift.check(),
        Err(ShiftError::TooLong { field: "note", .. })
    ));
    let mut night = late_shift();
    (night.start, night.end) = (20 * 60, 8 * 60);
    assert!(night.check().is_ok() && night.overnight());
    assert!(!late_shift().overnight());
}

#[test]
fn a_shift_never_prints_what_it_says() {
    let mut shift = late_shift();
    shift.note = "Mrs Jones in room 4".into();
    let printed = format!("{shift:?}");
    assert!(
        !printed.contains("Jones") && !printed.contains("Rowan"),
        "{printed}"
    );
}

#[test]
fn requests_stand_in_log_order_and_the_confirmation_decides() {
    let answers = [
        answer(CAROL, 1, ShiftAction::Claim),
        answer(BEN, 2, ShiftAction::Claim),
    ];
    let status = settle(offer(), &answers);
    let ShiftStatus::Open { requests } = &status else {
        panic!("{status:?}");
    };
    assert_eq!(
        requests.iter().map(Request::by).collect::<Vec<_>>(),
        [CAROL, BEN]
    );

    // The poster gives it to Ben although Carol asked first.
    let mut answers = answers.to_vec();
    answers.push(answer(
        POSTER,
        3,
        ShiftAction::Confirm { claim: id(BEN, 2) },
    ));
    let status = settle(offer(), &answers);
    assert_eq!(
        status,
        ShiftStatus::Confirmed {
            to: Request { id: id(BEN, 2) },
            others: vec![Request { id: id(CAROL, 1) }],
        }
    );
    // A second confirmation changes nothing; a later request waits.
    answers.push(answer(
        POSTER,
        4,
        ShiftAction::Confirm {
            claim: id(CAROL, 1),
        },
    ));
    answers.push(answer(ADMIN, 5, ShiftAction::Claim));
    let ShiftStatus::Confirmed { to, others } = settle(offer(), &answers) else {
        panic!("still confirmed");
    };
    assert_eq!(to.by(), BEN);
    assert_eq!(
        others.iter().map(Request::by).collect::<Vec<_>>(),
        [CAROL, ADMIN]
    );
}

#[test]
fn only_the_poster_or_an_administrator_settles_releases_or_withdraws() {
    let claim = answer(BEN, 1, ShiftAction::Claim);
    let by_carol = answer(CAROL, 2, ShiftAction::Confirm { claim: id(BEN, 1) });
    // Carol (a colleague with a modified app) cannot give Ben the shift,
    // release it or withdraw it.
    for action in [ShiftAction::Release, ShiftAction::Withdraw] {
        let status = settle(offer(), &[claim, by_carol, answer(CAROL, 3, action)]);
        assert!(matches!(status, ShiftStatus::Open { .. }), "{status:?}");
    }
    // An administrator can.
    let by_admin = answer(ADMIN, 2, ShiftAction::Confirm { claim: id(BEN, 1) });
    assert!(matches!(
        settle(offer(), &[claim, by_admin]),
        ShiftStatus::Confirmed { .. }
    ));
    let released = settle(
        offer(),
        &[claim, by_admin, answer(POSTER, 3, ShiftAction::Release)],
    );
    assert_eq!(released, ShiftStatus::Open { requests: vec![] });
    // Withdrawn is final.
    let withdrawn = settle(
        offer(),
        &[answer(POSTER, 3, ShiftAction::Withdraw), claim, by_admin],
    );
    assert_eq!(withdrawn, ShiftStatus::Withdrawn);
}

#[test]
fn a_request_counts_once_the_poster_cannot_ask_and_a_request_can_be_taken_back() {
    let answers = [
        answer(POSTER, 1, ShiftAction::Claim),
        answer(BEN, 2, ShiftAction::Claim),
        answer(BEN, 3, ShiftAction::Claim),
        answer(CAROL, 4, ShiftAction::Claim),
        answer(BEN, 5, ShiftAction::CancelClaim),
    ];
    let ShiftStatus::Open { requests } = settle(offer(), &answers) else {
        panic!("open");
    };
    assert_eq!(requests, vec![Request { id: id(CAROL, 4) }]);
}

#[test]
fn a_confirmation_decides_even_where_the_claim_it_names_was_withheld_or_expired() {
    let confirm_ben = answer(POSTER, 6, ShiftAction::Confirm { claim: id(BEN, 2) });
    // Carol's phone never got Ben's claim (the relay withheld it, or it
    // expired there first), but it holds the poster's confirmation.
    let on_carols_phone = settle(
        offer(),
        &[answer(CAROL, 4, ShiftAction::Claim), confirm_ben],
    );
    let on_bens_phone = settle(
        offer(),
        &[
            answer(BEN, 2, ShiftAction::Claim),
            answer(CAROL, 4, ShiftAction::Claim),
            confirm_ben,
        ],
    );
    assert_eq!(on_carols_phone, on_bens_phone);
    assert!(matches!(on_bens_phone, ShiftStatus::Confirmed { to, .. } if to.by() == BEN));
    // A confirmation naming the poster herself changes nothing.
    let to_poster = settle(
        offer(),
        &[answer(
            ADMIN,
            7,
            ShiftAction::Confirm {
                claim: id(POSTER, 1),
            },
        )],
    );
    assert_eq!(to_poster, ShiftStatus::Open { requests: vec![] });
}

#[test]
fn phones_holding_the_same_answers_in_the_same_order_agree() {
    // Two staff ask at the same moment: whatever their clocks said, every
    // phone folds the log's order and names the same first request.
    let answers = [
        answer(CAROL, 9, ShiftAction::Claim),
        answer(BEN, 1, ShiftAction::Claim),
    ];
    let on_bens_phone = settle(offer(), &answers);
    let on_carols_phone = settle(offer(), &answers);
    assert_eq!(on_bens_phone, on_carols_phone);
    assert_eq!(
        on_bens_phone.request_of(CAROL),
        Some(Request { id: id(CAROL, 9) })
    );
}
