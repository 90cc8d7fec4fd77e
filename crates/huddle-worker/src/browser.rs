//! The worker in the browser: its own IndexedDB database (sealed records, through `huddle-idb`) and the request handler that saves each request's state before answering.
//!
//! Every record (the device key, each MLS state entry) is sealed with
//! AES-256-GCM under the worker's data key, with the store name and record
//! id bound as associated data; the data key is kept only wrapped by a
//! non-extractable WebCrypto key (`huddle_idb::key`). The page's main thread
//! never sees either key, nor any record in the clear.

use crate::core::{DeviceRecord, PendingKey, WorkerCore, DEVICE_RECORD, PENDING_KEY_RECORD};
use crate::lock::{self, LockRecord, NewLock};
use crate::relay_unlock::{self, RelayAnswer};
use huddle_core::at_rest::DataKey;
use huddle_core::crypto_worker::{
    LockStatus, PasscodeText, RequestEnvelope, ResponseEnvelope, UnlockOutcome, WorkerError,
    WorkerErrorKind, WorkerRequest, WorkerResponse,
};
use huddle_core::hex;
use huddle_core::retention::UnixMillis;
use huddle_idb::{IdbError, SealedDb, SealedStore, StoreSpec, Write};
use huddle_mls::state::StateChange;
use std::collections::HashMap;
use wasm_bindgen::{JsCast, JsValue};

/// The worker's own database, apart from the page's.
pub use huddle_core::crypto_worker::WORKER_DATABASE;

/// How long a wipe waits for the browser to delete the database.
const DELETE_WAIT_MILLIS: u32 = 2_000;

const KEYS_STORE: &str = "keys";
const RECORDS_STORE: &str = "records";
const MLS_STORE: &str = "mls";
/// The passcode lock: its record (raw: its secrets are wrapped) and the
/// lock key (wrapped by WebCrypto).
const LOCK_STORE: &str = "lock";
const LOCK_RECORD_ID: &str = "lock";
const LOCK_KEY_ID: &str = "lock-key";

/// Append-only: each entry is one schema version's new stores.
const SCHEMA_HISTORY: &[&[StoreSpec]] = &[
    &[
        StoreSpec::plain(KEYS_STORE),
        StoreSpec::plain(RECORDS_STORE),
        StoreSpec::plain(MLS_STORE),
    ],
    // Version 2: the passcode lock.
    &[StoreSpec::plain(LOCK_STORE)],
];

/// The device's identity and key (in the records store).
const DEVICE: SealedStore<DeviceRecord> = SealedStore::new(RECORDS_STORE);
/// The key made for registration, before the device has an identity.
const PENDING_KEY: SealedStore<PendingKey> = SealedStore::new(RECORDS_STORE);

fn storage_error(error: IdbError) -> WorkerError {
    WorkerError {
        kind: WorkerErrorKind::Storage,
        message: format!("the worker's storage failed: {error}"),
    }
}

/// The worker's encrypted store.
pub struct WorkerStore {
    db: SealedDb,
}

fn locked() -> WorkerError {
    WorkerError {
        kind: WorkerErrorKind::Locked,
        message: "a passcode locks this phone".into(),
    }
}

/// The lock record of a database opened without its key; `None` if no
/// passcode locks it.
async fn read_lock(db: &SealedDb) -> Result<Option<LockRecord>, WorkerError> {
    let Some(value) = db
        .get_raw(LOCK_STORE, &JsValue::from_str(LOCK_RECORD_ID))
        .await
        .map_err(storage_error)?
    else {
        return Ok(None);
    };
    decode_lock(value).map(Some)
}

fn decode_lock(value: JsValue) -> Result<LockRecord, WorkerError> {
    let bytes: js_sys::Uint8Array = value
        .dyn_into()
        .map_err(|_| storage_error(IdbError::Damaged))?;
    postcard::from_bytes(&bytes.to_vec()).map_err(|_| storage_error(IdbError::Damaged))
}

/// Reads the lock record, applies `change` and stores it again, in one
/// transaction (see `SealedDb::update_raw`); `None` if there is no lock.
async fn update_lock<T>(
    db: &SealedDb,
    change: impl FnOnce(&mut LockRecord) -> T,
) -> Result<Option<T>, WorkerError> {
    let mut failed = None;
    let answer = db
        .update_raw(LOCK_STORE, LOCK_RECORD_ID, |old| {
            let mut record = match old.map(decode_lock) {
                None => return (None, None),
                Some(Ok(record)) => record,
                Some(Err(e)) => {
                    failed = Some(e);
                    return (None, None);
                }
            };
            let answer = change(&mut record);
            match postcard::to_allocvec(&record) {
                Ok(bytes) => (
                    Some(js_sys::Uint8Array::from(&bytes[..]).into()),
                    Some(answer),
                ),
                Err(_) => {
                    failed = Some(storage_error(IdbError::Damaged));
                    (None, None)
                }
            }
        })
        .await
        .map_err(storage_error)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(answer),
    }
}

fn lock_write(record: &LockRecord) -> Result<Write, WorkerError> {
    let bytes = postcard::to_allocvec(record).map_err(|_| storage_error(IdbError::Damaged))?;
    Ok(Write::Put {
        store: LOCK_STORE,
        key: JsValue::from_str(LOCK_RECORD_ID),
        value: js_sys::Uint8Array::from(&bytes[..]).into(),
    })
}

impl WorkerStore {
    /// Opens the database with its data key: `unlocked`, the key a passcode
    /// unlock gave; without one, the key kept beside the data (made the
    /// first time), unless a passcode locks the database.
    pub async fn open(name: &str, unlocked: Option<&DataKey>) -> Result<Self, WorkerError> {
        let db = SealedDb::open(name, SCHEMA_HISTORY)
            .await
            .map_err(storage_error)?;
        let db = match unlocked {
            Some(key) => db.unlock_with(DataKey::from_bytes(*key.to_bytes())),
            None => {
                if read_lock(&db).await?.is_some() {
                    db.close();
                    return Err(locked());
                }
                db.unlock(KEYS_STORE).await.map_err(storage_error)?
            }
        };
        Ok(WorkerStore { db })
    }

    /// Stores a new lock (its record and its lock key together), and
    /// deletes the data key kept beside the data, in one transaction: from
    /// then on only the passcode opens it.
    async fn commit_lock(&self, lock: &NewLock) -> Result<(), WorkerError> {
        let lock_key = huddle_idb::key::wrap_secret(&lock.lock_private)
            .await
            .map_err(storage_error)?;
        self.db
            .write(vec![
                Write::Put {
                    store: LOCK_STORE,
                    key: JsValue::from_str(LOCK_KEY_ID),
                    value: lock_key,
                },
                lock_write(&lock.record)?,
                Write::Delete {
                    store: KEYS_STORE,
                    key: JsValue::from_str(huddle_idb::key::DATA_KEY_ID),
                },
            ])
            .await
            .map_err(storage_error)
    }

    pub async fn load_device(&self) -> Result<Option<DeviceRecord>, WorkerError> {
        DEVICE
            .get(&self.db, DEVICE_RECORD)
            .await
            .map_err(storage_error)
    }

    pub async fn save_device(&self, record: &DeviceRecord) -> Result<(), WorkerError> {
        let write = DEVICE
            .put(&self.db, DEVICE_RECORD, record)
            .map_err(storage_error)?;
        self.db.write(vec![write]).await.map_err(storage_error)
    }

    pub async fn load_pending_key(&self) -> Result<Option<PendingKey>, WorkerError> {
        PENDING_KEY
            .get(&self.db, PENDING_KEY_RECORD)
            .await
            .map_err(storage_error)
    }

    pub async fn save_pending_key(&self, key: &PendingKey) -> Result<(), WorkerError> {
        let write = PENDING_KEY
            .put(&self.db, PENDING_KEY_RECORD, key)
            .map_err(storage_error)?;
        self.db.write(vec![write]).await.map_err(storage_error)
    }

    /// Every MLS state entry, opened. Entries are stored under the hex of
    /// their OpenMLS key, as raw sealed bytes.
    pub async fn load_entries(&self) -> Result<HashMap<Vec<u8>, Vec<u8>>, WorkerError> {
        let damaged = || storage_error(IdbError::Damaged);
        let pairs = self
            .db
            .scan_raw(MLS_STORE, None, None, None, None)
            .await
            .map_err(storage_error)?;
        let mut entries = HashMap::with_capacity(pairs.len());
        for (key, value) in pairs {
            let id = key.as_string().ok_or_else(damaged)?;
            let key = hex::decode(&id).ok_or_else(damaged)?;
            let plain = self
                .db
                .open_bytes(MLS_STORE, &id, &value)
                .map_err(storage_error)?;
            entries.insert(key, plain.to_vec());
        }
        Ok(entries)
    }

    /// Writes and deletes in one transaction: all or nothing.
    pub async fn apply(&self, changes: &[StateChange]) -> Result<(), WorkerError> {
        let writes = changes
            .iter()
            .map(|change| match change {
                StateChange::Put { key, value } => {
                    let id = hex::encode(key);
                    Ok(Write::Put {
                        store: MLS_STORE,
                        value: self
                            .db
                            .seal_bytes(MLS_STORE, &id, value)
                            .map_err(storage_error)?
                            .into(),
                        key: JsValue::from_str(&id),
                    })
                }
                StateChange::Delete { key } => Ok(Write::Delete {
                    store: MLS_STORE,
                    key: JsValue::from_str(&hex::encode(key)),
                }),
            })
            .collect::<Result<Vec<_>, WorkerError>>()?;
        self.db.write(writes).await.map_err(storage_error)
    }

    /// Deletes every record: the device key, the pending key, all group state
    /// and the data key itself.
    pub async fn wipe(&self) -> Result<(), WorkerError> {
        let writes = [KEYS_STORE, RECORDS_STORE, MLS_STORE, LOCK_STORE]
            .into_iter()
            .map(|store| Write::Clear { store })
            .collect();
        self.db.write(writes).await.map_err(storage_error)
    }

    pub fn close(self) {
        self.db.close();
    }
}

/// Answers requests one at a time, persisting each one's state changes
/// before its answer leaves the worker.
#[derive(Default)]
pub struct RequestHandler {
    core: WorkerCore,
    store: Option<WorkerStore>,
    database: Option<String>,
    /// The worker's data key, once a passcode unlock (or the setting of a
    /// passcode) has given it; dropped with the worker when the app locks.
    unlocked: Option<DataKey>,
    /// A lock made for a new passcode, until the relay keeps its half.
    pending_lock: Option<NewLock>,
}

impl Drop for RequestHandler {
    /// Closes the database: an open connection left behind would be sent a
    /// `versionchange` event later, after its callbacks are gone.
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            store.close();
        }
    }
}

impl RequestHandler {
    /// A handler on a database other than the default (tests).
    pub fn with_database(name: &str) -> Self {
        let mut handler = RequestHandler::default();
        handler.database = Some(name.to_owned());
        handler
    }

    pub async fn handle(&mut self, envelope: RequestEnvelope) -> ResponseEnvelope {
        let result = self.answer(envelope.request).await;
        ResponseEnvelope {
            id: envelope.id,
            result,
        }
    }

    fn database(&self) -> &str {
        self.database.as_deref().unwrap_or(WORKER_DATABASE)
    }

    async fn answer(&mut self, request: WorkerRequest) -> Result<WorkerResponse, WorkerError> {
        match request {
            WorkerRequest::LockStatus { now } => return self.lock_status(now).await,
            WorkerRequest::SetPasscode {
                passcode,
                page_key,
                org,
                device,
                policy,
                now,
            } => {
                let store = self.store.as_ref().ok_or(WorkerError {
                    kind: WorkerErrorKind::NoDevice,
                    message: "the device is not open yet".into(),
                })?;
                let worker_key = store.db.data_key_bytes().map_err(storage_error)?;
                let lock = lock::make(
                    &passcode,
                    org,
                    device,
                    DataKey::from_bytes(*worker_key),
                    &page_key,
                    policy,
                    now,
                )?;
                let answer = lock.relay_half();
                self.pending_lock = Some(lock);
                return Ok(answer);
            }
            WorkerRequest::CommitPasscode => {
                let (Some(store), Some(lock)) = (&self.store, self.pending_lock.take()) else {
                    return Err(WorkerError {
                        kind: WorkerErrorKind::NoDevice,
                        message: "no passcode is waiting to be kept".into(),
                    });
                };
                store.commit_lock(&lock).await?;
                self.unlocked = Some(lock.worker_key);
                return Ok(WorkerResponse::Done);
            }
            WorkerRequest::Unlock { passcode, now } => return self.unlock(passcode, now).await,
            _ => {}
        }
        if let WorkerRequest::PrepareRegistration { transcript } = request {
            let name = self.database();
            let store = WorkerStore::open(name, None).await?;
            let saved = store.load_pending_key().await?;
            let result = WorkerCore::prepare_registration(saved, &transcript);
            if let Ok((_, Some(key))) = &result {
                store.save_pending_key(key).await?;
            }
            store.close();
            return result.map(|(response, _)| response);
        }
        if let WorkerRequest::Wipe = request {
            self.core.forget_device();
            let store = match self.store.take() {
                Some(store) => store,
                None => {
                    // A locked phone is wiped without its key: nothing is read.
                    let db = SealedDb::open(self.database(), SCHEMA_HISTORY)
                        .await
                        .map_err(storage_error)?;
                    WorkerStore { db }
                }
            };
            self.unlocked = None;
            self.pending_lock = None;
            let result = store.wipe().await;
            store.close();
            // Emptied first, so that nothing is left whatever happens next;
            // then the database itself goes. Another tab's worker may hold
            // it open: the browser deletes it once that closes.
            let name = self.database();
            if result.is_ok() {
                SealedDb::delete_database_within(name, DELETE_WAIT_MILLIS)
                    .await
                    .map_err(storage_error)?;
            }
            return result.map(|()| WorkerResponse::Done);
        }
        if let WorkerRequest::OpenDevice { identity } = request {
            let store = WorkerStore::open(self.database(), self.unlocked.as_ref()).await?;
            let saved = store.load_device().await?;
            let (entries, pending) = if saved.is_some() {
                (store.load_entries().await?, None)
            } else {
                (HashMap::new(), store.load_pending_key().await?)
            };
            let (response, new_record) =
                self.core.open_device(identity, saved, pending, entries)?;
            if let Some(record) = new_record {
                store.save_device(&record).await?;
            }
            store.apply(&self.core.take_state_changes()).await?;
            if let Some(old) = self.store.replace(store) {
                old.close();
            }
            return Ok(response);
        }
        // Checking many signatures in wasm is slow; WebCrypto checks them
        // natively and together, and the request then finds them checked.
        let ahead = self.core.signatures_ahead(&request);
        if !ahead.is_empty() {
            let valid = huddle_mls::fast_checks::confirmed(ahead).await;
            self.core.remember_valid(&valid);
        }
        let response = match self.core.open_checking_later(&request) {
            Some((opened, skipped)) => {
                if huddle_mls::fast_checks::all_valid(skipped).await {
                    opened
                } else {
                    Err(WorkerError {
                        kind: WorkerErrorKind::Mls,
                        message: "the message's signature is not valid".into(),
                    })
                }
            }
            None => self.core.handle(request),
        };
        let changes = self.core.take_state_changes();
        if let Some(store) = &self.store {
            store.apply(&changes).await?;
        }
        response
    }

    async fn lock_status(&mut self, now: UnixMillis) -> Result<WorkerResponse, WorkerError> {
        let db = SealedDb::open(self.database(), SCHEMA_HISTORY)
            .await
            .map_err(storage_error)?;
        let status = update_lock(&db, |record| record.status(now))
            .await?
            .unwrap_or(LockStatus {
                locked: false,
                away_too_long: false,
                offline_until: None,
            });
        db.close();
        Ok(WorkerResponse::LockStatus(status))
    }

    async fn unlock(
        &mut self,
        passcode: PasscodeText,
        now: UnixMillis,
    ) -> Result<WorkerResponse, WorkerError> {
        let db = SealedDb::open(self.database(), SCHEMA_HISTORY)
            .await
            .map_err(storage_error)?;
        let result = self.unlock_in(&db, passcode, now).await;
        db.close();
        if let Ok(WorkerResponse::Unlock(UnlockOutcome::Wiped | UnlockOutcome::SignedOut)) = &result
        {
            // The share is gone or the phone signed out: nothing here can
            // ever be opened again, so nothing is kept.
            let _ = SealedDb::delete_database_within(self.database(), DELETE_WAIT_MILLIS).await;
        }
        result
    }

    async fn unlock_in(
        &mut self,
        db: &SealedDb,
        passcode: PasscodeText,
        now: UnixMillis,
    ) -> Result<WorkerResponse, WorkerError> {
        let Some(record) = read_lock(db).await? else {
            return Err(WorkerError {
                kind: WorkerErrorKind::NoDevice,
                message: "no passcode locks this phone".into(),
            });
        };
        let stretched = lock::stretch_typed(&passcode, record.org, record.device)?;
        drop(passcode);
        let signer = db
            .load_secret(LOCK_STORE, LOCK_KEY_ID)
            .await
            .map_err(storage_error)?
            .and_then(|private| {
                huddle_mls::identity::DeviceSigner::restore(&private, &record.lock_public).ok()
            })
            .ok_or_else(|| storage_error(IdbError::Damaged))?;
        let outcome = match relay_unlock::ask(&signer, record.device, &stretched, now).await {
            RelayAnswer::Share(share, policy) => {
                let (worker_key, page_key) = lock::open(&record, &stretched, &share)?;
                let renewed = update_lock(db, |fresh| {
                    fresh.unlocked_with_relay(&stretched, &share, policy, now)
                })
                .await?;
                renewed.unwrap_or(Ok(()))?;
                self.unlocked = Some(worker_key);
                UnlockOutcome::Unlocked {
                    page_key,
                    policy: lock::bounded(policy),
                }
            }
            RelayAnswer::Wrong { left } => UnlockOutcome::WrongPasscode {
                left,
                offline: false,
            },
            RelayAnswer::Wiped => UnlockOutcome::Wiped,
            RelayAnswer::SignedOut => UnlockOutcome::SignedOut,
            RelayAnswer::ClockWrong { .. } => UnlockOutcome::ClockWrong,
            RelayAnswer::NoLock => match self.unlock_offline(db, &record, &stretched, now).await? {
                UnlockOutcome::NeedsRelay => UnlockOutcome::NotKnown,
                other => other,
            },
            RelayAnswer::Unreachable => self.unlock_offline(db, &record, &stretched, now).await?,
        };
        Ok(WorkerResponse::Unlock(outcome))
    }

    /// Without the relay: a guess is counted against the offline copy
    /// before it is tried, in the database, so that guesses racing in
    /// several tabs are each counted.
    async fn unlock_offline(
        &mut self,
        db: &SealedDb,
        record: &LockRecord,
        stretched: &huddle_core::passcode::Stretched,
        now: UnixMillis,
    ) -> Result<UnlockOutcome, WorkerError> {
        let Some(Some(copy)) = update_lock(db, |fresh| fresh.claim_offline_guess(now)).await?
        else {
            return Ok(UnlockOutcome::NeedsRelay);
        };
        let share = lock::open_offline(&copy, stretched);
        let left = update_lock(db, |fresh| fresh.offline_guess_was(share.is_some()))
            .await?
            .unwrap_or(0);
        let Some(share) = share else {
            return Ok(UnlockOutcome::WrongPasscode {
                left,
                offline: true,
            });
        };
        let (worker_key, page_key) = lock::open(record, stretched, &share)?;
        self.unlocked = Some(worker_key);
        Ok(UnlockOutcome::Unlocked {
            page_key,
            policy: record.policy,
        })
    }
}
