//! Tests for the phone's records: frozen bytes (a later version must still read what this one wrote) and no content in their debug output.

use super::*;
use huddle_core::hex;
use huddle_core::sync::Failure;
use huddle_core::wire::Rejection;

fn sample_message() -> MessageRecord {
    MessageRecord {
        group: GroupId::from_bytes([1; 16]),
        client_msg: ClientMessageId::from_bytes([2; 16]),
        sender: UserId::from_bytes([3; 16]),
        sender_device: DeviceId::from_bytes([4; 16]),
        sent_at: UnixMillis(1_795_000_000_000),
        expires_at: UnixMillis(1_795_000_060_000),
        body: MessageBody::Text("Bed 4 needs turning".into()),
    }
}

fn sample_outbox() -> OutboxRecord {
    OutboxRecord {
        order: 7,
        item: OutboxItem::unsealed(
            ClientMessageId::from_bytes([2; 16]),
            GroupId::from_bytes([1; 16]),
            UnixMillis(1_795_000_060_000),
        ),
        intent: Intent::Text {
            envelope: Plaintext::new(vec![1, 2, 3]),
        },
    }
}

fn sample_enrolment() -> Enrolment {
    Enrolment {
        org: OrgId::from_bytes([5; 16]),
        org_name: "Oak".into(),
        user: UserId::from_bytes([3; 16]),
        device: DeviceId::from_bytes([4; 16]),
        display_name: "Mia".into(),
        administrator: true,
        key_packages_published: false,
    }
}

fn frozen<T>(value: &T, expected: &str)
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = postcard::to_allocvec(value).expect("records encode");
    assert_eq!(
        hex::encode(&bytes),
        expected,
        "the layout of {value:?} changed"
    );
    let read: T = postcard::from_bytes(&hex::decode(expected).expect("hex")).expect("decodes");
    assert_eq!(&read, value);
}

#[test]
fn shift_bodies_are_frozen_after_the_bodies_before_them() {
    use huddle_core::shift::{MessageRef, Shift, ShiftAction, ShiftUpdate};
    // Variant 4: an offer (day, start, end, unit, role, note).
    frozen(
        &MessageBody::ShiftOffer(Shift {
            day: 20_500,
            start: 1200,
            end: 480,
            unit: "Oak".into(),
            role: "RGN".into(),
            note: "Hi".into(),
        }),
        "0494a001b009e003034f616b0352474e024869",
    );
    // Variant 5: an answer (offer's author and id, action 0: a claim) and
    // where it stands in the log, and whether its sender's certificate made
    // her an administrator.
    let answer = MessageBody::ShiftUpdate {
        update: ShiftUpdate {
            offer: MessageRef {
                author: UserId::from_bytes([1; 16]),
                client_msg: ClientMessageId::from_bytes([2; 16]),
            },
            action: ShiftAction::Claim,
        },
        logged_at: Some(300),
        by_administrator: true,
    };
    frozen(
        &answer,
        &format!("05{}{}0001ac0201", "01".repeat(16), "02".repeat(16)),
    );
}

#[test]
fn acknowledgements_are_frozen_after_shift_answers() {
    use huddle_core::shift::MessageRef;
    // Variant 6: the broadcast's author and id.
    frozen(
        &MessageBody::Acknowledgement(MessageRef {
            author: UserId::from_bytes([1; 16]),
            client_msg: ClientMessageId::from_bytes([2; 16]),
        }),
        &format!("06{}{}", "01".repeat(16), "02".repeat(16)),
    );
}

#[test]
fn record_layouts_are_frozen() {
    frozen(&sample_enrolment(), FROZEN_ENROLMENT);
    frozen(&sample_message(), FROZEN_MESSAGE);
    frozen(&sample_outbox(), FROZEN_OUTBOX);
    frozen(
        &Standing {
            latest_seen: UnixMillis(1_795_000_000_000),
            last_reached_relay: UnixMillis(1_794_999_000_000),
            max_offline_millis: 604_800_000,
        },
        FROZEN_STANDING,
    );
}

#[test]
fn no_record_prints_what_a_message_says() {
    let printed = format!("{:?} {:?}", sample_message(), sample_outbox());
    assert!(!printed.contains("Bed 4"), "{printed}");
    assert!(printed.contains("Text(19 characters)"), "{printed}");
}

#[test]
fn delivery_comes_from_the_outbox_alone() {
    let mine = sample_message();
    let device = mine.sender_device;
    let state = |s: OutboxState| Some(s);
    assert_eq!(delivery_of(&mine, device, None), Delivery::Sent);
    assert_eq!(
        delivery_of(&mine, device, state(OutboxState::Queued).as_ref()),
        Delivery::Waiting
    );
    assert_eq!(
        delivery_of(&mine, device, state(OutboxState::Sending).as_ref()),
        Delivery::Sending
    );
    let refused = OutboxState::Failed {
        reason: Failure::Refused(Rejection::NotAMember),
    };
    assert_eq!(
        delivery_of(&mine, device, Some(&refused)),
        Delivery::Failed(Failure::Refused(Rejection::NotAMember))
    );
    let someone_else = DeviceId::from_bytes([9; 16]);
    assert_eq!(delivery_of(&mine, someone_else, None), Delivery::Received);
}

/// Computed once by this version; see `record_layouts_are_frozen`.
const FROZEN_ENROLMENT: &str = "05050505050505050505050505050505034f616b0303030303030303030303030303030304040404040404040404040404040404034d69610100";
const FROZEN_MESSAGE: &str = "0101010101010101010101010101010102020202020202020202020202020202030303030303030303030303030303030404040404040404040404040404040480bcd9f29e34e090ddf29e3400134265642034206e65656473207475726e696e67";
const FROZEN_STANDING: &str = "80bcd9f29e34c0b79cf29e348088b2a002";
const FROZEN_OUTBOX: &str = "0702020202020202020202020202020202010101010101010101010101010101010001e090ddf29e340000000003010203";

#[test]
fn a_groups_receipts_record_is_frozen() {
    use crate::receipts::{Heard, Placed, ReceiptsRecord};
    use huddle_core::receipt::Receipt;
    let record = ReceiptsRecord {
        group: GroupId::from_bytes([1; 16]),
        started: true,
        mine: Receipt {
            since: 2,
            delivered_through: 9,
            read_through: 8,
            unopened: vec![5],
        },
        told: Receipt::default(),
        covers_until: UnixMillis(1_000),
        placed: vec![Placed {
            client_msg: ClientMessageId::from_bytes([3; 16]),
            seq: 7,
            expires_at: UnixMillis(2_000),
        }],
        heard: vec![Heard {
            user: UserId::from_bytes([4; 16]),
            device: DeviceId::from_bytes([5; 16]),
            receipt: Receipt::default(),
        }],
    };
    frozen(
        &record,
        concat!(
            "01010101010101010101010101010101",   // the group
            "01",                                 // started
            "0209080105",                         // mine: since 2, through 9 and 8, unopened [5]
            "00000000",                           // told: nothing yet
            "e807",                               // covers until 1000
            "0103030303030303030303030303030303", // one placed message,
            "07d00f",                             // at 7, expiring at 2000
            "0104040404040404040404040404040404", // one colleague's phone:
            "05050505050505050505050505050505",
            "00000000" // its receipt
        ),
    );
}
