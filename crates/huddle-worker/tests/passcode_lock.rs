//! The passcode lock in a real dedicated Web Worker: once set, the worker's store opens only with the passcode; without the relay it opens for the grace period, five wrong guesses end that, and nothing is kept beside the data.
#![cfg(target_arch = "wasm32")]

use huddle_core::crypto_worker::{PageKey, PasscodeText, UnlockOutcome, WorkerErrorKind};
use huddle_core::ids::{DeviceId, OrgId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::PhonePolicy;
use huddle_mls::DeviceIdentity;
use huddle_worker::browser::RequestHandler;
use huddle_worker::{RequestEnvelope, WorkerError, WorkerRequest, WorkerResponse};
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

const NOW: UnixMillis = UnixMillis(1_795_000_000_000);
const HOUR: u64 = 60 * 60 * 1000;
const PASSCODE: &str = "582914";

fn identity() -> DeviceIdentity {
    DeviceIdentity {
        org: OrgId::from_bytes([1; 16]),
        user: UserId::from_bytes([2; 16]),
        device: DeviceId::from_bytes([3; 16]),
    }
}

async fn ask(
    handler: &mut RequestHandler,
    request: WorkerRequest,
) -> Result<WorkerResponse, WorkerError> {
    handler
        .handle(RequestEnvelope { id: 1, request })
        .await
        .result
}

async fn unlock(handler: &mut RequestHandler, code: &str, at: UnixMillis) -> UnlockOutcome {
    match ask(
        handler,
        WorkerRequest::Unlock {
            passcode: PasscodeText::new(code.into()),
            now: at,
        },
    )
    .await
    {
        Ok(WorkerResponse::Unlock(outcome)) => outcome,
        other => panic!("{other:?}"),
    }
}

/// A device, opened, with a passcode set and kept.
async fn locked_device(database: &str) -> Vec<u8> {
    let mut worker = RequestHandler::with_database(database);
    let Ok(WorkerResponse::DeviceReady { public_key, .. }) = ask(
        &mut worker,
        WorkerRequest::OpenDevice {
            identity: identity(),
        },
    )
    .await
    else {
        panic!("the device opens");
    };
    let set = |passcode: &str| WorkerRequest::SetPasscode {
        passcode: PasscodeText::new(passcode.into()),
        page_key: PageKey::new(vec![0x42; 32]),
        org: identity().org,
        device: identity().device,
        policy: PhonePolicy::default(),
        now: NOW,
    };
    let refused = ask(&mut worker, set("111111")).await.expect_err("too easy");
    assert_eq!(refused.kind, WorkerErrorKind::Passcode);
    let Ok(WorkerResponse::PasscodeLock { lock_key, secrets }) =
        ask(&mut worker, set(PASSCODE)).await
    else {
        panic!("a lock");
    };
    assert_eq!(lock_key.len(), 97, "a SEC1 P-384 key");
    assert_eq!((secrets.share.len(), secrets.verifier.len()), (32, 48));
    assert!(matches!(
        ask(&mut worker, WorkerRequest::CommitPasscode).await,
        Ok(WorkerResponse::Done)
    ));
    // Still unlocked in this worker: the device keeps working.
    assert!(matches!(
        ask(
            &mut worker,
            WorkerRequest::OpenDevice {
                identity: identity()
            }
        )
        .await,
        Ok(WorkerResponse::DeviceReady { .. })
    ));
    public_key
}

#[wasm_bindgen_test]
async fn once_a_passcode_is_set_the_store_opens_only_with_it() {
    let database = format!("test-worker-lock-{}", js_sys::Date::now() as u64);
    let public_key = locked_device(&database).await;

    // A new worker (the app reopened, or a copy of the profile): nothing
    // opens without the passcode, and no new key is made in its place.
    let mut worker = RequestHandler::with_database(&database);
    let refused = ask(
        &mut worker,
        WorkerRequest::OpenDevice {
            identity: identity(),
        },
    )
    .await
    .expect_err("locked");
    assert_eq!(refused.kind, WorkerErrorKind::Locked);
    let Ok(WorkerResponse::LockStatus(status)) = ask(
        &mut worker,
        WorkerRequest::LockStatus {
            now: UnixMillis(NOW.0 + HOUR),
        },
    )
    .await
    else {
        panic!("a status");
    };
    assert!(status.locked && !status.away_too_long);
    assert_eq!(status.offline_until, Some(UnixMillis(NOW.0 + 12 * HOUR)));

    // No relay answers here: the offline copy decides. A wrong passcode
    // is counted; the right one opens both keys.
    assert_eq!(
        unlock(&mut worker, "000999", UnixMillis(NOW.0 + HOUR)).await,
        UnlockOutcome::WrongPasscode {
            left: 4,
            offline: true
        }
    );
    match unlock(&mut worker, PASSCODE, UnixMillis(NOW.0 + HOUR)).await {
        UnlockOutcome::Unlocked { page_key, .. } => assert_eq!(page_key.as_bytes(), &[0x42; 32]),
        other => panic!("{other:?}"),
    }
    let Ok(WorkerResponse::DeviceReady {
        created: false,
        public_key: reopened,
        ..
    }) = ask(
        &mut worker,
        WorkerRequest::OpenDevice {
            identity: identity(),
        },
    )
    .await
    else {
        panic!("the same device opens");
    };
    assert_eq!(reopened, public_key);

    // Past the grace period, nothing opens without the relay.
    let mut later = RequestHandler::with_database(&database);
    assert_eq!(
        unlock(&mut later, PASSCODE, UnixMillis(NOW.0 + 13 * HOUR)).await,
        UnlockOutcome::NeedsRelay
    );
    drop((worker, later));
    let _ = huddle_idb::SealedDb::delete_database(&database).await;
}

#[wasm_bindgen_test]
async fn five_wrong_passcodes_without_the_relay_end_offline_unlocking() {
    let database = format!("test-worker-guesses-{}", js_sys::Date::now() as u64);
    locked_device(&database).await;
    let mut worker = RequestHandler::with_database(&database);
    let at = UnixMillis(NOW.0 + HOUR);
    for left in (0..5).rev() {
        assert_eq!(
            unlock(&mut worker, "700700", at).await,
            UnlockOutcome::WrongPasscode {
                left,
                offline: true
            }
        );
    }
    // A new worker (the app reopened) has not forgotten the count.
    let mut reopened = RequestHandler::with_database(&database);
    assert_eq!(
        unlock(&mut reopened, PASSCODE, at).await,
        UnlockOutcome::NeedsRelay
    );
    drop((worker, reopened));
    let _ = huddle_idb::SealedDb::delete_database(&database).await;
}
