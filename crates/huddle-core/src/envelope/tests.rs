//! Tests for the envelope: round trips, limits, forward compatibility and frozen bytes.

use super::*;
use crate::ids::{ClientMessageId, UserId};
use crate::shift::{MessageRef, ShiftAction};

fn hex(bytes: &[u8]) -> String {
    crate::hex::encode(bytes)
}

/// A test vector written with spaces between bytes.
fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    crate::hex::decode(&text).expect("test vector is hex")
}

#[test]
fn text_round_trips() {
    let envelope = Envelope::text(
        UnixMillis(1_795_000_000_000),
        "Can anyone cover Tuesday's late?",
    )
    .unwrap();
    let bytes = envelope.encode().unwrap();
    assert_eq!(Envelope::decode(&bytes), Ok(envelope));
}

/// Frozen: the bytes version 1 writes for a text message. A later version
/// must still read them; if this test fails, the format changed.
#[test]
fn frozen_text_envelope_v1() {
    let frozen = unhex("01 01 80 bc d9 f2 9e 34 08 07 48 65 6c 6c 6f 20 21");
    let expected = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::Text {
            text: "Hello !".into(),
        },
    };
    assert_eq!(Envelope::decode(&frozen), Ok(expected.clone()));
    assert_eq!(hex(&expected.encode().unwrap()), hex(&frozen));
}

#[test]
fn unknown_kinds_from_newer_versions_are_kept_and_labelled() {
    // Version 3, kind 9 (not known to this version), a body it cannot read.
    let bytes = unhex("03 09 01 04 de ad be ef");
    let envelope = Envelope::decode(&bytes).unwrap();
    assert_eq!(
        envelope.body,
        EnvelopeBody::Unsupported {
            kind: 9,
            version: 3
        }
    );
    assert_eq!(envelope.body.text(), None);
    assert!(envelope.encode().is_err());
}

#[test]
fn an_envelope_never_prints_its_text() {
    let envelope = Envelope::text(UnixMillis(1), "NHS 943 476 5919, bed 4").unwrap();
    let printed = format!("{envelope:?}");
    assert!(!printed.contains("943"), "{printed}");
    assert!(printed.contains("Text(23 characters)"), "{printed}");
}

#[test]
fn newer_versions_may_append_fields_to_a_text_body() {
    // Version 2 text body: the text, then a field version 1 does not know.
    let bytes = unhex("02 01 05 05 02 48 69 2a 2a");
    let envelope = Envelope::decode(&bytes).unwrap();
    assert_eq!(envelope.body, EnvelopeBody::Text { text: "Hi".into() });
}

#[test]
fn limits_are_enforced_on_both_sides() {
    assert_eq!(
        Envelope::text(UnixMillis(0), "  \n"),
        Err(EnvelopeError::EmptyText)
    );
    let long = "a".repeat(MAX_TEXT_BYTES + 1);
    assert!(matches!(
        Envelope::text(UnixMillis(0), long.clone()),
        Err(EnvelopeError::TextTooLong { .. })
    ));
    assert!(Envelope::text(UnixMillis(0), "a".repeat(MAX_TEXT_BYTES)).is_ok());
    assert!(matches!(
        Envelope::decode(&vec![0u8; MAX_ENVELOPE_BYTES + 1]),
        Err(EnvelopeError::TooLarge { .. })
    ));
}

#[test]
fn damaged_bytes_give_typed_errors_never_panics() {
    let good = Envelope::text(UnixMillis(42), "Handover at 8")
        .unwrap()
        .encode()
        .unwrap();
    // Every truncation and every single-byte change either decodes or fails cleanly.
    for len in 0..good.len() {
        let _ = Envelope::decode(&good[..len]);
        assert!(Envelope::decode(&good[..len]).is_err() || len == good.len());
    }
    for index in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[index] ^= 1 << bit;
            let _ = Envelope::decode(&bad);
        }
    }
    assert!(Envelope::decode(&[]).is_err());
    assert!(
        Envelope::decode(&unhex("00 01 00 00")).is_err(),
        "version 0"
    );
    // Invalid UTF-8 in the text.
    assert!(Envelope::decode(&unhex("01 01 00 02 01 ff")).is_err());
    // Trailing bytes after the outer layout.
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(Envelope::decode(&trailing).is_err());
}

fn night_shift() -> Shift {
    Shift {
        day: 20_500,
        start: 20 * 60,
        end: 8 * 60,
        unit: "Oak".into(),
        role: "RGN".into(),
        note: "Hi".into(),
    }
}

/// Frozen: the bytes version 1 writes for a shift offer and for an answer
/// to one. A later version must still read them.
#[test]
fn frozen_shift_envelopes_v1() {
    let offer = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::ShiftOffer(night_shift()),
    };
    let frozen_offer =
        // version 1, kind 2, sent_at, 18 body bytes: day 20,500, 20:00,
        // 08:00, "Oak", "RGN", "Hi".
        unhex("01 02 80 bc d9 f2 9e 34 12 94 a0 01 b0 09 e0 03 03 4f 61 6b 03 52 47 4e 02 48 69");
    assert_eq!(Envelope::decode(&frozen_offer), Ok(offer.clone()));
    assert_eq!(hex(&offer.encode().unwrap()), hex(&frozen_offer));

    let answer = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::ShiftUpdate(ShiftUpdate {
            offer: MessageRef {
                author: UserId::from_bytes([1; 16]),
                client_msg: ClientMessageId::from_bytes([2; 16]),
            },
            action: ShiftAction::Confirm {
                claim: MessageRef {
                    author: UserId::from_bytes([3; 16]),
                    client_msg: ClientMessageId::from_bytes([4; 16]),
                },
            },
        }),
    };
    let bytes = answer.encode().unwrap();
    assert_eq!(Envelope::decode(&bytes), Ok(answer));
    let frozen_answer = format!(
        "0103{}{}{}02{}{}",
        "80bcd9f29e34",
        // 65 body bytes: the offer's author and id, action 2 (confirm),
        // the claim's author and id.
        "41",
        "01".repeat(16) + &"02".repeat(16),
        "03".repeat(16),
        "04".repeat(16)
    );
    assert_eq!(hex(&bytes), frozen_answer);
}

#[test]
fn a_shift_offer_is_checked_when_written_and_when_read() {
    let mut shift = night_shift();
    shift.role = String::new();
    let envelope = Envelope {
        sent_at: UnixMillis(1),
        body: EnvelopeBody::ShiftOffer(shift.clone()),
    };
    assert_eq!(
        envelope.encode(),
        Err(EnvelopeError::Shift(ShiftError::NoRole))
    );
    // A modified app's offer without a role is refused on the way in too.
    let body = postcard::to_allocvec(&shift).unwrap();
    let outer = OuterLayout {
        version: 1,
        kind: EnvelopeKind::ShiftOffer as u16,
        sent_at: 1,
        body: &body,
    };
    let bytes = postcard::to_allocvec(&outer).unwrap();
    assert_eq!(
        Envelope::decode(&bytes),
        Err(EnvelopeError::Shift(ShiftError::NoRole))
    );
    assert_eq!(envelope.body.text(), None);
    assert!(!format!("{envelope:?}").contains("Oak"));
}

fn fire_drill() -> MessageRef {
    MessageRef {
        author: UserId::from_bytes([5; 16]),
        client_msg: ClientMessageId::from_bytes([6; 16]),
    }
}

#[test]
fn frozen_acknowledgement_envelope_v1() {
    let acknowledgement = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::Acknowledgement(fire_drill()),
    };
    let bytes = acknowledgement.encode().unwrap();
    assert_eq!(Envelope::decode(&bytes), Ok(acknowledgement));
    let frozen = format!(
        "0104{}{}{}{}",
        "80bcd9f29e34",
        // 87 body bytes: the broadcast's author and id, then zeros to the
        // size of every reply.
        "57",
        "05".repeat(16) + &"06".repeat(16),
        "00".repeat(55)
    );
    assert_eq!(hex(&bytes), frozen);
}

#[test]
fn every_reply_is_the_same_size_whatever_its_time() {
    for sent_at in [0, 1, 127, 1_795_000_000_000, 1 << 42, u64::MAX] {
        let bytes = Envelope {
            sent_at: UnixMillis(sent_at),
            body: EnvelopeBody::Acknowledgement(fire_drill()),
        }
        .encode()
        .unwrap();
        assert_eq!(bytes.len(), REPLY_ENVELOPE_BYTES, "sent at {sent_at}");
        assert!(Envelope::decode(&bytes).unwrap().body.is_reply());
    }
    let text = Envelope::text(UnixMillis(1), "Fire drill at 3").unwrap();
    assert!(!text.body.is_reply());
}

#[test]
fn an_acknowledgement_that_is_cut_short_is_refused() {
    let bytes = Envelope {
        sent_at: UnixMillis(1),
        body: EnvelopeBody::Acknowledgement(fire_drill()),
    }
    .encode()
    .unwrap();
    // version, kind, time, then a body of 20 bytes: too short for a reference.
    let mut short = bytes[..3].to_vec();
    short.push(20);
    short.extend_from_slice(&bytes[4..24]);
    assert!(matches!(
        Envelope::decode(&short),
        Err(EnvelopeError::Malformed(_))
    ));
}

#[test]
fn frozen_read_receipt_envelope_v1() {
    let receipt = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::ReadReceipt(crate::receipt::Receipt {
            since: 3,
            delivered_through: 300,
            read_through: 290,
            unopened: vec![7],
        }),
    };
    let bytes = receipt.encode().unwrap();
    assert_eq!(Envelope::decode(&bytes), Ok(receipt.clone()));
    let frozen = format!(
        "0105{}{}{}{}",
        "80bcd9f29e34",
        // 87 body bytes: since 3, through 300 (ac 02) and 290 (a2 02), one
        // unopened place (7), then zeros to the size of every reply.
        "57",
        "03ac02a2020107",
        "00".repeat(80)
    );
    assert_eq!(hex(&bytes), frozen);
    assert!(receipt.body.is_reply());
    assert_eq!(receipt.body.text(), None);
    assert_eq!(format!("{:?}", receipt.body), "ReadReceipt");
}

#[test]
fn the_fullest_receipt_fits_the_size_of_every_reply() {
    let fullest = crate::receipt::Receipt {
        since: u64::MAX,
        delivered_through: u64::MAX,
        read_through: u64::MAX,
        unopened: vec![u64::MAX; crate::receipt::MAX_UNOPENED],
    };
    for sent_at in [0, u64::MAX] {
        let bytes = Envelope {
            sent_at: UnixMillis(sent_at),
            body: EnvelopeBody::ReadReceipt(fullest.clone()),
        }
        .encode()
        .unwrap();
        assert_eq!(bytes.len(), REPLY_ENVELOPE_BYTES);
    }
}

#[test]
fn an_impossible_receipt_is_neither_written_nor_read() {
    let mut too_many = crate::receipt::Receipt {
        delivered_through: 9,
        unopened: vec![1, 2, 3, 4],
        ..Default::default()
    };
    let fits = Envelope {
        sent_at: UnixMillis(1),
        body: EnvelopeBody::ReadReceipt(too_many.clone()),
    }
    .encode()
    .unwrap();
    too_many.unopened.push(5);
    let refused = Envelope {
        sent_at: UnixMillis(1),
        body: EnvelopeBody::ReadReceipt(too_many.clone()),
    };
    assert!(matches!(refused.encode(), Err(EnvelopeError::Receipt(_))));
    // A modified app's: five unopened places, forced into the padded body.
    let body = postcard::to_allocvec(&too_many).unwrap();
    let mut forged = fits.clone();
    let start = fits.len() - usize::from(fits[3]);
    forged[start..start + body.len()].copy_from_slice(&body);
    assert!(matches!(
        Envelope::decode(&forged),
        Err(EnvelopeError::Receipt(_))
    ));
}

#[test]
fn frozen_removal_envelopes_v1() {
    let recorded = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::Removal(
            crate::removal::Removal::recorded(
                fire_drill(),
                UnixMillis(1_795_000_000_000),
                "Nourish",
            )
            .unwrap(),
        ),
    };
    let bytes = recorded.encode().unwrap();
    assert_eq!(Envelope::decode(&bytes), Ok(recorded.clone()));
    let frozen = format!(
        "0106{}{}{}{}{}",
        "80bcd9f29e34",
        // 46 body bytes: the message's author and id, its expiry, and the
        // record system's name.
        "2e",
        "05".repeat(16) + &"06".repeat(16),
        "80bcd9f29e34",
        "074e6f7572697368"
    );
    assert_eq!(hex(&bytes), frozen);
    assert!(!recorded.body.is_reply());
    assert_eq!(recorded.body.text(), None);
    assert!(!format!("{recorded:?}").contains("Nourish"));

    let deleted = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::Removal(crate::removal::Removal::deleted(
            fire_drill(),
            UnixMillis(1_795_000_000_000),
        )),
    };
    let bytes = deleted.encode().unwrap();
    assert_eq!(Envelope::decode(&bytes), Ok(deleted));
    assert!(hex(&bytes).ends_with("80bcd9f29e3400"));
}

#[test]
fn a_removal_naming_too_long_a_record_is_neither_written_nor_read() {
    let removal = crate::removal::Removal {
        recorded_in: "x".repeat(crate::removal::MAX_RECORD_NAME_BYTES + 1),
        ..crate::removal::Removal::deleted(fire_drill(), UnixMillis(1))
    };
    let envelope = Envelope {
        sent_at: UnixMillis(1),
        body: EnvelopeBody::Removal(removal.clone()),
    };
    let refused = Err(EnvelopeError::Removal(
        crate::removal::RemovalError::RecordNameTooLong,
    ));
    assert_eq!(envelope.encode().map(|_| ()), refused.clone());
    let outer = OuterLayout {
        version: 1,
        kind: EnvelopeKind::Removal as u16,
        sent_at: 1,
        body: &postcard::to_allocvec(&removal).unwrap(),
    };
    let bytes = postcard::to_allocvec(&outer).unwrap();
    assert_eq!(Envelope::decode(&bytes).map(|_| ()), refused);
}

#[test]
fn frozen_cannot_work_envelope_v1() {
    let envelope = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::CannotWork(night_shift()),
    };
    let bytes = envelope.encode().unwrap();
    assert_eq!(Envelope::decode(&bytes), Ok(envelope.clone()));
    // The same body as an offer of that shift, under kind 7.
    let offer = Envelope {
        sent_at: UnixMillis(1_795_000_000_000),
        body: EnvelopeBody::ShiftOffer(night_shift()),
    }
    .encode()
    .unwrap();
    assert_eq!(hex(&bytes[..2]), "0107");
    assert_eq!(hex(&bytes[2..]), hex(&offer[2..]));
    assert_eq!(envelope.body.text(), None);
    assert!(!format!("{envelope:?}").contains("Oak"));
}
