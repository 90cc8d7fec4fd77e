//! The worker in the browser: its own IndexedDB database (sealed records, through `huddle-idb`) and the request handler that saves each request's state before answering.
//!
//! Every record (the device key, each MLS state entry) is sealed with
//! AES-256-GCM under the worker's data key, with the store name and record
//! id bound as associated data; the data key is kept only wrapped by a
//! non-extractable WebCrypto key (`huddle_idb::key`). The page's main thread
//! never sees either key, nor any record in the clear.

use crate::core::{DeviceRecord, PendingKey, WorkerCore, DEVICE_RECORD, PENDING_KEY_RECORD};
use huddle_core::crypto_worker::{
    RequestEnvelope, ResponseEnvelope, WorkerError, WorkerErrorKind, WorkerRequest,
};
use huddle_core::hex;
use huddle_idb::{IdbError, SealedDb, SealedStore, StoreSpec, Write};
use huddle_mls::state::StateChange;
use std::collections::HashMap;
use wasm_bindgen::JsValue;

/// The worker's own database, apart from the page's.
pub use huddle_core::crypto_worker::WORKER_DATABASE;

/// How long a wipe waits for the browser to delete the database.
const DELETE_WAIT_MILLIS: u32 = 2_000;

const KEYS_STORE: &str = "keys";
const RECORDS_STORE: &str = "records";
const MLS_STORE: &str = "mls";

/// Append-only: each entry is one schema version's new stores.
const SCHEMA_HISTORY: &[&[StoreSpec]] = &[&[
    StoreSpec::plain(KEYS_STORE),
    StoreSpec::plain(RECORDS_STORE),
    StoreSpec::plain(MLS_STORE),
]];

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

impl WorkerStore {
    /// Opens the database and unwraps (or, the first time, creates) its data key.
    pub async fn open(name: &str) -> Result<Self, WorkerError> {
        let db = SealedDb::open(name, SCHEMA_HISTORY)
            .await
            .map_err(storage_error)?
            .unlock(KEYS_STORE)
            .await
            .map_err(storage_error)?;
        Ok(WorkerStore { db })
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
        let writes = [KEYS_STORE, RECORDS_STORE, MLS_STORE]
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
        RequestHandler {
            core: WorkerCore::default(),
            store: None,
            database: Some(name.to_owned()),
        }
    }

    pub async fn handle(&mut self, envelope: RequestEnvelope) -> ResponseEnvelope {
        let result = self.answer(envelope.request).await;
        ResponseEnvelope {
            id: envelope.id,
            result,
        }
    }

    async fn answer(
        &mut self,
        request: WorkerRequest,
    ) -> Result<huddle_core::crypto_worker::WorkerResponse, WorkerError> {
        if let WorkerRequest::PrepareRegistration { transcript } = request {
            let name = self.database.as_deref().unwrap_or(WORKER_DATABASE);
            let store = WorkerStore::open(name).await?;
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
                    WorkerStore::open(self.database.as_deref().unwrap_or(WORKER_DATABASE)).await?
                }
            };
            let result = store.wipe().await;
            store.close();
            // Emptied first, so that nothing is left whatever happens next;
            // then the database itself goes. Another tab's worker may hold
            // it open: the browser deletes it once that closes.
            let name = self.database.as_deref().unwrap_or(WORKER_DATABASE);
            if result.is_ok() {
                SealedDb::delete_database_within(name, DELETE_WAIT_MILLIS)
                    .await
                    .map_err(storage_error)?;
            }
            return result.map(|()| huddle_core::crypto_worker::WorkerResponse::Done);
        }
        if let WorkerRequest::OpenDevice { identity } = request {
            let name = self.database.as_deref().unwrap_or(WORKER_DATABASE);
            let store = WorkerStore::open(name).await?;
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
}
