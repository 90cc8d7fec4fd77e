//! Setting a passcode: the relay keeps its half before the phone stores the lock and forgets the key it kept beside its data, and a refusal on either side changes nothing.

use crate::platform::CryptoError;
use crate::testing::World;
use crate::SessionError;
use huddle_core::crypto_worker::{PasscodeText, WorkerErrorKind};
use huddle_core::passcode::{self, Passcode, Share};
use huddle_core::wire::ClientFrame;

fn set(
    world: &mut World,
    phone: &crate::testing::TestPhone,
    code: &str,
) -> Result<(), SessionError> {
    let handle = phone.phone.clone();
    let code = PasscodeText::new(code.to_owned());
    let result = world.run(async move { handle.set_passcode(code).await });
    world.settle();
    result
}

fn lock_frames(phone: &crate::testing::TestPhone, world: &World) -> usize {
    world
        .relay
        .0
        .borrow()
        .received
        .iter()
        .filter(|(device, frame)| {
            *device == phone.device && matches!(frame, ClientFrame::SetPasscodeLock { .. })
        })
        .count()
}

#[test]
fn the_relay_keeps_its_half_first_then_the_phone_keeps_the_lock_and_forgets_its_key() {
    let mut world = World::new();
    let bob = world.staff_phone(2, "Bob");
    world.start(&bob);
    world.settle();
    set(&mut world, &bob, "582914").expect("the passcode is set");

    let (relay_key, relay_share) = world
        .relay
        .0
        .borrow()
        .locks
        .get(&bob.device)
        .cloned()
        .expect("the relay keeps the lock");
    let lock = bob
        .crypto
        .0
        .borrow()
        .lock
        .clone()
        .expect("the worker keeps the lock");
    assert_eq!(lock.lock_public, relay_key);
    assert_eq!(lock.device, bob.device);
    assert!(bob.cache.0.borrow().key_forgotten);
    // The lock opens the cache's key with the passcode and the relay's
    // share, and with nothing less.
    let share = Share::from_bytes(relay_share[..].try_into().expect("32 bytes"));
    let stretched = passcode::stretch(
        &Passcode::typed("582914").expect("typed"),
        lock.org,
        lock.device,
    );
    let (_, page_key) = huddle_worker::lock::open(&lock, &stretched, &share).expect("opens");
    assert_eq!(page_key.as_bytes(), &[0x5a; 32]);
    let wrong = passcode::stretch(
        &Passcode::typed("582915").expect("typed"),
        lock.org,
        lock.device,
    );
    assert!(huddle_worker::lock::open(&lock, &wrong, &share).is_err());
}

#[test]
fn a_passcode_that_breaks_the_rules_is_refused_before_the_relay_hears_of_it() {
    let mut world = World::new();
    let bob = world.staff_phone(2, "Bob");
    world.start(&bob);
    world.settle();
    match set(&mut world, &bob, "123456") {
        Err(SessionError::Crypto(CryptoError::Refused(error))) => {
            assert_eq!(error.kind, WorkerErrorKind::Passcode);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lock_frames(&bob, &world), 0);
    assert!(bob.crypto.0.borrow().lock.is_none());
    assert!(!bob.cache.0.borrow().key_forgotten);
}

#[test]
fn when_the_relay_does_not_keep_the_lock_the_phone_changes_nothing() {
    let mut world = World::new();
    let bob = world.staff_phone(2, "Bob");
    world.start(&bob);
    world.settle();
    world.relay.0.borrow_mut().refuse_locks = true;
    assert!(set(&mut world, &bob, "582914").is_err());
    assert_eq!(lock_frames(&bob, &world), 1);
    assert!(bob.crypto.0.borrow().lock.is_none(), "nothing stored");
    assert!(!bob.cache.0.borrow().key_forgotten, "the key is kept");

    // Offline, nothing is sent and nothing changes.
    world.relay.0.borrow_mut().refuse_locks = false;
    bob.online.set(false);
    bob.phone.wake();
    world.settle();
    assert!(set(&mut world, &bob, "582914").is_err());
    assert!(bob.crypto.0.borrow().lock.is_none());
    assert!(!bob.cache.0.borrow().key_forgotten);

    // Back online, it works.
    bob.online.set(true);
    bob.phone.wake();
    world.settle();
    set(&mut world, &bob, "582914").expect("the passcode is set");
    assert!(bob.crypto.0.borrow().lock.is_some());
    assert!(bob.cache.0.borrow().key_forgotten);
}
