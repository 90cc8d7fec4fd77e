//! Who each device is and who checked whom in person: devices' certificate chains and attestations, kept for colleagues' phones to check.
//!
//! Both are public and both are checked by every phone that reads them
//! (SECURITY.md, "Verification in person"); the relay checks only what it
//! can without the organisation key, so that it stores nothing under the
//! wrong name: a chain must name the device that publishes it and certify
//! the key it signs in with; an attestation must name its sender as the
//! attester and a device of this organisation as its subject.

use super::{id16, to_i64, Store, StoreError};
use huddle_core::attestation::{Attestation, KeyDigest};
use huddle_core::certificate::Chain;
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::DeviceCertificate;

/// The most attestations about one device an answer carries: the newest,
/// one per attester, from attesters whose phones are not revoked.
pub const ATTESTATIONS_PER_DEVICE: i64 = 8;

/// The most bytes of chains and attestations one answer carries, well
/// inside the frame limit whatever people publish.
pub const MAX_IDENTITIES_BYTES: usize = 1024 * 1024;

/// Why a chain or an attestation was not kept, in words for the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRefusal {
    Unreadable,
    NotYours,
    UnknownSubject,
}

impl IdentityRefusal {
    pub fn words(self) -> &'static str {
        match self {
            IdentityRefusal::Unreadable => {
                "That is not a certificate or attestation Huddle can read."
            }
            IdentityRefusal::NotYours => {
                "A device can only publish its own certificate and its own attestations."
            }
            IdentityRefusal::UnknownSubject => "That device is not one of this organisation's.",
        }
    }
}

/// The chains and attestations about some people, as stored.
#[derive(Debug, Default)]
pub struct StoredIdentities {
    pub devices: Vec<DeviceCertificate>,
    pub attestations: Vec<Vec<u8>>,
}

impl Store {
    /// Keeps `chain` as `device`'s certificate if it names `device` and
    /// certifies the key the device registered.
    pub async fn publish_certificate(
        &self,
        device: DeviceIdentity,
        chain: &[u8],
    ) -> Result<Result<(), IdentityRefusal>, StoreError> {
        let Ok(parsed) = Chain::from_credential_bytes(chain) else {
            return Ok(Err(IdentityRefusal::Unreadable));
        };
        if parsed.claimed_identity() != Some(device) {
            return Ok(Err(IdentityRefusal::NotYours));
        }
        let registered: Option<(Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT public_key, certificate FROM devices WHERE id = $1 AND user_id = $2",
        )
        .bind(&device.device.as_bytes()[..])
        .bind(&device.user.as_bytes()[..])
        .fetch_optional(&self.pool)
        .await?;
        let Some((public_key, stored)) = registered else {
            return Ok(Err(IdentityRefusal::NotYours));
        };
        let certified = parsed
            .leaf()
            .map(|leaf| leaf.statement.public_key.as_slice());
        if Some(public_key.as_slice()) != certified {
            return Ok(Err(IdentityRefusal::NotYours));
        }
        // Published after every sign-in: most times, nothing changed.
        if stored.as_deref() == Some(chain) {
            return Ok(Ok(()));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE devices SET certificate = $2 WHERE id = $1")
            .bind(&device.device.as_bytes()[..])
            .bind(chain)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Keeps an attestation `attester` made, replacing its earlier word
    /// about the same device.
    pub async fn attest(
        &self,
        attester: DeviceIdentity,
        bytes: &[u8],
        now: UnixMillis,
    ) -> Result<Result<(), IdentityRefusal>, StoreError> {
        let Ok(attestation) = Attestation::from_bytes(bytes) else {
            return Ok(Err(IdentityRefusal::Unreadable));
        };
        let statement = &attestation.statement;
        if statement.attester != attester
            || attestation.attester_chain.claimed_identity() != Some(attester)
        {
            return Ok(Err(IdentityRefusal::NotYours));
        }
        let subject = statement.subject;
        if subject.org != attester.org || subject.user == attester.user {
            return Ok(Err(IdentityRefusal::UnknownSubject));
        }
        // The attester's chain must certify the key she signs in with, and
        // the key she vouches for must be the subject's.
        let attester_key = attestation
            .attester_chain
            .leaf()
            .map(|leaf| leaf.statement.public_key.clone());
        if self.registered_key(attester).await? != attester_key {
            return Ok(Err(IdentityRefusal::NotYours));
        }
        match self.registered_key(subject).await? {
            Some(key) if KeyDigest::of(&key) == statement.subject_key => {}
            _ => return Ok(Err(IdentityRefusal::UnknownSubject)),
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO attestations (attester_device, subject_device, subject_user, attestation, made_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (attester_device, subject_device)
             DO UPDATE SET attestation = excluded.attestation, made_at = excluded.made_at",
        )
        .bind(&attester.device.as_bytes()[..])
        .bind(&subject.device.as_bytes()[..])
        .bind(&subject.user.as_bytes()[..])
        .bind(bytes)
        .bind(to_i64(now.0))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The key a device of this organisation registered with, if it is
    /// not revoked.
    async fn registered_key(&self, device: DeviceIdentity) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT public_key FROM devices WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(&device.device.as_bytes()[..])
        .bind(&device.user.as_bytes()[..])
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The chains of `users`' devices that are not revoked, and the newest
    /// attestations about them, up to [`MAX_IDENTITIES_BYTES`].
    pub async fn identities(&self, users: &[UserId]) -> Result<StoredIdentities, StoreError> {
        let mut found = StoredIdentities::default();
        let mut bytes = 0usize;
        let mut users = users.to_vec();
        users.sort();
        users.dedup();
        for user in &users {
            let chains: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
                "SELECT id, certificate FROM devices
                 WHERE user_id = $1 AND revoked_at IS NULL AND certificate IS NOT NULL
                 ORDER BY id",
            )
            .bind(&user.as_bytes()[..])
            .fetch_all(&self.pool)
            .await?;
            for (device, chain) in chains {
                bytes += chain.len();
                if bytes > MAX_IDENTITIES_BYTES {
                    return Ok(found);
                }
                found.devices.push(DeviceCertificate {
                    user: *user,
                    device: DeviceId::from_bytes(id16(&device)?),
                    chain,
                });
            }
            // Per device (a person's second phone must not be crowded out by
            // her first), from attesters still in the team.
            let attestations: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT attestation FROM (
                     SELECT a.attestation, a.made_at,
                            ROW_NUMBER() OVER (PARTITION BY a.subject_device ORDER BY a.made_at DESC) AS nth
                     FROM attestations a
                     JOIN devices s ON s.id = a.subject_device AND s.revoked_at IS NULL
                     JOIN devices d ON d.id = a.attester_device AND d.revoked_at IS NULL
                     JOIN users u ON u.id = d.user_id AND u.revoked_at IS NULL
                     WHERE a.subject_user = $1
                 ) ranked WHERE nth <= $2 ORDER BY made_at DESC",
            )
            .bind(&user.as_bytes()[..])
            .bind(ATTESTATIONS_PER_DEVICE)
            .fetch_all(&self.pool)
            .await?;
            for attestation in attestations {
                bytes += attestation.len();
                if bytes > MAX_IDENTITIES_BYTES {
                    return Ok(found);
                }
                found.attestations.push(attestation);
            }
        }
        Ok(found)
    }
}
