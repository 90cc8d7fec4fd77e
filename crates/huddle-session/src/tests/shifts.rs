//! Shift offers across phones: claims made at the same moment are ordered by the log on every phone, a phone's own claim takes its logged place once stored, and only the poster or an administrator settles a shift.

use super::{alice_bob_and_carol, profile};
use crate::shifts::ShiftCard;
use crate::testing::{TestPhone, World};
use crate::update::Update;
use crate::SessionError;
use huddle_core::ids::GroupId;
use huddle_core::retention::RetentionSecs;
use huddle_core::shift::{MessageRef, Request, Shift, ShiftAction, ShiftStatus, ShiftUpdate};

/// Alice (an administrator) and two staff, Bob and Carol, in an
/// operational group Alice made.
fn alice_and_two_staff(world: &mut World) -> (TestPhone, TestPhone, TestPhone, GroupId) {
    let alice = world.phone(1, "Alice");
    let bob = world.staff_phone(2, "Bob");
    let carol = world.staff_phone(3, "Carol");
    for phone in [&alice, &bob, &carol] {
        world.start(phone);
    }
    let (handle, staff) = (alice.phone.clone(), vec![bob.user, carol.user]);
    let group = world
        .run(async move {
            handle
                .create_group(profile(RetentionSecs::DAY), None, staff)
                .await
        })
        .expect("the group is made");
    world.settle();
    assert!(carol.phone.conversation(group).is_some(), "Carol joined");
    (alice, bob, carol, group)
}

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
    let (alice, bob, carol, group) = alice_and_two_staff(&mut world);
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

#[test]
fn a_colleague_who_reuses_the_id_of_anothers_offer_does_not_take_it_over() {
    use crate::platform::Crypto;
    use crate::records::MessageBody;
    use huddle_core::crypto_worker::{Plaintext, WorkerRequest, WorkerResponse};
    use huddle_core::envelope::{Envelope, EnvelopeBody};
    use huddle_core::wire::{Payload, Submission};

    let mut world = World::new();
    let (alice, bob, carol, group) = alice_bob_and_carol(&mut world, RetentionSecs::DAY);
    let handle = alice.phone.clone();
    world
        .run(async move { handle.offer_shift(group, night()).await })
        .expect("the offer is saved");
    world.settle();
    let offer = bob
        .cache
        .0
        .borrow()
        .messages
        .values()
        .find(|m| matches!(m.body, MessageBody::ShiftOffer(_)))
        .cloned()
        .expect("Bob holds the offer");
    // Carol's modified app sends an offer of her own under the id and
    // expiry of Alice's, hoping every phone files it as Alice's and then
    // takes her word as the poster's.
    let mut hers = night();
    hers.note = "mine now".into();
    let envelope = Envelope {
        sent_at: offer.sent_at,
        body: EnvelopeBody::ShiftOffer(hers),
    }
    .encode()
    .expect("encodes");
    let crypto = carol.crypto.clone();
    let sealed = world
        .run(async move {
            crypto
                .request(WorkerRequest::Seal {
                    group,
                    client_msg: offer.client_msg,
                    expires_at: offer.expires_at,
                    envelope: Plaintext::new(envelope),
                })
                .await
        })
        .expect("sealed");
    let WorkerResponse::Sealed(sealed) = sealed else {
        panic!("{sealed:?}");
    };
    world.relay.submit_from(
        carol.device,
        Submission {
            client_msg: offer.client_msg,
            group,
            epoch: sealed.epoch,
            expires_at: Some(offer.expires_at),
            payload: Payload::Application {
                ciphertext: sealed.ciphertext,
            },
        },
    );
    world.settle();
    let kept = bob
        .cache
        .0
        .borrow()
        .messages
        .get(&(offer.expires_at, group, offer.client_msg))
        .cloned()
        .expect("still there");
    assert_eq!(kept.sender, alice.user, "the first holder keeps it");
    assert_eq!(kept, offer);
}

#[test]
fn i_cannot_make_my_shift_reaches_each_manager_one_to_one_and_never_a_group() {
    let mut world = World::new();
    let (alice, bob, carol, group) = alice_and_two_staff(&mut world);
    let dana = world.phone(4, "Dana");
    world.start(&dana);
    world.settle();
    let handle = bob.phone.clone();
    let told = world
        .run(async move { handle.cannot_work(night()).await })
        .expect("the managers are told");
    world.settle();
    assert_eq!(
        told,
        vec![alice.user, dana.user],
        "every administrator, nobody else"
    );
    for manager in [&alice, &dana] {
        let direct = manager
            .phone
            .shared
            .state
            .borrow()
            .conversations
            .clone()
            .into_iter()
            .find(|c| {
                c.kind == huddle_core::retention::GroupKind::Direct && c.peer == Some(bob.user)
            })
            .expect("a one-to-one conversation with Bob");
        assert!(
            manager
                .cached_messages(direct.group)
                .iter()
                .any(|m| m.body == crate::records::MessageBody::CannotWork(night())),
            "{:?} has Bob's shift",
            manager.user
        );
    }
    // Nothing of it in the group, nor anything at all on Carol's phone.
    for phone in [&alice, &bob, &carol] {
        assert!(!phone
            .cached_messages(group)
            .iter()
            .any(|m| matches!(m.body, crate::records::MessageBody::CannotWork(_))));
    }
    assert!(carol
        .phone
        .shared
        .state
        .borrow()
        .conversations
        .iter()
        .all(|c| c.kind != huddle_core::retention::GroupKind::Direct));
    // Said again, it goes to the same conversations.
    let handle = bob.phone.clone();
    world
        .run(async move { handle.cannot_work(night()).await })
        .expect("told again");
    world.settle();
    let directs = bob
        .phone
        .shared
        .state
        .borrow()
        .conversations
        .iter()
        .filter(|c| c.kind == huddle_core::retention::GroupKind::Direct)
        .count();
    assert_eq!(directs, 2);
    // A group never carries it.
    let refused = crate::outgoing::Outgoing::new(
        &bob.phone.enrolment(),
        &bob.phone.conversation(group).expect("the group"),
        huddle_core::ids::ClientMessageId::from_bytes([7; 16]),
        1,
        huddle_core::retention::UnixMillis(1),
        huddle_core::envelope::EnvelopeBody::CannotWork(night()),
    );
    assert_eq!(refused.map(|_| ()), Err(SessionError::NotOneToOne));
}
