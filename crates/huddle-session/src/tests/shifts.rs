//! Shift offers across phones: claims made at the same moment are ordered by the log on every phone, a phone's own claim takes its logged place once stored, and only the poster or an administrator settles a shift.

use super::alice_bob_and_carol;
use crate::shifts::ShiftCard;
use crate::testing::{TestPhone, World};
use crate::update::Update;
use crate::SessionError;
use huddle_core::ids::GroupId;
use huddle_core::retention::RetentionSecs;
use huddle_core::shift::{MessageRef, Request, Shift, ShiftAction, ShiftStatus, ShiftUpdate};

fn night() -> Shift {
    Shift {
        day: 20_500,
        start: 20 * 60,
        end: 8 * 60,
        unit: "Rowan unit".into(),
        role: "Senior carer".into(),
        note: String::new(),
    }
}

/// The offer on `phone`'s screen and its card, once it has painted the
/// open conversation.
fn card(phone: &TestPhone) -> (MessageRef, ShiftCard) {
    phone
        .screen
        .0
        .borrow()
        .iter()
        .rev()
        .find_map(|update| match update {
            Update::Messages { messages, .. } => messages.iter().find_map(|shown| {
                let card = shown.shift.clone()?;
                let offer = MessageRef {
                    author: shown.message.sender,
                    client_msg: shown.message.client_msg,
                };
                Some((offer, card))
            }),
            _ => None,
        })
        .expect("an offer is on screen")
}

fn answer(
    world: &mut World,
    phone: &TestPhone,
    group: GroupId,
    offer: MessageRef,
    action: ShiftAction,
) {
    let handle = phone.phone.clone();
    world
        .run(async move {
            handle
                .answer_shift(group, ShiftUpdate { offer, action })
                .await
        })
        .expect("the answer is saved");
}

fn repaint(world: &mut World, phones: &[&TestPhone], group: GroupId) {
    for phone in phones {
        phone.phone.open(Some(group));
    }
    world.settle();
}

#[test]
fn claims_made_at_once_are_ordered_by_the_log_on_every_phone_and_the_confirmation_settles_it() {
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::DAY);
    let handle = alice.phone.clone();
    world
        .run(async move { handle.offer_shift(group, night()).await })
        .expect("the offer is saved");
    world.settle();
    repaint(&mut world, &[&alice, &bob, &carol], group);
    let (offer, fresh) = card(&bob);
    assert_eq!(fresh.status, ShiftStatus::Open { requests: vec![] });

    // Carol claims first by her clock, but offline; Bob claims a second
    // later, online, and his claim is stored first.
    carol.online.set(false);
    world.relay.drop_connection(carol.device);
    world.settle();
    answer(&mut world, &carol, group, offer, ShiftAction::Claim);
    world.advance(1_000);
    answer(&mut world, &bob, group, offer, ShiftAction::Claim);
    world.settle();
    // Carol's own claim shows at once, marked as sending (offline, she has
    // not heard of Bob's).
    repaint(&mut world, &[&carol], group);
    let (_, on_carols) = card(&carol);
    assert!(on_carols.sending, "{on_carols:?}");
    let by = |card: &ShiftCard| match &card.status {
        ShiftStatus::Open { requests } => requests.iter().map(Request::by).collect::<Vec<_>>(),
        other => panic!("open: {other:?}"),
    };
    assert_eq!(by(&on_carols), [carol.user]);

    // Back online: her claim is stored after Bob's, and every phone agrees.
    carol.online.set(true);
    carol.phone.wake();
    world.settle();
    repaint(&mut world, &[&alice, &bob, &carol], group);
    let on_alices = card(&alice).1;
    assert!(!on_alices.sending);
    assert_eq!(
        by(&on_alices),
        [bob.user, carol.user],
        "the log's order, not the clocks'"
    );
    for phone in [&bob, &carol] {
        assert_eq!(card(phone).1, on_alices, "the same on every phone");
    }
    let ShiftStatus::Open { requests } = &on_alices.status else {
        unreachable!("checked above");
    };
    let first = requests[0];

    // Carol, not the poster and not an administrator, cannot settle it.
    answer(
        &mut world,
        &carol,
        group,
        offer,
        ShiftAction::Confirm { claim: first.id },
    );
    world.settle();
    repaint(&mut world, &[&alice, &bob, &carol], group);
    assert!(matches!(card(&bob).1.status, ShiftStatus::Open { .. }));

    // Alice, who offered it, can.
    answer(
        &mut world,
        &alice,
        group,
        offer,
        ShiftAction::Confirm { claim: first.id },
    );
    world.settle();
    repaint(&mut world, &[&alice, &bob, &carol], group);
    for phone in [&alice, &bob, &carol] {
        let ShiftStatus::Confirmed { to, others } = card(phone).1.status else {
            panic!("confirmed on every phone");
        };
        assert_eq!(to, Request { id: first.id });
        assert_eq!(others.len(), 1);
    }
    // The answers are folded into the card, not shown as messages.
    assert_eq!(bob.shown().len(), 1);
}

#[test]
fn shifts_are_offered_only_in_operational_groups() {
    let mut world = World::new();
    // Under an hour's retention the group is clinical.
    let (alice, _bob, _carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::minutes(30));
    let handle = alice.phone.clone();
    let refused = world.run(async move { handle.offer_shift(group, night()).await });
    assert_eq!(refused, Err(SessionError::NoShiftsHere));
    assert!(alice.cached_texts(group).is_empty(), "nothing was saved");
}
