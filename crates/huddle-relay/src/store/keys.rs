//! Key packages: each device publishes some, single use, and one last-resort package; whoever adds the device to a group claims one.

use super::{id16, Engine, Store, StoreError};
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::wire::ClaimedKeyPackage;

/// How many unclaimed single-use key packages a device may keep on the relay.
pub const MAX_KEY_PACKAGES_PER_DEVICE: i64 = 100;

impl Store {
    /// Stores a device's key packages; a new last-resort package replaces the old one.
    pub async fn publish_key_packages(
        &self,
        device: DeviceId,
        key_packages: &[Vec<u8>],
        last_resort: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let device = &device.as_bytes()[..];
        let mut tx = self.begin_write().await?;
        for data in key_packages {
            sqlx::query(
                "INSERT INTO key_packages (device_id, last_resort, data) VALUES ($1, 0, $2)",
            )
            .bind(device)
            .bind(data.as_slice())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(data) = last_resort {
            sqlx::query("DELETE FROM key_packages WHERE device_id = $1 AND last_resort = 1")
                .bind(device)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO key_packages (device_id, last_resort, data) VALUES ($1, 1, $2)",
            )
            .bind(device)
            .bind(data)
            .execute(&mut *tx)
            .await?;
        }
        // Keep only the newest packages: a device cannot fill the disk.
        sqlx::query(
            "DELETE FROM key_packages WHERE device_id = $1 AND last_resort = 0 AND id NOT IN
             (SELECT id FROM key_packages WHERE device_id = $1 AND last_resort = 0 ORDER BY id DESC LIMIT $2)",
        )
        .bind(device)
        .bind(MAX_KEY_PACKAGES_PER_DEVICE)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One key package for each current device of each person: a
    /// single-use one (deleted as it is handed out) or the last-resort one.
    pub async fn claim_key_packages(
        &self,
        users: &[UserId],
    ) -> Result<Vec<ClaimedKeyPackage>, StoreError> {
        // Two devices claiming at once must each get a different single-use
        // package. SQLite serialises writers; on PostgreSQL the second would
        // wait for the first's row and then find it gone, so it skips rows
        // another claim holds and takes the next.
        let take_single_use = match self.engine {
            Engine::Sqlite => {
                "DELETE FROM key_packages WHERE id =
                 (SELECT id FROM key_packages WHERE device_id = $1 AND last_resort = 0 ORDER BY id LIMIT 1)
                 RETURNING data"
            }
            Engine::Postgres => {
                "DELETE FROM key_packages WHERE id =
                 (SELECT id FROM key_packages WHERE device_id = $1 AND last_resort = 0 ORDER BY id LIMIT 1
                  FOR UPDATE SKIP LOCKED)
                 RETURNING data"
            }
        };
        let mut claimed = Vec::new();
        let mut tx = self.begin_write().await?;
        for user in users {
            let devices: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT id FROM devices WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id",
            )
            .bind(&user.as_bytes()[..])
            .fetch_all(&mut *tx)
            .await?;
            for device in devices {
                let single: Option<Vec<u8>> = sqlx::query_scalar(take_single_use)
                    .bind(device.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                let data = match single {
                    Some(data) => Some(data),
                    None => sqlx::query_scalar(
                        "SELECT data FROM key_packages WHERE device_id = $1 AND last_resort = 1",
                    )
                    .bind(device.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?,
                };
                if let Some(key_package) = data {
                    claimed.push(ClaimedKeyPackage {
                        user: *user,
                        device: DeviceId::from_bytes(id16(&device)?),
                        key_package,
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }
}
