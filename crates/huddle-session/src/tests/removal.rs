//! Removals across phones: a message recorded in the care record leaves every phone and the relay with a stub in its place, a phone that was away never receives it, only its author deletes a message for everyone, and a modified app's mark changes nothing on honest phones.

use super::{alice_bob_and_carol, compose};
use crate::platform::{Clock, Crypto};
use crate::records::{MessageBody, MessageRecord};
use crate::testing::{TestPhone, World};
use crate::update::Update;
use crate::SessionError;
use huddle_core::crypto_worker::{Plaintext, WorkerRequest, WorkerResponse};
use huddle_core::envelope::{Envelope, EnvelopeBody, EnvelopeError};
use huddle_core::ids::{ClientMessageId, GroupId};
use huddle_core::removal::{Removal, RemovalError};
use huddle_core::retention::RetentionSecs;
use huddle_core::shift::MessageRef;
use huddle_core::wire::{EntryKind, Payload, Submission};

/// What `phone` holds of the message `message`, if anything.
fn held(phone: &TestPhone, group: GroupId, message: MessageRef) -> Option<MessageRecord> {
    phone
        .cached_messages(group)
        .into_iter()
        .find(|m| m.client_msg == message.client_msg && m.sender == message.author)
}

/// The newest text message `phone` holds in `group`, as a reference and
/// its expiry.
fn newest_text(phone: &TestPhone, group: GroupId) -> (MessageRef, huddle_core::UnixMillis) {
    let message = phone
        .cached_messages(group)
        .into_iter()
        .rev()
        .find(|m| matches!(m.body, MessageBody::Text(_)))
        .expect("a text message");
    (
        MessageRef {
            author: message.sender,
            client_msg: message.client_msg,
        },
        message.expires_at,
    )
}

fn remove(
    world: &mut World,
    phone: &TestPhone,
    group: GroupId,
    (message, expires_at): (MessageRef, huddle_core::UnixMillis),
    recorded_in: Option<&'static str>,
) -> Result<(), SessionError> {
    let handle = phone.phone.clone();
    world.run(async move {
        handle
            .remove_message(group, message, expires_at, recorded_in)
            .await
    })
}

/// What the relay stores for the entry `author` sent with this id.
fn stored_payload(world: &World, group: GroupId, message: MessageRef) -> Vec<u8> {
    world
        .relay
        .log(group)
        .into_iter()
        .find(|e| e.client_msg == message.client_msg && e.kind == EntryKind::Application)
        .map(|e| e.payload)
        .expect("the entry is in the log")
}

#[test]
fn a_message_recorded_in_the_care_record_leaves_every_phone_and_the_relay_and_a_stub_remains() {
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::minutes(30));
    carol.online.set(false);
    world.relay.drop_connection(carol.device);
    world.settle();
    world.advance(1_000);
    compose(&mut world, &bob, group, "Room 4 refused evening medication");
    world.settle();
    let named = newest_text(&alice, group);
    assert!(!stored_payload(&world, group, named.0).is_empty());

    // Alice (not its author) writes it into the care record and marks it.
    remove(&mut world, &alice, group, named, Some("Nourish")).expect("marked");
    // Gone from her phone at once, before anything is sent.
    assert!(matches!(
        held(&alice, group, named.0).map(|m| m.body),
        Some(MessageBody::Removed { by, at, ref recorded_in })
            if by == alice.user && at == world.clock.now() && recorded_in == "Nourish"
    ));
    world.settle();
    for phone in [&alice, &bob] {
        assert!(
            !phone
                .cached_texts(group)
                .iter()
                .any(|t| t.contains("Room 4")),
            "{:?}: the content is gone",
            phone.user
        );
        assert!(matches!(
            held(phone, group, named.0).map(|m| m.body),
            Some(MessageBody::Removed { by, ref recorded_in, .. })
                if by == alice.user && recorded_in == "Nourish"
        ));
    }
    assert!(
        stored_payload(&world, group, named.0).is_empty(),
        "the relay's copy is gone"
    );

    // Bob's conversation shows the stub where the message was, and never
    // the mark itself.
    bob.phone.open(Some(group));
    world.settle();
    let shown = bob
        .updates()
        .into_iter()
        .rev()
        .find_map(|update| match update {
            Update::Messages { messages, .. } => Some(messages),
            _ => None,
        })
        .expect("Bob's conversation is painted");
    assert!(shown
        .iter()
        .any(|m| matches!(m.message.body, MessageBody::Removed { .. })));
    assert!(!shown
        .iter()
        .any(|m| matches!(m.message.body, MessageBody::Removal(_))));

    // Carol was away: she never receives it.
    carol.online.set(true);
    carol.phone.wake();
    world.settle();
    assert_eq!(held(&carol, group, named.0).map(|m| m.body), None);
    assert!(!carol
        .cached_texts(group)
        .iter()
        .any(|t| t.contains("Room 4")));
}

#[test]
fn only_its_author_deletes_a_message_for_everyone_and_a_modified_apps_mark_changes_nothing() {
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::days(1));
    compose(&mut world, &bob, group, "Swapping my Tuesday late with Ann");
    world.settle();
    let named = newest_text(&alice, group);

    // Outside a clinical group, Alice may neither delete nor mark Bob's.
    assert_eq!(
        remove(&mut world, &alice, group, named, None),
        Err(SessionError::Invalid(EnvelopeError::Removal(
            RemovalError::NotTheAuthor
        )))
    );
    assert_eq!(
        remove(&mut world, &alice, group, named, Some("Nourish")),
        Err(SessionError::Invalid(EnvelopeError::Removal(
            RemovalError::NotClinical
        )))
    );

    // Her modified app sends the mark anyway, past a relay that checks
    // nothing: Bob's and Carol's phones keep the message.
    let envelope = Envelope {
        sent_at: world.clock.now(),
        body: EnvelopeBody::Removal(Removal::deleted(named.0, named.1)),
    }
    .encode()
    .expect("encoded");
    let crypto = alice.crypto.clone();
    let mark = ClientMessageId::from_bytes([0xcd; 16]);
    let expires_at = world.clock.now().saturating_add_millis(3_600_000);
    let sealed = world.run(async move {
        crypto
            .request(WorkerRequest::Seal {
                group,
                client_msg: mark,
                expires_at,
                envelope: Plaintext::new(envelope),
            })
            .await
    });
    let Ok(WorkerResponse::Sealed(sealed)) = sealed else {
        panic!("the worker seals what it is asked: {sealed:?}");
    };
    world.relay.submit_from(
        alice.device,
        Submission {
            client_msg: mark,
            group,
            epoch: sealed.epoch,
            expires_at: Some(expires_at),
            payload: Payload::Application {
                ciphertext: sealed.ciphertext,
            },
        },
    );
    world.settle();
    for phone in [&bob, &carol] {
        assert!(
            phone
                .cached_texts(group)
                .iter()
                .any(|t| t.contains("Tuesday late")),
            "{:?} keeps it",
            phone.user
        );
    }

    // Bob deletes his own: gone everywhere, "deleted" (no record named).
    let own = newest_text(&bob, group);
    remove(&mut world, &bob, group, own, None).expect("deleted");
    world.settle();
    for phone in [&alice, &bob, &carol] {
        assert!(matches!(
            held(phone, group, own.0).map(|m| m.body),
            Some(MessageBody::Removed { by, ref recorded_in, .. })
                if by == bob.user && recorded_in.is_empty()
        ));
    }
    assert!(stored_payload(&world, group, own.0).is_empty());
    // Nothing is left to remove a second time.
    assert_eq!(
        remove(&mut world, &bob, group, own, None),
        Err(SessionError::NothingToRemove)
    );
}
