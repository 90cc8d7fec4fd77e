//! Revocation that removes: the members of a revoked device's groups take it out by a commit, once between them, and what it kept opens nothing sent after.

use super::{alice_and_bob, compose};
use crate::platform::{Clock, Crypto};
use crate::testing::World;
use crate::update::{SignOut, Update};
use huddle_core::crypto_worker::{Incoming, WorkerRequest, WorkerResponse};
use huddle_core::identity::DeviceIdentity;
use huddle_core::retention::RetentionSecs;
use huddle_core::wire::{ClientFrame, EntryKind};

#[test]
fn a_revoked_device_is_removed_from_its_groups_and_a_copy_of_it_opens_nothing_sent_after() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    let carol = world.phone(3, "Carol");
    world.start(&carol);
    let (a, carol_user) = (alice.phone.clone(), carol.user);
    world
        .run(async move { a.add_people(group, vec![carol_user]).await })
        .expect("Alice adds Carol");
    world.settle();
    assert!(carol.phone.conversation(group).is_some(), "Carol joined");

    // Carol's phone is lost. Whoever finds it copies its profile; then an
    // administrator revokes it.
    let copy = carol.crypto.copy_of_disk();
    let copied_at = world.relay.log_len(group);
    compose(&mut world, &alice, group, "before the revocation");
    world.settle();
    // Both Alice and Bob are told; Alice removes her first, and the live
    // copy of her commit never reaches Bob, so he tries too, in the epoch
    // before it.
    let removal_seq = world.relay.log_len(group) as u64 + 1;
    world
        .relay
        .0
        .borrow_mut()
        .lose_live
        .push((bob.device, group, removal_seq));
    world.relay.revoke(carol.device);
    world.settle();

    // One commit removed her (Alice and Bob were both told; the second to
    // try found nothing left to do and dropped it).
    let log = world.relay.log(group);
    let removals: Vec<_> = log[copied_at..]
        .iter()
        .filter(|e| e.kind == EntryKind::Commit)
        .collect();
    assert_eq!(removals.len(), 1, "one removal");
    assert_eq!(removals[0].sender, alice.device);
    let bobs_tries = world
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
    assert_eq!(bobs_tries, 1, "Bob tried once, was refused, and dropped it");
    for phone in [&alice, &bob] {
        let members = phone
            .phone
            .conversation(group)
            .expect("still there")
            .members;
        assert!(!members.contains(&carol.user), "{members:?}");
        assert!(
            phone.cache.0.borrow().outbox.is_empty(),
            "nothing left waiting or failed: {:?}",
            phone
                .cache
                .0
                .borrow()
                .outbox
                .values()
                .map(|r| (&r.item.state, r.item.is_commit()))
                .collect::<Vec<_>>()
        );
    }
    compose(&mut world, &bob, group, "after the revocation");
    world.settle();
    assert!(alice
        .cached_texts(group)
        .contains(&"after the revocation".to_owned()));

    // The copy opens what was sent before the removal, follows the log
    // (the commit removes it), and opens nothing sent after.
    let identity = DeviceIdentity {
        org: crate::testing::ORG,
        user: carol.user,
        device: carol.device,
    };
    let log: Vec<_> = world.relay.log(group)[copied_at..]
        .iter()
        .map(|entry| (entry.clone(), world.relay.declared(group, entry.seq)))
        .collect();
    let now = world.clock.now();
    let opened = world.run(async move {
        let _ = copy.request(WorkerRequest::OpenDevice { identity }).await;
        let mut opened = Vec::new();
        for (entry, declared) in log {
            let answer = copy
                .request(WorkerRequest::Open {
                    group,
                    message: entry.payload.clone(),
                    sender: entry.sender,
                    declared,
                    now,
                })
                .await;
            opened.push((entry.kind, answer));
        }
        opened
    });
    let read = |answer: &Result<WorkerResponse, _>| {
        matches!(answer, Ok(WorkerResponse::Opened(Incoming::Message { .. })))
    };
    assert_eq!(opened.len(), 3, "a message, the removal, a message");
    assert!(
        read(&opened[0].1),
        "the copy reads what was sent before: {:?}",
        opened[0]
    );
    assert!(!read(&opened[2].1), "and nothing after: {:?}", opened[2]);
}

#[test]
fn a_person_signs_her_own_phone_out_and_it_is_wiped_as_hers_but_not_offline() {
    let mut world = World::new();
    let (alice, bob, group) = alice_and_bob(&mut world, RetentionSecs::days(7));
    compose(&mut world, &alice, group, "before");
    world.settle();

    // Offline, nothing changes: the relay must hear it first.
    bob.online.set(false);
    bob.phone.wake();
    world.settle();
    let handle = bob.phone.clone();
    assert!(world
        .run(async move { handle.sign_out_this_phone().await })
        .is_err());
    world.settle();
    assert!(
        bob.cache.0.borrow().enrolment.is_some(),
        "nothing was wiped"
    );
    assert!(bob.phone.conversation(group).is_some());

    bob.online.set(true);
    bob.phone.wake();
    world.settle();
    let handle = bob.phone.clone();
    world
        .run(async move { handle.sign_out_this_phone().await })
        .expect("the relay signs the phone out");
    world.settle();
    assert!(bob
        .updates()
        .contains(&Update::SignedOut(SignOut::SignedOutHere)));
    {
        let store = bob.cache.0.borrow();
        assert!(store.enrolment.is_none() && store.messages.is_empty());
    }
    assert!(bob.crypto.0.borrow().wiped);
    // And Alice's phone takes his device out of their group.
    let members = alice
        .phone
        .conversation(group)
        .expect("still there")
        .members;
    assert!(!members.contains(&bob.user), "{members:?}");
}
