//! Verification in person across phones: the attestation one phone signs is checked by every other, a new phone lapses it, and a relay that forges or rewrites one changes nothing.

use crate::testing::{TestPhone, World};
use huddle_core::attestation::{Attestation, Method, Verification};
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::wire::Person;

fn refresh(world: &mut World, phone: &TestPhone, users: Vec<UserId>) {
    let handle = phone.phone.clone();
    world
        .run(async move { handle.refresh_identities(users).await })
        .expect("the identities are fetched");
    world.settle();
}

fn verification(world: &mut World, viewer: &TestPhone, of: &TestPhone) -> Verification {
    let handle = viewer.phone.clone();
    world
        .run(async move { handle.refresh_directory().await })
        .expect("the directory is fetched");
    refresh(world, viewer, vec![of.user]);
    let people: Vec<Person> = viewer.phone.directory().people;
    let person = people
        .iter()
        .find(|p| p.user == of.user)
        .expect("listed")
        .clone();
    viewer.phone.identities().verification_of(&person, &people)
}

fn verify(world: &mut World, by: &TestPhone, of: &TestPhone) {
    refresh(world, by, vec![of.user]);
    let checked = by
        .phone
        .identities()
        .device(of.device)
        .cloned()
        .expect("the colleague's certificate checked out");
    let handle = by.phone.clone();
    world
        .run(async move {
            handle
                .verify_in_person(checked.identity, checked.key, Method::ScannedCode)
                .await
        })
        .expect("the attestation is signed and stored");
    world.settle();
}

/// Alice, Bob and Carol, started and signed in.
fn three_started(world: &mut World) -> (TestPhone, TestPhone, TestPhone) {
    let (alice, bob, carol) = (
        world.phone(1, "Alice"),
        world.phone(2, "Bob"),
        world.phone(3, "Carol"),
    );
    for phone in [&alice, &bob, &carol] {
        world.start(phone);
    }
    world.settle();
    (alice, bob, carol)
}

#[test]
fn one_colleague_verifies_another_in_person_and_a_third_phone_sees_it() {
    let mut world = World::new();
    let (alice, bob, carol) = three_started(&mut world);
    assert_eq!(
        world.relay.0.borrow().certificates.len(),
        3,
        "every phone published its chain on signing in"
    );
    assert_eq!(
        verification(&mut world, &carol, &bob),
        Verification::NotVerified
    );

    verify(&mut world, &alice, &bob);
    match verification(&mut world, &carol, &bob) {
        Verification::Verified { by } => {
            assert_eq!(by.len(), 1);
            assert_eq!((by[0].user, by[0].name.as_str()), (alice.user, "Alice"));
        }
        other => panic!("Carol should see Bob verified by Alice, not {other:?}"),
    }
    // Kept on Carol's phone for when she is offline.
    assert!(!carol.cache.0.borrow().identities.attestations.is_empty());

    // Bob's new phone appears: nobody has checked it, and the badge lapses.
    world
        .relay
        .enrol(bob.user, "Bob", DeviceId::from_bytes([222; 16]));
    assert_eq!(verification(&mut world, &carol, &bob), Verification::Lapsed);
}

#[test]
fn an_attestation_the_relay_forged_or_rewrote_counts_for_nothing() {
    let mut world = World::new();
    let (alice, bob, carol) = three_started(&mut world);
    verify(&mut world, &alice, &bob);
    // The relay turns Alice's word about Bob into a word about Carol.
    let genuine = world
        .relay
        .0
        .borrow()
        .attestations
        .get(&(alice.device, bob.device))
        .expect("stored")
        .1
        .clone();
    let mut rewritten = Attestation::from_bytes(&genuine).expect("readable");
    rewritten.statement.subject.user = carol.user;
    rewritten.statement.subject.device = carol.device;
    world.relay.0.borrow_mut().attestations.insert(
        (alice.device, carol.device),
        (carol.user, rewritten.to_bytes()),
    );
    // And invents one from Bob about Carol, signed by nobody.
    let mut invented = Attestation::from_bytes(&genuine).expect("readable");
    invented.statement.attester = invented.statement.subject;
    invented.signature = vec![0x30, 0x00];
    world.relay.0.borrow_mut().attestations.insert(
        (bob.device, carol.device),
        (carol.user, invented.to_bytes()),
    );
    assert_eq!(
        verification(&mut world, &bob, &carol),
        Verification::NotVerified
    );
    assert!(
        bob.phone
            .identities()
            .attestations
            .iter()
            .all(|a| a.subject.user != carol.user),
        "nothing false is kept"
    );
}

#[test]
fn a_phone_cannot_vouch_for_itself() {
    let mut world = World::new();
    let alice = world.phone(1, "Alice");
    world.start(&alice);
    world.settle();
    refresh(&mut world, &alice, vec![alice.user]);
    let own = alice
        .phone
        .identities()
        .device(alice.device)
        .cloned()
        .expect("her own chain checks out");
    let handle = alice.phone.clone();
    let result = world.run(async move {
        handle
            .verify_in_person(own.identity, own.key, Method::ComparedDigits)
            .await
    });
    assert!(result.is_err(), "{result:?}");
    assert!(world.relay.0.borrow().attestations.is_empty());
}

#[test]
fn a_phone_the_relay_hides_is_still_counted_by_the_members_of_its_groups() {
    let mut world = World::new();
    let (alice, bob, carol) = three_started(&mut world);
    // A second phone under Bob's name (a stolen invite, say).
    let impostor = world.phone_of(bob.user, 20, "Bob");
    world.start(&impostor);
    world.settle();
    let (handle, bob_user) = (alice.phone.clone(), bob.user);
    world
        .run(async move {
            let profile = huddle_core::group::GroupProfile::new(
                huddle_core::retention::GroupKind::Clinical,
                huddle_core::retention::RetentionSecs::HOUR,
                "Handover",
            )
            .expect("a valid profile");
            handle.create_group(profile, None, vec![bob_user]).await
        })
        .expect("the group is made with both of Bob's phones");
    world.settle();
    // The relay now lists only Bob's real phone, and Carol verifies it.
    world.relay.hide(impostor.device);
    verify(&mut world, &carol, &bob);
    assert!(
        verification(&mut world, &carol, &bob).is_verified(),
        "Carol shares no group with the hidden phone"
    );
    assert_eq!(
        verification(&mut world, &alice, &bob),
        Verification::Lapsed,
        "Alice's group holds a phone of Bob's that nobody checked"
    );
}

#[test]
fn a_phone_describes_itself_from_its_own_key_whatever_the_relay_says() {
    let mut world = World::new();
    let (alice, bob) = (world.phone(1, "Alice"), world.phone(2, "Bob"));
    for phone in [&alice, &bob] {
        world.start(phone);
    }
    world.settle();
    refresh(&mut world, &alice, vec![alice.user]);
    let own = alice.phone.identities().device(alice.device).cloned();
    // The relay hands Alice Bob's chain as hers.
    let bobs = world
        .relay
        .0
        .borrow()
        .certificates
        .get(&bob.device)
        .cloned()
        .expect("published");
    world
        .relay
        .0
        .borrow_mut()
        .certificates
        .insert(alice.device, bobs);
    refresh(&mut world, &alice, vec![alice.user]);
    assert!(own.is_some());
    assert_eq!(alice.phone.identities().device(alice.device).cloned(), own);
}

#[test]
fn one_refresh_asks_about_one_batch_of_people_at_most_in_the_order_given() {
    let mut world = World::new();
    let alice = world.phone(1, "Alice");
    world.start(&alice);
    world.settle();
    let mut users: Vec<UserId> = vec![alice.user];
    users.extend((10..=160).map(|n| UserId::from_bytes([n; 16])));
    users.push(alice.user);
    let before = world.relay.0.borrow().received.len();
    refresh(&mut world, &alice, users);
    let asked: Vec<Vec<UserId>> = world.relay.0.borrow().received[before..]
        .iter()
        .filter_map(|(_, frame)| match frame {
            huddle_core::wire::ClientFrame::Identities { users, .. } => Some(users.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "one request");
    assert_eq!(asked[0].len(), huddle_core::wire::MAX_IDENTITY_USERS);
    assert_eq!(asked[0][0], alice.user, "the first asked for comes first");
}
