//! Tests for broadcast cards: who has acknowledged and who has not, each person once, the phone's own acknowledgement as it travels, and acknowledgements never shown as messages.

use super::*;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId};
use huddle_core::sync::Failure;

const MANAGER: UserId = UserId::from_bytes([1; 16]);
const BEN: UserId = UserId::from_bytes([2; 16]);
const CAROL: UserId = UserId::from_bytes([3; 16]);
const DEV: UserId = UserId::from_bytes([4; 16]);
const TEAM: [UserId; 4] = [MANAGER, BEN, CAROL, DEV];

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

fn broadcast() -> MessageRecord {
    record(
        MANAGER,
        1,
        1_000,
        MessageBody::Text("Fire doors jammed".into()),
    )
}

fn acknowledgement(sender: UserId, n: u8, sent_at: u64) -> MessageRecord {
    record(
        sender,
        n,
        sent_at,
        MessageBody::Acknowledgement(reference(&broadcast())),
    )
}

fn received(_: &MessageRecord) -> Delivery {
    Delivery::Received
}

#[test]
fn a_broadcast_shows_who_has_acknowledged_and_who_has_not() {
    let mut messages = vec![
        broadcast(),
        acknowledgement(CAROL, 3, 3_000),
        acknowledgement(BEN, 2, 2_000),
        // Ben again, from his other phone: he is counted once, at his first.
        acknowledgement(BEN, 4, 4_000),
    ];
    let cards = take_cards(
        &mut messages,
        GroupKind::EmergencyBroadcast,
        &TEAM,
        DEV,
        received,
    );
    assert_eq!(
        messages,
        vec![broadcast()],
        "acknowledgements are not shown"
    );
    let card = &cards[&reference(&broadcast())];
    assert_eq!(
        card.acknowledged,
        vec![(BEN, UnixMillis(2_000)), (CAROL, UnixMillis(3_000))]
    );
    assert_eq!(card.waiting, vec![DEV], "never the sender");
    assert_eq!(card.mine, MyPart::ToAcknowledge);
    assert!(card.mine.to_do());
}

#[test]
fn the_sender_sees_the_count_and_her_own_acknowledgement_says_nothing() {
    let mut messages = vec![broadcast(), acknowledgement(MANAGER, 2, 2_000)];
    let cards = take_cards(
        &mut messages,
        GroupKind::EmergencyBroadcast,
        &TEAM,
        MANAGER,
        received,
    );
    let card = &cards[&reference(&broadcast())];
    assert_eq!(card.mine, MyPart::Sender);
    assert!(card.acknowledged.is_empty());
    assert_eq!(card.waiting, vec![BEN, CAROL, DEV]);
}

#[test]
fn the_phones_own_acknowledgement_counts_once_stored_and_not_if_refused() {
    let mine = acknowledgement(BEN, 2, 2_000);
    let for_delivery = |delivery: Delivery| {
        let mut messages = vec![broadcast(), mine.clone()];
        let cards = take_cards(
            &mut messages,
            GroupKind::EmergencyBroadcast,
            &TEAM,
            BEN,
            |m: &MessageRecord| {
                if m.sender == BEN {
                    delivery.clone()
                } else {
                    Delivery::Received
                }
            },
        );
        cards[&reference(&broadcast())].clone()
    };
    let sending = for_delivery(Delivery::Sending);
    assert_eq!(sending.mine, MyPart::Sending);
    assert_eq!(sending.acknowledged, vec![(BEN, UnixMillis(2_000))]);
    assert_eq!(for_delivery(Delivery::Sent).mine, MyPart::Acknowledged);
    let refused = for_delivery(Delivery::Failed(Failure::Refused(
        huddle_core::wire::Rejection::NotPermitted,
    )));
    assert_eq!(refused.mine, MyPart::Failed);
    assert!(refused.mine.to_do(), "she can acknowledge again");
    assert!(refused.acknowledged.is_empty());
    assert!(refused.waiting.contains(&BEN));
}

#[test]
fn an_acknowledgement_of_another_message_or_outside_a_broadcast_group_counts_for_nothing() {
    let other = MessageRef {
        author: MANAGER,
        client_msg: ClientMessageId::from_bytes([77; 16]),
    };
    let mut messages = vec![
        broadcast(),
        record(BEN, 2, 2_000, MessageBody::Acknowledgement(other)),
    ];
    let cards = take_cards(
        &mut messages,
        GroupKind::EmergencyBroadcast,
        &TEAM,
        DEV,
        received,
    );
    assert!(cards[&reference(&broadcast())].acknowledged.is_empty());

    let mut messages = vec![broadcast(), acknowledgement(BEN, 2, 2_000)];
    let cards = take_cards(&mut messages, GroupKind::Clinical, &TEAM, DEV, received);
    assert!(cards.is_empty(), "no broadcasts outside broadcast groups");
    assert_eq!(messages, vec![broadcast()], "and no acknowledgements shown");
}
