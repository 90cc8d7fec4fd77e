//! Read receipts across phones: a message goes from sent to delivered to read as the other phone receives it and opens the conversation, social groups say nothing, receipts never answer receipts, and an administrator sees who has read a broadcast without acknowledging it.

use super::{compose, profile};
use crate::testing::{TestPhone, World};
use crate::update::Update;
use crate::RECEIPT_DELAY_MS;
use huddle_core::group::GroupProfile;
use huddle_core::ids::{GroupId, UserId};
use huddle_core::receipt::Reached;
use huddle_core::retention::{GroupKind, RetentionSecs};

/// The reach of the newest message on `phone`'s open conversation.
fn reach(phone: &TestPhone) -> Option<Vec<(UserId, Reached)>> {
    phone
        .updates()
        .iter()
        .rev()
        .find_map(|update| match update {
            Update::Messages { messages, .. } => Some(messages.last()?.reach.clone()),
            _ => None,
        })?
}

fn group_of(
    world: &mut World,
    maker: &TestPhone,
    others: &[&TestPhone],
    profile: GroupProfile,
) -> GroupId {
    let (handle, people) = (
        maker.phone.clone(),
        others.iter().map(|p| p.user).collect::<Vec<_>>(),
    );
    let group = world
        .run(async move { handle.create_group(profile, None, people).await })
        .expect("the group is made");
    world.settle();
    group
}

#[test]
fn a_message_goes_from_sent_to_delivered_to_read_as_the_others_get_it() {
    let mut world = World::new();
    let (alice, bob, carol) = (
        world.phone(1, "Alice"),
        world.phone(2, "Bob"),
        world.phone(3, "Carol"),
    );
    for phone in [&alice, &bob, &carol] {
        world.start(phone);
    }
    let group = group_of(
        &mut world,
        &alice,
        &[&bob, &carol],
        profile(RetentionSecs::days(7)),
    );
    alice.phone.open(Some(group));
    // Carol's phone is off the network: it has nothing.
    carol.online.set(false);
    world.advance(1_000);
    compose(&mut world, &alice, group, "Fire door on B wing is fixed");
    world.settle();
    assert_eq!(
        reach(&alice),
        Some(vec![(bob.user, Reached::Sent), (carol.user, Reached::Sent)]),
        "stored by the relay, on nobody's phone yet"
    );
    // Bob's phone has it, closed: after a moment it says so.
    world.advance(RECEIPT_DELAY_MS + 1_000);
    alice.phone.open(Some(group));
    world.settle();
    assert_eq!(
        reach(&alice),
        Some(vec![
            (bob.user, Reached::Delivered),
            (carol.user, Reached::Sent)
        ])
    );
    // Bob opens the conversation: read.
    bob.phone.open(Some(group));
    world.advance(RECEIPT_DELAY_MS + 1_000);
    alice.phone.open(Some(group));
    world.settle();
    assert_eq!(
        reach(&alice),
        Some(vec![(bob.user, Reached::Read), (carol.user, Reached::Sent)])
    );
    // Carol comes back online and reads it at once: one receipt says both.
    let before = world.relay.log_len(group);
    carol.phone.open(Some(group));
    carol.online.set(true);
    carol.phone.wake();
    world.advance(RECEIPT_DELAY_MS + 10_000);
    alice.phone.open(Some(group));
    world.settle();
    assert_eq!(
        reach(&alice),
        Some(vec![(bob.user, Reached::Read), (carol.user, Reached::Read)])
    );
    assert_eq!(world.relay.log_len(group), before + 1, "one receipt");
    // A receipt is gone from the relay no later than what it speaks of.
    let log = world.relay.log(group);
    let message = log
        .iter()
        .find(|e| e.sender == alice.device && e.kind == huddle_core::wire::EntryKind::Application)
        .expect("Alice's message is in the log");
    let receipts: Vec<_> = log.iter().filter(|e| e.seq > message.seq).collect();
    assert_eq!(receipts.len(), 3, "Bob's two and Carol's one");
    for receipt in receipts {
        assert!(receipt.expires_at <= message.expires_at);
    }
    // Receipts answer no receipt: the log stays as it is.
    let settled = world.relay.log_len(group);
    world.advance(60_000);
    assert_eq!(world.relay.log_len(group), settled);
    // Bob sees no reach on Alice's message: it is not his.
    bob.phone.open(Some(group));
    world.settle();
    assert_eq!(reach(&bob), None);
    // Nothing waits on Alice's or Bob's phone: receipts are not messages.
    for phone in [&alice, &bob] {
        let waiting = phone.updates().iter().rev().find_map(|u| match u {
            Update::Connection(status) => Some(status.waiting),
            _ => None,
        });
        assert_eq!(waiting, Some(0));
    }
}

#[test]
fn social_groups_send_no_receipts() {
    let mut world = World::new();
    let (alice, bob) = (world.phone(1, "Alice"), world.phone(2, "Bob"));
    world.start(&alice);
    world.start(&bob);
    let social = GroupProfile::new(GroupKind::Social, RetentionSecs::days(7), "Cake rota")
        .expect("a valid profile");
    let group = group_of(&mut world, &alice, &[&bob], social);
    alice.phone.open(Some(group));
    compose(&mut world, &alice, group, "Who is bringing cake?");
    world.settle();
    let before = world.relay.log_len(group);
    bob.phone.open(Some(group));
    world.advance(RECEIPT_DELAY_MS + 10_000);
    assert_eq!(
        world.relay.log_len(group),
        before,
        "Bob's phone said nothing"
    );
    alice.phone.open(Some(group));
    world.settle();
    assert_eq!(reach(&alice), None);
}

#[test]
fn an_administrator_sees_who_has_read_a_broadcast_without_acknowledging_it() {
    let mut world = World::new();
    let alice = world.phone(1, "Alice");
    let bob = world.staff_phone(2, "Bob");
    let carol = world.staff_phone(3, "Carol");
    let dan = world.phone(4, "Dan");
    for phone in [&alice, &bob, &carol, &dan] {
        world.start(phone);
    }
    let profile = GroupProfile::new(
        GroupKind::EmergencyBroadcast,
        RetentionSecs::days(3),
        "Fire and alarms",
    )
    .expect("a valid profile");
    let group = group_of(&mut world, &alice, &[&bob, &carol, &dan], profile);
    alice.phone.open(Some(group));
    compose(&mut world, &alice, group, "Fire alarm test at 3");
    world.settle();
    bob.phone.open(Some(group));
    world.advance(RECEIPT_DELAY_MS + 2_000);
    // Dan, another administrator, follows it as Alice does.
    for admin in [&alice, &dan] {
        admin.phone.open(Some(group));
        world.settle();
        let mut reach = reach(admin).expect("an administrator follows a broadcast");
        reach.sort();
        let mut expected = vec![(bob.user, Reached::Read), (carol.user, Reached::Delivered)];
        // (Never the sender, nor whoever is looking.)
        if admin.user == alice.user {
            // Dan's phone has it; he has not opened the group yet.
            expected.push((dan.user, Reached::Delivered));
        }
        expected.sort();
        assert_eq!(reach, expected);
    }
}
