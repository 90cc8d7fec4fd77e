//! The session layer's own tests, natively: phones with in-memory caches, the real crypto worker logic (real MLS) and a small in-memory relay, on a hand-driven clock.

use crate::records::Delivery;
use crate::testing::{TestPhone, World};
use crate::update::{SignOut, Update};
use crate::{CacheWrite, SessionError};
use huddle_core::group::GroupProfile;
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::retention::{GroupKind, RetentionSecs};
use huddle_core::sync::{Failure, OutboxState};
use huddle_core::wire::{ClientFrame, EntryKind, ErrorCode, Rejection, ServerFrame};

/// An operational group; a clinical one for retention under an hour (the
/// only kind that allows it).
pub(super) fn profile(retention: RetentionSecs) -> GroupProfile {
    let kind = if retention < RetentionSecs::HOUR {
        GroupKind::Clinical
    } else {
        GroupKind::Operational
    };
    GroupProfile::new(kind, retention, "Night shift").expect("a valid profile")
}

/// Alice and Bob, started, in a group Alice made.
fn alice_and_bob(world: &mut World, retention: RetentionSecs) -> (TestPhone, TestPhone, GroupId) {
    let alice = world.phone(1, "Alice");
    let bob = world.phone(2, "Bob");
    world.start(&alice);
    world.start(&bob);
    let (phone, bob_user) = (alice.phone.clone(), bob.user);
    let group = world
        .run(async move {
            phone
                .create_group(profile(retention), None, vec![bob_user])
                .await
        })
        .expect("the group is made");
    world.settle();
    assert!(bob.phone.conversation(group).is_some(), "Bob joined");
    (alice, bob, group)
}

/// Alice, Bob and Carol, started, in a group Alice made (Carol added after).
pub(super) fn alice_bob_and_carol(
    world: &mut World,
    retention: RetentionSecs,
) -> (TestPhone, TestPhone, TestPhone, GroupId) {
    let (alice, bob, group) = alice_and_bob(world, retention);
    let carol = world.phone(3, "Carol");
    world.start(&carol);
    let (a, carol_user) = (alice.phone.clone(), carol.user);
    world
        .run(async move { a.add_people(group, vec![carol_user]).await })
        .expect("Alice adds Carol");
    world.settle();
    assert!(carol.phone.conversation(group).is_some(), "Carol joined");
    (alice, bob, carol, group)
}

fn compose(world: &mut World, phone: &TestPhone, group: GroupId, text: &str) {
    let (handle, text) = (phone.phone.clone(), text.to_owned());
    world
        .run(async move { handle.compose(group, text).await })
        .expect("the message is saved");
}

fn texts(shown: &[(String, Delivery)]) -> Vec<&str> {
    shown.iter().map(|(text, _)| text.as_str()).collect()
}

#[test]
fn a_message_written_while_starting_is_saved_at_once_and_sent_once_started() {
    let mut world = World::new();
    let (mut alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    // Alice's page reloads; her phone paints from the cache and she writes
    // before the crypto worker is ready.
    world.reload(&mut alice);
    alice.phone.run();
    alice.phone.open(Some(group));
    compose(&mut world, &alice, group, "Handover at eight");
    assert_eq!(alice.cached_texts(group), vec!["Handover at eight"]);
    assert_eq!(
        alice.shown(),
        vec![("Handover at eight".to_owned(), Delivery::Waiting)]
    );
    let log_before = world.relay.log_len(group);
    // Now the worker and the connection: it is encrypted and sent.
    world.start(&alice);
    assert_eq!(world.relay.log_len(group), log_before + 1);
    assert_eq!(
        alice.shown(),
        vec![("Handover at eight".to_owned(), Delivery::Sent)]
    );
    assert!(
        alice.cache.0.borrow().outbox.is_empty(),
        "sent: the outbox is empty"
    );
    bob.phone.open(Some(group));
    world.settle();
    assert_eq!(texts(&bob.shown()), vec!["Handover at eight"]);
}

#[test]
fn a_commit_left_unsent_when_the_page_stopped_does_not_hold_up_what_is_written_next() {
    use crate::platform::Crypto;
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    // The worker made (and saved) a commit, and the page stopped before it
    // recorded it in the outbox: it never left the phone.
    let crypto = alice.crypto.clone();
    let made = world.run(async move {
        crypto
            .request(huddle_core::crypto_worker::WorkerRequest::SelfUpdate { group })
            .await
    });
    assert!(made.is_ok(), "{made:?}");
    alice.phone.open(Some(group));
    compose(&mut world, &alice, group, "Handover at eight");
    world.settle();
    assert_eq!(
        alice.shown(),
        vec![("Handover at eight".to_owned(), Delivery::Sent)]
    );
    bob.phone.open(Some(group));
    world.settle();
    assert_eq!(texts(&bob.shown()), vec!["Handover at eight"]);
}

#[test]
fn messages_written_offline_wait_and_go_in_order_when_the_network_returns() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    alice.online.set(false);
    world.relay.drop_connection(alice.device);
    world.settle();
    alice.phone.open(Some(group));
    for text in ["one", "two", "three"] {
        compose(&mut world, &alice, group, text);
    }
    let before = world.relay.log_len(group);
    world.advance(60_000);
    assert_eq!(world.relay.log_len(group), before, "offline: nothing went");
    assert!(alice
        .shown()
        .iter()
        .all(|(_, delivery)| *delivery == Delivery::Waiting));
    // Saved before anything was sent: each with its outbox record, in one write.
    let store = alice.cache.0.borrow();
    assert_eq!(store.outbox.len(), 3);
    assert!(store
        .transactions
        .iter()
        .any(|writes| { matches!(writes[..], [CacheWrite::Message(_), CacheWrite::Outbox(_)]) }));
    drop(store);
    alice.online.set(true);
    alice.phone.wake();
    world.settle();
    let log = world.relay.log(group);
    let sent: Vec<_> = log[before..].iter().map(|e| e.sender).collect();
    assert_eq!(sent, vec![alice.device; 3]);
    assert_eq!(texts(&alice.shown()), vec!["one", "two", "three"]);
    assert!(alice.shown().iter().all(|(_, d)| *d == Delivery::Sent));
    bob.phone.open(Some(group));
    world.settle();
    assert_eq!(texts(&bob.shown()), vec!["one", "two", "three"]);
}

#[test]
fn entries_are_received_in_order_each_once_and_a_gap_is_filled() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    alice.phone.open(Some(group));
    // The live copy of Bob's second message is lost on the way to Alice.
    let next = world.relay.log_len(group) as u64 + 1;
    world
        .relay
        .0
        .borrow_mut()
        .lose_live
        .push((alice.device, group, next + 1));
    for text in ["first", "second", "third"] {
        compose(&mut world, &bob, group, text);
    }
    world.settle();
    // Alice saw a gap at the third, asked again, and has all three in order.
    assert_eq!(texts(&alice.shown()), vec!["first", "second", "third"]);
    assert_eq!(alice.cached_texts(group), vec!["first", "second", "third"]);
    let resyncs = world
        .relay
        .0
        .borrow()
        .received
        .iter()
        .filter(|(device, frame)| {
            *device == alice.device
                && matches!(frame, ClientFrame::Sync { cursors } if cursors.len() == 1)
        })
        .count();
    assert_eq!(resyncs, 1, "one resync for the gap");
    // The position moved with the messages, in the same writes.
    let store = alice.cache.0.borrow();
    assert_eq!(store.cursors.get(&group).map(|p| p.seq), Some(next + 2));
    let received_with_cursor = store.transactions.iter().filter(|writes| {
        writes.iter().any(|w| matches!(w, CacheWrite::Message(_)))
            && writes.iter().any(|w| matches!(w, CacheWrite::Cursor(_)))
    });
    assert_eq!(received_with_cursor.count(), 3);
}

#[test]
fn a_received_message_and_its_position_are_written_together_or_not_at_all() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    let position = alice.cache.0.borrow().cursors.get(&group).map(|p| p.seq);
    let transactions = alice.cache.0.borrow().transactions.len();
    alice.cache.0.borrow_mut().failing = true;
    compose(&mut world, &bob, group, "lost to a full disk?");
    world.settle();
    // Neither the message nor the position that passes it was written.
    let store = alice.cache.0.borrow();
    assert_eq!(store.cursors.get(&group).map(|p| p.seq), position);
    assert!(alice.cached_texts(group).is_empty());
    assert_eq!(store.transactions.len(), transactions);
    drop(store);
    // The person is told, in the app's words.
    assert!(alice
        .updates()
        .contains(&Update::Problem(crate::Problem::Storage(
            crate::CacheError::Failed
        ))));
}

#[test]
fn a_commit_that_lost_its_epoch_is_made_again_and_lands() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    let carol = world.phone(3, "Carol");
    let dan = world.phone(4, "Dan");
    world.start(&carol);
    world.start(&dan);
    // Alice adds Carol; the live copy of her commit never reaches Bob, so
    // he still thinks the group is in the epoch before it.
    let next = world.relay.log_len(group) as u64 + 1;
    world
        .relay
        .0
        .borrow_mut()
        .lose_live
        .push((bob.device, group, next));
    let (a, carol_user) = (alice.phone.clone(), carol.user);
    world
        .run(async move { a.add_people(group, vec![carol_user]).await })
        .expect("Alice adds Carol");
    world.settle();
    // Bob adds Dan: his commit is made in the old epoch and refused; he
    // fetches what he missed, makes it again and it lands.
    let (b, dan_user) = (bob.phone.clone(), dan.user);
    world
        .run(async move { b.add_people(group, vec![dan_user]).await })
        .expect("Bob adds Dan");
    world.settle();
    let commit_epochs: Vec<u64> = world
        .relay
        .log(group)
        .into_iter()
        .filter(|e| e.kind == EntryKind::Commit)
        .map(|e| e.epoch)
        .collect();
    assert_eq!(commit_epochs, vec![0, 1, 2], "create, Carol, then Dan");
    let refused = world
        .relay
        .0
        .borrow()
        .received
        .iter()
        .filter(|(device, frame)| {
            *device == bob.device
                && matches!(frame, ClientFrame::Submit(s) if s.payload.kind() == EntryKind::Commit)
        })
        .count();
    assert_eq!(
        refused, 2,
        "Bob's commit went twice: refused, then made again"
    );
    assert!(carol.phone.conversation(group).is_some(), "Carol was added");
    assert!(dan.phone.conversation(group).is_some(), "Dan was added");
    // Everyone is in the same epoch: a message from each is read by all.
    compose(&mut world, &dan, group, "from Dan");
    compose(&mut world, &alice, group, "from Alice");
    world.settle();
    for phone in [&alice, &bob, &carol, &dan] {
        let texts = phone.cached_texts(group);
        assert!(texts.contains(&"from Dan".to_owned()), "{texts:?}");
        assert!(texts.contains(&"from Alice".to_owned()), "{texts:?}");
    }
}

#[test]
fn sent_received_and_unsent_messages_expire_on_the_phone() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::minutes(5));
    alice.phone.open(Some(group));
    compose(&mut world, &alice, group, "sent");
    world.advance(1_000);
    compose(&mut world, &bob, group, "received");
    world.advance(1_000);
    // Written offline, never stored by the relay.
    alice.online.set(false);
    world.relay.drop_connection(alice.device);
    world.settle();
    compose(&mut world, &alice, group, "unsent");
    assert_eq!(texts(&alice.shown()), vec!["sent", "received", "unsent"]);
    assert_eq!(alice.cache.0.borrow().outbox.len(), 1);
    world.advance(4 * 60_000);
    assert_eq!(alice.cached_texts(group).len(), 3, "not yet");
    world.advance(70_000);
    assert!(alice.cached_texts(group).is_empty(), "all three are gone");
    assert!(alice.shown().is_empty());
    assert!(
        alice.cache.0.borrow().outbox.is_empty(),
        "the unsent text left the outbox too"
    );
    assert!(bob.cached_texts(group).is_empty());
    // Back online, the expired message is never sent.
    let before = world.relay.log_len(group);
    alice.online.set(true);
    alice.phone.wake();
    world.settle();
    assert_eq!(world.relay.log_len(group), before);
}

#[test]
fn a_message_that_expired_unsent_while_the_app_was_closed_is_withdrawn_as_it_opens_never_sent() {
    let mut world = World::new();
    let (mut alice, _bob, group) = alice_and_bob(&mut world, RetentionSecs::minutes(5));
    alice.phone.open(Some(group));
    alice.online.set(false);
    world.relay.drop_connection(alice.device);
    world.settle();
    compose(&mut world, &alice, group, "unsent");
    world.settle();
    let unsent = *alice
        .cache
        .0
        .borrow()
        .outbox
        .keys()
        .next()
        .expect("it waits in the outbox");
    // The app is closed, and opened again online after the message
    // expired: it connects at once, before any timed sweep.
    world.reload(&mut alice);
    world.advance(6 * 60_000);
    alice.online.set(true);
    world.start(&alice);
    assert!(
        alice.cache.0.borrow().outbox.is_empty(),
        "withdrawn from the outbox as the app opened"
    );
    world.settle();
    assert_eq!(world.relay.submissions(unsent), 0, "never sent");
}

#[test]
fn a_revoked_phone_wipes_everything_and_says_why() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    compose(&mut world, &alice, group, "before");
    world.settle();
    assert!(!bob.cached_texts(group).is_empty());
    world.relay.push(
        bob.device,
        ServerFrame::Error {
            code: ErrorCode::Revoked,
            message: "This device was removed by an administrator.".into(),
        },
    );
    world.settle();
    let store = bob.cache.0.borrow();
    assert!(
        store.enrolment.is_none() && store.messages.is_empty() && store.conversations.is_empty()
    );
    assert!(bob.crypto.0.borrow().wiped);
    assert!(bob.updates().contains(&Update::SignedOut(SignOut::Revoked)));
    drop(store);
    // A wiped phone does nothing more.
    assert!(matches!(
        world.run({
            let phone = bob.phone.clone();
            async move { phone.compose(group, "after".into()).await }
        }),
        Err(SessionError::Stopped)
    ));
}

/// The id Alice's phone (seed 1) draws for its `n`th random id.
fn alices_id(n: u32) -> huddle_core::ids::ClientMessageId {
    let mut id = [1u8; 16];
    id[12..].copy_from_slice(&n.to_be_bytes());
    huddle_core::ids::ClientMessageId::from_bytes(id)
}

#[test]
fn a_lost_answer_is_recognised_from_the_log_and_the_message_is_stored_once() {
    let mut world = World::new();
    let (alice, _bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    alice.phone.open(Some(group));
    // The relay stores the next message, then the connection breaks before
    // "accepted" gets out. (Alice's phone drew ids 0 and 1 for the group
    // and its first commit.)
    let before = world.relay.log_len(group);
    world.relay.0.borrow_mut().lose_answer.push(alices_id(2));
    compose(&mut world, &alice, group, "are you there?");
    world.settle();
    assert_eq!(world.relay.log_len(group), before + 1, "stored");
    assert_eq!(
        alice.shown(),
        vec![("are you there?".to_owned(), Delivery::Waiting)],
        "not confirmed yet"
    );
    // Reconnected, the phone finds its message in the log and stops there.
    world.advance(5_000);
    // (Bob's phone has since said it received it: count Alice's entries.)
    let stored = |world: &World| {
        world
            .relay
            .log(group)
            .iter()
            .filter(|e| e.client_msg == alices_id(2))
            .count()
    };
    assert_eq!(stored(&world), 1, "still stored once");
    assert_eq!(world.relay.submissions(alices_id(2)), 1, "not sent again");
    assert_eq!(
        alice.shown(),
        vec![("are you there?".to_owned(), Delivery::Sent)]
    );
}

#[test]
fn a_message_lost_on_the_way_in_is_resent_with_the_same_id_and_stored_once() {
    let mut world = World::new();
    let (alice, _bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    alice.phone.open(Some(group));
    let before = world.relay.log_len(group);
    world
        .relay
        .0
        .borrow_mut()
        .lose_submission
        .push(alices_id(2));
    compose(&mut world, &alice, group, "are you there?");
    world.settle();
    assert_eq!(world.relay.log_len(group), before, "the relay never had it");
    world.advance(5_000);
    let log = world.relay.log(group);
    let alices = log.iter().filter(|e| e.client_msg == alices_id(2)).count();
    assert_eq!(alices, 1, "stored once");
    assert_eq!(log[before].client_msg, alices_id(2), "with the same id");
    assert_eq!(world.relay.submissions(alices_id(2)), 2, "sent twice");
    assert_eq!(
        alice.shown(),
        vec![("are you there?".to_owned(), Delivery::Sent)]
    );
}

#[test]
fn a_refused_message_says_why_and_can_be_tried_again() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    alice.phone.open(Some(group));
    // Bob removes Alice while her message is on its way.
    let (b, alice_user) = (bob.phone.clone(), alice.user);
    world
        .run(async move { b.remove_people(group, vec![alice_user]).await })
        .expect("Bob removes Alice");
    world.settle();
    let record = alice.phone.conversation(group).expect("still listed");
    assert!(record.ended, "Alice's phone knows she was removed");
    let refused = world.run({
        let phone = alice.phone.clone();
        async move { phone.compose(group, "hello?".into()).await }
    });
    assert_eq!(refused, Err(SessionError::NotInConversation));
}

#[test]
fn a_message_that_cannot_be_encrypted_fails_visibly_and_retries() {
    let mut world = World::new();
    let (alice, _bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    alice.phone.open(Some(group));
    alice.crypto.0.borrow_mut().failing = Some(crate::CryptoError::TimedOut);
    compose(&mut world, &alice, group, "stuck worker");
    assert_eq!(
        alice.shown(),
        vec![(
            "stuck worker".to_owned(),
            Delivery::Failed(Failure::NotEncrypted)
        )]
    );
    let record = alice.cache.0.borrow().outbox.values().next().cloned();
    assert!(matches!(
        record.map(|r| r.item.state),
        Some(OutboxState::Failed { .. })
    ));
    alice.crypto.0.borrow_mut().failing = None;
    let id = world.relay.log_len(group);
    let client_msg = alice.cache.0.borrow().outbox.keys().next().copied();
    alice.phone.retry(client_msg.expect("one item"));
    world.settle();
    assert_eq!(world.relay.log_len(group), id + 1);
    assert_eq!(
        alice.shown(),
        vec![("stuck worker".to_owned(), Delivery::Sent)]
    );
}

#[test]
fn the_list_counts_unread_messages_until_the_conversation_is_opened() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    for text in ["a", "b"] {
        compose(&mut world, &bob, group, text);
    }
    world.settle();
    assert_eq!(alice.listed(), vec![(group, 2, Some("b".to_owned()))]);
    alice.phone.open(Some(group));
    world.settle();
    assert_eq!(alice.listed(), vec![(group, 0, Some("b".to_owned()))]);
    // Read while hidden does not count as read.
    alice.phone.set_visible(false);
    compose(&mut world, &bob, group, "c");
    world.settle();
    assert_eq!(alice.listed(), vec![(group, 1, Some("c".to_owned()))]);
    alice.phone.set_visible(true);
    world.settle();
    assert_eq!(alice.listed(), vec![(group, 0, Some("c".to_owned()))]);
}

#[test]
fn asking_the_relay_offline_or_unanswered_is_a_typed_error() {
    let mut world = World::new();
    let alice = world.phone(1, "Alice");
    // Not started: no connection to ask on.
    let phone = alice.phone.clone();
    assert_eq!(
        world.run(async move { phone.refresh_directory().await }),
        Err(SessionError::Offline)
    );
    world.start(&alice);
    let phone = alice.phone.clone();
    assert_eq!(
        world.run(async move { phone.refresh_directory().await }),
        Ok(())
    );
    assert!(alice
        .updates()
        .iter()
        .any(|u| matches!(u, Update::Directory(d) if d.name_of(alice.user) == Some("Alice"))));
    // A rejection the relay sends for a message nobody wrote changes nothing.
    world.relay.push(
        alice.device,
        ServerFrame::Rejected {
            client_msg: huddle_core::ids::ClientMessageId::from_bytes([9; 16]),
            group: GroupId::from_bytes([9; 16]),
            reason: Rejection::NotAMember,
        },
    );
    world.settle();
    assert!(
        alice.log.0.borrow().is_empty(),
        "{:?}",
        alice.log.0.borrow()
    );
}

#[test]
fn after_a_member_is_removed_the_others_renew_their_keys_and_go_on_talking() {
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::days(7));
    // A sweep has run: every phone knows when its keys in the group are from.
    world.advance(crate::SWEEP_EVERY_MS);
    let (a, carol_user) = (alice.phone.clone(), carol.user);
    world
        .run(async move { a.remove_people(group, vec![carol_user]).await })
        .expect("Alice removes Carol");
    world.settle();
    let before = world.relay.log_len(group);
    world.advance(crate::driver::RENEW_AFTER_REMOVAL_WITHIN_MS + crate::SWEEP_EVERY_MS);
    let renewals: Vec<DeviceId> = world.relay.log(group)[before..]
        .iter()
        .filter(|e| e.kind == EntryKind::Commit)
        .map(|e| e.sender)
        .collect();
    assert_eq!(
        renewals,
        vec![bob.device],
        "Bob renews his keys after the removal (Alice's removal commit renewed hers)"
    );
    // The weekly renewal is the worker's rule (`keys_due`), tested in huddle-mls.
    compose(&mut world, &bob, group, "still here");
    world.settle();
    assert!(alice.phone.conversation(group).is_some());
    assert!(alice.cached_texts(group).contains(&"still here".to_owned()));
}

#[test]
fn an_entry_relabelled_by_the_relay_is_not_shown_and_is_reported() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    // The live copy of Alice's next message does not reach Bob; instead a
    // relay that lies delivers it as sent by another device.
    let next = world.relay.log_len(group) as u64 + 1;
    world
        .relay
        .0
        .borrow_mut()
        .lose_live
        .push((bob.device, group, next));
    compose(&mut world, &alice, group, "Room 4 needs a check");
    world.settle();
    let mut relabelled = world.relay.log(group).pop().expect("Alice's message");
    relabelled.sender = DeviceId::from_bytes([0x99; 16]);
    world
        .relay
        .push(bob.device, ServerFrame::Deliver(relabelled));
    world.settle();
    assert!(
        !bob.cached_texts(group)
            .contains(&"Room 4 needs a check".to_owned()),
        "not shown as coming from someone it did not come from"
    );
    assert!(bob.screen.0.borrow().iter().any(|update| matches!(
        update,
        Update::Problem(crate::update::Problem::Refused {
            refusal: huddle_core::wire::Refusal::WrongSender,
            ..
        })
    )));
    let reported = world.relay.0.borrow().received.iter().any(|(device, frame)| {
        *device == bob.device
            && matches!(
                frame,
                ClientFrame::ReportRefused { seq, refusal: huddle_core::wire::Refusal::WrongSender, .. }
                    if *seq == next
            )
    });
    assert!(reported, "the relay's audit log is told");
}

/// A member's modified app gets a commit past the relay that no phone can
/// open; returns the epoch it was made in.
fn junk_commit(world: &mut World, from: &TestPhone, group: GroupId) {
    use huddle_core::wire::{MembershipChange, Payload, Submission};
    let epoch = world.relay.log(group).iter().fold(0, |epoch, entry| {
        if entry.kind == EntryKind::Commit {
            entry.epoch + 1
        } else {
            epoch
        }
    });
    world.relay.submit_from(
        from.device,
        Submission {
            client_msg: huddle_core::ids::ClientMessageId::from_bytes([0xee; 16]),
            group,
            epoch,
            expires_at: None,
            payload: Payload::Commit {
                commit: b"not an MLS commit".to_vec(),
                welcome: None,
                change: MembershipChange::default(),
            },
        },
    );
}

fn told_needs_repair(phone: &TestPhone, group: GroupId) -> bool {
    phone.updates().iter().any(|u| {
        matches!(u, Update::Problem(crate::update::Problem::NeedsRepair { group: g }) if *g == group)
    })
}

fn listed_as_stopped(phone: &TestPhone, group: GroupId) -> Option<bool> {
    phone.updates().iter().rev().find_map(|u| match u {
        Update::Conversations(entries) => entries
            .iter()
            .find(|e| e.record.group == group)
            .map(|e| e.needs_repair),
        _ => None,
    })
}

/// How many restarts of the group the relay's log holds.
fn restarts(world: &World, group: GroupId) -> usize {
    world
        .relay
        .log(group)
        .iter()
        .filter(|e| {
            world
                .relay
                .declared(group, e.seq)
                .is_some_and(|c| c.is_restart(e.epoch))
        })
        .count()
}

#[test]
fn a_commit_that_cannot_be_opened_stops_the_group_visibly_and_nothing_is_lost_or_looped() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::minutes(5));
    compose(&mut world, &alice, group, "before");
    world.settle();
    assert_eq!(bob.cached_texts(group), vec!["before"]);
    junk_commit(&mut world, &alice, group);
    world.settle();
    assert!(
        told_needs_repair(&alice, group),
        "Alice is told the group needs repairing"
    );
    assert_eq!(listed_as_stopped(&alice, group), Some(true));
    // What Alice writes now waits on her phone: it is not made in an epoch
    // the group has left, not sent again and again, and not lost.
    alice.phone.open(Some(group));
    compose(&mut world, &alice, group, "while stopped");
    world.settle();
    assert_eq!(texts(&alice.shown()), vec!["before", "while stopped"]);
    assert!(!world
        .relay
        .log(group)
        .iter()
        .any(|e| e.kind == EntryKind::Application && e.seq > 2));
    // After a reload the phone reads from where it stood, meets the same
    // commit, and stops there again: it never steps over it.
    let mut alice = alice;
    world.reload(&mut alice);
    alice.phone.run();
    world.start(&alice);
    world.settle();
    assert!(told_needs_repair(&alice, group));
    assert_eq!(restarts(&world, group), 0, "not yet: a few seconds first");
    assert!(told_needs_repair(&bob, group));
    // The expiry sweep does not wait for the group.
    world.advance(6 * 60_000);
    assert!(alice.cached_texts(group).iter().all(|t| t != "before"));
    assert!(bob.cached_texts(group).iter().all(|t| t != "before"));
}

#[test]
fn a_group_stopped_by_a_junk_commit_repairs_itself_and_everyone_talks_again() {
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::days(1));
    compose(&mut world, &alice, group, "before");
    world.settle();
    // Carol's modified app sends a commit nobody can open: every phone
    // stops at it, Carol's own included.
    junk_commit(&mut world, &carol, group);
    world.settle();
    for phone in [&alice, &bob] {
        assert!(told_needs_repair(phone, group));
    }
    bob.phone.open(Some(group));
    compose(&mut world, &bob, group, "written while stopped");
    world.settle();
    // Within a few seconds one phone restarts the group's encryption with
    // the same three members; the others check it and join.
    world.advance(16_000);
    world.settle();
    assert_eq!(restarts(&world, group), 1, "one restart, not one per phone");
    for phone in [&alice, &bob, &carol] {
        assert_eq!(
            listed_as_stopped(phone, group),
            Some(false),
            "{}",
            phone.seed()
        );
        assert_eq!(
            phone.phone.conversation(group).map(|c| c.members.len()),
            Some(3)
        );
    }
    // What waited is sent in the new chain and read by everyone; the
    // conversation shows where it was repaired.
    for phone in [&alice, &carol] {
        assert!(
            phone
                .cached_texts(group)
                .contains(&"written while stopped".to_owned()),
            "{}",
            phone.seed()
        );
        let repaired = phone
            .cache
            .0
            .borrow()
            .messages
            .values()
            .filter(|m| m.group == group && m.body == crate::records::MessageBody::Repaired)
            .count();
        assert_eq!(repaired, 1, "{}", phone.seed());
    }
    compose(&mut world, &alice, group, "after the repair");
    world.settle();
    assert!(bob
        .cached_texts(group)
        .contains(&"after the repair".to_owned()));
    assert!(carol
        .cached_texts(group)
        .contains(&"after the repair".to_owned()));
    // Nothing is waiting anywhere, and a reload keeps the repaired group.
    let mut bob = bob;
    assert_eq!(bob.cache.0.borrow().outbox.len(), 0);
    world.reload(&mut bob);
    bob.phone.run();
    world.start(&bob);
    world.settle();
    // (A reloaded test phone draws the same ids again: Alice writes.)
    compose(&mut world, &alice, group, "after Bob's reload");
    world.settle();
    assert!(bob
        .cached_texts(group)
        .contains(&"after Bob's reload".to_owned()));
    assert_eq!(restarts(&world, group), 1, "and it stays repaired");
}

#[test]
fn a_phone_whose_clock_was_turned_back_still_deletes_on_time() {
    const DAY: u64 = 24 * 60 * 60 * 1000;
    let mut world = World::new();
    // Bob's clock reads a day behind: the relay's time, learned when he
    // signs in, is what expiry goes by.
    world.clocks_behind.insert(2, DAY);
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::minutes(5));
    compose(&mut world, &alice, group, "Bay 2 obs due");
    world.settle();
    assert_eq!(bob.cached_texts(group), vec!["Bay 2 obs due"]);
    compose(&mut world, &bob, group, "Done");
    world.settle();
    world.advance(4 * 60_000);
    assert_eq!(bob.cached_texts(group).len(), 2, "not yet");
    world.advance(2 * 60_000);
    assert!(
        bob.cached_texts(group).is_empty(),
        "gone five minutes after, not a day and five minutes after"
    );
    assert!(alice.cached_texts(group).is_empty());
}

#[test]
fn a_phone_the_relay_does_not_recognise_asks_before_wiping_and_keeps_what_was_not_sent() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    compose(&mut world, &alice, group, "Fire drill at ten");
    world.settle();
    // Bob writes with no network; meanwhile the relay is restored from a
    // backup older than his phone.
    let stored = world.relay.log_len(group);
    bob.online.set(false);
    world.relay.drop_connection(bob.device);
    compose(&mut world, &bob, group, "On my way");
    world.relay.0.borrow_mut().unknown.push(bob.device);
    let sign_ins = |world: &World| {
        world
            .relay
            .0
            .borrow()
            .received
            .iter()
            .filter(|(d, f)| *d == bob.device && matches!(f, ClientFrame::Authenticate { .. }))
            .count()
    };
    let before = sign_ins(&world);
    bob.online.set(true);
    bob.phone.wake();
    world.settle();
    // He is asked; nothing is deleted, and what he wrote is still there.
    assert!(bob.updates().contains(&Update::NotRecognised { unsent: 1 }));
    assert!(!bob
        .updates()
        .iter()
        .any(|u| matches!(u, Update::SignedOut(_))));
    assert_eq!(bob.cached_texts(group).len(), 2);
    assert_eq!(bob.cache.0.borrow().outbox.len(), 1);
    assert!(bob.cache.0.borrow().enrolment.is_some());
    assert!(!bob.crypto.0.borrow().wiped);
    // Until he decides, the phone stops knocking.
    let asked = sign_ins(&world);
    assert_eq!(asked, before + 1);
    world.advance(10 * 60_000);
    assert_eq!(sign_ins(&world), asked, "no more sign-ins while he decides");
    // He tries again; still unknown, so he is asked again; then he wipes.
    bob.phone.try_again();
    world.settle();
    assert_eq!(sign_ins(&world), asked + 1);
    bob.phone.wipe_now();
    world.settle();
    let store = bob.cache.0.borrow();
    assert!(store.enrolment.is_none() && store.messages.is_empty() && store.outbox.is_empty());
    drop(store);
    assert!(bob.crypto.0.borrow().wiped);
    assert!(bob
        .updates()
        .contains(&Update::SignedOut(SignOut::NotRecognised)));
    assert_eq!(
        world.relay.log_len(group),
        stored,
        "his message never reached the relay"
    );
}

#[test]
fn a_phone_away_from_the_relay_longer_than_allowed_wipes_itself_when_opened() {
    const MINUTE: u64 = 60_000;
    let mut world = World::new();
    // The organisation allows ten minutes away (a week by default).
    world.relay.0.borrow_mut().policy.max_offline_secs = 10 * 60;
    let (alice, mut bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    let mut cara = world.phone(3, "Cara");
    world.start(&cara);
    compose(&mut world, &alice, group, "Keys are in the office");
    world.settle();
    assert_eq!(bob.cached_texts(group).len(), 1);
    // Cara stays connected the whole time: time online counts as reached.
    world.advance(5 * MINUTE);
    // Bob's phone loses its network; nine minutes later it is still his.
    bob.online.set(false);
    world.relay.drop_connection(bob.device);
    world.advance(9 * MINUTE);
    assert!(
        world.open_again(&mut bob),
        "within the limit, the phone opens"
    );
    assert_eq!(bob.cached_texts(group).len(), 1);
    // Past ten minutes away it wipes itself on opening, before it shows
    // anything, and says why.
    world.advance(2 * MINUTE);
    assert!(!world.open_again(&mut bob), "past the limit, nothing opens");
    let store = bob.cache.0.borrow();
    assert!(store.enrolment.is_none() && store.messages.is_empty());
    assert!(store.conversations.is_empty() && store.standing.is_none());
    drop(store);
    assert_eq!(bob.updates(), vec![Update::SignedOut(SignOut::AwayTooLong)]);
    // Cara, online all along for longer than the limit, still opens.
    assert!(world.open_again(&mut cara));
}

#[test]
fn an_app_left_open_away_from_the_relay_too_long_wipes_itself() {
    const MINUTE: u64 = 60_000;
    let mut world = World::new();
    world.relay.0.borrow_mut().policy.max_offline_secs = 10 * 60;
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    compose(&mut world, &alice, group, "Keys are in the office");
    world.settle();
    // Bob's phone, Huddle on screen, loses its network and is not found.
    bob.online.set(false);
    world.relay.drop_connection(bob.device);
    world.advance(9 * MINUTE);
    assert_eq!(bob.cached_texts(group).len(), 1, "within the limit, kept");
    world.advance(2 * MINUTE);
    assert!(bob.cache.0.borrow().enrolment.is_none());
    assert!(bob.cache.0.borrow().messages.is_empty());
    assert!(bob.crypto.0.borrow().wiped);
    assert!(bob
        .updates()
        .contains(&Update::SignedOut(SignOut::AwayTooLong)));
}

#[test]
fn a_clock_turned_back_while_the_app_was_closed_still_deletes_on_time() {
    const DAY: u64 = 24 * 60 * 60 * 1000;
    let mut world = World::new();
    let (alice, mut bob, group) = alice_and_bob(&mut world, RetentionSecs::minutes(5));
    compose(&mut world, &alice, group, "Bay 2 obs due");
    world.settle();
    assert_eq!(bob.cached_texts(group), vec!["Bay 2 obs due"]);
    // Bob closes the app, turns his phone's clock back a day, and opens it
    // again with no network: the relay cannot tell him the time.
    bob.online.set(false);
    world.relay.drop_connection(bob.device);
    world.clocks_behind.insert(bob.seed(), DAY);
    world.reload(&mut bob);
    bob.phone.run();
    world.advance(4 * 60_000);
    assert_eq!(bob.cached_texts(group).len(), 1, "not yet");
    world.advance(2 * 60_000);
    assert!(
        bob.cached_texts(group).is_empty(),
        "gone five minutes after, not a day and five minutes after"
    );
}

#[test]
fn a_clock_once_set_far_ahead_is_put_right_when_the_relay_tells_the_time() {
    const YEAR: u64 = 365 * 24 * 60 * 60 * 1000;
    let mut world = World::new();
    let (alice, mut bob, group) = alice_and_bob(&mut world, RetentionSecs::minutes(5));
    // Bob's phone once had its clock set a year ahead while connected, and
    // saved that as the latest time it knew; its clock has since been put
    // right.
    let mut standing = bob.cache.0.borrow().standing.expect("saved at sign-in");
    standing.latest_seen = standing.latest_seen.saturating_add_millis(YEAR);
    standing.last_reached_relay = standing.latest_seen;
    bob.cache.0.borrow_mut().standing = Some(standing);
    world.reload(&mut bob);
    world.start(&bob);
    world.settle();
    compose(&mut world, &alice, group, "Lift is out of order");
    world.settle();
    world.advance(60_000);
    assert_eq!(
        bob.cached_texts(group),
        vec!["Lift is out of order"],
        "kept for its five minutes, not deleted at once"
    );
    world.advance(5 * 60_000);
    assert!(bob.cached_texts(group).is_empty());
}

#[test]
fn a_relay_that_speaks_a_newer_version_is_said_once_and_a_damaged_frame_when_live_is_only_logged() {
    let mut world = World::new();
    let (alice, _bob, _group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    let told = |phone: &TestPhone| {
        phone
            .updates()
            .iter()
            .filter(|u| matches!(u, Update::Problem(crate::update::Problem::RelayNewer)))
            .count()
    };
    // Signed in and live: a damaged frame is a relay's fault, not a reason
    // to reload.
    world
        .relay
        .push_raw(alice.device, vec![1, 0xff, 0xff, 0xff]);
    world.settle();
    assert_eq!(told(&alice), 0);
    // Frames of a newer version: the person is told, once.
    for _ in 0..2 {
        world.relay.push_raw(alice.device, vec![2, 0]);
    }
    world.settle();
    assert_eq!(told(&alice), 1);
}

mod broadcasts;
mod passcode;
mod receipts;
mod removal;
mod revocation;
mod shifts;
mod verification;

#[test]
fn a_restart_that_leaves_out_someone_still_in_the_team_is_refused_reported_and_put_right() {
    use crate::platform::Crypto;
    use huddle_core::crypto_worker::{WorkerRequest, WorkerResponse};
    use huddle_core::wire::{restart_epoch, ClaimedKeyPackage, Payload, Refusal, Submission};
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::days(1));
    // Alice's modified app restarts the group with Bob only, telling her
    // worker that Carol has left the team (she has not).
    let key_package = world
        .relay
        .0
        .borrow_mut()
        .key_packages
        .get_mut(&bob.device)
        .and_then(|kps| kps.pop())
        .expect("Bob has key packages");
    let claimed = ClaimedKeyPackage {
        user: bob.user,
        device: bob.device,
        key_package,
    };
    let crypto = alice.crypto.clone();
    let active = vec![alice.device, bob.device];
    let made = world.run(async move {
        crypto
            .request(WorkerRequest::Restart {
                group,
                chain: 1,
                key_packages: vec![claimed],
                active,
            })
            .await
    });
    let Ok(WorkerResponse::Commit(restart)) = made else {
        panic!("the worker makes what it is asked: {made:?}");
    };
    world.relay.submit_from(
        alice.device,
        Submission {
            client_msg: huddle_core::ids::ClientMessageId::from_bytes([0xab; 16]),
            group,
            epoch: restart_epoch(1),
            expires_at: None,
            payload: Payload::Commit {
                commit: restart.commit,
                welcome: restart.welcome,
                change: restart.change,
            },
        },
    );
    world.settle();
    // Bob's phone compares it with the three members it held, and the
    // directory, which still lists Carol: refused, and reported.
    let reported = world
        .relay
        .0
        .borrow()
        .received
        .iter()
        .any(|(device, frame)| {
            *device == bob.device
                && matches!(
                    frame,
                    ClientFrame::ReportRefused {
                        refusal: Refusal::RestartMembers,
                        ..
                    }
                )
        });
    assert!(reported, "the relay's audit log is told");
    assert!(told_needs_repair(&bob, group));
    assert!(
        told_needs_repair(&carol, group),
        "Carol sees she was left out"
    );
    // A minute or so later an honest phone restarts it with all three.
    world.advance(16_000);
    world.settle();
    world.advance(70_000);
    world.settle();
    assert_eq!(restarts(&world, group), 2);
    for phone in [&alice, &bob, &carol] {
        assert_eq!(
            listed_as_stopped(phone, group),
            Some(false),
            "{}",
            phone.seed()
        );
    }
    compose(&mut world, &carol, group, "Carol is back in");
    world.settle();
    assert!(alice
        .cached_texts(group)
        .contains(&"Carol is back in".to_owned()));
    assert!(bob
        .cached_texts(group)
        .contains(&"Carol is back in".to_owned()));
}
