//! Group scenarios through the crate's API, natively and in headless Chromium: sizes, removal, races, restarts and tampering.
//!
//! A `Log` stands in for the relay's ordering rule (the first commit for an
//! epoch wins); the relay's own behaviour is tested against a real relay.

use crate::device::{MlsDevice, MlsError};
use crate::fixtures;
use crate::profile::GroupProfile;
use crate::provider::CIPHERSUITE;
use crate::state::{apply_changes, StateChange};
use crate::Incoming;
use crate::{CommitOut, DeviceSigner};
use huddle_core::broadcast::{MLS_PADDING_BYTES, REPLY_CIPHERTEXT_BYTES};
use huddle_core::envelope::{Envelope, EnvelopeBody};
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_core::shift::MessageRef;
use huddle_core::wire::{ClaimedKeyPackage, Role};
use std::collections::{BTreeSet, HashMap};

#[cfg(target_arch = "wasm32")]
// In a dedicated worker, as in the app: long MLS operations must not block
// the page (the browser driver stops waiting for a page busy for 30 s).
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

const NOW: UnixMillis = UnixMillis(1_795_000_000_000);
const WARD: GroupId = GroupId::from_bytes([0x77; 16]);
const ORG: OrgId = OrgId::from_bytes([1; 16]);

fn identity(n: u32) -> DeviceIdentity {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    DeviceIdentity {
        org: ORG,
        user: UserId::from_bytes(bytes),
        device: DeviceId::from_bytes({
            let mut d = bytes;
            d[15] = 0xdd;
            d
        }),
    }
}

thread_local! {
    /// The organisation's founder, who invites every device in these tests.
    static FOUNDER: std::cell::RefCell<Option<MlsDevice>> = const { std::cell::RefCell::new(None) };
}

/// Device `n`, certified through a real invite (device 0 as an administrator).
fn device(n: u32) -> MlsDevice {
    FOUNDER.with(|founder| {
        let mut founder = founder.borrow_mut();
        let founder =
            founder.get_or_insert_with(|| fixtures::found(identity(u32::MAX)).expect("founder"));
        let role = if n == 0 {
            Role::Administrator
        } else {
            Role::Staff
        };
        fixtures::enrol(founder, identity(n), role).expect("a device")
    })
}

fn dev(n: u32) -> DeviceId {
    identity(n).device
}

fn key_package(device: &mut MlsDevice) -> ClaimedKeyPackage {
    let kp = device.key_packages(1).unwrap().remove(0);
    fixtures::claimed(device, kp)
}

fn profile() -> GroupProfile {
    GroupProfile::new(
        GroupKind::Clinical,
        RetentionSecs::DAY,
        "Night shift, Oak ward",
    )
    .unwrap()
}

fn msg_id(n: u32) -> ClientMessageId {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    ClientMessageId::from_bytes(bytes)
}

fn seal_text(device: &mut MlsDevice, n: u32, text: &str) -> Vec<u8> {
    let envelope = Envelope::text(NOW, text).unwrap().encode().unwrap();
    device
        .seal(
            WARD,
            msg_id(n),
            NOW.saturating_add_millis(3_600_000),
            &envelope,
        )
        .expect("seal")
        .ciphertext
}

fn open_text(device: &mut MlsDevice, from: u32, ciphertext: &[u8]) -> Result<String, MlsError> {
    match device.open(WARD, ciphertext, dev(from), None, NOW)? {
        Incoming::Message { envelope, .. } => Ok(Envelope::decode(envelope.as_bytes())
            .unwrap()
            .body
            .text()
            .unwrap_or("")
            .to_owned()),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Creates the group on `admin` and adds `others` in one commit; every
/// other device joins by the welcome.
fn team(size: u32) -> (MlsDevice, Vec<MlsDevice>) {
    let mut admin = device(0);
    admin.create_group(WARD, &profile()).unwrap();
    let mut others: Vec<MlsDevice> = (1..size).map(device).collect();
    if !others.is_empty() {
        let key_packages: Vec<ClaimedKeyPackage> = others.iter_mut().map(key_package).collect();
        let commit = admin.add_members(WARD, &key_packages).unwrap();
        assert_eq!(commit.change.add.len(), others.len());
        admin.merge_pending_commit(WARD, NOW).unwrap();
        let welcome = commit.welcome.expect("a welcome");
        for other in &mut others {
            let joined = other.join(&welcome).expect("join");
            assert_eq!(joined.group, WARD);
            assert_eq!(joined.profile, profile());
            assert_eq!(joined.members.len() as u32, size);
            assert_eq!(joined.epoch, 1);
        }
    }
    (admin, others)
}

fn apply_commit(devices: &mut [&mut MlsDevice], from: u32, commit: &CommitOut) -> Vec<Incoming> {
    devices
        .iter_mut()
        .map(|d| {
            d.open(WARD, &commit.commit, dev(from), Some(&commit.change), NOW)
                .expect("commit")
        })
        .collect()
}

macro_rules! scenario {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        fn $name() $body
    };
}

scenario! {
    fn only_0x0007_is_supported() {
        use openmls::prelude::Ciphersuite;
        use openmls_traits::crypto::OpenMlsCrypto;
        use openmls_traits::OpenMlsProvider;
        let provider = crate::HuddleProvider::<openmls_memory_storage::MemoryStorage>::default();
        assert!(provider.crypto().supports(CIPHERSUITE).is_ok());
        assert_eq!(provider.crypto().supported_ciphersuites(), vec![CIPHERSUITE]);
        for weaker in [
            Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
            Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
            Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
        ] {
            assert!(provider.crypto().supports(weaker).is_err(), "{weaker:?}");
        }
    }
}

scenario! {
    fn a_group_of_two_talks_both_ways() {
        let (mut admin, mut others) = team(2);
        let bob = &mut others[0];
        let to_bob = seal_text(&mut admin, 1, "Handover at 8, room 4 needs a check");
        assert_eq!(open_text(bob, 0, &to_bob).unwrap(), "Handover at 8, room 4 needs a check");
        let to_admin = seal_text(bob, 2, "On my way");
        match admin.open(WARD, &to_admin, dev(1), None, NOW).unwrap() {
            Incoming::Message { sender, client_msg, expires_at, .. } => {
                assert_eq!(sender, identity(1));
                assert_eq!(client_msg, msg_id(2));
                assert_eq!(expires_at, NOW.saturating_add_millis(3_600_000));
            }
            other => panic!("{other:?}"),
        }
        // MLS deletes a message key after use: the same ciphertext cannot be opened twice.
        assert!(open_text(bob, 0, &to_bob).is_err());
    }
}

scenario! {
    fn a_group_of_ten_everyone_hears_everyone() {
        let (mut admin, mut others) = team(10);
        for (index, sender) in others.iter_mut().enumerate() {
            let text = format!("message from {index}");
            let sealed = seal_text(sender, index as u32, &text);
            assert_eq!(open_text(&mut admin, index as u32 + 1, &sealed).unwrap(), text);
        }
        let broadcast = seal_text(&mut admin, 99, "All staff: fire drill at 2");
        for other in &mut others {
            assert_eq!(open_text(other, 0, &broadcast).unwrap(), "All staff: fire drill at 2");
        }
    }
}

scenario! {
    fn a_group_of_a_hundred_and_one() {
        // One commit adds 100 devices; three of them (first, middle, last)
        // join and talk. Every device joining is measured by the benchmark.
        let mut admin = device(0);
        admin.create_group(WARD, &profile()).unwrap();
        let mut devices: Vec<MlsDevice> = (1..=100).map(device).collect();
        let key_packages: Vec<ClaimedKeyPackage> = devices.iter_mut().map(key_package).collect();
        let commit = admin.add_members(WARD, &key_packages).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        assert_eq!(admin.members(WARD).unwrap().len(), 101);
        let welcome = commit.welcome.unwrap();
        let mut joined: Vec<MlsDevice> = [0usize, 49, 99].iter().map(|&i| {
            let mut d = std::mem::replace(&mut devices[i], device(1000 + i as u32));
            assert_eq!(d.join(&welcome).unwrap().members.len(), 101);
            d
        }).collect();
        let sealed = seal_text(&mut admin, 1, "Beds free on Oak ward: 2");
        for d in &mut joined {
            assert_eq!(open_text(d, 0, &sealed).unwrap(), "Beds free on Oak ward: 2");
        }
        let reply = seal_text(&mut joined[2], 2, "Noted");
        assert_eq!(open_text(&mut admin, 100, &reply).unwrap(), "Noted");
        assert_eq!(open_text(&mut joined[0], 100, &reply).unwrap(), "Noted");
    }
}

scenario! {
    fn a_removed_member_cannot_open_anything_sent_after() {
        let (mut admin, mut others) = team(3);
        let (left, right) = others.split_at_mut(1);
        let (bob, carol) = (&mut left[0], &mut right[0]);
        let commit = admin.remove_members(WARD, &[identity(2).device]).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        // Carol, who had the old epoch's state, processes her removal.
        let seen = apply_commit(&mut [bob, carol], 0, &commit);
        assert!(matches!(&seen[0], Incoming::MembershipChanged { removed, removed_self: false, .. } if removed == &vec![identity(2)]));
        assert!(matches!(&seen[1], Incoming::MembershipChanged { removed_self: true, .. }));
        assert!(!carol.has_group(WARD));
        let after = seal_text(&mut admin, 5, "Carol has left the ward team");
        assert_eq!(open_text(bob, 0, &after).unwrap(), "Carol has left the ward team");
        assert_eq!(open_text(carol, 0, &after), Err(MlsError::UnknownGroup));

        // A removed member that never processed the commit is stuck in the
        // old epoch and cannot open the new one either.
        let (mut admin, mut others) = team(3);
        let commit = admin.remove_members(WARD, &[identity(2).device]).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        others[0].open(WARD, &commit.commit, dev(0), Some(&commit.change), NOW).unwrap();
        let after = seal_text(&mut admin, 6, "after removal");
        assert!(matches!(open_text(&mut others[1], 0, &after), Err(MlsError::WrongEpoch { message: 2, group: 1 })));
    }
}

scenario! {
    fn concurrent_commits_one_wins_the_other_is_made_again_and_lands() {
        let (mut admin, mut others) = team(3);
        let mut dave = device(3);
        let dave_kp = key_package(&mut dave);
        // Both commit for epoch 1: the admin adds Dave, Bob renews his keys.
        let admin_commit = admin.add_members(WARD, std::slice::from_ref(&dave_kp)).unwrap();
        let bob_commit = others[0].self_update(WARD).unwrap();
        assert_eq!((admin_commit.epoch, bob_commit.epoch), (1, 1));
        // The relay accepts Bob's first; the admin's is refused as stale.
        let mut log = vec![bob_commit.clone()];
        others[0].merge_pending_commit(WARD, NOW).unwrap();
        let seen = admin.open(WARD, &bob_commit.commit, dev(1), Some(&bob_commit.change), NOW).unwrap();
        assert!(matches!(seen, Incoming::EpochChanged { epoch: 2, .. }));
        others[1].open(WARD, &bob_commit.commit, dev(1), Some(&bob_commit.change), NOW).unwrap();
        // The admin makes her commit again in epoch 2, and it lands.
        let retried = admin.add_members(WARD, &[dave_kp]).unwrap();
        assert_eq!(retried.epoch, 2);
        log.push(retried.clone());
        admin.merge_pending_commit(WARD, NOW).unwrap();
        for other in others.iter_mut() {
            other.open(WARD, &retried.commit, dev(0), Some(&retried.change), NOW).unwrap();
        }
        dave.join(retried.welcome.as_ref().unwrap()).unwrap();
        let mut epochs = vec![admin.epoch(WARD).unwrap(), dave.epoch(WARD).unwrap()];
        epochs.extend(others.iter_mut().map(|d| d.epoch(WARD).unwrap()));
        assert_eq!(epochs, vec![3, 3, 3, 3]);
        assert_eq!(log.len(), 2);
        let hello = seal_text(&mut dave, 1, "Hello from Dave");
        assert_eq!(open_text(&mut others[1], 3, &hello).unwrap(), "Hello from Dave");
    }
}

scenario! {
    fn a_commit_that_does_not_match_its_declared_change_is_refused() {
        let (mut admin, mut others) = team(3);
        let mut commit = admin.remove_members(WARD, &[identity(2).device]).unwrap();
        commit.change.remove = vec![identity(1).device];
        assert_eq!(
            others[0].open(WARD, &commit.commit, dev(0), Some(&commit.change), NOW),
            Err(MlsError::UndeclaredChange)
        );
    }
}

scenario! {
    fn a_commit_without_its_declaration_is_refused() {
        let (mut admin, mut others) = team(2);
        let commit = admin.self_update(WARD).unwrap();
        assert_eq!(
            others[0].open(WARD, &commit.commit, dev(0), None, NOW),
            Err(MlsError::UndeclaredChange)
        );
    }
}

scenario! {
    fn a_second_leaf_for_a_device_already_in_the_group_is_refused() {
        let (mut admin, mut others) = team(3);
        // Bob's invite key certifies another key under his device id.
        let mut twin = device(1);
        let twin_kp = key_package(&mut twin);
        assert_eq!(
            admin.add_members(WARD, std::slice::from_ref(&twin_kp)).err(),
            Some(MlsError::DuplicateDevice)
        );
        // A modified app adds it anyway: the others refuse the commit.
        let commit = admin.add_unchecked(WARD, &[twin_kp.key_package]).unwrap();
        assert_eq!(
            others[1].open(WARD, &commit.commit, dev(0), Some(&commit.change), NOW),
            Err(MlsError::DuplicateDevice)
        );
    }
}

scenario! {
    fn keys_are_renewed_weekly_and_after_a_removal_and_a_copy_of_the_old_ones_opens_nothing_after() {
        use crate::device::ROTATE_KEYS_EVERY_MILLIS;
        let (mut admin, mut others) = team(3);
        let (left, right) = others.split_at_mut(1);
        let (bob, carol) = (&mut left[0], &mut right[0]);
        // The first question starts the clock; a week later the keys are due.
        assert!(bob.keys_due(&[WARD], NOW).is_empty());
        let day = 24 * 60 * 60 * 1000;
        assert!(bob.keys_due(&[WARD], NOW.saturating_add_millis(6 * day)).is_empty());
        let week = NOW.saturating_add_millis(ROTATE_KEYS_EVERY_MILLIS);
        assert_eq!(bob.keys_due(&[WARD], week), vec![WARD]);

        // A thief copies Bob's whole state before he renews his keys.
        let mut stolen = HashMap::new();
        apply_changes(&mut stolen, &bob.take_state_changes());
        let (private, public) = bob.signer().export();
        let update = bob.self_update(WARD).unwrap();
        bob.merge_pending_commit(WARD, week).unwrap();
        assert!(bob.keys_due(&[WARD], week).is_empty(), "renewed");
        apply_commit(&mut [&mut admin, carol], 1, &update);
        let after = seal_text(&mut admin, 7, "after Bob's new keys");
        assert_eq!(open_text(bob, 0, &after).unwrap(), "after Bob's new keys");
        let mut thief = MlsDevice::restore(identity(1), DeviceSigner::restore(&private, &public).unwrap(), stolen);
        assert!(thief.open(WARD, &update.commit, dev(1), Some(&update.change), week).is_err());
        assert!(matches!(open_text(&mut thief, 0, &after), Err(MlsError::WrongEpoch { .. })));

        // A removal makes the others' keys due at once.
        let removal = admin.remove_members(WARD, &[dev(2)]).unwrap();
        admin.merge_pending_commit(WARD, week).unwrap();
        apply_commit(&mut [bob], 0, &removal);
        assert_eq!(bob.keys_due(&[WARD], week), vec![WARD]);
        assert!(admin.keys_due(&[WARD], week).is_empty(), "the remover's commit renewed hers");

        // Adding someone carries no update path, so it renews nothing.
        let mut dave = device(3);
        let add = admin
            .add_members(WARD, &[key_package(&mut dave)])
            .unwrap();
        admin.merge_pending_commit(WARD, week.saturating_add_millis(6 * day)).unwrap();
        apply_commit(&mut [bob], 0, &add);
        let fortnight = week.saturating_add_millis(ROTATE_KEYS_EVERY_MILLIS);
        assert_eq!(admin.keys_due(&[WARD], fortnight), vec![WARD], "an add is not a renewal");
    }
}

scenario! {
    fn only_a_certified_administrator_changes_a_clinical_group_or_broadcasts() {
        let (mut admin, mut others) = team(3);
        // Bob (staff) adds Dave with a modified app that skips the relay's rule.
        let mut dave = device(3);
        let commit = others[0].add_members(WARD, &[key_package(&mut dave)]).unwrap();
        assert_eq!(
            others[1].open(WARD, &commit.commit, dev(1), Some(&commit.change), NOW),
            Err(MlsError::NotPermitted)
        );
        others[0].discard_pending_commit(WARD).unwrap();
        // Renewing his own keys is his to do.
        let renewal = admin.self_update(WARD).unwrap();
        admin.discard_pending_commit(WARD).unwrap();
        drop(renewal);
        let renewal = others[0].self_update(WARD).unwrap();
        assert!(admin.open(WARD, &renewal.commit, dev(1), Some(&renewal.change), NOW).is_ok());

        // In an emergency broadcast only administrators send.
        let alert = GroupId::from_bytes([0xa1; 16]);
        let broadcast = GroupProfile::new(GroupKind::EmergencyBroadcast, RetentionSecs::days(3), "Fire alarm").unwrap();
        let mut boss = device(0);
        boss.create_group(alert, &broadcast).unwrap();
        let mut bob = device(1);
        let commit = boss.add_members(alert, &[key_package(&mut bob)]).unwrap();
        boss.merge_pending_commit(alert, NOW).unwrap();
        bob.join(commit.welcome.as_ref().unwrap()).unwrap();
        let envelope = Envelope::text(NOW, "Everyone out").unwrap().encode().unwrap();
        let from_boss = boss.seal(alert, msg_id(1), NOW.saturating_add_millis(60_000), &envelope).unwrap();
        assert!(bob.open(alert, &from_boss.ciphertext, dev(0), None, NOW).is_ok());
        let from_bob = bob.seal(alert, msg_id(2), NOW.saturating_add_millis(60_000), &envelope).unwrap();
        assert_eq!(
            boss.open(alert, &from_bob.ciphertext, dev(1), None, NOW),
            Err(MlsError::NotPermitted)
        );
        // Staff may acknowledge a broadcast: a reply, and nothing else.
        let acknowledgement = Envelope {
            sent_at: NOW,
            body: EnvelopeBody::Acknowledgement(MessageRef {
                author: identity(0).user,
                client_msg: msg_id(1),
            }),
        }
        .encode()
        .unwrap();
        let reply = bob.seal(alert, msg_id(3), NOW.saturating_add_millis(60_000), &acknowledgement).unwrap();
        assert!(matches!(
            boss.open(alert, &reply.ciphertext, dev(1), None, NOW),
            Ok(Incoming::Message { sender_is_administrator: false, .. })
        ));
    }
}

/// The length of the `ciphertext` field of a sealed `PrivateMessage`
/// (RFC 9420, section 6.3), read the way the relay reads it.
fn private_ciphertext_len(message: &[u8]) -> usize {
    fn vector(bytes: &[u8]) -> (usize, &[u8]) {
        let (len, header) = match bytes[0] >> 6 {
            0 => (usize::from(bytes[0] & 0x3f), 1),
            1 => (
                (usize::from(bytes[0] & 0x3f) << 8) | usize::from(bytes[1]),
                2,
            ),
            _ => panic!("no message here is that long"),
        };
        (len, &bytes[header + len..])
    }
    // Version and wire format, then the group id, epoch and content type.
    let (_, rest) = vector(&message[4..]);
    let rest = &rest[9..];
    let (_, rest) = vector(rest); // authenticated data
    let (_, rest) = vector(rest); // encrypted sender data
    let (len, rest) = vector(rest);
    assert!(rest.is_empty(), "nothing follows the ciphertext");
    len
}

scenario! {
    fn every_reply_to_a_broadcast_is_one_size_and_other_messages_are_padded() {
        let (mut admin, mut others) = team(2);
        let mut lengths = BTreeSet::new();
        for n in 0..64u8 {
            let acknowledgement = Envelope {
                sent_at: NOW.saturating_add_millis(u64::from(n) * 977),
                body: EnvelopeBody::Acknowledgement(MessageRef {
                    author: UserId::from_bytes([n; 16]),
                    client_msg: msg_id(u32::from(n)),
                }),
            }
            .encode()
            .unwrap();
            let sealed = others[0]
                .seal(WARD, msg_id(100 + u32::from(n)), NOW.saturating_add_millis(60_000), &acknowledgement)
                .unwrap();
            lengths.insert(private_ciphertext_len(&sealed.ciphertext));
        }
        assert_eq!(lengths, BTreeSet::from([REPLY_CIPHERTEXT_BYTES]));
        // Every other message's length is hidden to within the padding.
        for text in ["ok", "On my way, ten minutes", &"x".repeat(300)] {
            let sealed = seal_text(&mut admin, 7, text);
            assert_eq!(private_ciphertext_len(&sealed) % MLS_PADDING_BYTES, 0, "{text}");
        }
    }
}

scenario! {
    fn a_member_leaves_and_the_next_commit_removes_her() {
        let (mut admin, mut others) = team(3);
        let request = others[1].leave(WARD).unwrap();
        assert_eq!(
            admin.open(WARD, &request, dev(2), None, NOW).unwrap(),
            Incoming::LeaveRequested { member: identity(2) }
        );
        others[0].open(WARD, &request, dev(2), None, NOW).unwrap();
        let commit = admin.self_update(WARD).unwrap();
        assert_eq!(commit.change.remove, vec![identity(2).device]);
        admin.merge_pending_commit(WARD, NOW).unwrap();
        let seen = others[1].open(WARD, &commit.commit, dev(0), Some(&commit.change), NOW).unwrap();
        assert!(matches!(seen, Incoming::MembershipChanged { removed_self: true, .. }));
        others[0].open(WARD, &commit.commit, dev(0), Some(&commit.change), NOW).unwrap();
        assert_eq!(admin.members(WARD).unwrap().len(), 2);
    }
}

scenario! {
    fn state_survives_a_restart_mid_conversation() {
        let (mut admin, mut others) = team(2);
        let mut disk: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let bob = &mut others[0];
        apply_changes(&mut disk, &bob.take_state_changes());
        let first = seal_text(&mut admin, 1, "first");
        assert_eq!(open_text(bob, 0, &first).unwrap(), "first");
        apply_changes(&mut disk, &bob.take_state_changes());
        let second = seal_text(&mut admin, 2, "second, sent while Bob's phone restarts");

        // Bob's worker restarts from what was saved.
        let (private, public) = bob.signer().export();
        let signer = DeviceSigner::restore(&private, &public).unwrap();
        let mut bob = MlsDevice::restore(identity(1), signer, disk.clone());
        assert!(bob.take_state_changes().is_empty(), "nothing new after a restore");
        assert_eq!(open_text(&mut bob, 0, &second).unwrap(), "second, sent while Bob's phone restarts");
        let reply = seal_text(&mut bob, 3, "back");
        assert_eq!(open_text(&mut admin, 1, &reply).unwrap(), "back");
        // A commit after the restart works too.
        let commit = admin.self_update(WARD).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        bob.open(WARD, &commit.commit, dev(0), Some(&commit.change), NOW).unwrap();
        let changes = bob.take_state_changes();
        assert!(changes.iter().any(|c| matches!(c, StateChange::Delete { .. })), "old epoch secrets are deleted");
        apply_changes(&mut disk, &changes);
        let third = seal_text(&mut admin, 4, "third");
        let mut bob = MlsDevice::restore(identity(1), DeviceSigner::restore(&private, &public).unwrap(), disk);
        assert_eq!(open_text(&mut bob, 0, &third).unwrap(), "third");
    }
}

scenario! {
    fn key_packages_are_single_use_and_the_last_resort_is_not() {
        let mut bob = device(1);
        let single = bob.key_packages(2).unwrap();
        let last_resort = bob.last_resort_key_package().unwrap();
        assert_eq!(bob.inspect_key_package(&single[0]).unwrap(), identity(1));
        bob.take_state_changes();
        let mut admin = device(0);
        admin.create_group(WARD, &profile()).unwrap();
        let commit = admin.add_members(WARD, &[fixtures::claimed(&bob, single[0].clone())]).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        bob.join(commit.welcome.as_ref().unwrap()).unwrap();
        assert!(bob.take_state_changes().iter().any(|c| matches!(c, StateChange::Delete { .. })),
            "the used key package's private key is deleted");
        // The last-resort key package works for two groups.
        for n in 0..2u8 {
            let group = GroupId::from_bytes([n; 16]);
            let mut other_admin = device(10 + u32::from(n));
            other_admin.create_group(group, &profile()).unwrap();
            let commit = other_admin.add_members(group, &[fixtures::claimed(&bob, last_resort.clone())]).unwrap();
            assert_eq!(bob.join(commit.welcome.as_ref().unwrap()).unwrap().group, group);
        }
        // Junk and foreign key packages are refused with a reason.
        assert!(matches!(admin.inspect_key_package(b"junk"), Err(MlsError::BadKeyPackage(_))));
        let mut outsider = fixtures::found(DeviceIdentity { org: OrgId::from_bytes([9; 16]), ..identity(5) }).unwrap();
        let foreign = key_package(&mut outsider);
        assert!(matches!(admin.add_members(WARD, &[foreign]), Err(MlsError::Untrusted(_))));
    }
}

scenario! {
    fn every_flipped_bit_is_rejected_with_a_typed_error_and_the_real_message_still_opens() {
        let (mut admin, mut others) = team(2);
        let bob = &mut others[0];
        let text = "x".repeat(1024);
        let sealed = seal_text(&mut admin, 1, &text);
        // The relay can read the AAD: the id and expiry it needs.
        let aad = MlsDevice::peek_aad(&sealed).unwrap();
        assert_eq!(aad.client_msg, msg_id(1));
        // Every bit natively; every 7th bit in the browser, to keep the run short.
        let stride = if cfg!(target_arch = "wasm32") { 7 } else { 1 };
        let mut rejected = 0usize;
        for bit in (0..sealed.len() * 8).step_by(stride) {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            match bob.open(WARD, &bad, dev(0), None, NOW) {
                Err(_) => rejected += 1,
                Ok(outcome) => panic!("bit {bit} flipped and the message still opened: {outcome:?}"),
            }
        }
        assert!(rejected > 1000);
        for len in [0, 1, 10, sealed.len() / 2, sealed.len() - 1] {
            assert!(bob.open(WARD, &sealed[..len], dev(0), None, NOW).is_err());
        }
        assert_eq!(open_text(bob, 0, &sealed).unwrap(), text);
    }
}

scenario! {
    fn expired_messages_are_opened_and_dropped_and_expiry_is_capped_by_retention() {
        let (mut admin, mut others) = team(2);
        let envelope = Envelope::text(NOW, "old news").unwrap().encode().unwrap();
        let expired = admin.seal(WARD, msg_id(1), UnixMillis(NOW.0 - 3_600_000), &envelope).unwrap();
        assert_eq!(
            others[0].open(WARD, &expired.ciphertext, dev(0), None, NOW).unwrap(),
            Incoming::Expired { client_msg: msg_id(1) }
        );
        // A sender claiming a year is held to the group's one day.
        let greedy = admin.seal(WARD, msg_id(2), UnixMillis(NOW.0 + 365 * 86_400_000), &envelope).unwrap();
        match others[0].open(WARD, &greedy.ciphertext, dev(0), None, NOW).unwrap() {
            Incoming::Message { expires_at, .. } => {
                assert!(expires_at <= NOW.saturating_add(RetentionSecs::DAY).saturating_add_millis(huddle_core::retention::MAX_CLOCK_SKEW_MILLIS));
            }
            other => panic!("{other:?}"),
        }
    }
}

scenario! {
    fn groups_outside_the_profile_rules_are_refused() {
        let mut admin = device(0);
        let bad = GroupProfile { kind: GroupKind::Clinical, retention: RetentionSecs::days(30), name: "x".into() };
        assert!(admin.create_group(WARD, &bad).is_err());
        assert!(matches!(admin.join(b"not a welcome"), Err(MlsError::Malformed)));
    }
}

/// Mallory, a colleague whose modified app certifies a device of hers as
/// the manager (`identity(0)`'s person) with her own staff key.
fn mallory_as_the_manager() -> MlsDevice {
    use huddle_core::certificate::{Certificate, Statement, Subject};
    use openmls_traits::signatures::Signer;
    let mut mallory = device(5);
    let mut fake = MlsDevice::create(DeviceIdentity {
        device: DeviceId::from_bytes([0x66; 16]),
        ..identity(0)
    })
    .unwrap();
    let statement = Statement {
        org: ORG,
        user: identity(0).user,
        display_name: "Person 0".into(),
        role: Role::Administrator,
        subject: Subject::Device(fake.identity().device),
        public_key: fake.signer().public_key().to_vec(),
        issued_at: NOW,
        expires_at: None,
    };
    let signature = mallory.signer().sign(&statement.to_be_signed()).unwrap();
    let own = mallory.trust().unwrap().clone();
    fake.force_trust(crate::Trust {
        org_key: own.org_key.clone(),
        chain: own.chain.extended(Certificate {
            statement,
            signature,
        }),
    });
    mallory.take_state_changes();
    fake
}

scenario! {
    fn a_colleague_cannot_certify_herself_as_someone_else() {
        let (mut admin, mut others) = team(2);
        let mut fake = mallory_as_the_manager();
        let kp = key_package(&mut fake);
        assert!(matches!(
            admin.add_members(WARD, std::slice::from_ref(&kp)),
            Err(MlsError::Untrusted(huddle_core::certificate::CertificateError::NotAllowed))
        ));
        // Nor can a member with a modified app slip her in: Bob refuses the
        // commit, and a welcome naming her is refused by the one who joins.
        let commit = admin.add_unchecked(WARD, std::slice::from_ref(&kp.key_package)).unwrap();
        assert!(matches!(
            others[0].open(WARD, &commit.commit, dev(0), Some(&commit.change), NOW),
            Err(MlsError::Untrusted(_))
        ));
        admin.merge_pending_commit(WARD, NOW).unwrap();
        let mut carol = device(2);
        let commit = admin.add_members(WARD, &[key_package(&mut carol)]).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        assert!(matches!(carol.join(commit.welcome.as_ref().unwrap()), Err(MlsError::Untrusted(_))));
        assert!(!carol.has_group(WARD), "a refused welcome leaves nothing behind");
    }
}

scenario! {
    fn a_join_checked_ahead_verifies_nothing_again_and_its_dry_run_changes_nothing() {
        let (mut admin, _) = team(5);
        let mut carol = device(7);
        let commit = admin.add_members(WARD, &[key_package(&mut carol)]).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        let welcome = commit.welcome.unwrap();
        carol.take_state_changes();
        let checks = carol.signatures_to_join(&welcome);
        assert!(carol.take_state_changes().is_empty(), "a dry run changes nothing");
        assert!(!carol.has_group(WARD));
        // Six leaves, the group info, and the certificate links of six chains.
        assert!(checks.len() > 7, "{} checks", checks.len());
        assert!(carol.signatures_to_join(b"not a welcome").is_empty());
        // What WebCrypto does in the worker, done here by RustCrypto.
        let valid: Vec<_> = checks
            .iter()
            .filter(|c| crate::identity::verify_device_signature(&c.public_key, &c.message, &c.signature))
            .collect();
        assert_eq!(valid.len(), checks.len());
        carol.remember_valid(valid);
        let remembered = carol.remembered_signatures();
        let joined = carol.join(&welcome).unwrap();
        assert_eq!(joined.members.len(), 6);
        assert_eq!(
            carol.remembered_signatures(),
            remembered,
            "the join found every signature already checked"
        );
        // The key package the dry run used is gone now, as after any join.
        assert!(carol.signatures_to_join(&welcome).is_empty());
    }
}

scenario! {
    fn a_welcome_checked_ahead_is_still_refused_for_a_forged_identity() {
        let (mut admin, _) = team(2);
        let mut fake = mallory_as_the_manager();
        let kp = key_package(&mut fake);
        admin.add_unchecked(WARD, std::slice::from_ref(&kp.key_package)).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        let mut carol = device(2);
        let commit = admin.add_members(WARD, &[key_package(&mut carol)]).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        let welcome = commit.welcome.unwrap();
        // Mallory's signature on the fake certificate is a real signature:
        // checking ahead confirms it, and the rules still refuse it.
        let checks = carol.signatures_to_join(&welcome);
        carol.remember_valid(&checks);
        assert!(matches!(carol.join(&welcome), Err(MlsError::Untrusted(_))));
        assert!(!carol.has_group(WARD));
    }
}

scenario! {
    fn a_key_package_must_be_certified_for_the_device_the_relay_named() {
        let mut admin = device(0);
        admin.create_group(WARD, &profile()).unwrap();
        let mut bob = device(1);
        let mut carol = device(2);
        // The relay hands out Carol's key package as Bob's.
        let mut swapped = key_package(&mut carol);
        swapped.user = identity(1).user;
        swapped.device = identity(1).device;
        assert!(matches!(
            admin.add_members(WARD, &[swapped]),
            Err(MlsError::Untrusted(huddle_core::certificate::CertificateError::WrongIdentity { .. }))
        ));
        // Bob's public chain copied onto another key certifies nothing.
        let mut copycat = MlsDevice::create(identity(1)).unwrap();
        assert!(copycat.set_trust(bob.trust().unwrap().clone()).is_err());
        copycat.force_trust(bob.trust().unwrap().clone());
        let copied = key_package(&mut copycat);
        assert!(matches!(
            admin.add_members(WARD, &[copied]),
            Err(MlsError::Untrusted(huddle_core::certificate::CertificateError::WrongKey))
        ));
        // A device the relay made under an organisation key of its own.
        let mut relay_made = fixtures::found(identity(1)).unwrap();
        assert!(matches!(
            admin.add_members(WARD, &[key_package(&mut relay_made)]),
            Err(MlsError::Untrusted(huddle_core::certificate::CertificateError::Signature))
        ));
        // The real one goes in.
        assert!(admin.add_members(WARD, &[key_package(&mut bob)]).is_ok());
    }
}

scenario! {
    fn the_sender_must_be_the_device_the_relay_authenticated() {
        let (mut admin, mut others) = team(3);
        let sealed = seal_text(&mut admin, 1, "Room 4 needs a check");
        assert_eq!(
            others[0].open(WARD, &sealed, dev(2), None, NOW),
            Err(MlsError::WrongSender { relay: dev(2), signed: dev(0) })
        );
        let commit = admin.self_update(WARD).unwrap();
        assert!(matches!(
            others[1].open(WARD, &commit.commit, dev(1), Some(&commit.change), NOW),
            Err(MlsError::WrongSender { .. })
        ));
        assert!(others[0].open(WARD, &commit.commit, dev(0), Some(&commit.change), NOW).is_ok());
    }
}

scenario! {
    fn an_uncertified_device_makes_no_key_packages_and_a_wrong_link_is_refused() {
        let mut bare = MlsDevice::create(identity(7)).unwrap();
        assert_eq!(bare.key_packages(1), Err(MlsError::NotCertified));
        assert_eq!(bare.create_group(WARD, &profile()), Err(MlsError::NotCertified));
        let mut admin = device(0);
        let (invite, key) = admin
            .certify_invite(
                identity(7).user,
                "Dee",
                Role::Staff,
                fixtures::CERTIFIED_AT.saturating_add_millis(86_400_000),
                fixtures::CERTIFIED_AT,
            )
            .unwrap();
        // A link whose fingerprint is of another organisation key.
        let other = fixtures::found(identity(8)).unwrap().org_key_fingerprint().unwrap();
        assert!(matches!(
            bare.accept_invite(&invite, &key, other, fixtures::CERTIFIED_AT),
            Err(MlsError::Trust(crate::TrustError::WrongOrganisationKey))
        ));
        // An invite for someone else.
        let mut someone_else = MlsDevice::create(identity(9)).unwrap();
        let pinned = admin.org_key_fingerprint().unwrap();
        assert!(matches!(
            someone_else.accept_invite(&invite, &key, pinned, fixtures::CERTIFIED_AT),
            Err(MlsError::Trust(crate::TrustError::NotThisInvite))
        ));
        // Staff cannot certify invites.
        let mut staff = device(3);
        assert!(matches!(
            staff.certify_invite(identity(9).user, "X", Role::Staff, NOW.saturating_add_millis(60_000), NOW),
            Err(MlsError::Trust(crate::TrustError::NotAnAdministrator))
        ));
        // An invite that never ends, or has ended, is not certified; an
        // expired one is not accepted.
        for end in [NOW, NOW.saturating_add_millis(365 * 86_400_000)] {
            assert!(matches!(
                admin.certify_invite(identity(9).user, "X", Role::Staff, end, NOW),
                Err(MlsError::Trust(crate::TrustError::InviteLifetime))
            ));
        }
        let late = fixtures::CERTIFIED_AT.saturating_add_millis(2 * 86_400_000);
        assert!(matches!(
            bare.accept_invite(&invite, &key, pinned, late),
            Err(MlsError::Trust(crate::TrustError::InviteExpired))
        ));
        // The right link works, once: the organisation key is pinned for good.
        assert!(bare.accept_invite(&invite, &key, pinned, fixtures::CERTIFIED_AT).is_ok());
        assert!(matches!(
            bare.accept_invite(&invite, &key, pinned, fixtures::CERTIFIED_AT),
            Err(MlsError::Trust(crate::TrustError::AlreadyCertified))
        ));
        let mut disk = HashMap::new();
        apply_changes(&mut disk, &bare.take_state_changes());
        let (private, public) = bare.signer().export();
        let mut restored = MlsDevice::restore(identity(7), DeviceSigner::restore(&private, &public).unwrap(), disk);
        assert_eq!(restored.org_key_fingerprint(), Some(pinned));
        assert!(restored.key_packages(1).is_ok());
    }
}

scenario! {
    /// Frozen: the bytes of the AAD as version 1 writes them. Members on a
    /// later version must still read them. (The profile's are frozen in
    /// `huddle_core::group`.)
    fn frozen_aad_bytes_v1() {
        use crate::device::{MessageAad, AAD_VERSION};
        let aad = MessageAad {
            version: AAD_VERSION,
            client_msg: ClientMessageId::from_bytes([0x33; 16]),
            expires_at: UnixMillis(1_795_000_000_000),
        };
        let frozen_aad = format!("01{}80bcd9f29e34", "33".repeat(16));
        assert_eq!(huddle_core::hex::encode(&aad.to_bytes()), frozen_aad);
        let bytes = huddle_core::hex::decode(&frozen_aad).unwrap();
        assert_eq!(MessageAad::from_bytes(&bytes), Some(aad));
    }
}

scenario! {
    fn a_message_is_opened_before_its_signature_is_checked_only_if_the_check_then_decides() {
        let (mut admin, mut others) = team(2);
        let bob = &mut others[0];
        let sealed = seal_text(&mut admin, 1, "Room 4 needs a check");
        let remembered = bob.remembered_signatures();
        let (opened, skipped) = bob.open_checking_later(WARD, &sealed, dev(0), None, NOW);
        assert!(matches!(opened, Ok(Incoming::Message { .. })));
        assert_eq!(bob.remembered_signatures(), remembered, "nothing skipped is remembered");
        // Exactly the sender's signature was skipped, and it is the sender's.
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].public_key, admin.signer().public_key());
        assert!(crate::identity::verify_device_signature(
            &skipped[0].public_key,
            &skipped[0].message,
            &skipped[0].signature
        ));
        // Had the signature been forged, the check fails and the caller
        // throws the opened message away (`fast_checks::open`).
        let mut forged = skipped[0].clone();
        forged.message.push(0);
        assert!(!crate::identity::verify_device_signature(
            &forged.public_key,
            &forged.message,
            &forged.signature
        ));
        // A commit is never opened before it is checked.
        let update = admin.self_update(WARD).unwrap();
        admin.merge_pending_commit(WARD, NOW).unwrap();
        let (opened, skipped) =
            bob.open_checking_later(WARD, &update.commit, dev(0), Some(&update.change), NOW);
        assert!(opened.is_ok());
        assert!(skipped.is_empty());
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_forged_signature_found_after_opening_refuses_the_message() {
    use crate::fast_checks::all_valid;
    let (mut admin, mut others) = team(2);
    let bob = &mut others[0];
    let sealed = seal_text(&mut admin, 1, "Room 4 needs a check");
    let (_, skipped) = bob.open_checking_later(WARD, &sealed, dev(0), None, NOW);
    assert!(futures::executor::block_on(all_valid(skipped.clone())));
    let mut forged = skipped;
    forged[0].signature[10] ^= 1;
    assert!(!futures::executor::block_on(all_valid(forged)));
    // And through the whole path: a genuine message opens.
    let sealed = seal_text(&mut admin, 2, "And another");
    let opened = futures::executor::block_on(crate::fast_checks::open(
        bob,
        WARD,
        &sealed,
        dev(0),
        None,
        NOW,
    ));
    assert!(matches!(opened, Ok(Incoming::Message { .. })));
}

/// A key package of each of `devices` as the relay hands them out.
fn key_packages_of(devices: &mut [&mut MlsDevice]) -> Vec<ClaimedKeyPackage> {
    devices.iter_mut().map(|d| key_package(d)).collect()
}

scenario! {
    fn a_group_stopped_by_a_junk_commit_is_restarted_with_the_same_members_and_talks_again() {
        use huddle_core::wire::{restart_epoch, wire_epoch};
        let (mut admin, mut others) = team(3);
        let mut disk: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        apply_changes(&mut disk, &others[0].take_state_changes());
        let old_message = seal_text(&mut admin, 1, "before the repair");
        // Bob restarts the group: key packages for the admin and Carol.
        let all = [dev(0), dev(1), dev(2)];
        let (bob, carol) = others.split_at_mut(1);
        let (bob, carol) = (&mut bob[0], &mut carol[0]);
        let kps = key_packages_of(&mut [&mut admin, carol]);
        let restart = bob.restart(WARD, 1, &kps, &all).expect("restart");
        assert_eq!(restart.epoch, restart_epoch(1));
        assert!(restart.change.is_restart(restart.epoch));
        let mut added = vec![dev(0), dev(2)];
        added.sort();
        assert_eq!(restart.change.add, added);
        assert_eq!(restart.change.create.map(|s| s.kind), Some(GroupKind::Clinical));
        // Until the relay accepts it, the old group is Bob's group.
        assert!(bob.has_pending_restart(WARD));
        assert_eq!(bob.epoch(WARD).unwrap(), 1);
        assert_eq!(bob.merge_pending_commit(WARD, NOW).unwrap(), wire_epoch(1, 1));
        assert!(!bob.has_pending_restart(WARD));
        let welcome = restart.welcome.expect("a welcome");
        for other in [&mut admin, &mut *carol] {
            let joined = other.join_restart(&welcome, (WARD, 1), dev(1), &all).expect("joined");
            assert_eq!(joined.epoch, wire_epoch(1, 1));
            assert_eq!(joined.members.len(), 3);
            assert_eq!(other.epoch(WARD).unwrap(), wire_epoch(1, 1));
        }
        // Everyone talks in the new chain; what was sealed in the old one
        // no longer opens anywhere (its keys are gone).
        let hello = seal_text(carol, 2, "repaired");
        assert_eq!(open_text(&mut admin, 2, &hello).unwrap(), "repaired");
        assert_eq!(open_text(bob, 2, &hello).unwrap(), "repaired");
        assert_eq!(open_text(carol, 0, &old_message), Err(MlsError::WrongGroup));
        // A commit in the new chain carries the chain in its epoch.
        let update = admin.self_update(WARD).unwrap();
        assert_eq!(update.epoch, wire_epoch(1, 1));
        admin.merge_pending_commit(WARD, NOW).unwrap();
        bob.open(WARD, &update.commit, dev(0), Some(&update.change), NOW).unwrap();
        assert_eq!(bob.epoch(WARD).unwrap(), wire_epoch(1, 2));
        // The chain is saved with the rest: Bob's worker restarts into it.
        apply_changes(&mut disk, &bob.take_state_changes());
        let (private, public) = bob.signer().export();
        let mut bob = MlsDevice::restore(identity(1), DeviceSigner::restore(&private, &public).unwrap(), disk);
        assert_eq!(bob.epoch(WARD).unwrap(), wire_epoch(1, 2));
        let later = seal_text(&mut admin, 3, "after a reload");
        assert_eq!(open_text(&mut bob, 0, &later).unwrap(), "after a reload");
    }
}

scenario! {
    fn a_restart_with_other_members_than_the_group_had_is_refused_and_changes_nothing() {
        let (mut admin, mut others) = team(3);
        let mut mallory = device(7);
        let all = [dev(0), dev(1), dev(2)];
        // The admin's phone holds a group of 0, 1 and 2; a restart made by
        // Bob from a group of his own with Mallory in it is refused.
        let (bob, carol) = others.split_at_mut(1);
        let (bob, carol) = (&mut bob[0], &mut carol[0]);
        let mut forged_bob = device(1);
        forged_bob.create_group(WARD, &profile()).unwrap();
        let kps = key_packages_of(&mut [&mut mallory]);
        forged_bob.add_members(WARD, &kps).unwrap();
        forged_bob.merge_pending_commit(WARD, NOW).unwrap();
        let kps = key_packages_of(&mut [&mut admin, carol, &mut mallory]);
        let forged = forged_bob.restart(WARD, 1, &kps, &[dev(0), dev(1), dev(2), dev(7)]).unwrap();
        assert_eq!(forged.change.add.len(), 1, "the forger's own group held only Mallory");
        // With Mallory's phone, and without the admin or Carol: refused.
        assert!(matches!(
            admin.join_restart(forged.welcome.as_ref().unwrap(), (WARD, 1), dev(1), &all),
            Err(MlsError::RestartRefused(_)) | Err(MlsError::Rejected(_))
        ));
        assert_eq!(admin.epoch(WARD).unwrap(), 1);
        // Bob's real restart, but leaving Carol out while she is still in
        // the team, is refused by the admin's phone, and by Carol's.
        let kps = key_packages_of(&mut [&mut admin]);
        let without_carol = bob.restart(WARD, 1, &kps, &[dev(0), dev(1)]).unwrap();
        bob.discard_pending_commit(WARD).unwrap();
        assert!(!bob.has_pending_restart(WARD));
        assert_eq!(bob.epoch(WARD).unwrap(), 1, "the old group is untouched");
        let welcome = without_carol.welcome.unwrap();
        assert!(matches!(admin.join_restart(&welcome, (WARD, 1), dev(1), &all), Err(MlsError::RestartRefused(_))));
        assert_eq!(admin.epoch(WARD).unwrap(), 1);
        // Once the directory no longer lists Carol (signed out), it is
        // accepted.
        admin.join_restart(&welcome, (WARD, 1), dev(1), &[dev(0), dev(1)]).expect("Carol signed out");
        // A restart sent under another device's name than the one that
        // made it: the relay's sender must have been in the group.
        let mut others2 = team(3).1;
        let kps = key_packages_of(&mut [&mut others2[1]]);
        let by_bob = others2[0].restart(WARD, 1, &kps, &[dev(1), dev(2)]).unwrap();
        assert!(matches!(
            others2[1].join_restart(by_bob.welcome.as_ref().unwrap(), (WARD, 1), dev(9), &[dev(1), dev(2)]),
            Err(MlsError::RestartRefused(_))
        ));
        // The welcome must be the restart the log's entry names: its chain,
        // and the device the relay says sent it.
        let welcome = by_bob.welcome.as_ref().unwrap();
        assert!(matches!(others2[1].join_restart(welcome, (WARD, 2), dev(1), &[dev(1), dev(2)]), Err(MlsError::RestartRefused(_))));
        assert!(matches!(others2[1].join_restart(welcome, (GroupId::from_bytes([0x78; 16]), 1), dev(1), &[dev(1), dev(2)]), Err(MlsError::WrongGroup)));
        // All these refusals left the store as it was: the rightful join works.
        others2[1].join_restart(welcome, (WARD, 1), dev(1), &[dev(1), dev(2)]).expect("the rightful join");
        // And a plain join of a welcome to a group already held is refused.
        assert!(others2[1].join(welcome).is_err());
    }
}

scenario! {
    fn a_restart_that_swaps_a_members_key_is_refused_even_under_her_own_name() {
        let (mut admin, mut others) = team(3);
        let all = [dev(0), dev(1), dev(2)];
        // Someone holds a certificate for Carol's person and device under a
        // key of their own (an administrator could make one).
        let mut impostor = device(2);
        let (bob, _) = others.split_at_mut(1);
        let bob = &mut bob[0];
        // Bob's phone will not put it in a restart...
        let kps = key_packages_of(&mut [&mut admin, &mut impostor]);
        assert!(matches!(bob.restart(WARD, 1, &kps, &all), Err(MlsError::RestartRefused(_))));
        assert!(!bob.has_pending_restart(WARD));
        // ...and a modified app's restart that does is refused by the others.
        let mut forger = device(1);
        forger.create_group(WARD, &profile()).unwrap();
        let kps = key_packages_of(&mut [&mut admin, &mut impostor]);
        forger.add_members(WARD, &kps).unwrap();
        forger.merge_pending_commit(WARD, NOW).unwrap();
        let kps = key_packages_of(&mut [&mut admin, &mut impostor]);
        let forged = forger.restart(WARD, 1, &kps, &all).unwrap();
        assert!(matches!(
            admin.join_restart(forged.welcome.as_ref().unwrap(), (WARD, 1), dev(1), &all),
            Err(MlsError::RestartRefused(_))
        ));
        assert_eq!(admin.epoch(WARD).unwrap(), 1);
    }
}

scenario! {
    fn a_restart_without_a_key_package_for_every_member_makes_nothing() {
        let (_admin, mut others) = team(3);
        let all = [dev(0), dev(1), dev(2)];
        let (bob, carol) = others.split_at_mut(1);
        let kps = key_packages_of(&mut [&mut carol[0]]);
        assert!(matches!(bob[0].restart(WARD, 1, &kps, &all), Err(MlsError::RestartRefused(_))));
        assert!(!bob[0].has_pending_restart(WARD));
        // A key package claimed for the wrong person is refused like any.
        let mut wrong = kps.clone();
        wrong[0].device = dev(0);
        assert!(bob[0].restart(WARD, 1, &wrong, &all).is_err());
        // Never to the same chain or an earlier one.
        assert!(matches!(bob[0].restart(WARD, 0, &kps, &[dev(1), dev(2)]), Err(MlsError::RestartRefused(_))));
    }
}
