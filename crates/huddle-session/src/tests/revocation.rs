//! Revocation that removes: the members of a revoked device's groups take it out by a commit, once between them, and what it kept opens nothing sent after.

use super::{alice_and_bob, alice_bob_and_carol, compose};
use crate::driver::REMOVE_REVOKED_WITHIN_MS;
use crate::platform::{Clock, Crypto};
use crate::testing::World;
use crate::update::{SignOut, Update};
use huddle_core::crypto_worker::{Incoming, WorkerRequest, WorkerResponse};
use huddle_core::identity::DeviceIdentity;
use huddle_core::retention::RetentionSecs;
use huddle_core::wire::{ClientFrame, EntryKind, Payload, Submission};

#[test]
fn a_revoked_device_is_removed_from_its_groups_and_a_copy_of_it_opens_nothing_sent_after() {
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::days(7));

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
    world.advance(REMOVE_REVOKED_WITHIN_MS);

    // One commit removed her (Alice and Bob were both told; the second to
    // try found nothing left to do and dropped it).
    let log = world.relay.log(group);
    let removals: Vec<_> = log[copied_at..]
        .iter()
        .filter(|e| {
            world
                .relay
                .declared(group, e.seq)
                .is_some_and(|change| change.remove.contains(&carol.device))
        })
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
                && matches!(frame, ClientFrame::Submit(Submission {
                    payload: Payload::Commit { change, .. },
                    ..
                }) if change.remove.contains(&carol.device))
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
    // A message, the removal (and the members' renewed keys), a message.
    let (first, last) = (&opened[0], &opened[opened.len() - 1]);
    assert_eq!(
        (first.0, last.0),
        (EntryKind::Application, EntryKind::Application)
    );
    assert!(opened.len() >= 3);
    assert!(
        read(&first.1),
        "the copy reads what was sent before: {first:?}"
    );
    assert!(!read(&last.1), "and nothing after: {last:?}");
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
    world.advance(REMOVE_REVOKED_WITHIN_MS);
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

#[test]
fn in_a_clinical_group_only_an_administrators_phone_removes_a_revoked_one_and_nobody_stops() {
    let mut world = World::new();
    let alice = world.phone(1, "Alice");
    let (bob, carol) = (world.staff_phone(2, "Bob"), world.staff_phone(3, "Carol"));
    for phone in [&alice, &bob, &carol] {
        world.start(phone);
    }
    let (handle, users) = (alice.phone.clone(), vec![bob.user, carol.user]);
    let group = world
        .run(async move {
            let profile = huddle_core::group::GroupProfile::new(
                huddle_core::retention::GroupKind::Clinical,
                RetentionSecs::DAY,
                "Medication round",
            )
            .expect("a valid profile");
            handle.create_group(profile, None, users).await
        })
        .expect("the group is made");
    world.settle();
    assert!(carol.phone.conversation(group).is_some(), "Carol joined");

    // Alice's phone is away when Carol's is revoked: Bob's phone is told
    // but leaves it (every phone would refuse a change from staff here).
    alice.online.set(false);
    world.relay.drop_connection(alice.device);
    world.settle();
    world.relay.revoke(carol.device);
    world.settle();
    world.advance(REMOVE_REVOKED_WITHIN_MS);
    let commits = |world: &World| {
        world
            .relay
            .log(group)
            .iter()
            .filter(|e| e.kind == EntryKind::Commit)
            .count()
    };
    assert_eq!(commits(&world), 1, "only the group's creation");
    assert!(bob.cache.0.borrow().outbox.is_empty());

    // Alice's phone comes back, hears of it at sign-in and removes her.
    alice.online.set(true);
    alice.phone.wake();
    world.settle();
    world.advance(REMOVE_REVOKED_WITHIN_MS);
    assert_eq!(commits(&world), 2, "the removal");
    compose(&mut world, &alice, group, "Round at ten");
    world.settle();
    assert_eq!(bob.cached_texts(group), vec!["Round at ten"]);
    let members = bob.phone.conversation(group).expect("still there").members;
    assert!(!members.contains(&carol.user), "{members:?}");
    assert!(
        !bob.updates()
            .iter()
            .any(|u| matches!(u, Update::Problem(_))),
        "Bob's group carries on"
    );
}
