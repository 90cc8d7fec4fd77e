//! The relay's database: SQLite (embedded, the default) or PostgreSQL, opened, tuned for durability and migrated; one SQL text for both, through sqlx's `Any` driver.
//!
//! Each engine has its own migrations (`migrations/sqlite`,
//! `migrations/postgres`) because their DDL differs; the two sets describe
//! the same schema, and the relay's queries are written once to run
//! unchanged on both (`$N` placeholders, `RETURNING`, `ON CONFLICT`, partial
//! indexes; only BIGINT, BLOB/BYTEA and TEXT columns). The same tests run
//! against both.
//!
//! - `log.rs`: the per-group logs, backlogs, welcomes and expiry;
//! - `group_commit.rs`: the writer tasks that commit appends in batches;
//! - `keys.rs`: key packages;
//! - `people.rs`: people, devices, invites, roles, revocation, the audit log;
//! - `relay_info.rs`: facts about the installation (organisation, setup link).

pub mod access_ends;
pub mod departures;
pub mod group_commit;
pub mod identities;
pub mod keys;
pub mod locks;
pub mod log;
pub mod people;
pub mod relay_info;
pub mod reviews;

use huddle_core::retention::GroupKind;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database URL must start with sqlite:// or postgres:// (got a URL starting {0:?})"
    )]
    UnknownScheme(String),
    #[error("could not open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("could not bring the database schema up to date: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the write was not committed: {0}")]
    NotCommitted(String),
    #[error("the database holds a value this relay cannot read: {0}")]
    Corrupt(&'static str),
}

/// Which database engine the relay stores its data in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The relay's database, shared by every task (cheap to clone).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// SQLite has one writer at a time. Its busy handler makes a waiting
    /// writer sleep in steps of up to 100 ms; writers queue here instead, in
    /// order, and each starts the moment the previous one commits.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// For PostgreSQL's `LISTEN` connection. May hold a password: never
    /// printed.
    url: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// How often SQLite's write-ahead log is copied back into the database. A
/// second of the busiest traffic is a few megabytes of log.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Checkpoints SQLite's log every [`CHECKPOINT_INTERVAL`] until the store
/// is closed.
pub async fn run_checkpoints(store: Store) {
    if store.engine != Engine::Sqlite {
        return;
    }
    let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if store.pool.is_closed() {
            return;
        }
        if let Err(error) = store.checkpoint().await {
            tracing::warn!(%error, "could not checkpoint the database log");
        }
    }
}

/// A pool of at most `connections` to PostgreSQL, each of which commits
/// durably: a commit is acknowledged only once it is on disk.
fn postgres_pool_options(connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute("SET synchronous_commit = on")
                    .await
                    .map(|_| ())
            })
        })
}

impl Store {
    /// Opens the database at `url` and applies any pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (engine, url) = if let Some(path) = url.strip_prefix("sqlite:") {
            // Create the file if missing (`mode=rwc`), unless told otherwise.
            let url = if path.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            };
            (Engine::Sqlite, url)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Engine::Postgres, url.to_owned())
        } else {
            let scheme: String = url.chars().take_while(|c| *c != ':').take(16).collect();
            return Err(StoreError::UnknownScheme(scheme));
        };
        let options = AnyConnectOptions::from_str(&url).map_err(StoreError::Open)?;
        let pool = match engine {
            // Invariant: the relay acknowledges a message only after its
            // transaction has committed, and a commit must survive power
            // loss: WAL with synchronous=FULL syncs the log at every commit.
            // The log is copied back into the database by
            // `run_checkpoints`, not by whichever commit happens to cross
            // the threshold: that commit (and every message waiting behind
            // it) would wait for the copy and its sync.
            Engine::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                                 PRAGMA wal_autocheckpoint = 0;",
                                )
                                .await
                                .map(|_| ())
                        })
                    })
            }
            Engine::Postgres => postgres_pool_options(16),
        }
        .connect_with(options)
        .await
        .map_err(StoreError::Open)?;
        let store = Store {
            pool,
            engine,
            url,
            write_gate: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The same PostgreSQL database through a pool of `connections` of its
    /// own, opened as they are first needed by tasks of the runtime this is
    /// called on (a connection's socket belongs to the runtime that opened
    /// it). SQLite has one connection pool, shared.
    pub(crate) fn with_connections_of_its_own(
        &self,
        connections: u32,
    ) -> Result<Store, StoreError> {
        if self.engine != Engine::Postgres {
            return Ok(self.clone());
        }
        let options = AnyConnectOptions::from_str(&self.url).map_err(StoreError::Open)?;
        // These connections are tested as they go back to the pool (sqlx
        // pings each one then, off the writer's path), so they are not
        // pinged again as they are taken: that ping would be one more round
        // trip in front of every batch. A connection that died while idle
        // (PostgreSQL restarted) fails its batch, whose devices send again.
        let options_of_pool = postgres_pool_options(connections).test_before_acquire(false);
        Ok(Store {
            pool: options_of_pool.connect_lazy_with(options),
            engine: self.engine,
            url: self.url.clone(),
            write_gate: Arc::default(),
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.engine {
            Engine::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await,
            Engine::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await
            }
        }
        .map_err(StoreError::Migrate)
    }

    /// Copies what SQLite's write-ahead log holds back into the database,
    /// beside the writers rather than in their way (a passive checkpoint
    /// takes no write lock), so that the log stays small. Nothing to do on
    /// PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.engine == Engine::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The engine's name, for health checks and logs.
    pub fn engine_name(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    /// The pool, for tests that look at what is stored.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Starts a transaction that writes. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`): a deferred transaction that reads first and
    /// writes later fails straight away with `SQLITE_BUSY` when another
    /// commit lands in between, without waiting in the busy handler.
    /// PostgreSQL locks rows as they are written and needs nothing special.
    ///
    /// Every write goes through here, so that on SQLite they take turns at
    /// the write gate rather than in the busy handler. Never begin a second
    /// write while holding one: the gate is not re-entrant.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => {
                let turn = self.write_gate.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    _turn: Some(turn),
                })
            }
            Engine::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            }),
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A write transaction, holding SQLite's write turn until it ends.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Database integers are signed 64-bit; ours are unsigned and far smaller.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A 16-byte id read back from the database.
pub(crate) fn id16(bytes: &[u8]) -> Result<[u8; 16], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("an id that is not 16 bytes"))
}

pub(crate) fn kind_name(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Clinical => "clinical",
        GroupKind::Operational => "operational",
        GroupKind::Social => "social",
        GroupKind::EmergencyBroadcast => "emergency_broadcast",
        GroupKind::Direct => "direct",
    }
}

pub(crate) fn kind_from_name(name: &str) -> Result<GroupKind, StoreError> {
    GroupKind::ALL
        .into_iter()
        .find(|k| kind_name(*k) == name)
        .ok_or(StoreError::Corrupt("an unknown group kind"))
}
