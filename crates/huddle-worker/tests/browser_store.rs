//! The worker's request handler in a real dedicated Web Worker: IndexedDB, WebCrypto key wrapping, a restart, and no plaintext at rest.
#![cfg(target_arch = "wasm32")]

use huddle_core::envelope::Envelope;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_mls::{DeviceIdentity, GroupProfile, Incoming};
use huddle_worker::browser::RequestHandler;
use huddle_worker::{RequestEnvelope, WorkerRequest, WorkerResponse};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

const NOW: UnixMillis = UnixMillis(1_795_000_000_000);
const GROUP: GroupId = GroupId::from_bytes([3; 16]);
const SECRET_NAME: &str = "Oak ward night team";
const SECRET_TEXT: &str = "Mr Patel in room 4 refused his evening meds";

fn identity(n: u8) -> DeviceIdentity {
    DeviceIdentity {
        org: OrgId::from_bytes([1; 16]),
        user: UserId::from_bytes([n; 16]),
        device: DeviceId::from_bytes([n + 10; 16]),
    }
}

async fn ask(handler: &mut RequestHandler, request: WorkerRequest) -> WorkerResponse {
    let response = handler.handle(RequestEnvelope { id: 1, request }).await;
    response.result.expect("the worker answers")
}

/// Every byte the database holds, in every store, as stored.
async fn raw_bytes(database: &str) -> Vec<u8> {
    let db = rexie::Rexie::builder(database).build().await.expect("open");
    let mut all = Vec::new();
    for store_name in ["records", "mls"] {
        let tx = db
            .transaction(&[store_name], rexie::TransactionMode::ReadOnly)
            .unwrap();
        let store = tx.store(store_name).unwrap();
        for (_, value) in store.scan(None, None, None, None).await.unwrap() {
            if let Ok(array) = value.dyn_into::<js_sys::Uint8Array>() {
                all.extend(array.to_vec());
            }
        }
        // A transaction dropped before it completes leaves its completion
        // callback dangling: always wait for it.
        tx.done().await.unwrap();
    }
    db.close();
    all
}

#[wasm_bindgen_test]
async fn the_worker_keeps_its_state_encrypted_and_resumes_after_a_restart() {
    let suffix = js_sys::Date::now() as u64;
    let alice_db = format!("test-worker-alice-{suffix}");
    let bob_db = format!("test-worker-bob-{suffix}");
    let mut alice = RequestHandler::with_database(&alice_db);
    let mut bob = RequestHandler::with_database(&bob_db);

    let WorkerResponse::DeviceReady { created: true, .. } = ask(
        &mut alice,
        WorkerRequest::OpenDevice {
            identity: identity(1),
        },
    )
    .await
    else {
        panic!("alice's device");
    };
    let WorkerResponse::DeviceReady {
        created: true,
        fingerprint,
        public_key,
        ..
    } = ask(
        &mut bob,
        WorkerRequest::OpenDevice {
            identity: identity(2),
        },
    )
    .await
    else {
        panic!("bob's device");
    };
    // Alice founds the organisation and certifies Bob's invite.
    let WorkerResponse::Certified { org_key } = ask(
        &mut alice,
        WorkerRequest::FoundOrganisation {
            display_name: "Alice".into(),
            now: NOW,
        },
    )
    .await
    else {
        panic!("founded");
    };
    let WorkerResponse::InviteCertified {
        certificate,
        invite_key,
        ..
    } = ask(
        &mut alice,
        WorkerRequest::CertifyInvite {
            user: identity(2).user,
            display_name: "Bob".into(),
            role: huddle_core::wire::Role::Staff,
            expires_at: NOW.saturating_add_millis(60_000),
            now: NOW,
        },
    )
    .await
    else {
        panic!("invite");
    };
    ask(
        &mut bob,
        WorkerRequest::AcceptInvite {
            certificate,
            invite_key,
            org_key,
            now: NOW,
        },
    )
    .await;
    let WorkerResponse::KeyPackages { key_packages } = ask(
        &mut bob,
        WorkerRequest::KeyPackages {
            count: 1,
            last_resort: false,
        },
    )
    .await
    else {
        panic!("key packages");
    };
    let profile = GroupProfile::new(GroupKind::Clinical, RetentionSecs::DAY, SECRET_NAME).unwrap();
    ask(
        &mut alice,
        WorkerRequest::CreateGroup {
            group: GROUP,
            profile,
        },
    )
    .await;
    let WorkerResponse::Commit(commit) = ask(
        &mut alice,
        WorkerRequest::AddMembers {
            group: GROUP,
            key_packages: key_packages
                .into_iter()
                .map(|key_package| huddle_core::wire::ClaimedKeyPackage {
                    user: identity(2).user,
                    device: identity(2).device,
                    key_package,
                })
                .collect(),
        },
    )
    .await
    else {
        panic!("commit");
    };
    ask(
        &mut alice,
        WorkerRequest::MergePendingCommit {
            group: GROUP,
            now: NOW,
        },
    )
    .await;
    ask(
        &mut bob,
        WorkerRequest::Join {
            welcome: commit.welcome.unwrap(),
        },
    )
    .await;

    let envelope = Envelope::text(NOW, SECRET_TEXT).unwrap().encode().unwrap();
    let WorkerResponse::Sealed(sealed) = ask(
        &mut alice,
        WorkerRequest::Seal {
            group: GROUP,
            client_msg: ClientMessageId::from_bytes([9; 16]),
            expires_at: NOW.saturating_add_millis(60_000),
            envelope: huddle_core::crypto_worker::Plaintext::new(envelope),
        },
    )
    .await
    else {
        panic!("sealed");
    };

    // Bob's worker stops and starts again from IndexedDB.
    drop(bob);
    let mut bob = RequestHandler::with_database(&bob_db);
    let WorkerResponse::DeviceReady {
        created: false,
        fingerprint: again,
        ..
    } = ask(
        &mut bob,
        WorkerRequest::OpenDevice {
            identity: identity(2),
        },
    )
    .await
    else {
        panic!("bob's device again");
    };
    assert_eq!(again, fingerprint, "the same key, restored");
    let WorkerResponse::Opened(Incoming::Message { envelope, .. }) = ask(
        &mut bob,
        WorkerRequest::Open {
            group: GROUP,
            message: sealed.ciphertext,
            sender: identity(1).device,
            declared: None,
            now: NOW,
        },
    )
    .await
    else {
        panic!("opened");
    };
    assert_eq!(
        Envelope::decode(envelope.as_bytes())
            .unwrap()
            .body
            .text()
            .unwrap_or(""),
        SECRET_TEXT
    );

    drop(alice);
    drop(bob);

    // Nothing readable at rest: not the group's name, not the public key
    // (the device record is sealed whole), not the message.
    for database in [&alice_db, &bob_db] {
        let raw = raw_bytes(database).await;
        assert!(
            raw.len() > 1000,
            "the state is stored ({} bytes)",
            raw.len()
        );
        for secret in [
            SECRET_NAME.as_bytes(),
            SECRET_TEXT.as_bytes(),
            &public_key[..],
        ] {
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret),
                "plaintext found in {database}"
            );
        }
    }
    for database in [alice_db, bob_db] {
        let _ = rexie::Rexie::delete(&database).await;
    }
}
