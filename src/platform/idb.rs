//! The IndexedDB database through rexie: an append-only schema history and byte records keyed by string.
//!
//! Records are opaque bytes here; the layer above encrypts them before they
//! arrive (every record is AES-256-GCM ciphertext at rest).

use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

/// The app's database.
pub const DATABASE_NAME: &str = "huddle";

/// The object stores each schema version adds, oldest first.
///
/// Append only: a released version's entry never changes, because phones in
/// the field hold databases made by it. The database version is the length of
/// this list.
const SCHEMA_HISTORY: &[&[&str]] = &[
    // Version 1: small records about this device.
    &["meta"],
];

/// The store for small records about this device.
pub const META_STORE: &str = "meta";

#[derive(Debug, thiserror::Error)]
pub enum IdbError {
    #[error("This phone's browser would not open Huddle's storage. Leave private browsing, or free some space, then reload.")]
    Open,
    #[error("Huddle could not read or write its storage on this phone. Reload the page; if it happens again, free some space.")]
    Transaction,
    #[error("A record in Huddle's storage is damaged.")]
    Damaged,
}

/// Waits for a write transaction and insists that it committed: an aborted
/// transaction wrote nothing and must not be reported as saved.
async fn committed(tx: rexie::Transaction) -> Result<(), IdbError> {
    match tx.done().await {
        Ok(rexie::TransactionResult::Committed) => Ok(()),
        _ => Err(IdbError::Transaction),
    }
}

pub struct IdbDatabase {
    db: Rexie,
}

impl IdbDatabase {
    /// Opens (and, on first use or after an update, upgrades) a database.
    pub async fn open(name: &str) -> Result<Self, IdbError> {
        let version = u32::try_from(SCHEMA_HISTORY.len()).map_err(|_| IdbError::Open)?;
        let mut builder = Rexie::builder(name).version(version);
        for store in SCHEMA_HISTORY.iter().flat_map(|stores| stores.iter()) {
            builder = builder.add_object_store(ObjectStore::new(store));
        }
        let db = builder.build().await.map_err(|_| IdbError::Open)?;
        Ok(Self { db })
    }

    /// Writes `bytes` under `key`, replacing what was there, and waits until
    /// the transaction has committed.
    pub async fn put(&self, store: &str, key: &str, bytes: &[u8]) -> Result<(), IdbError> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadWrite)
            .map_err(|_| IdbError::Transaction)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        let value: JsValue = js_sys::Uint8Array::from(bytes).into();
        object_store
            .put(&value, Some(&JsValue::from_str(key)))
            .await
            .map_err(|_| IdbError::Transaction)?;
        committed(tx).await?;
        Ok(())
    }

    /// Reads the bytes under `key`, if any.
    pub async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, IdbError> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadOnly)
            .map_err(|_| IdbError::Transaction)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        let value = object_store
            .get(JsValue::from_str(key))
            .await
            .map_err(|_| IdbError::Transaction)?;
        tx.done().await.map_err(|_| IdbError::Transaction)?;
        match value {
            None => Ok(None),
            Some(v) if v.is_undefined() => Ok(None),
            Some(v) => {
                let array: js_sys::Uint8Array = v.dyn_into().map_err(|_| IdbError::Damaged)?;
                Ok(Some(array.to_vec()))
            }
        }
    }

    /// Deletes the record under `key`; deleting a missing record is not an error.
    pub async fn delete(&self, store: &str, key: &str) -> Result<(), IdbError> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadWrite)
            .map_err(|_| IdbError::Transaction)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        object_store
            .delete(JsValue::from_str(key))
            .await
            .map_err(|_| IdbError::Transaction)?;
        committed(tx).await?;
        Ok(())
    }

    /// Closes the database so that another connection may upgrade or delete it.
    pub fn close(self) {
        self.db.close();
    }

    /// Deletes a whole database (used by remote wipe and by the tests).
    pub async fn delete_database(name: &str) -> Result<(), IdbError> {
        Rexie::delete(name).await.map_err(|_| IdbError::Transaction)
    }
}
