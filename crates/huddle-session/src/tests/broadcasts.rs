//! Urgent broadcasts across phones: staff acknowledge with one tap, the sender sees who has and who has not, a broadcast stays pinned until its reader acknowledges it, and staff can write nothing else there.

use crate::broadcasts::{BroadcastCard, MyPart};
use crate::testing::{TestPhone, World};
use crate::update::Update;
use crate::SessionError;
use huddle_core::group::GroupProfile;
use huddle_core::ids::GroupId;
use huddle_core::retention::{GroupKind, RetentionSecs};
use huddle_core::shift::MessageRef;

/// Alice (an administrator) and two staff, Bob and Carol, in an emergency
/// broadcast group Alice made.
fn alice_and_two_staff(world: &mut World) -> (TestPhone, TestPhone, TestPhone, GroupId) {
    let alice = world.phone(1, "Alice");
    let bob = world.staff_phone(2, "Bob");
    let carol = world.staff_phone(3, "Carol");
    for phone in [&alice, &bob, &carol] {
        world.start(phone);
    }
    let profile = GroupProfile::new(
        GroupKind::EmergencyBroadcast,
        RetentionSecs::days(3),
        "Fire and alarms",
    )
    .expect("a valid profile");
    let (handle, staff) = (alice.phone.clone(), vec![bob.user, carol.user]);
    let group = world
        .run(async move { handle.create_group(profile, None, staff).await })
        .expect("the group is made");
    world.settle();
    assert!(carol.phone.conversation(group).is_some(), "Carol joined");
    (alice, bob, carol, group)
}

/// The broadcast on `phone`'s open conversation and its card.
fn card(world: &mut World, phone: &TestPhone, group: GroupId) -> (MessageRef, BroadcastCard) {
    phone.phone.open(Some(group));
    world.settle();
    phone
        .updates()
        .iter()
        .rev()
        .find_map(|update| match update {
            Update::Messages { messages, .. } => messages.iter().find_map(|shown| {
                let card = shown.broadcast.clone()?;
                Some((crate::broadcasts::reference(&shown.message), card))
            }),
            _ => None,
        })
        .expect("a broadcast is on screen")
}

/// The broadcasts pinned above `phone`'s conversation list.
fn pinned(world: &mut World, phone: &TestPhone) -> Vec<(String, MyPart, usize)> {
    phone.phone.open(None);
    world.settle();
    phone
        .updates()
        .iter()
        .rev()
        .find_map(|update| match update {
            Update::Conversations(entries) => Some(
                entries
                    .iter()
                    .flat_map(|e| &e.broadcasts)
                    .map(|pin| {
                        (
                            pin.message.body.text().unwrap_or_default().to_owned(),
                            pin.card.mine,
                            pin.card.waiting.len(),
                        )
                    })
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn staff_acknowledge_and_the_sender_sees_who_has_and_who_has_not() {
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_and_two_staff(&mut world);
    let handle = alice.phone.clone();
    world
        .run(async move {
            handle
                .compose(group, "Fire alarm on Rowan: stay with residents".into())
                .await
        })
        .expect("the broadcast is saved");
    world.settle();

    // Pinned on both staff phones until they acknowledge.
    for phone in [&bob, &carol] {
        assert_eq!(
            pinned(&mut world, phone),
            vec![(
                "Fire alarm on Rowan: stay with residents".to_owned(),
                MyPart::ToAcknowledge,
                2
            )]
        );
    }
    let (broadcast, on_alices) = card(&mut world, &alice, group);
    assert_eq!(on_alices.mine, MyPart::Sender);
    // In the group's order (its members sorted by id).
    assert_eq!(on_alices.waiting, vec![bob.user, carol.user]);

    // Bob acknowledges with one tap.
    let handle = bob.phone.clone();
    world
        .run(async move { handle.acknowledge(group, broadcast).await })
        .expect("the acknowledgement is saved");
    world.settle();
    assert!(
        pinned(&mut world, &bob).is_empty(),
        "no longer pinned for Bob"
    );
    let (_, on_bobs) = card(&mut world, &bob, group);
    assert_eq!(on_bobs.mine, MyPart::Acknowledged);
    let (_, on_alices) = card(&mut world, &alice, group);
    assert_eq!(
        on_alices
            .acknowledged
            .iter()
            .map(|(who, _)| *who)
            .collect::<Vec<_>>(),
        vec![bob.user]
    );
    assert_eq!(on_alices.waiting, vec![carol.user]);
    // Alice, an administrator, has it pinned while Carol has not answered;
    // Carol still has it to do. The acknowledgement is not a message to read.
    assert_eq!(
        pinned(&mut world, &alice),
        vec![(
            "Fire alarm on Rowan: stay with residents".to_owned(),
            MyPart::Sender,
            1
        )]
    );
    assert_eq!(pinned(&mut world, &carol)[0].1, MyPart::ToAcknowledge);
    let unread = |phone: &TestPhone| {
        phone
            .listed()
            .into_iter()
            .find(|(g, _, _)| *g == group)
            .map(|(_, unread, _)| unread)
    };
    assert_eq!(unread(&alice), Some(0), "an acknowledgement is not unread");
    // Nor a preview: the others do not learn from the list who acknowledged.
    let preview = |phone: &TestPhone| {
        phone
            .listed()
            .into_iter()
            .find(|(g, _, _)| *g == group)
            .and_then(|(_, _, preview)| preview)
    };
    for phone in [&alice, &carol] {
        assert_eq!(
            preview(phone).as_deref(),
            Some("Fire alarm on Rowan: stay with residents")
        );
    }

    // Carol acknowledges: nothing is pinned anywhere.
    let handle = carol.phone.clone();
    world
        .run(async move { handle.acknowledge(group, broadcast).await })
        .expect("the acknowledgement is saved");
    world.settle();
    for phone in [&alice, &bob, &carol] {
        assert!(pinned(&mut world, phone).is_empty());
    }
    assert!(card(&mut world, &alice, group).1.waiting.is_empty());
}

#[test]
fn staff_write_nothing_but_acknowledgements_in_a_broadcast_group() {
    let mut world = World::new();
    let (_alice, bob, _carol, group) = alice_and_two_staff(&mut world);
    let handle = bob.phone.clone();
    let refused = world.run(async move { handle.compose(group, "ok".into()).await });
    assert_eq!(refused, Err(SessionError::AdministratorsOnly));
    // And nobody acknowledges anything outside a broadcast group.
    let mut elsewhere = World::new();
    let (alice, _, _, ward) = super::alice_bob_and_carol(&mut elsewhere, RetentionSecs::DAY);
    let handle = alice.phone.clone();
    let nowhere = MessageRef {
        author: alice.user,
        client_msg: huddle_core::ids::ClientMessageId::from_bytes([1; 16]),
    };
    let refused = elsewhere.run(async move { handle.acknowledge(ward, nowhere).await });
    assert_eq!(refused, Err(SessionError::NotABroadcast));
}
