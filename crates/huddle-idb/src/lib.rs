//! Huddle's sealed-record IndexedDB: an append-only schema history, a data key kept wrapped by a non-extractable WebCrypto key, and every record sealed with AES-256-GCM.
//!
//! The page's cache and the crypto worker's store are two databases built
//! the same way, from this crate:
//! - [`SealedDb::open`] opens (and upgrades) a database from its schema
//!   history, a list of the stores each version adds. Append only: a
//!   released version's entry never changes.
//! - [`SealedDb::unlock`] loads the data key, or makes it the first time
//!   ([`key`]). Until then nothing can be read or written but raw bytes.
//! - [`SealedStore`] is the one wrapper per object store: typed records,
//!   sealed with `huddle_core::at_rest` with the store name and record id as
//!   associated data, so that a record moved to another id or store no
//!   longer opens.
//! - [`SealedDb::write`] applies several puts and deletes, across stores,
//!   in one transaction that either commits whole or reports failure.
//!
//! Browser code: it compiles on any target, and runs only in a browser.
#![forbid(unsafe_code)]

pub mod key;
mod request;

use huddle_core::at_rest::{open_record, seal_record, DataKey, KEY_LEN, NONCE_LEN};
use js_sys::{Array, Object, Reflect, Uint8Array};
use rexie::{Index, ObjectStore, Rexie, TransactionMode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use wasm_bindgen::{JsCast, JsValue};

pub use request::request_result;
pub use rexie::{Direction, KeyRange};

/// Why a database operation failed. Technical: the app decides what the
/// person is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdbError {
    #[error("the browser would not open the database")]
    Open,
    #[error("a transaction failed or did not commit")]
    Transaction,
    #[error("a stored record is damaged or was sealed under another key")]
    Damaged,
    #[error("the database's data key is not loaded")]
    Locked,
    #[error("WebCrypto refused to make, wrap or unwrap the data key")]
    Crypto,
}

/// One object store of a schema version, with at most one index.
#[derive(Clone, Copy, Debug)]
pub struct StoreSpec {
    pub name: &'static str,
    /// An index: its name and the key path it indexes.
    pub index: Option<(&'static str, &'static str)>,
}

impl StoreSpec {
    pub const fn plain(name: &'static str) -> Self {
        StoreSpec { name, index: None }
    }

    pub const fn indexed(name: &'static str, index: &'static str, key_path: &'static str) -> Self {
        StoreSpec {
            name,
            index: Some((index, key_path)),
        }
    }
}

/// One change in a [`SealedDb::write`].
pub enum Write {
    Put {
        store: &'static str,
        key: JsValue,
        value: JsValue,
    },
    /// Deletes one key, or every key in a range.
    Delete { store: &'static str, key: JsValue },
    /// Empties a store.
    Clear { store: &'static str },
}

impl Write {
    fn store(&self) -> &'static str {
        match self {
            Write::Put { store, .. } | Write::Delete { store, .. } | Write::Clear { store } => {
                store
            }
        }
    }
}

/// An open database; with its data key once [`SealedDb::unlock`]ed.
pub struct SealedDb {
    /// `None` once [`SealedDb::shut`]: nothing more is read or written.
    db: std::cell::RefCell<Option<Rexie>>,
    name: String,
    /// A second, plain connection for requests rexie has no call for
    /// (`getAllRecords`); `None` where the browser refused it.
    plain: Option<web_sys::IdbDatabase>,
    key: Option<DataKey>,
}

impl SealedDb {
    /// Opens the database `name`, creating or upgrading it to the version
    /// its history describes (the version is the history's length).
    pub async fn open(name: &str, history: &[&[StoreSpec]]) -> Result<Self, IdbError> {
        let version = u32::try_from(history.len()).map_err(|_| IdbError::Open)?;
        let mut builder = Rexie::builder(name).version(version);
        for spec in history.iter().flat_map(|stores| stores.iter()) {
            let mut store = ObjectStore::new(spec.name);
            if let Some((index, key_path)) = spec.index {
                store = store.add_index(Index::new(index, key_path));
            }
            builder = builder.add_object_store(store);
        }
        let db = builder.build().await.map_err(|_| IdbError::Open)?;
        // Opened after rexie's connection has upgraded the database, so it
        // never upgrades anything itself.
        let plain = open_plain(name).await;
        Ok(SealedDb {
            db: std::cell::RefCell::new(Some(db)),
            name: name.to_owned(),
            plain,
            key: None,
        })
    }

    /// Loads the data key from `keys_store` (making it on first use): from
    /// now on records can be read and written.
    pub async fn unlock(mut self, keys_store: &'static str) -> Result<Self, IdbError> {
        let key = key::load_or_create(&|store, mode| self.transaction(&[store], mode), keys_store)
            .await?;
        self.key = Some(key);
        Ok(self)
    }

    /// Opens with a data key the caller unwrapped (under the passcode's
    /// unlock key); nothing is read from or made in the keys store.
    pub fn unlock_with(mut self, key: DataKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The data key's bytes, to wrap under a passcode's unlock key.
    pub fn data_key_bytes(&self) -> Result<zeroize::Zeroizing<[u8; KEY_LEN]>, IdbError> {
        Ok(self.key()?.to_bytes())
    }

    /// Whether the data key is still kept beside the data (no passcode yet).
    pub async fn keeps_data_key(&self, keys_store: &str) -> Result<bool, IdbError> {
        key::has_data_key(&|store, mode| self.transaction(&[store], mode), keys_store).await
    }

    /// Deletes the data key kept beside the data: a passcode's unlock key
    /// now wraps it, elsewhere.
    pub async fn forget_data_key(&self, keys_store: &str) -> Result<(), IdbError> {
        key::forget_data_key(&|store, mode| self.transaction(&[store], mode), keys_store).await
    }

    /// A secret kept wrapped by a non-extractable WebCrypto key (see [`key`]).
    pub async fn store_secret(&self, store: &str, id: &str, secret: &[u8]) -> Result<(), IdbError> {
        key::store_secret(
            &|store, mode| self.transaction(&[store], mode),
            store,
            id,
            secret,
        )
        .await
    }

    pub async fn load_secret(
        &self,
        store: &str,
        id: &str,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, IdbError> {
        key::load_secret(&|store, mode| self.transaction(&[store], mode), store, id).await
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn key(&self) -> Result<&DataKey, IdbError> {
        self.key.as_ref().ok_or(IdbError::Locked)
    }

    /// `value` sealed for `store` and `id`, as the bytes to store.
    pub fn seal<T: Serialize>(
        &self,
        store: &str,
        id: &str,
        value: &T,
    ) -> Result<JsValue, IdbError> {
        let plain =
            zeroize::Zeroizing::new(postcard::to_allocvec(value).map_err(|_| IdbError::Damaged)?);
        Ok(self.seal_bytes(store, id, &plain)?.into())
    }

    /// Bytes sealed for `store` and `id`.
    pub fn seal_bytes(&self, store: &str, id: &str, plain: &[u8]) -> Result<Uint8Array, IdbError> {
        let sealed = seal_record(self.key()?, random_nonce()?, store, id.as_bytes(), plain);
        Ok(Uint8Array::from(&sealed[..]))
    }

    /// Opens what [`SealedDb::seal`] stored for `store` and `id`.
    pub fn open_value<T: DeserializeOwned>(
        &self,
        store: &str,
        id: &str,
        value: &JsValue,
    ) -> Result<T, IdbError> {
        let plain = self.open_bytes(store, id, value)?;
        postcard::from_bytes(&plain).map_err(|_| IdbError::Damaged)
    }

    /// Opens sealed bytes stored for `store` and `id`; the plaintext is wiped
    /// when dropped.
    pub fn open_bytes(
        &self,
        store: &str,
        id: &str,
        value: &JsValue,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, IdbError> {
        let sealed: Uint8Array = value.clone().dyn_into().map_err(|_| IdbError::Damaged)?;
        open_record(self.key()?, store, id.as_bytes(), &sealed.to_vec())
            .map_err(|_| IdbError::Damaged)
    }

    /// The value stored under `key` in `store`, as stored (sealed or not).
    pub async fn get_raw(&self, store: &str, key: &JsValue) -> Result<Option<JsValue>, IdbError> {
        let tx = self.transaction(&[store], TransactionMode::ReadOnly)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        let value = object_store
            .get(key.clone())
            .await
            .map_err(|_| IdbError::Transaction)?;
        tx.done().await.map_err(|_| IdbError::Transaction)?;
        Ok(value.filter(|v| !v.is_undefined() && !v.is_null()))
    }

    /// Reads the value under `id` in `store`, and writes what `change`
    /// makes of it, in one transaction: two tabs changing the same record
    /// take turns (IndexedDB runs read-write transactions on a store one at
    /// a time), so neither undoes the other's change.
    pub async fn update_raw<T>(
        &self,
        store: &str,
        id: &str,
        change: impl FnOnce(Option<JsValue>) -> (Option<JsValue>, T),
    ) -> Result<T, IdbError> {
        let tx = self.transaction(&[store], TransactionMode::ReadWrite)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        let key = JsValue::from_str(id);
        let old = object_store
            .get(key.clone())
            .await
            .map_err(|_| IdbError::Transaction)?
            .filter(|v| !v.is_undefined() && !v.is_null());
        let (new, answer) = change(old);
        if let Some(new) = new {
            object_store
                .put(&new, Some(&key))
                .await
                .map_err(|_| IdbError::Transaction)?;
        }
        match tx.done().await {
            Ok(rexie::TransactionResult::Committed) => Ok(answer),
            _ => Err(IdbError::Transaction),
        }
    }

    /// Whether anything is stored under `id` (needs no key).
    pub async fn contains(&self, store: &str, id: &str) -> Result<bool, IdbError> {
        Ok(self.get_raw(store, &JsValue::from_str(id)).await?.is_some())
    }

    /// Every (key, value) pair of `store` in key order, as stored; or those
    /// of an index within `range`, newest first if `direction` says so.
    pub async fn scan_raw(
        &self,
        store: &str,
        index: Option<&str>,
        range: Option<KeyRange>,
        limit: Option<u32>,
        direction: Option<Direction>,
    ) -> Result<Vec<(JsValue, JsValue)>, IdbError> {
        let tx = self.transaction(&[store], TransactionMode::ReadOnly)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        let pairs = match index {
            Some(index) => {
                object_store
                    .index(index)
                    .map_err(|_| IdbError::Transaction)?
                    .scan(range, limit, None, direction)
                    .await
            }
            None => object_store.scan(range, limit, None, direction).await,
        }
        .map_err(|_| IdbError::Transaction)?;
        tx.done().await.map_err(|_| IdbError::Transaction)?;
        Ok(pairs)
    }

    /// How many records an index holds within `range`.
    pub async fn count(&self, store: &str, index: &str, range: KeyRange) -> Result<u32, IdbError> {
        let tx = self.transaction(&[store], TransactionMode::ReadOnly)?;
        let count = tx
            .store(store)
            .and_then(|s| s.index(index))
            .map_err(|_| IdbError::Transaction)?
            .count(Some(range))
            .await
            .map_err(|_| IdbError::Transaction)?;
        tx.done().await.map_err(|_| IdbError::Transaction)?;
        Ok(count)
    }

    /// The newest `count` records of an index within `query`, in one
    /// request, where the browser has `IDBIndex.getAllRecords` (IndexedDB
    /// 3.0): each a `{key, primaryKey, value}` object. `None` where it has
    /// not, and the caller scans instead (a round trip per record).
    pub async fn newest_records(
        &self,
        store: &str,
        index: &str,
        query: &JsValue,
        count: u32,
    ) -> Option<Result<Vec<JsValue>, IdbError>> {
        let plain = self.plain.as_ref()?;
        let index = plain
            .transaction_with_str(store)
            .and_then(|tx| tx.object_store(store))
            .and_then(|store| store.index(index))
            .ok()?;
        let get_all_records: js_sys::Function = Reflect::get(&index, &"getAllRecords".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let query = web_sys::IdbKeyRange::only(query).ok()?;
        let options = Object::new();
        for (name, value) in [
            ("query", JsValue::from(query)),
            ("count", JsValue::from(count)),
            ("direction", JsValue::from_str("prev")),
        ] {
            Reflect::set(&options, &name.into(), &value).ok()?;
        }
        let request: web_sys::IdbRequest = get_all_records
            .call1(&index, &options)
            .ok()?
            .dyn_into()
            .ok()?;
        Some(
            request_result(&request)
                .await
                .map(|records| Array::from(&records).to_vec()),
        )
    }

    /// Deletes one key, or every key in a range, of `store`, in a
    /// transaction of its own. (The first screen's expiry sweep needs only
    /// this, not everything [`SealedDb::write`] can do.)
    pub async fn delete(&self, store: &str, key: JsValue) -> Result<(), IdbError> {
        let tx = self.transaction(&[store], TransactionMode::ReadWrite)?;
        tx.store(store)
            .map_err(|_| IdbError::Transaction)?
            .delete(key)
            .await
            .map_err(|_| IdbError::Transaction)?;
        match tx.done().await {
            Ok(rexie::TransactionResult::Committed) => Ok(()),
            _ => Err(IdbError::Transaction),
        }
    }

    /// Applies `writes` in one read-write transaction over the stores they
    /// touch: all of them, or (on an error) none.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), IdbError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut stores: Vec<&'static str> = writes.iter().map(Write::store).collect();
        stores.sort_unstable();
        stores.dedup();
        let tx = self.transaction(&stores, TransactionMode::ReadWrite)?;
        for write in writes {
            let done = match tx.store(write.store()) {
                Ok(object_store) => match write {
                    Write::Put { key, value, .. } => {
                        object_store.put(&value, Some(&key)).await.map(|_| ())
                    }
                    Write::Delete { key, .. } => object_store.delete(key).await,
                    Write::Clear { .. } => object_store.clear().await,
                },
                Err(error) => Err(error),
            };
            if done.is_err() {
                // A request that throws (an invalid key, say) does not abort
                // the transaction by itself: what was written before it
                // would still commit. Undo all of it.
                let _ = tx.abort().await;
                return Err(IdbError::Transaction);
            }
        }
        committed(tx).await
    }

    /// Empties `stores` (distinct names) in one transaction: all of them,
    /// or none and an error. Apart from [`SealedDb::write`] so that a page
    /// that only reads, and wipes, does not carry the rest of it.
    pub async fn clear(&self, stores: &[&str]) -> Result<(), IdbError> {
        let tx = self.transaction(stores, TransactionMode::ReadWrite)?;
        for store in stores {
            let cleared = match tx.store(store) {
                Ok(object_store) => object_store.clear().await,
                Err(error) => Err(error),
            };
            if cleared.is_err() {
                let _ = tx.abort().await;
                return Err(IdbError::Transaction);
            }
        }
        committed(tx).await
    }

    fn transaction(
        &self,
        stores: &[&str],
        mode: TransactionMode,
    ) -> Result<rexie::Transaction, IdbError> {
        self.db
            .borrow()
            .as_ref()
            .ok_or(IdbError::Transaction)?
            .transaction(stores, mode)
            .map_err(|_| IdbError::Transaction)
    }

    /// Closes both connections, so that another may upgrade or delete the
    /// database.
    pub fn close(self) {
        self.shut();
    }

    /// Closes both connections where the database is shared and cannot be
    /// given up: nothing more is read or written through it, and the
    /// database can be deleted.
    pub fn shut(&self) {
        if let Some(plain) = &self.plain {
            plain.close();
        }
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
        }
    }

    /// Deletes a whole database. Resolves once the browser has deleted it,
    /// which waits for every connection to it to close (in other tabs too).
    pub async fn delete_database(name: &str) -> Result<(), IdbError> {
        Rexie::delete(name).await.map_err(|_| IdbError::Transaction)
    }

    /// Deletes a whole database, waiting at most `millis` for it: true if
    /// it is gone, false if a connection elsewhere (another tab) still
    /// holds it, in which case the browser deletes it once that closes.
    pub async fn delete_database_within(name: &str, millis: u32) -> Result<bool, IdbError> {
        let deleted = std::pin::pin!(Self::delete_database(name));
        let waited = std::pin::pin!(wait(millis));
        match futures::future::select(deleted, waited).await {
            futures::future::Either::Left((deleted, _)) => deleted.map(|()| true),
            futures::future::Either::Right(_) => Ok(false),
        }
    }
}

/// The one wrapper of an object store whose records are `T`, sealed, under
/// string ids.
pub struct SealedStore<T> {
    name: &'static str,
    record: PhantomData<fn() -> T>,
}

impl<T> Clone for SealedStore<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SealedStore<T> {}

impl<T: Serialize + DeserializeOwned> SealedStore<T> {
    pub const fn new(name: &'static str) -> Self {
        SealedStore {
            name,
            record: PhantomData,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub async fn get(&self, db: &SealedDb, id: &str) -> Result<Option<T>, IdbError> {
        match db.get_raw(self.name, &JsValue::from_str(id)).await? {
            Some(value) => db.open_value(self.name, id, &value).map(Some),
            None => Ok(None),
        }
    }

    /// Every record, in id order.
    pub async fn all(&self, db: &SealedDb) -> Result<Vec<T>, IdbError> {
        db.scan_raw(self.name, None, None, None, None)
            .await?
            .iter()
            .map(|(key, value)| {
                let id = key.as_string().ok_or(IdbError::Damaged)?;
                db.open_value(self.name, &id, value)
            })
            .collect()
    }

    /// A write that stores `value` under `id`, sealed now.
    pub fn put(&self, db: &SealedDb, id: &str, value: &T) -> Result<Write, IdbError> {
        Ok(Write::Put {
            store: self.name,
            key: JsValue::from_str(id),
            value: db.seal(self.name, id, value)?,
        })
    }

    /// A write that deletes `id` (deleting a missing record is no error).
    pub fn delete(&self, id: &str) -> Write {
        Write::Delete {
            store: self.name,
            key: JsValue::from_str(id),
        }
    }

    /// A write that empties the store.
    pub fn clear(&self) -> Write {
        Write::Clear { store: self.name }
    }
}

/// Waits for a writing transaction to end: an aborted one wrote nothing and
/// must not be reported as saved.
async fn committed(tx: rexie::Transaction) -> Result<(), IdbError> {
    match tx.done().await {
        Ok(rexie::TransactionResult::Committed) => Ok(()),
        _ => Err(IdbError::Transaction),
    }
}

/// Empties every object store of the database `name`, whatever its schema,
/// through a plain connection that is closed again: how a page leaves
/// nothing in a database it cannot read (the crypto worker's) before it
/// deletes it, even if the deletion is then held up by another connection.
/// The raw value under `key` in `store` of database `name`, read without
/// its schema or its key (another database's: the page looks at whether the
/// crypto worker's holds a lock); `None` if the store or the value is not
/// there.
pub async fn peek_raw(name: &str, store: &str, key: &str) -> Result<Option<JsValue>, IdbError> {
    let db = open_plain(name).await.ok_or(IdbError::Open)?;
    let has_store = db.object_store_names().contains(store);
    let found = if has_store {
        let request = db
            .transaction_with_str(store)
            .and_then(|tx| tx.object_store(store))
            .and_then(|s| s.get(&JsValue::from_str(key)))
            .map_err(|_| IdbError::Transaction);
        match request {
            Ok(request) => request_result(&request).await,
            Err(e) => Err(e),
        }
    } else {
        Ok(JsValue::UNDEFINED)
    };
    db.close();
    Ok(found?).map(|value| Some(value).filter(|v| !v.is_undefined() && !v.is_null()))
}

pub async fn empty_database(name: &str) -> Result<(), IdbError> {
    let db = open_plain(name).await.ok_or(IdbError::Open)?;
    let names: Array = (0..db.object_store_names().length())
        .filter_map(|i| db.object_store_names().item(i))
        .map(JsValue::from)
        .collect();
    let emptied = if names.length() == 0 {
        Ok(())
    } else {
        empty_stores(&db, &names).await
    };
    db.close();
    emptied
}

async fn empty_stores(db: &web_sys::IdbDatabase, names: &Array) -> Result<(), IdbError> {
    let tx = db
        .transaction_with_str_sequence_and_mode(names, web_sys::IdbTransactionMode::Readwrite)
        .map_err(|_| IdbError::Transaction)?;
    for name in names.iter() {
        let name = name.as_string().ok_or(IdbError::Transaction)?;
        let request = tx
            .object_store(&name)
            .and_then(|store| store.clear())
            .map_err(|_| IdbError::Transaction)?;
        request_result(&request).await?;
    }
    Ok(())
}

/// Resolves after `millis`, in a page or a worker alike.
async fn wait(millis: u32) {
    let global = js_sys::global();
    let set_timeout = Reflect::get(&global, &"setTimeout".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let Some(set_timeout) = set_timeout else {
        return;
    };
    let timer = js_sys::Promise::new(&mut |resolve, _| {
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from(millis));
    });
    let _ = wasm_bindgen_futures::JsFuture::from(timer).await;
}

fn random_nonce() -> Result<[u8; NONCE_LEN], IdbError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|_| IdbError::Crypto)?;
    Ok(nonce)
}

/// A plain connection to an existing database, at whatever version it has;
/// `None` if the browser refuses (the caller then uses rexie alone).
async fn open_plain(name: &str) -> Option<web_sys::IdbDatabase> {
    let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let request = factory.open(name).ok()?;
    request_result(&request).await.ok()?.dyn_into().ok()
}
