//! The relay's database: SQLite (embedded, the default) or PostgreSQL, opened, tuned for durability and migrated.
//!
//! Each backend has its own migrations (`migrations/sqlite`, `migrations/postgres`)
//! because their SQL differs; the two sets describe the same schema and the
//! same tests run against both.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// Runs the same body against whichever pool the store holds. The relay's
/// SQL is written to run unchanged on SQLite and PostgreSQL (`$N`
/// placeholders, `RETURNING`, `ON CONFLICT`, partial indexes).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Starts a transaction that writes. On SQLite it takes the write lock at
/// once (`BEGIN IMMEDIATE`): a deferred transaction that reads first and
/// writes later fails straight away with `SQLITE_BUSY` when another commit
/// lands in between, without waiting in the busy handler. PostgreSQL locks
/// rows as they are written and needs nothing special.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
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
        .map_err(|_| StoreError::Query(sqlx::Error::Protocol("an id is not 16 bytes".into())))
}

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
}

/// Which database engine the relay stores its data in.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens the database at `url` and applies any pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("sqlite:") {
            Self::Sqlite(open_sqlite(url).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::Postgres(open_postgres(url).await?)
        } else {
            let scheme: String = url.chars().take_while(|c| *c != ':').take(16).collect();
            return Err(StoreError::UnknownScheme(scheme));
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Store::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
        .map_err(StoreError::Migrate)
    }

    /// The engine's name, for health checks and logs.
    pub fn engine(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Store::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// When this relay's database was first set up (Unix milliseconds).
    pub async fn created_at(&self) -> Result<i64, StoreError> {
        let value: String = match self {
            Store::Sqlite(pool) => {
                sqlx::query_scalar("SELECT value FROM relay_info WHERE key = 'created_at'")
                    .fetch_one(pool)
                    .await?
            }
            Store::Postgres(pool) => {
                sqlx::query_scalar("SELECT value FROM relay_info WHERE key = 'created_at'")
                    .fetch_one(pool)
                    .await?
            }
        };
        value.parse().map_err(|_| {
            StoreError::Query(sqlx::Error::Protocol(
                "relay_info.created_at is not a number".into(),
            ))
        })
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(pool) => pool.close().await,
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

async fn open_sqlite(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(StoreError::Open)?
        .create_if_missing(true)
        // Invariant: the relay acknowledges a message only after its
        // transaction has committed, and a commit must survive power loss:
        // WAL with synchronous=FULL syncs the log at every commit.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(StoreError::Open)
}

async fn open_postgres(url: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(StoreError::Open)?
        // A commit is acknowledged only once it is on disk.
        .options([("synchronous_commit", "on")]);
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(StoreError::Open)
}
