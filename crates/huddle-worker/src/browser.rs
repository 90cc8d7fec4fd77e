//! The worker in the browser: its IndexedDB store encrypted at rest, a storage key wrapped by a non-extractable WebCrypto key, and the request queue.
//!
//! Every record (the device key, each MLS state entry) is sealed with
//! AES-256-GCM under the worker's storage key, with the store name and
//! record id bound as associated data. The storage key itself is kept only
//! wrapped: encrypted by a WebCrypto AES-GCM key created non-extractable, so
//! that script can use it but never read it. The page's main thread never
//! sees either key, nor any record in the clear.

use crate::core::{DeviceRecord, PendingKey, WorkerCore, DEVICE_RECORD, PENDING_KEY_RECORD};
use crate::protocol::{
    RequestEnvelope, ResponseEnvelope, WorkerError, WorkerErrorKind, WorkerRequest,
};
use huddle_core::at_rest::{open_record, seal_record, DataKey, KEY_LEN, NONCE_LEN};
use huddle_mls::state::StateChange;
use js_sys::{Array, Object, Reflect, Uint8Array};
use rexie::{ObjectStore, Rexie, TransactionMode};
use std::collections::HashMap;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The worker's own database, apart from the page's.
pub const WORKER_DATABASE: &str = "huddle-worker";

/// Append-only: each entry is one schema version's new stores.
const SCHEMA_HISTORY: &[&[&str]] = &[&[KEYS_STORE, RECORDS_STORE, MLS_STORE]];
const KEYS_STORE: &str = "keys";
const RECORDS_STORE: &str = "records";
const MLS_STORE: &str = "mls";
const STORAGE_KEY_ID: &str = "storage-key";

fn storage_error(message: &str) -> WorkerError {
    WorkerError {
        kind: WorkerErrorKind::Storage,
        message: message.to_owned(),
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], WorkerError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|_| storage_error("no secure random numbers"))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn subtle() -> Result<web_sys::SubtleCrypto, WorkerError> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())
        .map_err(|_| storage_error("WebCrypto is missing"))?;
    let crypto: web_sys::Crypto = crypto
        .dyn_into()
        .map_err(|_| storage_error("WebCrypto is missing"))?;
    Ok(crypto.subtle())
}

async fn promise(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, WorkerError> {
    let promise = promise.map_err(|_| storage_error("a WebCrypto call was refused"))?;
    JsFuture::from(promise)
        .await
        .map_err(|_| storage_error("a WebCrypto call failed"))
}

/// Waits for a write transaction and insists that it committed: an aborted
/// transaction wrote nothing, and must not be reported as saved.
async fn committed(tx: rexie::Transaction) -> Result<(), ()> {
    match tx.done().await {
        Ok(rexie::TransactionResult::Committed) => Ok(()),
        _ => Err(()),
    }
}

/// The data key of a database: unwrapped from its `keys_store` by the
/// non-extractable WebCrypto key kept beside it, or made (and stored wrapped)
/// the first time. The page's own database uses this too.
pub async fn load_or_create_data_key(db: &Rexie, keys_store: &str) -> Result<DataKey, WorkerError> {
    match unwrap_data_key(db, keys_store).await? {
        Some(key) => Ok(key),
        None => create_data_key(db, keys_store).await,
    }
}

async fn unwrap_data_key(db: &Rexie, keys_store: &str) -> Result<Option<DataKey>, WorkerError> {
    let tx = db
        .transaction(&[keys_store], TransactionMode::ReadOnly)
        .map_err(|_| storage_error("the key store is unreadable"))?;
    let store = tx
        .store(keys_store)
        .map_err(|_| storage_error("the key store is unreadable"))?;
    let entry = store
        .get(STORAGE_KEY_ID.into())
        .await
        .map_err(|_| storage_error("the key store is unreadable"))?;
    let _ = tx.done().await;
    let Some(entry) = entry.filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let field = |name: &str| Reflect::get(&entry, &name.into()).ok();
    let wrapping: web_sys::CryptoKey = field("wrappingKey")
        .and_then(|v| v.dyn_into().ok())
        .ok_or_else(|| storage_error("the storage key is damaged"))?;
    let iv: Uint8Array = field("iv")
        .and_then(|v| v.dyn_into().ok())
        .ok_or_else(|| storage_error("the storage key is damaged"))?;
    let wrapped: Uint8Array = field("wrapped")
        .and_then(|v| v.dyn_into().ok())
        .ok_or_else(|| storage_error("the storage key is damaged"))?;
    let params = web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &iv);
    let plain =
        promise(subtle()?.decrypt_with_object_and_js_u8_array(&params, &wrapping, &wrapped))
            .await?;
    let bytes = Uint8Array::new(&plain).to_vec();
    let bytes: [u8; KEY_LEN] = bytes
        .try_into()
        .map_err(|_| storage_error("the storage key is damaged"))?;
    Ok(Some(DataKey::from_bytes(bytes)))
}

async fn create_data_key(db: &Rexie, keys_store: &str) -> Result<DataKey, WorkerError> {
    let subtle = subtle()?;
    let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
    let wrapping = promise(subtle.generate_key_with_object(
        &web_sys::AesKeyGenParams::new("AES-GCM", 256),
        false, // non-extractable: usable, never readable
        &usages,
    ))
    .await?;
    let wrapping: web_sys::CryptoKey = wrapping
        .dyn_into()
        .map_err(|_| storage_error("WebCrypto returned no key"))?;
    let key_bytes = random_bytes::<KEY_LEN>()?;
    let iv = Uint8Array::from(&random_bytes::<NONCE_LEN>()?[..]);
    let params = web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &iv);
    let wrapped = promise(subtle.encrypt_with_object_and_js_u8_array(
        &params,
        &wrapping,
        &Uint8Array::from(&key_bytes[..]),
    ))
    .await?;
    let entry = Object::new();
    let set = |name: &str, value: &JsValue| Reflect::set(&entry, &name.into(), value);
    set("wrappingKey", &wrapping)
        .and_then(|_| set("iv", &iv))
        .and_then(|_| set("wrapped", &Uint8Array::new(&wrapped)))
        .map_err(|_| storage_error("the storage key could not be saved"))?;
    let tx = db
        .transaction(&[keys_store], TransactionMode::ReadWrite)
        .map_err(|_| storage_error("the storage key could not be saved"))?;
    let store = tx
        .store(keys_store)
        .map_err(|_| storage_error("the storage key could not be saved"))?;
    store
        .put(&entry, Some(&STORAGE_KEY_ID.into()))
        .await
        .map_err(|_| storage_error("the storage key could not be saved"))?;
    committed(tx)
        .await
        .map_err(|_| storage_error("the storage key could not be saved"))?;
    Ok(DataKey::from_bytes(key_bytes))
}

/// The worker's encrypted store.
pub struct WorkerStore {
    db: Rexie,
    key: DataKey,
}

impl WorkerStore {
    /// Opens the database and unwraps (or, the first time, creates) the storage key.
    pub async fn open(name: &str) -> Result<Self, WorkerError> {
        let version = u32::try_from(SCHEMA_HISTORY.len()).unwrap_or(1);
        let mut builder = Rexie::builder(name).version(version);
        for store in SCHEMA_HISTORY.iter().flat_map(|stores| stores.iter()) {
            builder = builder.add_object_store(ObjectStore::new(store));
        }
        let db = builder
            .build()
            .await
            .map_err(|_| storage_error("the worker's storage would not open"))?;
        let key = load_or_create_data_key(&db, KEYS_STORE).await?;
        Ok(WorkerStore { db, key })
    }

    pub async fn load_device(&self) -> Result<Option<DeviceRecord>, WorkerError> {
        self.load_record(DEVICE_RECORD).await
    }

    pub async fn save_device(&self, record: &DeviceRecord) -> Result<(), WorkerError> {
        self.save_record(DEVICE_RECORD, record).await
    }

    pub async fn load_pending_key(&self) -> Result<Option<PendingKey>, WorkerError> {
        self.load_record(PENDING_KEY_RECORD).await
    }

    pub async fn save_pending_key(&self, key: &PendingKey) -> Result<(), WorkerError> {
        self.save_record(PENDING_KEY_RECORD, key).await
    }

    async fn load_record<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<T>, WorkerError> {
        let tx = self
            .db
            .transaction(&[RECORDS_STORE], TransactionMode::ReadOnly)
            .map_err(|_| storage_error("a device record is unreadable"))?;
        let store = tx
            .store(RECORDS_STORE)
            .map_err(|_| storage_error("a device record is unreadable"))?;
        let value = store
            .get(id.into())
            .await
            .map_err(|_| storage_error("a device record is unreadable"))?;
        let _ = tx.done().await;
        let Some(sealed) = value.and_then(|v| v.dyn_into::<Uint8Array>().ok()) else {
            return Ok(None);
        };
        let plain = open_record(&self.key, RECORDS_STORE, id.as_bytes(), &sealed.to_vec())
            .map_err(|_| storage_error("a device record is damaged"))?;
        let record: T = postcard::from_bytes(&plain)
            .map_err(|_| storage_error("a device record is damaged"))?;
        Ok(Some(record))
    }

    async fn save_record<T: serde::Serialize>(
        &self,
        id: &str,
        record: &T,
    ) -> Result<(), WorkerError> {
        let plain = zeroize::Zeroizing::new(
            postcard::to_allocvec(record)
                .map_err(|_| storage_error("a device record could not be saved"))?,
        );
        let sealed = seal_record(
            &self.key,
            random_bytes()?,
            RECORDS_STORE,
            id.as_bytes(),
            &plain,
        );
        let tx = self
            .db
            .transaction(&[RECORDS_STORE], TransactionMode::ReadWrite)
            .map_err(|_| storage_error("a device record could not be saved"))?;
        let store = tx
            .store(RECORDS_STORE)
            .map_err(|_| storage_error("a device record could not be saved"))?;
        store
            .put(&Uint8Array::from(&sealed[..]).into(), Some(&id.into()))
            .await
            .map_err(|_| storage_error("a device record could not be saved"))?;
        committed(tx)
            .await
            .map_err(|_| storage_error("a device record could not be saved"))
    }

    /// Every MLS state entry, opened.
    pub async fn load_entries(&self) -> Result<HashMap<Vec<u8>, Vec<u8>>, WorkerError> {
        let tx = self
            .db
            .transaction(&[MLS_STORE], TransactionMode::ReadOnly)
            .map_err(|_| storage_error("the group state is unreadable"))?;
        let store = tx
            .store(MLS_STORE)
            .map_err(|_| storage_error("the group state is unreadable"))?;
        let pairs = store
            .scan(None, None, None, None)
            .await
            .map_err(|_| storage_error("the group state is unreadable"))?;
        let _ = tx.done().await;
        let mut entries = HashMap::with_capacity(pairs.len());
        for (key, value) in pairs {
            let id = key
                .as_string()
                .ok_or_else(|| storage_error("the group state is damaged"))?;
            let key = unhex(&id).ok_or_else(|| storage_error("the group state is damaged"))?;
            let sealed: Uint8Array = value
                .dyn_into()
                .map_err(|_| storage_error("the group state is damaged"))?;
            let plain = open_record(&self.key, MLS_STORE, id.as_bytes(), &sealed.to_vec())
                .map_err(|_| storage_error("the group state is damaged"))?;
            entries.insert(key, plain);
        }
        Ok(entries)
    }

    /// Writes and deletes in one transaction: all or nothing.
    pub async fn apply(&self, changes: &[StateChange]) -> Result<(), WorkerError> {
        if changes.is_empty() {
            return Ok(());
        }
        let failed = || storage_error("the group state could not be saved");
        let tx = self
            .db
            .transaction(&[MLS_STORE], TransactionMode::ReadWrite)
            .map_err(|_| failed())?;
        let store = tx.store(MLS_STORE).map_err(|_| failed())?;
        for change in changes {
            match change {
                StateChange::Put { key, value } => {
                    let id = hex(key);
                    let sealed =
                        seal_record(&self.key, random_bytes()?, MLS_STORE, id.as_bytes(), value);
                    store
                        .put(
                            &Uint8Array::from(&sealed[..]).into(),
                            Some(&id.as_str().into()),
                        )
                        .await
                        .map_err(|_| failed())?;
                }
                StateChange::Delete { key } => {
                    store
                        .delete(hex(key).as_str().into())
                        .await
                        .map_err(|_| failed())?;
                }
            }
        }
        committed(tx).await.map_err(|_| failed())
    }

    /// Deletes every record: the device key, the pending key, all group state
    /// and the storage key itself.
    pub async fn wipe(&self) -> Result<(), WorkerError> {
        let failed = || storage_error("the worker's storage could not be cleared");
        let stores = [KEYS_STORE, RECORDS_STORE, MLS_STORE];
        let tx = self
            .db
            .transaction(&stores, TransactionMode::ReadWrite)
            .map_err(|_| failed())?;
        for name in stores {
            tx.store(name)
                .map_err(|_| failed())?
                .clear()
                .await
                .map_err(|_| failed())?;
        }
        committed(tx).await.map_err(|_| failed())
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
    ) -> Result<crate::protocol::WorkerResponse, WorkerError> {
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
            return result.map(|()| crate::protocol::WorkerResponse::Done);
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
        let response = self.core.handle(request);
        let changes = self.core.take_state_changes();
        if let Some(store) = &self.store {
            store.apply(&changes).await?;
        }
        response
    }
}
