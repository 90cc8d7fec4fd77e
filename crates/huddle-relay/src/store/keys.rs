//! Key packages: each device publishes some, single use, and one last-resort package; whoever adds the device to a group claims one.
//!
//! Both publishing and claiming write, and a device may do either often, so
//! both go through the group-commit writers (`group_commit.rs`) as writes of
//! a batch: they share its fsync and take their turn with everyone's messages.

use super::log::{rows, Write, Written};
use super::{id16, Engine, Store, StoreError};
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::wire::ClaimedKeyPackage;
use sqlx::AnyConnection;

/// How many unclaimed single-use key packages a device may keep on the relay;
/// also the most one frame may publish.
pub const MAX_KEY_PACKAGES_PER_DEVICE: usize = 100;

/// The largest key package the relay stores. An MLS key package with a
/// P-384 credential is under 1 KiB; an X.509 chain makes it a few.
pub const MAX_KEY_PACKAGE_BYTES: usize = 16 * 1024;

/// The most people one claim may ask for.
pub const MAX_CLAIM_USERS: usize = 100;

/// Why a frame of key packages was refused before anything was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyPackageRefusal {
    #[error("publish at most {MAX_KEY_PACKAGES_PER_DEVICE} key packages at a time")]
    TooMany,
    #[error("a key package is at most {MAX_KEY_PACKAGE_BYTES} bytes")]
    TooLarge,
    #[error("ask for at most {MAX_CLAIM_USERS} people at a time")]
    TooManyPeople,
}

/// Checks a publication against the limits.
pub fn check_publication(
    key_packages: &[Vec<u8>],
    last_resort: Option<&[u8]>,
) -> Result<(), KeyPackageRefusal> {
    if key_packages.len() > MAX_KEY_PACKAGES_PER_DEVICE {
        return Err(KeyPackageRefusal::TooMany);
    }
    let too_large = |data: &[u8]| data.len() > MAX_KEY_PACKAGE_BYTES;
    if key_packages.iter().any(|data| too_large(data)) || last_resort.is_some_and(too_large) {
        return Err(KeyPackageRefusal::TooLarge);
    }
    Ok(())
}

/// Checks a claim against the limits.
pub fn check_claim(users: &[UserId]) -> Result<(), KeyPackageRefusal> {
    if users.len() > MAX_CLAIM_USERS {
        return Err(KeyPackageRefusal::TooManyPeople);
    }
    Ok(())
}

/// Stores a device's key packages inside the open transaction; a new
/// last-resort package replaces the old one, and only the newest
/// [`MAX_KEY_PACKAGES_PER_DEVICE`] single-use ones are kept.
pub(crate) async fn publish(
    tx: &mut AnyConnection,
    device: DeviceId,
    key_packages: &[Vec<u8>],
    last_resort: Option<&[u8]>,
) -> Result<(), StoreError> {
    let device = &device.as_bytes()[..];
    // Only the newest are kept, so only they are written.
    let skip = key_packages
        .len()
        .saturating_sub(MAX_KEY_PACKAGES_PER_DEVICE);
    let kept = &key_packages[skip..];
    if !kept.is_empty() {
        // One statement for the lot.
        let sql = format!(
            "INSERT INTO key_packages (device_id, last_resort, data) VALUES {}",
            rows(2, kept.len(), |n| format!("($1, 0, ${n})"))
        );
        let mut query = sqlx::query(&sql).bind(device);
        for data in kept {
            query = query.bind(data.as_slice());
        }
        query.execute(&mut *tx).await?;
    }
    if let Some(data) = last_resort {
        sqlx::query("DELETE FROM key_packages WHERE device_id = $1 AND last_resort = 1")
            .bind(device)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO key_packages (device_id, last_resort, data) VALUES ($1, 1, $2)")
            .bind(device)
            .bind(data)
            .execute(&mut *tx)
            .await?;
    }
    if !key_packages.is_empty() {
        // A device cannot fill the disk.
        sqlx::query(
            "DELETE FROM key_packages WHERE device_id = $1 AND last_resort = 0 AND id NOT IN
             (SELECT id FROM key_packages WHERE device_id = $1 AND last_resort = 0 ORDER BY id DESC LIMIT $2)",
        )
        .bind(device)
        .bind(MAX_KEY_PACKAGES_PER_DEVICE as i64)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// One key package for each current device of each person, inside the open
/// transaction: a single-use one (deleted as it is handed out) or the
/// last-resort one.
pub(crate) async fn claim(
    tx: &mut AnyConnection,
    engine: Engine,
    users: &[UserId],
) -> Result<Vec<ClaimedKeyPackage>, StoreError> {
    // Two devices claiming at once must each get a different single-use
    // package. SQLite serialises writers; on PostgreSQL the second would
    // wait for the first's row and then find it gone, so it skips rows
    // another claim holds and takes the next.
    let take_single_use = match engine {
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
            let data =
                match single {
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
    Ok(claimed)
}

impl Store {
    /// Stores a device's key packages in a transaction of its own (tools and
    /// tests; connections go through the writers).
    pub async fn publish_key_packages(
        &self,
        device: DeviceId,
        key_packages: &[Vec<u8>],
        last_resort: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let write = Write::PublishKeyPackages {
            device,
            key_packages: key_packages.to_vec(),
            last_resort: last_resort.map(<[u8]>::to_vec),
        };
        match self
            .write_batch(std::slice::from_ref(&write), &())
            .await
            .pop()
        {
            Some(Written::KeyPackagesPublished(outcome)) => outcome,
            _ => Err(StoreError::NotCommitted(
                "the write produced no outcome".into(),
            )),
        }
    }

    /// Claims key packages in a transaction of its own (tools and tests).
    pub async fn claim_key_packages(
        &self,
        users: &[UserId],
    ) -> Result<Vec<ClaimedKeyPackage>, StoreError> {
        let write = Write::ClaimKeyPackages {
            users: users.to_vec(),
        };
        match self
            .write_batch(std::slice::from_ref(&write), &())
            .await
            .pop()
        {
            Some(Written::KeyPackagesClaimed(outcome)) => outcome,
            _ => Err(StoreError::NotCommitted(
                "the write produced no outcome".into(),
            )),
        }
    }
}
