//! Tests for shift cards: answers folded in the log's order whatever order the phone stored them in, and never shown as messages.

use super::*;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::shift::{Request, Shift, ShiftAction, ShiftUpdate};

const POSTER: UserId = UserId::from_bytes([1; 16]);
const BEN: UserId = UserId::from_bytes([2; 16]);
const CAROL: UserId = UserId::from_bytes([3; 16]);

fn record(sender: UserId, n: u8, sent_at: u64, body: MessageBody) -> MessageRecord {
    MessageRecord {
        group: GroupId::from_bytes([9; 16]),
        client_msg: ClientMessageId::from_bytes([n; 16]),
        sender,
        sender_device: DeviceId::from_bytes(*sender.as_bytes()),
        sent_at: UnixMillis(sent_at),
        expires_at: UnixMillis(sent_at + 86_400_000),
        body,
    }
}

fn offer_record() -> MessageRecord {
    record(
        POSTER,
        1,
        1_000,
        MessageBody::ShiftOffer(Shift {
            day: 20_500,
            start: 7 * 60,
            end: 15 * 60,
            unit: "Oak".into(),
            role: "Carer".into(),
            note: String::new(),
        }),
    )
}

fn offer_ref() -> MessageRef {
    MessageRef {
        author: POSTER,
        client_msg: ClientMessageId::from_bytes([1; 16]),
    }
}

fn answer(
    sender: UserId,
    n: u8,
    sent_at: u64,
    action: ShiftAction,
    logged_at: Option<u64>,
) -> MessageRecord {
    record(
        sender,
        n,
        sent_at,
        MessageBody::ShiftUpdate {
            update: ShiftUpdate {
                offer: offer_ref(),
                action,
            },
            logged_at,
            by_administrator: false,
        },
    )
}

fn requests(card: &ShiftCard) -> Vec<UserId> {
    match &card.status {
        ShiftStatus::Open { requests } => requests.iter().map(Request::by).collect(),
        other => panic!("not open: {other:?}"),
    }
}

#[test]
fn answers_are_folded_in_log_order_not_by_their_senders_clocks_and_are_not_shown() {
    // Carol's clock is ahead: her request says it was sent first, but Ben's
    // is first in the log.
    let messages = vec![
        offer_record(),
        answer(CAROL, 3, 1_500, ShiftAction::Claim, Some(12)),
        answer(BEN, 2, 2_000, ShiftAction::Claim, Some(11)),
    ];
    let shown = fold(messages, GroupKind::Operational, |_| false);
    assert_eq!(shown.len(), 1, "answers are folded, not shown");
    let card = shown[0].1.as_ref().expect("an offer has a card");
    assert_eq!(requests(card), [BEN, CAROL]);
    assert!(!card.sending);
}

#[test]
fn an_answer_not_yet_stored_comes_after_every_stored_one_and_says_so() {
    let messages = vec![
        offer_record(),
        answer(CAROL, 3, 1_500, ShiftAction::Claim, None),
        answer(BEN, 2, 9_000, ShiftAction::Claim, Some(11)),
    ];
    let shown = fold(messages, GroupKind::Operational, |_| false);
    let card = shown[0].1.as_ref().unwrap();
    assert_eq!(requests(card), [BEN, CAROL]);
    assert!(card.sending);
}

#[test]
fn a_confirmation_counts_from_the_poster_or_an_administrator_only() {
    let confirm = |sender, n| {
        answer(
            sender,
            n,
            3_000,
            ShiftAction::Confirm {
                claim: MessageRef {
                    author: BEN,
                    client_msg: ClientMessageId::from_bytes([2; 16]),
                },
            },
            Some(20),
        )
    };
    let claim = answer(BEN, 2, 2_000, ShiftAction::Claim, Some(11));
    let by_carol = fold(
        vec![offer_record(), claim.clone(), confirm(CAROL, 4)],
        GroupKind::Operational,
        |_| false,
    );
    assert_eq!(requests(by_carol[0].1.as_ref().unwrap()), [BEN]);
    // Carol's certificate made her an administrator when her answer was
    // opened.
    let mut by_administrator = confirm(CAROL, 4);
    if let MessageBody::ShiftUpdate {
        by_administrator: certified,
        ..
    } = &mut by_administrator.body
    {
        *certified = true;
    }
    let by_admin = fold(
        vec![offer_record(), claim, by_administrator],
        GroupKind::Operational,
        |_| false,
    );
    assert!(matches!(
        by_admin[0].1.as_ref().unwrap().status,
        ShiftStatus::Confirmed { to, .. } if to.by() == BEN
    ));
}

#[test]
fn an_own_answer_that_failed_counts_for_nothing_and_the_card_says_so() {
    let mine = answer(CAROL, 3, 1_500, ShiftAction::Claim, None);
    let refused = mine.client_msg;
    let shown = fold(vec![offer_record(), mine], GroupKind::Operational, |m| {
        m.client_msg == refused
    });
    let card = shown[0].1.as_ref().unwrap();
    assert_eq!(requests(card), Vec::<UserId>::new());
    assert!(card.failed && !card.sending);
}

#[test]
fn offers_outside_operational_groups_and_answers_to_other_offers_change_nothing() {
    for kind in [GroupKind::Social, GroupKind::Clinical, GroupKind::Direct] {
        let shown = fold(vec![offer_record()], kind, |_| false);
        assert!(shown.is_empty(), "{kind:?}");
    }
    let mut elsewhere = answer(BEN, 2, 2_000, ShiftAction::Claim, Some(11));
    if let MessageBody::ShiftUpdate { update, .. } = &mut elsewhere.body {
        update.offer.client_msg = ClientMessageId::from_bytes([7; 16]);
    }
    let text = record(CAROL, 5, 500, MessageBody::Text("Morning all".into()));
    let shown = fold(
        vec![text, offer_record(), elsewhere],
        GroupKind::Operational,
        |_| false,
    );
    assert_eq!(shown.len(), 2);
    assert!(shown[0].1.is_none());
    assert_eq!(requests(shown[1].1.as_ref().unwrap()), Vec::<UserId>::new());
}
