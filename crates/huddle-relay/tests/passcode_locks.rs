//! Passcode locks on SQLite and PostgreSQL: the share released for a right proof only, wrong guesses counted, nothing counted for a request not signed by the phone or a replayed nonce, and the share destroyed at the tenth wrong guess or at a revocation.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use huddle_core::ids::{DeviceId, OrgId, UserId};
use huddle_core::passcode::{
    nonce_request_transcript, stretch, unlock_transcript, Passcode, Share, Verifier, SHARE_LEN,
};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::Role;
use huddle_relay::store::locks::{UnlockRefusal, Unlocked, MAX_WRONG_PASSCODES};
use huddle_relay::Store;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use support::Engine;

const NOW: UnixMillis = UnixMillis(1_795_000_000_000);
const ORG: OrgId = OrgId::from_bytes([1; 16]);
const PHONE: DeviceId = DeviceId::from_bytes([2; 16]);
const SHARE: [u8; SHARE_LEN] = [0x5a; SHARE_LEN];

struct LockedPhone {
    lock_key: SigningKey,
    right: Verifier,
    wrong: Verifier,
}

impl LockedPhone {
    fn new() -> Self {
        let verifier =
            |typed: &str| stretch(&Passcode::new(typed).expect("valid"), ORG, PHONE).verifier();
        LockedPhone {
            lock_key: SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng),
            right: verifier("482915"),
            wrong: verifier("482916"),
        }
    }

    /// Whether the phone's signed nonce request checks out with `key`.
    fn signed_nonce_request(&self, key: &[u8]) -> bool {
        let transcript = nonce_request_transcript(PHONE, NOW.0);
        let signature: Signature = self.lock_key.sign(&transcript);
        huddle_relay::auth::verify_signature(key, &transcript, &signature.to_der().to_bytes())
    }

    /// Asks for a nonce and answers it with `verifier`'s proof.
    async fn unlock(
        &self,
        store: &Store,
        verifier: &Verifier,
        nonce: u8,
    ) -> Result<Unlocked, UnlockRefusal> {
        let nonce = [nonce; 32];
        store
            .unlock_nonce(PHONE, &nonce, |key| self.signed_nonce_request(key), NOW)
            .await
            .expect("db")?;
        let proof = verifier.proof(&nonce, PHONE);
        let signature: Signature = self
            .lock_key
            .sign(&unlock_transcript(PHONE, &nonce, &proof));
        store
            .try_unlock(PHONE, &nonce, &proof, &signature.to_der().to_bytes(), NOW)
            .await
            .expect("db")
    }
}

async fn with_store<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let dir = tempfile::tempdir().expect("temp dir");
        let Some(url) = support::database_url(engine, dir.path()).await else {
            continue;
        };
        let store = Store::connect(&url).await.expect("connect");
        for (n, role) in [(1u8, Role::Administrator), (2, Role::Staff)] {
            let user = UserId::from_bytes([n; 16]);
            store
                .put_user(user, "Test person", role, NOW)
                .await
                .expect("person");
            store
                .put_device(DeviceId::from_bytes([n; 16]), user, &[1; 97], NOW)
                .await
                .expect("device");
        }
        test(store.clone()).await;
        store.close().await;
    }
}

async fn set_lock(store: &Store, phone: &LockedPhone) {
    let lock_key = phone.lock_key.verifying_key().to_encoded_point(false);
    store
        .set_passcode_lock(
            PHONE,
            lock_key.as_bytes(),
            phone.right.as_bytes(),
            &SHARE,
            NOW,
        )
        .await
        .expect("the lock is set");
}

#[tokio::test]
async fn the_share_is_released_for_the_right_passcode_and_destroyed_at_the_tenth_wrong_one() {
    with_store(|store| async move {
        let phone = LockedPhone::new();
        assert_eq!(
            phone.unlock(&store, &phone.right, 1).await,
            Err(UnlockRefusal::NoLock)
        );
        set_lock(&store, &phone).await;
        assert_eq!(
            phone.unlock(&store, &phone.right, 2).await,
            Ok(Unlocked::Released(Share::from_bytes(SHARE)))
        );
        assert_eq!(
            phone.unlock(&store, &phone.wrong, 3).await,
            Ok(Unlocked::Wrong {
                left: MAX_WRONG_PASSCODES - 1
            })
        );

        // A stranger who knows the phone's id cannot even ask for a nonce
        // (and so cannot stop the phone unlocking by replacing its nonce).
        assert_eq!(
            store
                .unlock_nonce(PHONE, &[9; 32], |_| false, NOW)
                .await
                .unwrap(),
            Err(UnlockRefusal::BadSignature)
        );
        // Nothing is counted for a request the phone did not sign, or for a
        // nonce answered twice or never handed out.
        let nonce = [4u8; 32];
        store
            .unlock_nonce(PHONE, &nonce, |key| phone.signed_nonce_request(key), NOW)
            .await
            .unwrap()
            .unwrap();
        let proof = phone.wrong.proof(&nonce, PHONE);
        let stranger = SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
        let forged: Signature = stranger.sign(&unlock_transcript(PHONE, &nonce, &proof));
        assert_eq!(
            store
                .try_unlock(PHONE, &nonce, &proof, &forged.to_der().to_bytes(), NOW)
                .await
                .unwrap(),
            Err(UnlockRefusal::BadSignature)
        );
        let signed: Signature = phone
            .lock_key
            .sign(&unlock_transcript(PHONE, &nonce, &proof));
        assert_eq!(
            store
                .try_unlock(PHONE, &nonce, &proof, &signed.to_der().to_bytes(), NOW)
                .await
                .unwrap(),
            Err(UnlockRefusal::StaleNonce),
            "the nonce was used by the forged request"
        );
        // An old nonce has expired.
        store
            .unlock_nonce(PHONE, &nonce, |key| phone.signed_nonce_request(key), NOW)
            .await
            .unwrap()
            .unwrap();
        let later = NOW.saturating_add_millis(61_000);
        assert_eq!(
            store
                .try_unlock(PHONE, &nonce, &proof, &signed.to_der().to_bytes(), later)
                .await
                .unwrap(),
            Err(UnlockRefusal::StaleNonce)
        );

        // A right passcode starts the count again.
        assert!(matches!(
            phone.unlock(&store, &phone.right, 5).await,
            Ok(Unlocked::Released(_))
        ));
        for n in 1..MAX_WRONG_PASSCODES {
            assert_eq!(
                phone.unlock(&store, &phone.wrong, 10 + n as u8).await,
                Ok(Unlocked::Wrong {
                    left: MAX_WRONG_PASSCODES - n
                })
            );
        }
        assert_eq!(
            phone.unlock(&store, &phone.wrong, 30).await,
            Ok(Unlocked::Destroyed)
        );
        // Gone for good: even the right passcode opens nothing now, and the
        // phone is signed out.
        assert_eq!(
            phone.unlock(&store, &phone.right, 31).await,
            Err(UnlockRefusal::Revoked)
        );
        let audit = store.read_audit(None, 10).await.unwrap();
        assert!(audit
            .iter()
            .any(|e| e.action == "phone wiped after ten wrong passcodes"));
    })
    .await;
}

#[tokio::test]
async fn a_revocation_destroys_the_share() {
    with_store(|store| async move {
        let phone = LockedPhone::new();
        set_lock(&store, &phone).await;
        store
            .revoke_device(UserId::from_bytes([1; 16]), PHONE, NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            phone.unlock(&store, &phone.right, 1).await,
            Err(UnlockRefusal::Revoked)
        );
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passcode_locks")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(left, 0, "nothing of the lock is kept");
    })
    .await;
}

/// When the store says the phone was wiped, if it says so.
async fn wiped_at(store: &Store) -> Option<UnixMillis> {
    let phones = store
        .signed_out_phones(None, UnixMillis(0))
        .await
        .expect("signed-out phones");
    let phone = phones
        .iter()
        .find(|p| p.device == PHONE)
        .expect("the phone is listed as signed out");
    phone.wiped_at
}

#[tokio::test]
async fn a_signed_out_phone_on_its_lock_screen_is_noted_as_wiped_only_when_it_asks_itself() {
    with_store(|store| async move {
        let phone = LockedPhone::new();
        set_lock(&store, &phone).await;
        store
            .revoke_device(UserId::from_bytes([1; 16]), PHONE, NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(wiped_at(&store).await, None, "not told yet");
        // Someone who knows the phone's id but not its lock key is told
        // "signed out" too, and that proves nothing about the phone.
        let stranger = LockedPhone::new();
        assert_eq!(
            stranger.unlock(&store, &stranger.right, 1).await,
            Err(UnlockRefusal::Revoked)
        );
        assert_eq!(wiped_at(&store).await, None, "a stranger's request");
        // The phone itself asks: it hears "signed out" and wipes.
        let later = UnixMillis(NOW.0 + 60_000);
        assert_eq!(
            store
                .unlock_nonce(
                    PHONE,
                    &[3; 32],
                    |key| phone.signed_nonce_request(key),
                    later
                )
                .await
                .expect("db"),
            Err(UnlockRefusal::Revoked)
        );
        assert_eq!(wiped_at(&store).await, Some(later));
        // The first time stands.
        phone.unlock(&store, &phone.right, 4).await.unwrap_err();
        assert_eq!(wiped_at(&store).await, Some(later));
        let share_left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passcode_locks")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(share_left, 0, "the share stays destroyed");
    })
    .await;
}

#[tokio::test]
async fn a_phone_wiped_by_ten_wrong_passcodes_is_listed_as_wiped() {
    with_store(|store| async move {
        let phone = LockedPhone::new();
        set_lock(&store, &phone).await;
        for n in 0..MAX_WRONG_PASSCODES {
            phone.unlock(&store, &phone.wrong, n as u8).await.unwrap();
        }
        assert_eq!(wiped_at(&store).await, Some(NOW));
    })
    .await;
}

#[tokio::test]
async fn a_phone_sets_its_lock_over_its_socket_and_unlocks_over_http() {
    use futures::SinkExt;
    use huddle_core::wire::{ClientFrame, LockSecrets, ServerFrame};
    use support::device::TestDevice;
    use support::ws::next;
    use tokio_tungstenite::tungstenite::Message;

    for engine in [Engine::Sqlite, Engine::Postgres] {
        let dir = tempfile::tempdir().expect("temp dir");
        let Some(url) = support::database_url(engine, dir.path()).await else {
            continue;
        };
        let relay = support::start(&support::config(dir.path(), dir.path(), Some(url))).await;
        let phone = TestDevice::new(2);
        phone.register(&relay.store, Role::Staff).await;
        let mut socket = phone.connect(&relay).await;
        let lock_key = SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
        let stretched = stretch(&Passcode::new("482915").expect("valid"), ORG, phone.device);
        let set = |request, lock_key: Vec<u8>, verifier: Vec<u8>| ClientFrame::SetPasscodeLock {
            request,
            lock_key,
            secrets: LockSecrets {
                verifier,
                share: SHARE.to_vec(),
            },
        };
        let public = lock_key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        // Nonsense is refused and changes nothing.
        for (n, frame) in [
            (
                1,
                set(1, vec![1, 2, 3], stretched.verifier().as_bytes().to_vec()),
            ),
            (2, set(2, public.clone(), vec![0; 3])),
        ] {
            socket
                .send(Message::Binary(frame.encode().into()))
                .await
                .unwrap();
            assert!(
                matches!(next(&mut socket).await, ServerFrame::Refused { request, .. } if request == n)
            );
        }
        socket
            .send(Message::Binary(
                set(3, public, stretched.verifier().as_bytes().to_vec())
                    .encode()
                    .into(),
            ))
            .await
            .unwrap();
        assert_eq!(next(&mut socket).await, ServerFrame::Done { request: 3 });

        let client = reqwest::Client::new();
        let post = |path: &str, body: serde_json::Value| {
            client
                .post(format!("http://{}/api/{path}", relay.local_addr))
                .json(&body)
                .send()
        };
        // A phone whose clock is a day behind is refused, and told the
        // relay's time, at which it asks again.
        let behind = huddle_relay::clock::now().0 - 24 * 60 * 60 * 1000;
        let asked: Signature = lock_key.sign(&nonce_request_transcript(phone.device, behind));
        let asked = huddle_core::hex::encode(&asked.to_der().to_bytes());
        let answer = post(
            "unlock/nonce",
            serde_json::json!({ "device": phone.device, "at": behind, "signature": asked }),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 400);
        let refusal: huddle_core::passcode::ClockRefusal = answer.json().await.unwrap();
        assert_eq!(refusal.error, "clock");
        assert!(
            refusal.relay_time.abs_diff(huddle_relay::clock::now().0) < 60_000,
            "the relay's own time: {}",
            refusal.relay_time
        );
        let at = refusal.relay_time;
        let asked: Signature = lock_key.sign(&nonce_request_transcript(phone.device, at));
        let asked = huddle_core::hex::encode(&asked.to_der().to_bytes());
        let answer = post(
            "unlock/nonce",
            serde_json::json!({ "device": phone.device, "at": at, "signature": asked }),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 200);
        let nonce: serde_json::Value = answer.json().await.unwrap();
        let nonce: [u8; 32] = huddle_core::hex::decode(nonce["nonce"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let proof = stretched.verifier().proof(&nonce, phone.device);
        let signature: Signature = lock_key.sign(&unlock_transcript(phone.device, &nonce, &proof));
        let answer = post(
            "unlock",
            serde_json::json!({
                "device": phone.device,
                "nonce": huddle_core::hex::encode(&nonce),
                "proof": huddle_core::hex::encode(&proof),
                "signature": huddle_core::hex::encode(&signature.to_der().to_bytes()),
            }),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["outcome"], "unlocked");
        assert_eq!(
            body["share"].as_str(),
            Some(huddle_core::hex::encode(&SHARE).as_str())
        );
        // With what the organisation asks of the phone, which a phone that
        // has been locked since before a change has not heard yet.
        assert_eq!(
            body["policy"]["offline_unlock_secs"].as_u64(),
            Some(12 * 60 * 60)
        );
        assert_eq!(body["policy"]["lock_after_idle_secs"].as_u64(), Some(120));
        // Junk gets a clear refusal.
        let answer = post(
            "unlock",
            serde_json::json!({ "device": phone.device, "nonce": "zz", "proof": "", "signature": "" }),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 400);
        relay
            .shutdown(std::time::Duration::from_secs(1))
            .await
            .expect("shutdown");
    }
}

#[tokio::test]
async fn a_nonce_is_answered_once_however_many_race_for_it_and_a_wrong_one_leaves_it_alone() {
    with_store(|store| async move {
        let phone = LockedPhone::new();
        set_lock(&store, &phone).await;
        let nonce = [6u8; 32];
        store
            .unlock_nonce(PHONE, &nonce, |key| phone.signed_nonce_request(key), NOW)
            .await
            .unwrap()
            .unwrap();
        // Someone who knows only the phone's id posts nonsense: the phone's
        // nonce still works afterwards.
        assert_eq!(
            store
                .try_unlock(PHONE, &[0xee; 32], &[0; 48], &[0; 70], NOW)
                .await
                .unwrap(),
            Err(UnlockRefusal::StaleNonce)
        );
        // Eight wrong guesses at once, all on the one nonce: one is counted
        // and the rest refused, on either engine.
        let proof = phone.wrong.proof(&nonce, PHONE);
        let signature: Signature = phone
            .lock_key
            .sign(&unlock_transcript(PHONE, &nonce, &proof));
        let signature = signature.to_der().to_bytes().to_vec();
        let attempts = (0..8).map(|_| {
            let (store, proof, signature) = (store.clone(), proof, signature.clone());
            tokio::spawn(async move {
                store
                    .try_unlock(PHONE, &nonce, &proof, &signature, NOW)
                    .await
                    .expect("db")
            })
        });
        let mut counted = 0;
        for attempt in futures::future::join_all(attempts).await {
            match attempt.expect("the task ran") {
                Ok(Unlocked::Wrong { left }) => {
                    counted += 1;
                    assert_eq!(left, MAX_WRONG_PASSCODES - 1);
                }
                Err(UnlockRefusal::StaleNonce) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(counted, 1);
    })
    .await;
}
