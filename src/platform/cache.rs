//! The phone's cache in IndexedDB: the session's `Cache`, on the page's sealed database (`huddle-idb`), one wrapper per store.
//!
//! Messages are keyed `[expires_at, group, client_msg]`, so that expiry is
//! one key-range delete, and indexed by group (a hex id beside the sealed
//! record: the relay knows group ids too). A conversation's newest messages
//! come in one `getAllRecords` request where the browser has it.

use huddle_core::at_rest::{DataKey, KEY_LEN};
use huddle_core::attestation::Identities;
use huddle_core::crypto_worker::{PageKey, WORKER_DATABASE};
use huddle_core::ids::{ClientMessageId, GroupId};
use huddle_core::retention::UnixMillis;
use huddle_core::sync::GroupPosition;
use huddle_idb::{Direction, IdbError, KeyRange, SealedDb, SealedStore, StoreSpec, Write};
use huddle_session::receipts::ReceiptsRecord;
use huddle_session::{
    Cache, CacheError, CacheWrite, ConversationRecord, Directory, Enrolment, MessageRecord,
    OutboxRecord, Standing,
};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

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
const BY_GROUP: &str = "by_group";

/// The object stores each schema version adds, oldest first. Append only: a
/// released version's entry never changes.
const SCHEMA_HISTORY: &[&[StoreSpec]] = &[
    // Version 1: small records about this device.
    &[StoreSpec::plain(META_STORE)],
    // Version 2: the messaging app.
    &[
        StoreSpec::plain(KEYS_STORE),
        StoreSpec::plain(RECORDS_STORE),
        StoreSpec::plain(CONVERSATIONS_STORE),
        StoreSpec::indexed(MESSAGES_STORE, BY_GROUP, "g"),
        StoreSpec::plain(OUTBOX_STORE),
        StoreSpec::plain(CURSORS_STORE),
    ],
];

const ENROLMENT: SealedStore<Enrolment> = SealedStore::new(RECORDS_STORE);
const ENROLMENT_ID: &str = "session";
const DIRECTORY: SealedStore<Directory> = SealedStore::new(RECORDS_STORE);
const DIRECTORY_ID: &str = "directory";
const IDENTITIES: SealedStore<Identities> = SealedStore::new(RECORDS_STORE);
const IDENTITIES_ID: &str = "identities";
const STANDING: SealedStore<Standing> = SealedStore::new(RECORDS_STORE);
const STANDING_ID: &str = "standing";
/// One record per group, `receipts:<group>`.
const RECEIPTS: SealedStore<ReceiptsRecord> = SealedStore::new(RECORDS_STORE);
fn receipts_id(group: GroupId) -> String {
    format!("receipts:{group}")
}
const CONVERSATIONS: SealedStore<ConversationRecord> = SealedStore::new(CONVERSATIONS_STORE);
const OUTBOX: SealedStore<OutboxRecord> = SealedStore::new(OUTBOX_STORE);
const CURSORS: SealedStore<GroupPosition> = SealedStore::new(CURSORS_STORE);

fn cache_error(error: IdbError) -> CacheError {
    match error {
        IdbError::Open | IdbError::Locked | IdbError::Crypto => CacheError::Unavailable,
        IdbError::Transaction => CacheError::Failed,
        IdbError::Damaged => CacheError::Damaged,
    }
}

/// The page's cache, open; sealed records once unlocked.
pub struct IdbCache {
    db: SealedDb,
}

impl IdbCache {
    /// Opens (and, on first use or after an update, upgrades) the database
    /// without its key: enough to tell whether this phone has joined.
    pub async fn open() -> Result<Self, CacheError> {
        Self::open_named(DATABASE_NAME).await
    }

    /// The same, for a database of another name (the browser tests).
    pub async fn open_named(name: &str) -> Result<Self, CacheError> {
        let db = SealedDb::open(name, SCHEMA_HISTORY)
            .await
            .map_err(cache_error)?;
        Ok(IdbCache { db })
    }

    /// Loads the data key (making it on first use). Refused once a
    /// passcode wraps the key: a new key made in its place would open
    /// nothing, and would make the phone look as if it had no passcode.
    pub async fn unlock(self) -> Result<Self, CacheError> {
        if !self.keeps_data_key().await? && self.has_enrolment().await? {
            // Closed, so that nothing holds the database open (a wipe
            // waits for every connection to close).
            self.close();
            return Err(CacheError::Unavailable);
        }
        Ok(IdbCache {
            db: self.db.unlock(KEYS_STORE).await.map_err(cache_error)?,
        })
    }

    /// Opens with the data key a passcode unlock gave.
    pub fn unlock_with(self, key: &PageKey) -> Result<Self, CacheError> {
        let bytes: [u8; KEY_LEN] = key.as_bytes().try_into().map_err(|_| CacheError::Damaged)?;
        Ok(IdbCache {
            db: self.db.unlock_with(DataKey::from_bytes(bytes)),
        })
    }

    /// Whether the data key is kept beside the data: no passcode locks this
    /// phone yet.
    pub async fn keeps_data_key(&self) -> Result<bool, CacheError> {
        self.db
            .keeps_data_key(KEYS_STORE)
            .await
            .map_err(cache_error)
    }

    /// Whether this phone has joined; needs no key, so that a phone that
    /// has not joined shows its first screen without making one.
    pub async fn has_enrolment(&self) -> Result<bool, CacheError> {
        self.db
            .contains(RECORDS_STORE, ENROLMENT_ID)
            .await
            .map_err(cache_error)
    }

    pub fn close(self) {
        self.db.close();
    }

    pub async fn delete_database(name: &str) -> Result<(), CacheError> {
        SealedDb::delete_database(name).await.map_err(cache_error)
    }

    /// Raw bytes under `key` of the `meta` store (the readiness check).
    pub async fn put_meta(&self, key: &str, bytes: &[u8]) -> Result<(), CacheError> {
        self.db
            .write(vec![Write::Put {
                store: META_STORE,
                key: JsValue::from_str(key),
                value: js_sys::Uint8Array::from(bytes).into(),
            }])
            .await
            .map_err(cache_error)
    }

    pub async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self
            .db
            .get_raw(META_STORE, &JsValue::from_str(key))
            .await
            .map_err(cache_error)?
            .map(|value| js_sys::Uint8Array::new(&value).to_vec()))
    }

    /// The stored form of a message: `{g: group, i: record id, r: sealed}`.
    fn message_write(&self, message: &MessageRecord) -> Result<Write, IdbError> {
        let id = message_id(message.expires_at, message.group, message.client_msg);
        let sealed = self.db.seal(MESSAGES_STORE, &id, message)?;
        let value = Object::new();
        Reflect::set(&value, &"g".into(), &message.group.to_string().into())
            .and_then(|_| Reflect::set(&value, &"i".into(), &id.as_str().into()))
            .and_then(|_| Reflect::set(&value, &"r".into(), &sealed))
            .map_err(|_| IdbError::Transaction)?;
        Ok(Write::Put {
            store: MESSAGES_STORE,
            key: message_key(message.expires_at, message.group, message.client_msg),
            value: value.into(),
        })
    }

    /// Opens a message from its stored value; `None` for one that does not
    /// open (damaged, or written by a version that kept another layout): it
    /// is left out, not fatal to the whole conversation.
    fn open_message(&self, value: &JsValue) -> Option<MessageRecord> {
        let id = Reflect::get(value, &"i".into()).ok()?.as_string()?;
        let sealed = Reflect::get(value, &"r".into()).ok()?;
        self.db.open_value(MESSAGES_STORE, &id, &sealed).ok()
    }

    fn writes(&self, writes: Vec<CacheWrite>) -> Result<Vec<Write>, IdbError> {
        writes
            .into_iter()
            .map(|write| match write {
                CacheWrite::Enrolment(e) => ENROLMENT.put(&self.db, ENROLMENT_ID, &e),
                CacheWrite::Directory(d) => DIRECTORY.put(&self.db, DIRECTORY_ID, &d),
                CacheWrite::Identities(i) => IDENTITIES.put(&self.db, IDENTITIES_ID, &i),
                CacheWrite::Standing(standing) => STANDING.put(&self.db, STANDING_ID, &standing),
                CacheWrite::Receipts(r) => RECEIPTS.put(&self.db, &receipts_id(r.group), &r),
                CacheWrite::Conversation(c) => {
                    CONVERSATIONS.put(&self.db, &c.group.to_string(), &c)
                }
                CacheWrite::Message(m) => self.message_write(&m),
                CacheWrite::DeleteMessage {
                    expires_at,
                    group,
                    client_msg,
                } => Ok(Write::Delete {
                    store: MESSAGES_STORE,
                    key: message_key(expires_at, group, client_msg),
                }),
                CacheWrite::Outbox(r) => OUTBOX.put(&self.db, &r.item.id().to_string(), &r),
                CacheWrite::DeleteOutbox(id) => Ok(OUTBOX.delete(&id.to_string())),
                CacheWrite::Cursor(p) => CURSORS.put(&self.db, &p.group.to_string(), &p),
            })
            .collect()
    }
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

impl Cache for IdbCache {
    async fn enrolment(&self) -> Result<Option<Enrolment>, CacheError> {
        ENROLMENT
            .get(&self.db, ENROLMENT_ID)
            .await
            .map_err(cache_error)
    }

    async fn directory(&self) -> Result<Directory, CacheError> {
        Ok(DIRECTORY
            .get(&self.db, DIRECTORY_ID)
            .await
            .map_err(cache_error)?
            .unwrap_or_default())
    }

    async fn identities(&self) -> Result<Identities, CacheError> {
        Ok(IDENTITIES
            .get(&self.db, IDENTITIES_ID)
            .await
            .map_err(cache_error)?
            .unwrap_or_default())
    }

    async fn receipts(&self, group: GroupId) -> Result<Option<ReceiptsRecord>, CacheError> {
        RECEIPTS
            .get(&self.db, &receipts_id(group))
            .await
            .map_err(cache_error)
    }

    async fn standing(&self) -> Result<Option<Standing>, CacheError> {
        STANDING
            .get(&self.db, STANDING_ID)
            .await
            .map_err(cache_error)
    }

    async fn conversations(&self) -> Result<Vec<ConversationRecord>, CacheError> {
        CONVERSATIONS.all(&self.db).await.map_err(cache_error)
    }

    /// By expiry, which within a group follows the order messages were
    /// sent, newest first.
    async fn latest_messages(
        &self,
        group: GroupId,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, CacheError> {
        let group_key = JsValue::from_str(&group.to_string());
        if let Some(records) = self
            .db
            .newest_records(MESSAGES_STORE, BY_GROUP, &group_key, limit)
            .await
        {
            return Ok(records
                .map_err(cache_error)?
                .iter()
                .filter_map(|record| {
                    self.open_message(&Reflect::get(record, &"value".into()).ok()?)
                })
                .collect());
        }
        let range = KeyRange::only(&group_key).map_err(|_| CacheError::Failed)?;
        Ok(self
            .db
            .scan_raw(
                MESSAGES_STORE,
                Some(BY_GROUP),
                Some(range),
                Some(limit),
                Some(Direction::Prev),
            )
            .await
            .map_err(cache_error)?
            .iter()
            .filter_map(|(_, value)| self.open_message(value))
            .collect())
    }

    async fn message(
        &self,
        expires_at: UnixMillis,
        group: GroupId,
        client_msg: ClientMessageId,
    ) -> Result<Option<MessageRecord>, CacheError> {
        let key = message_key(expires_at, group, client_msg);
        let stored = self
            .db
            .get_raw(MESSAGES_STORE, &key)
            .await
            .map_err(cache_error)?;
        Ok(stored.and_then(|value| self.open_message(&value)))
    }

    async fn message_count(&self, group: GroupId) -> Result<u32, CacheError> {
        let range = KeyRange::only(&group.to_string().into()).map_err(|_| CacheError::Failed)?;
        self.db
            .count(MESSAGES_STORE, BY_GROUP, range)
            .await
            .map_err(cache_error)
    }

    async fn outbox(&self) -> Result<Vec<OutboxRecord>, CacheError> {
        let mut records = OUTBOX.all(&self.db).await.map_err(cache_error)?;
        records.sort_by_key(|r| r.order);
        Ok(records)
    }

    async fn cursors(&self) -> Result<Vec<GroupPosition>, CacheError> {
        CURSORS.all(&self.db).await.map_err(cache_error)
    }

    async fn write(&self, writes: Vec<CacheWrite>) -> Result<(), CacheError> {
        let writes = self.writes(writes).map_err(cache_error)?;
        self.db.write(writes).await.map_err(cache_error)
    }

    /// One key-range delete: keys are `[expires_at, group, id]`, and every
    /// one that has expired sorts below `[now + 1]`.
    async fn expire(&self, now: UnixMillis) -> Result<(), CacheError> {
        // The benchmark reads how long the sweep takes.
        super::browser::mark("huddle:sweep-start");
        let upper = Array::of1(&JsValue::from_f64(now.0.saturating_add(1) as f64));
        let range =
            KeyRange::upper_bound(&upper.into(), Some(true)).map_err(|_| CacheError::Failed)?;
        let deleted = self
            .db
            .delete(MESSAGES_STORE, range.into())
            .await
            .map_err(cache_error);
        super::browser::measure_since("huddle:sweep", "huddle:sweep-start");
        deleted
    }

    /// Empties every store, in one transaction, and the crypto worker's
    /// database too: the worker empties it when it runs, but it may not be
    /// running (a phone wiping itself as it opens) or may have failed to.
    /// Nothing is left to read once this returns; the signed-out screen
    /// then deletes the databases themselves, the app's offline copy and
    /// its service worker ([`delete_everything`]).
    fn data_key(&self) -> Result<PageKey, CacheError> {
        let bytes = self.db.data_key_bytes().map_err(cache_error)?;
        Ok(PageKey::new(bytes.to_vec()))
    }

    async fn forget_kept_key(&self) -> Result<(), CacheError> {
        self.db
            .forget_data_key(KEYS_STORE)
            .await
            .map_err(cache_error)
    }

    async fn wipe(&self) -> Result<(), CacheError> {
        let emptied = self.empty().await;
        self.db.shut();
        let worker_emptied = huddle_idb::empty_database(WORKER_DATABASE).await;
        emptied.and(worker_emptied.map_err(cache_error))
    }
}

/// How long a wipe waits for the browser to delete each database.
const DELETE_WAIT_MILLIS: u32 = 2_000;

/// After a wipe: deletes the page's and the crypto worker's databases
/// (emptied already), the app's offline copy and its service worker, so
/// that nothing of Huddle is left in the browser. Called by the
/// signed-out screen, so that this code comes with it rather than with
/// the first screen, and the screen is already here when the offline copy
/// goes.
pub async fn delete_everything() {
    // All at once. Another tab may hold a database open: the browser
    // deletes it once that tab closes; its records are already gone.
    let _ = futures::join!(
        IdbCache::delete_database_within(DATABASE_NAME),
        IdbCache::delete_database_within(WORKER_DATABASE),
        super::service_worker::forget_everything(),
    );
}

impl IdbCache {
    /// Deletes the database `name`, waiting a little for other tabs to let
    /// go of it (see `SealedDb::delete_database_within`).
    pub async fn delete_database_within(name: &str) -> Result<bool, CacheError> {
        SealedDb::delete_database_within(name, DELETE_WAIT_MILLIS)
            .await
            .map_err(cache_error)
    }

    async fn empty(&self) -> Result<(), CacheError> {
        let stores = [
            META_STORE,
            KEYS_STORE,
            RECORDS_STORE,
            CONVERSATIONS_STORE,
            MESSAGES_STORE,
            OUTBOX_STORE,
            CURSORS_STORE,
        ];
        self.db.clear(&stores).await.map_err(cache_error)
    }
}
