//! The page's IndexedDB database through rexie: an append-only schema history, every record sealed with AES-256-GCM.
//!
//! The data key is wrapped by a non-extractable WebCrypto key kept in the
//! `keys` store (the same scheme as the crypto worker's database). Each record
//! is sealed with its store name and id as associated data, so a record moved
//! to another key or store no longer opens. Messages are keyed
//! `[expires_at, group, client_msg]`, so that expiry is one key-range delete.

use crate::state::records::{ConversationRecord, Directory, MessageRecord, OutboxRecord, Session};
use huddle_core::at_rest::{open_record, seal_record, DataKey};
use huddle_core::ids::{ClientMessageId, GroupId};
use huddle_core::retention::UnixMillis;
use huddle_core::sync::GroupPosition;
use js_sys::{Array, Object, Reflect, Uint8Array};
use rexie::{Direction, Index, KeyRange, ObjectStore, Rexie, TransactionMode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};

/// The app's database.
pub const DATABASE_NAME: &str = "huddle";

/// Version 1's only store, kept because phones in the field hold it.
pub const META_STORE: &str = "meta";
const KEYS_STORE: &str = "keys";
const RECORDS_STORE: &str = "records";
const CONVERSATIONS_STORE: &str = "conversations";
const MESSAGES_STORE: &str = "messages";
const OUTBOX_STORE: &str = "outbox";
const CURSORS_STORE: &str = "cursors";
/// The index of messages by group (a hex id, in the clear beside the sealed
/// record: the relay knows group ids too).
const BY_GROUP: &str = "by_group";

/// The object stores each schema version adds, oldest first. Append only: a
/// released version's entry never changes. The database version is the
/// length of this list.
fn schema_history() -> Vec<Vec<ObjectStore>> {
    vec![
        // Version 1: small records about this device.
        vec![ObjectStore::new(META_STORE)],
        // Version 2: the messaging app.
        vec![
            ObjectStore::new(KEYS_STORE),
            ObjectStore::new(RECORDS_STORE),
            ObjectStore::new(CONVERSATIONS_STORE),
            ObjectStore::new(MESSAGES_STORE).add_index(Index::new(BY_GROUP, "g")),
            ObjectStore::new(OUTBOX_STORE),
            ObjectStore::new(CURSORS_STORE),
        ],
    ]
}

const SESSION_ID: &str = "session";
const DIRECTORY_ID: &str = "directory";

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

fn random_nonce() -> Result<[u8; 12], IdbError> {
    let mut nonce = [0u8; 12];
    getrandom::getrandom(&mut nonce).map_err(|_| IdbError::Transaction)?;
    Ok(nonce)
}

/// The key of a message: it sorts by expiry first.
fn message_key(expires_at: UnixMillis, group: GroupId, client_msg: ClientMessageId) -> JsValue {
    Array::of3(
        &JsValue::from_f64(expires_at.0 as f64),
        &group.to_string().into(),
        &client_msg.to_string().into(),
    )
    .into()
}

fn message_id(expires_at: UnixMillis, group: GroupId, client_msg: ClientMessageId) -> String {
    format!("{}:{group}:{client_msg}", expires_at.0)
}

/// The page's database, open, with its data key.
pub struct IdbDatabase {
    db: Rexie,
    /// A second, plain connection for the newest messages of a group in
    /// one request (`getAllRecords`), which rexie has no call for.
    plain: Option<web_sys::IdbDatabase>,
    key: Option<DataKey>,
}

impl IdbDatabase {
    /// Opens (and, on first use or after an update, upgrades) a database
    /// without touching its key (the readiness check uses this).
    pub async fn open(name: &str) -> Result<Self, IdbError> {
        let history = schema_history();
        let version = u32::try_from(history.len()).map_err(|_| IdbError::Open)?;
        let mut builder = Rexie::builder(name).version(version);
        for store in history.into_iter().flatten() {
            builder = builder.add_object_store(store);
        }
        let db = builder.build().await.map_err(|_| IdbError::Open)?;
        // Opened after rexie's connection has upgraded the database, so it
        // never upgrades anything itself.
        let plain = open_plain(name).await;
        Ok(Self {
            db,
            plain,
            key: None,
        })
    }

    /// Opens the database and its data key, ready to read and write records.
    pub async fn open_sealed(name: &str) -> Result<Self, IdbError> {
        Self::open(name).await?.with_key().await
    }

    /// Loads the data key of a database opened with `open` (making it on
    /// first use), ready to read and write records.
    pub async fn with_key(self) -> Result<Self, IdbError> {
        // The key wrapping needs WebCrypto, which the worker crate only
        // builds for the browser.
        #[cfg(target_arch = "wasm32")]
        let database = {
            let key = huddle_worker::browser::load_or_create_data_key(&self.db, KEYS_STORE)
                .await
                .map_err(|_| IdbError::Open)?;
            Self {
                key: Some(key),
                ..self
            }
        };
        #[cfg(not(target_arch = "wasm32"))]
        let database = self;
        Ok(database)
    }

    fn key(&self) -> Result<&DataKey, IdbError> {
        self.key.as_ref().ok_or(IdbError::Open)
    }

    fn seal<T: Serialize>(&self, store: &str, id: &str, value: &T) -> Result<JsValue, IdbError> {
        let plain =
            zeroize::Zeroizing::new(postcard::to_allocvec(value).map_err(|_| IdbError::Damaged)?);
        let sealed = seal_record(self.key()?, random_nonce()?, store, id.as_bytes(), &plain);
        Ok(Uint8Array::from(&sealed[..]).into())
    }

    fn open_value<T: DeserializeOwned>(
        &self,
        store: &str,
        id: &str,
        value: &JsValue,
    ) -> Result<T, IdbError> {
        let sealed: Uint8Array = value.clone().dyn_into().map_err(|_| IdbError::Damaged)?;
        let plain = open_record(self.key()?, store, id.as_bytes(), &sealed.to_vec())
            .map_err(|_| IdbError::Damaged)?;
        postcard::from_bytes(&plain).map_err(|_| IdbError::Damaged)
    }

    async fn put_sealed<T: Serialize>(
        &self,
        store: &str,
        id: &str,
        value: &T,
    ) -> Result<(), IdbError> {
        let sealed = self.seal(store, id, value)?;
        self.put_raw(store, &JsValue::from_str(id), &sealed).await
    }

    async fn put_raw(&self, store: &str, key: &JsValue, value: &JsValue) -> Result<(), IdbError> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadWrite)
            .map_err(|_| IdbError::Transaction)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        object_store
            .put(value, Some(key))
            .await
            .map_err(|_| IdbError::Transaction)?;
        committed(tx).await
    }

    async fn get_sealed<T: DeserializeOwned>(
        &self,
        store: &str,
        id: &str,
    ) -> Result<Option<T>, IdbError> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadOnly)
            .map_err(|_| IdbError::Transaction)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        let value = object_store
            .get(JsValue::from_str(id))
            .await
            .map_err(|_| IdbError::Transaction)?;
        let _ = tx.done().await;
        match value {
            Some(v) if !v.is_undefined() => self.open_value(store, id, &v).map(Some),
            _ => Ok(None),
        }
    }

    async fn all_sealed<T: DeserializeOwned>(&self, store: &str) -> Result<Vec<T>, IdbError> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadOnly)
            .map_err(|_| IdbError::Transaction)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        let pairs = object_store
            .scan(None, None, None, None)
            .await
            .map_err(|_| IdbError::Transaction)?;
        let _ = tx.done().await;
        pairs
            .iter()
            .map(|(key, value)| {
                let id = key.as_string().ok_or(IdbError::Damaged)?;
                self.open_value(store, &id, value)
            })
            .collect()
    }

    async fn delete_key(&self, store: &str, key: JsValue) -> Result<(), IdbError> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadWrite)
            .map_err(|_| IdbError::Transaction)?;
        let object_store = tx.store(store).map_err(|_| IdbError::Transaction)?;
        object_store
            .delete(key)
            .await
            .map_err(|_| IdbError::Transaction)?;
        committed(tx).await
    }

    // --- Raw byte records (the readiness check and the storage test) ---

    /// Writes `bytes` under `key`, replacing what was there, and waits until
    /// the transaction has committed.
    pub async fn put(&self, store: &str, key: &str, bytes: &[u8]) -> Result<(), IdbError> {
        let value: JsValue = Uint8Array::from(bytes).into();
        self.put_raw(store, &JsValue::from_str(key), &value).await
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
                let array: Uint8Array = v.dyn_into().map_err(|_| IdbError::Damaged)?;
                Ok(Some(array.to_vec()))
            }
        }
    }

    /// Deletes the record under `key`; deleting a missing record is not an error.
    pub async fn delete(&self, store: &str, key: &str) -> Result<(), IdbError> {
        self.delete_key(store, JsValue::from_str(key)).await
    }

    // --- The app's records ---

    /// Whether this phone has joined (a session is saved); needs no key, so
    /// a phone that has not joined shows its first screen without making one.
    pub async fn has_session(&self) -> Result<bool, IdbError> {
        Ok(self.get(RECORDS_STORE, SESSION_ID).await?.is_some())
    }

    pub async fn session(&self) -> Result<Option<Session>, IdbError> {
        self.get_sealed(RECORDS_STORE, SESSION_ID).await
    }

    pub async fn save_session(&self, session: &Session) -> Result<(), IdbError> {
        self.put_sealed(RECORDS_STORE, SESSION_ID, session).await
    }

    pub async fn directory(&self) -> Result<Directory, IdbError> {
        Ok(self
            .get_sealed(RECORDS_STORE, DIRECTORY_ID)
            .await?
            .unwrap_or_default())
    }

    pub async fn save_directory(&self, directory: &Directory) -> Result<(), IdbError> {
        self.put_sealed(RECORDS_STORE, DIRECTORY_ID, directory)
            .await
    }

    pub async fn conversations(&self) -> Result<Vec<ConversationRecord>, IdbError> {
        self.all_sealed(CONVERSATIONS_STORE).await
    }

    pub async fn conversation(
        &self,
        group: GroupId,
    ) -> Result<Option<ConversationRecord>, IdbError> {
        self.get_sealed(CONVERSATIONS_STORE, &group.to_string())
            .await
    }

    pub async fn save_conversation(&self, record: &ConversationRecord) -> Result<(), IdbError> {
        self.put_sealed(CONVERSATIONS_STORE, &record.group.to_string(), record)
            .await
    }

    /// The stored form of a message: `{g: group, i: record id, r: sealed}`.
    fn message_value(&self, message: &MessageRecord) -> Result<JsValue, IdbError> {
        let id = message_id(message.expires_at, message.group, message.client_msg);
        let sealed = self.seal(MESSAGES_STORE, &id, message)?;
        let value = Object::new();
        Reflect::set(&value, &"g".into(), &message.group.to_string().into())
            .and_then(|_| Reflect::set(&value, &"i".into(), &id.as_str().into()))
            .and_then(|_| Reflect::set(&value, &"r".into(), &sealed))
            .map_err(|_| IdbError::Transaction)?;
        Ok(value.into())
    }

    pub async fn save_message(&self, message: &MessageRecord) -> Result<(), IdbError> {
        let value = self.message_value(message)?;
        let key = message_key(message.expires_at, message.group, message.client_msg);
        self.put_raw(MESSAGES_STORE, &key, &value).await
    }

    /// Saves many messages in one transaction: all or none.
    pub async fn save_messages(&self, messages: &[MessageRecord]) -> Result<(), IdbError> {
        let pairs = messages
            .iter()
            .map(|m| {
                let key = message_key(m.expires_at, m.group, m.client_msg);
                self.message_value(m).map(|value| (value, Some(key)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tx = self
            .db
            .transaction(&[MESSAGES_STORE], TransactionMode::ReadWrite)
            .map_err(|_| IdbError::Transaction)?;
        let store = tx
            .store(MESSAGES_STORE)
            .map_err(|_| IdbError::Transaction)?;
        store
            .put_all(pairs.into_iter())
            .await
            .map_err(|_| IdbError::Transaction)?;
        committed(tx).await
    }

    /// One message, by the parts of its key.
    pub async fn message(
        &self,
        expires_at: UnixMillis,
        group: GroupId,
        client_msg: ClientMessageId,
    ) -> Result<Option<MessageRecord>, IdbError> {
        let tx = self
            .db
            .transaction(&[MESSAGES_STORE], TransactionMode::ReadOnly)
            .map_err(|_| IdbError::Transaction)?;
        let store = tx
            .store(MESSAGES_STORE)
            .map_err(|_| IdbError::Transaction)?;
        let value = store
            .get(message_key(expires_at, group, client_msg))
            .await
            .map_err(|_| IdbError::Transaction)?;
        let _ = tx.done().await;
        match value {
            Some(v) if v.is_object() => self.open_message(&v).map(Some),
            _ => Ok(None),
        }
    }

    pub async fn delete_message(&self, message: &MessageRecord) -> Result<(), IdbError> {
        let key = message_key(message.expires_at, message.group, message.client_msg);
        self.delete_key(MESSAGES_STORE, key).await
    }

    /// Opens a message from its stored value: `{g: group, i: record id, r: sealed}`.
    fn open_message(&self, value: &JsValue) -> Result<MessageRecord, IdbError> {
        let id = Reflect::get(value, &"i".into())
            .ok()
            .and_then(|v| v.as_string())
            .ok_or(IdbError::Damaged)?;
        let sealed = Reflect::get(value, &"r".into()).map_err(|_| IdbError::Damaged)?;
        self.open_value(MESSAGES_STORE, &id, &sealed)
    }

    /// A read of one group's messages: the transaction, the by-group index
    /// and the key range that selects the group.
    fn group_messages(
        &self,
        group: GroupId,
    ) -> Result<(rexie::Transaction, rexie::StoreIndex, KeyRange), IdbError> {
        let tx = self
            .db
            .transaction(&[MESSAGES_STORE], TransactionMode::ReadOnly)
            .map_err(|_| IdbError::Transaction)?;
        let store = tx
            .store(MESSAGES_STORE)
            .map_err(|_| IdbError::Transaction)?;
        let index = store.index(BY_GROUP).map_err(|_| IdbError::Transaction)?;
        let range = KeyRange::only(&group.to_string().into()).map_err(|_| IdbError::Transaction)?;
        Ok((tx, index, range))
    }

    /// The latest `limit` messages of a group (by expiry, which within a
    /// group follows the order they were sent), newest first.
    pub async fn latest_messages(
        &self,
        group: GroupId,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, IdbError> {
        if let Some(records) = self.newest_records(group, limit).await {
            return records?
                .iter()
                .map(|record| {
                    let value =
                        Reflect::get(record, &"value".into()).map_err(|_| IdbError::Damaged)?;
                    self.open_message(&value)
                })
                .collect();
        }
        let (tx, index, range) = self.group_messages(group)?;
        let pairs = index
            .scan(Some(range), Some(limit), None, Some(Direction::Prev))
            .await
            .map_err(|_| IdbError::Transaction)?;
        let _ = tx.done().await;
        pairs
            .iter()
            .map(|(_, value)| self.open_message(value))
            .collect()
    }

    /// Deletes every message whose expiry has come (`expires_at <= now`):
    /// one key-range delete. Keys are `[expires_at, group, id]`, and every
    /// such key sorts below `[now + 1]`.
    pub async fn delete_expired(&self, now: UnixMillis) -> Result<(), IdbError> {
        let upper = Array::of1(&JsValue::from_f64(now.0.saturating_add(1) as f64));
        let range =
            KeyRange::upper_bound(&upper.into(), Some(true)).map_err(|_| IdbError::Transaction)?;
        self.delete_key(MESSAGES_STORE, range.into()).await
    }

    /// How many messages a group still has on this phone.
    pub async fn message_count(&self, group: GroupId) -> Result<u32, IdbError> {
        let (tx, index, range) = self.group_messages(group)?;
        let count = index
            .count(Some(range))
            .await
            .map_err(|_| IdbError::Transaction)?;
        let _ = tx.done().await;
        Ok(count)
    }

    pub async fn outbox(&self) -> Result<Vec<OutboxRecord>, IdbError> {
        let mut records: Vec<OutboxRecord> = self.all_sealed(OUTBOX_STORE).await?;
        records.sort_by_key(|r| r.order);
        Ok(records)
    }

    pub async fn save_outbox(&self, record: &OutboxRecord) -> Result<(), IdbError> {
        self.put_sealed(OUTBOX_STORE, &record.item.id().to_string(), record)
            .await
    }

    pub async fn delete_outbox(&self, client_msg: ClientMessageId) -> Result<(), IdbError> {
        self.delete(OUTBOX_STORE, &client_msg.to_string()).await
    }

    pub async fn cursors(&self) -> Result<Vec<GroupPosition>, IdbError> {
        self.all_sealed(CURSORS_STORE).await
    }

    pub async fn save_cursor(&self, position: &GroupPosition) -> Result<(), IdbError> {
        self.put_sealed(CURSORS_STORE, &position.group.to_string(), position)
            .await
    }

    /// The newest `limit` records of a group's messages in one request,
    /// where the browser has `IDBIndex.getAllRecords` (IndexedDB 3.0); `None`
    /// where it has not, and the caller walks a cursor instead (one round
    /// trip per message, which is most of the time a conversation takes to
    /// open on a slow phone).
    async fn newest_records(
        &self,
        group: GroupId,
        limit: u32,
    ) -> Option<Result<Vec<JsValue>, IdbError>> {
        let plain = self.plain.as_ref()?;
        let index = plain
            .transaction_with_str(MESSAGES_STORE)
            .and_then(|tx| tx.object_store(MESSAGES_STORE))
            .and_then(|store| store.index(BY_GROUP))
            .ok()?;
        let get_all_records: js_sys::Function = Reflect::get(&index, &"getAllRecords".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let query = web_sys::IdbKeyRange::only(&group.to_string().into()).ok()?;
        let options = Object::new();
        for (name, value) in [
            ("query", JsValue::from(query)),
            ("count", JsValue::from(limit)),
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

    /// Closes the database so that another connection may upgrade or delete it.
    pub fn close(self) {
        if let Some(plain) = &self.plain {
            plain.close();
        }
        self.db.close();
    }

    /// Deletes a whole database (used by remote wipe and by the tests).
    pub async fn delete_database(name: &str) -> Result<(), IdbError> {
        Rexie::delete(name).await.map_err(|_| IdbError::Transaction)
    }
}

impl IdbDatabase {
    /// Remote wipe: deletes every record and the data key.
    pub async fn clear_all(&self) -> Result<(), IdbError> {
        let stores = [
            META_STORE,
            KEYS_STORE,
            RECORDS_STORE,
            CONVERSATIONS_STORE,
            MESSAGES_STORE,
            OUTBOX_STORE,
            CURSORS_STORE,
        ];
        let tx = self
            .db
            .transaction(&stores, TransactionMode::ReadWrite)
            .map_err(|_| IdbError::Transaction)?;
        for name in stores {
            tx.store(name)
                .map_err(|_| IdbError::Transaction)?
                .clear()
                .await
                .map_err(|_| IdbError::Transaction)?;
        }
        committed(tx).await
    }
}

/// A plain connection to an existing database, at whatever version it has;
/// `None` if the browser refuses (the caller then uses rexie alone).
async fn open_plain(name: &str) -> Option<web_sys::IdbDatabase> {
    let factory = web_sys::window()?.indexed_db().ok()??;
    let request = factory.open(name).ok()?;
    request_result(&request).await.ok()?.dyn_into().ok()
}

/// Waits for an IndexedDB request to succeed or fail.
async fn request_result(request: &web_sys::IdbRequest) -> Result<JsValue, IdbError> {
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    let (sender, receiver) = futures::channel::oneshot::channel::<bool>();
    let sender = Rc::new(RefCell::new(Some(sender)));
    let settle = |succeeded: bool| {
        let sender = sender.clone();
        Closure::<dyn FnMut()>::new(move || {
            if let Some(sender) = sender.borrow_mut().take() {
                let _ = sender.send(succeeded);
            }
        })
    };
    let (on_success, on_error) = (settle(true), settle(false));
    request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
    request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let succeeded = receiver.await.unwrap_or(false);
    request.set_onsuccess(None);
    request.set_onerror(None);
    if succeeded {
        request.result().map_err(|_| IdbError::Transaction)
    } else {
        Err(IdbError::Transaction)
    }
}
