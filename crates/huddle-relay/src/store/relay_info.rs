//! Facts about this relay installation itself, never about people or messages: its organisation id and name, when it was set up, and the hash of the first-run setup secret.

use super::{Store, StoreError};
use huddle_core::hex;
use huddle_core::ids::OrgId;

impl Store {
    /// This relay's organisation id, made on first use and kept in
    /// `relay_info` (one organisation per installation).
    pub async fn org_id(&self, fresh: [u8; 16]) -> Result<OrgId, StoreError> {
        sqlx::query("INSERT INTO relay_info (key, value) VALUES ('org_id', $1) ON CONFLICT (key) DO NOTHING")
            .bind(hex::encode(&fresh))
            .execute(&self.pool)
            .await?;
        let stored: String =
            sqlx::query_scalar("SELECT value FROM relay_info WHERE key = 'org_id'")
                .fetch_one(&self.pool)
                .await?;
        stored
            .parse()
            .map_err(|_| StoreError::Corrupt("relay_info.org_id is not an id"))
    }

    /// When this relay's database was first set up (Unix milliseconds).
    pub async fn created_at(&self) -> Result<i64, StoreError> {
        let value: String =
            sqlx::query_scalar("SELECT value FROM relay_info WHERE key = 'created_at'")
                .fetch_one(&self.pool)
                .await?;
        value
            .parse()
            .map_err(|_| StoreError::Corrupt("relay_info.created_at is not a number"))
    }

    /// The organisation's name, once set up.
    pub async fn org_name(&self) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM relay_info WHERE key = 'org_name'")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Remembers the hash of a fresh setup secret, replacing any earlier
    /// one. Only meaningful while nobody is registered.
    pub async fn set_setup_secret(&self, secret: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO relay_info (key, value) VALUES ('setup_secret_hash', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(hex::encode(&super::people::secret_hash(secret)))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
