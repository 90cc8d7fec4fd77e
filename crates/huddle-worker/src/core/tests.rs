//! Tests for the worker's request handling, natively: two devices talk through requests only, and one restarts from its store.

use super::*;
use huddle_core::crypto_worker::WorkerErrorKind;
use huddle_core::envelope::Envelope;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_mls::state::apply_changes;
use huddle_mls::{GroupProfile, Incoming};

const NOW: UnixMillis = UnixMillis(1_795_000_000_000);
const GROUP: GroupId = GroupId::from_bytes([5; 16]);

fn identity(n: u8) -> DeviceIdentity {
    DeviceIdentity {
        org: OrgId::from_bytes([1; 16]),
        user: UserId::from_bytes([n; 16]),
        device: DeviceId::from_bytes([n + 50; 16]),
    }
}

/// A worker with its "disk": the device record and the MLS entries.
struct TestWorker {
    core: WorkerCore,
    record: Option<DeviceRecord>,
    entries: HashMap<Vec<u8>, Vec<u8>>,
}

impl TestWorker {
    fn start(n: u8) -> Self {
        let mut worker = TestWorker {
            core: WorkerCore::default(),
            record: None,
            entries: HashMap::new(),
        };
        let (ready, record) = worker
            .core
            .open_device(identity(n), None, None, HashMap::new())
            .unwrap();
        assert!(matches!(
            ready,
            WorkerResponse::DeviceReady { created: true, .. }
        ));
        worker.record = record;
        worker
    }

    fn ask(&mut self, request: WorkerRequest) -> Result<WorkerResponse, WorkerError> {
        let answer = self.core.handle(request);
        // What the browser glue does: persist before answering.
        apply_changes(&mut self.entries, &self.core.take_state_changes());
        answer
    }

    fn restart(&mut self, n: u8) {
        self.core = WorkerCore::default();
        let record = self.record.as_ref().map(|r| DeviceRecord {
            identity: r.identity,
            private_key: r.private_key.clone(),
            public_key: r.public_key.clone(),
        });
        let (ready, new_record) = self
            .core
            .open_device(identity(n), record, None, self.entries.clone())
            .unwrap();
        assert!(matches!(
            ready,
            WorkerResponse::DeviceReady { created: false, .. }
        ));
        assert!(new_record.is_none());
    }
}

fn seal(worker: &mut TestWorker, n: u8, text: &str) -> Vec<u8> {
    let envelope = Envelope::text(NOW, text).unwrap().encode().unwrap();
    match worker.ask(WorkerRequest::Seal {
        group: GROUP,
        client_msg: ClientMessageId::from_bytes([n; 16]),
        expires_at: NOW.saturating_add_millis(60_000),
        envelope: huddle_core::crypto_worker::Plaintext::new(envelope),
    }) {
        Ok(WorkerResponse::Sealed(sealed)) => sealed.ciphertext,
        other => panic!("{other:?}"),
    }
}

fn open(worker: &mut TestWorker, from: u8, message: Vec<u8>) -> String {
    match worker.ask(WorkerRequest::Open {
        group: GROUP,
        message,
        sender: identity(from).device,
        declared: None,
        now: NOW,
    }) {
        Ok(WorkerResponse::Opened(Incoming::Message { envelope, .. })) => {
            Envelope::decode(envelope.as_bytes())
                .unwrap()
                .body
                .text()
                .unwrap_or("")
                .to_owned()
        }
        other => panic!("{other:?}"),
    }
}

/// Alice founds the organisation and invites Bob, through requests only.
fn alice_and_bob() -> (TestWorker, TestWorker) {
    let mut alice = TestWorker::start(1);
    let mut bob = TestWorker::start(2);
    let Ok(WorkerResponse::Certified { org_key }) = alice.ask(WorkerRequest::FoundOrganisation {
        display_name: "Alice".into(),
        now: NOW,
    }) else {
        panic!("founded");
    };
    let Ok(WorkerResponse::InviteCertified {
        certificate,
        invite_key,
        ..
    }) = alice.ask(WorkerRequest::CertifyInvite {
        user: identity(2).user,
        display_name: "Bob".into(),
        role: huddle_core::wire::Role::Staff,
        expires_at: NOW.saturating_add_millis(60_000),
        now: NOW,
    })
    else {
        panic!("invite");
    };
    assert_eq!(format!("{invite_key:?}"), "InviteKey(***)");
    assert_eq!(
        bob.ask(WorkerRequest::AcceptInvite {
            certificate,
            invite_key,
            org_key,
            now: NOW,
        }),
        Ok(WorkerResponse::Certified { org_key })
    );
    (alice, bob)
}

#[test]
fn two_workers_talk_through_requests_and_one_restarts_from_its_store() {
    let (mut alice, mut bob) = alice_and_bob();
    assert_eq!(
        alice
            .ask(WorkerRequest::Ping)
            .map(|r| matches!(r, WorkerResponse::Pong { .. })),
        Ok(true)
    );
    let Ok(WorkerResponse::KeyPackages { key_packages }) = bob.ask(WorkerRequest::KeyPackages {
        count: 3,
        last_resort: false,
    }) else {
        panic!("key packages");
    };
    assert_eq!(key_packages.len(), 3);
    let profile =
        GroupProfile::new(GroupKind::Operational, RetentionSecs::days(7), "Rota").unwrap();
    assert_eq!(
        alice.ask(WorkerRequest::CreateGroup {
            group: GROUP,
            profile: profile.clone()
        }),
        Ok(WorkerResponse::Done)
    );
    let Ok(WorkerResponse::Commit(commit)) = alice.ask(WorkerRequest::AddMembers {
        group: GROUP,
        key_packages: vec![huddle_core::wire::ClaimedKeyPackage {
            user: identity(2).user,
            device: identity(2).device,
            key_package: key_packages[0].clone(),
        }],
    }) else {
        panic!("commit");
    };
    assert_eq!(commit.change.add, vec![identity(2).device]);
    assert_eq!(
        alice.ask(WorkerRequest::MergePendingCommit {
            group: GROUP,
            now: NOW,
        }),
        Ok(WorkerResponse::Epoch { epoch: 1 })
    );
    let Ok(WorkerResponse::Joined(joined)) = bob.ask(WorkerRequest::Join {
        welcome: commit.welcome.unwrap(),
    }) else {
        panic!("join");
    };
    assert_eq!(joined.profile, profile);

    let hello = seal(&mut alice, 1, "Who can cover Saturday night?");
    assert_eq!(open(&mut bob, 1, hello), "Who can cover Saturday night?");
    let queued = seal(&mut alice, 2, "Sent while Bob's tab was closed");

    // Bob's tab closes and opens again: the worker restarts from its store.
    bob.restart(2);
    assert_eq!(open(&mut bob, 1, queued), "Sent while Bob's tab was closed");
    let reply = seal(&mut bob, 3, "I can");
    assert_eq!(open(&mut alice, 2, reply), "I can");

    let Ok(WorkerResponse::Signature { signature }) = bob.ask(WorkerRequest::SignChallenge {
        transcript: b"challenge".to_vec(),
    }) else {
        panic!("signature");
    };
    assert!(huddle_mls::identity::verify_device_signature(
        &bob.record.as_ref().unwrap().public_key,
        b"challenge",
        &signature
    ));
}

#[test]
fn requests_before_the_device_is_open_and_bad_input_get_typed_errors() {
    let mut core = WorkerCore::default();
    let error = core
        .handle(WorkerRequest::Members { group: GROUP })
        .unwrap_err();
    assert_eq!(error.kind, WorkerErrorKind::NoDevice);
    let mut alice = TestWorker::start(1);
    let error = alice
        .ask(WorkerRequest::Open {
            group: GROUP,
            message: vec![1, 2, 3],
            sender: identity(2).device,
            declared: None,
            now: NOW,
        })
        .unwrap_err();
    assert_eq!(error.kind, WorkerErrorKind::Mls);
    let error = alice
        .ask(WorkerRequest::Join {
            welcome: vec![0; 10],
        })
        .unwrap_err();
    assert_eq!(error.kind, WorkerErrorKind::Mls);
    // A stored key of another device is refused rather than used.
    let record = alice.record.take();
    let mut other = WorkerCore::default();
    assert!(other
        .open_device(identity(9), record, None, HashMap::new())
        .is_err());
}

#[test]
fn the_device_record_never_prints_its_key() {
    let alice = TestWorker::start(1);
    let printed = format!("{:?}", alice.record.as_ref().unwrap());
    assert!(!printed.contains("private"), "{printed}");
}

#[test]
fn the_registration_key_becomes_the_device_key() {
    let transcript = b"huddle device registration v1 and the link's secret".to_vec();
    let (answer, new_key) = WorkerCore::prepare_registration(None, &transcript).unwrap();
    let Some(pending) = new_key else {
        panic!("a first registration makes a key");
    };
    let WorkerResponse::Registration {
        public_key,
        signature,
    } = answer
    else {
        panic!("unexpected answer {answer:?}");
    };
    assert!(huddle_mls::identity::verify_device_signature(
        &public_key,
        &transcript,
        &signature
    ));
    // Asking again (the page reloaded before the relay answered) reuses the key.
    let again = PendingKey {
        private_key: pending.private_key.clone(),
        public_key: pending.public_key.clone(),
    };
    let (answer, new_key) = WorkerCore::prepare_registration(Some(again), &transcript).unwrap();
    assert!(new_key.is_none());
    assert!(
        matches!(answer, WorkerResponse::Registration { public_key: ref key, .. } if *key == public_key)
    );
    // Opening the device adopts that key.
    let mut core = WorkerCore::default();
    let (ready, record) = core
        .open_device(identity(1), None, Some(pending), HashMap::new())
        .unwrap();
    assert!(
        matches!(ready, WorkerResponse::DeviceReady { created: true, public_key: ref key, .. } if *key == public_key)
    );
    assert_eq!(record.unwrap().public_key, public_key);
}
