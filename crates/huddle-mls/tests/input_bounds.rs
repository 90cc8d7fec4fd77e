//! Hostile bytes inside MLS: crafted length prefixes and mutated commits, welcomes, key packages and messages get typed errors, no panic, and no allocation beyond a stated cap.
//!
//! The crypto worker opens whatever the relay delivers; a frame is at most
//! 2 MiB, but a length prefix inside it can claim up to 1 GiB. This test
//! counts the bytes the process holds while each input is handled.

#![cfg(not(target_arch = "wasm32"))]

use cap::Cap;
use huddle_core::envelope::Envelope;
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_core::wire::Role;
use huddle_mls::fixtures::{claimed, enrol, found};
use huddle_mls::GroupProfile;
use std::alloc::System;

/// Counts what the process holds and refuses to go past a limit: an input
/// that made the worker allocate past it would abort this test.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// No single hostile input may make the worker hold this much more than
/// it held before (the frame limit is 2 MiB; a message is copied a few
/// times on its way through).
const ALLOCATION_CAP: usize = 16 * 1024 * 1024;

const NOW: UnixMillis = UnixMillis(1_795_000_000_000);
const GROUP: GroupId = GroupId::from_bytes([0x42; 16]);

fn identity(n: u8) -> DeviceIdentity {
    DeviceIdentity {
        org: OrgId::from_bytes([1; 16]),
        user: UserId::from_bytes([n; 16]),
        device: DeviceId::from_bytes([n + 100; 16]),
    }
}

/// A tiny deterministic generator, so that a failure can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Every position of `real`, in turn, overwritten with a QUIC varint
/// claiming 2^30 - 1 bytes (the largest MLS allows), plus random flips.
fn mutations(real: &[u8], seed: u64, random: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let step = (real.len() / 200).max(1);
    for at in (0..real.len().saturating_sub(4)).step_by(step) {
        let mut bytes = real.to_vec();
        bytes[at..at + 4].copy_from_slice(&[0xbf, 0xff, 0xff, 0xff]);
        out.push(bytes);
    }
    let mut rng = Lcg(seed);
    for _ in 0..random {
        let mut bytes = real.to_vec();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % bytes.len();
            bytes[at] = rng.next() as u8;
        }
        out.push(bytes);
    }
    out
}

#[test]
fn crafted_lengths_and_mutated_mls_inputs_are_refused_within_the_allocation_cap() {
    let mut founder = found(identity(0)).expect("founder");
    let mut alice = enrol(&mut founder, identity(1), Role::Administrator).expect("alice");
    let mut bob = enrol(&mut founder, identity(2), Role::Staff).expect("bob");
    let mut carol = enrol(&mut founder, identity(3), Role::Staff).expect("carol");
    let profile =
        GroupProfile::new(GroupKind::Operational, RetentionSecs::days(7), "Rota").expect("profile");
    alice.create_group(GROUP, &profile).expect("create");
    let bob_kp = bob.key_packages(1).expect("kp").remove(0);
    let commit = alice
        .add_members(GROUP, &[claimed(&bob, bob_kp)])
        .expect("add");
    alice.merge_pending_commit(GROUP, NOW).expect("merge");
    let welcome = commit.welcome.clone().expect("welcome");
    bob.join(&welcome).expect("join");
    let envelope = Envelope::text(NOW, "Handover at 8")
        .unwrap()
        .encode()
        .unwrap();
    let message = alice
        .seal(
            GROUP,
            ClientMessageId::from_bytes([1; 16]),
            NOW.saturating_add_millis(60_000),
            &envelope,
        )
        .expect("seal")
        .ciphertext;
    let carol_kp = carol.key_packages(1).expect("kp").remove(0);
    let update = alice.self_update(GROUP).expect("update");
    alice.discard_pending_commit(GROUP).expect("discard");

    let sender = identity(1).device;
    // From here on, holding more than the cap above what is held now makes
    // the allocation fail, which aborts the test: no hostile input may
    // cost more than ALLOCATION_CAP.
    let baseline = ALLOCATOR.allocated();
    ALLOCATOR
        .set_limit(baseline + ALLOCATION_CAP)
        .expect("the limit is above what is held");
    let mut refused = 0usize;
    let mut check = |_name: &str, _index: usize, handle: &mut dyn FnMut() -> bool| {
        if !handle() {
            refused += 1;
        }
    };
    // Application messages and commits, opened by Bob (a throwaway copy of
    // his state would be needed to accept a valid one twice; a mutation
    // that still opened would be a failure of MLS's authentication anyway).
    for (index, bytes) in mutations(&message, 1, 300).iter().enumerate() {
        check("message", index, &mut || {
            bob.open(GROUP, bytes, sender, None, NOW).is_ok()
        });
    }
    for (index, bytes) in mutations(&update.commit, 2, 300).iter().enumerate() {
        check("commit", index, &mut || {
            bob.open(GROUP, bytes, sender, Some(&update.change), NOW)
                .is_ok()
        });
    }
    let mut stranger = enrol(&mut founder, identity(4), Role::Staff).expect("stranger");
    for (index, bytes) in mutations(&welcome, 3, 300).iter().enumerate() {
        check("welcome", index, &mut || stranger.join(bytes).is_ok());
    }
    for (index, bytes) in mutations(&carol_kp, 4, 300).iter().enumerate() {
        check("key package", index, &mut || {
            alice.inspect_key_package(bytes).is_ok()
        });
    }
    ALLOCATOR.set_limit(usize::MAX).expect("no limit");
    assert!(refused > 1500, "{refused} refused");
    println!(
        "held at most {} bytes above the {baseline} held before (cap {ALLOCATION_CAP})",
        ALLOCATOR.max_allocated().saturating_sub(baseline)
    );
}
