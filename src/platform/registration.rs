//! Joining: the first-run setup link and invites, from the link's secret to a device the relay knows.
//!
//! The crypto worker makes the device key and signs the registration
//! transcript; the relay answers with the organisation and person the device
//! now belongs to; only then is the MLS device opened under that identity.

use super::browser;
use super::cache::IdbCache;
use super::crypto_worker::WorkerCrypto;
use crate::state::words::JoinError;
use huddle_core::certificate::OrgKeyFingerprint;
use huddle_core::crypto_worker::{InviteKey, WorkerRequest, WorkerResponse};
use huddle_core::hex;
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{DeviceId, OrgId, UserId};
use huddle_core::wire::{registration_transcript, PhonePolicy};
use huddle_session::{CacheWrite, Crypto, Enrolment, Standing};
use serde::{Deserialize, Serialize};

/// Which link is being used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Setup,
    Invite,
}

#[derive(Serialize)]
struct RegisterDevice<'a> {
    secret: &'a str,
    org_name: &'a str,
    display_name: &'a str,
    device: DeviceId,
    public_key: String,
    signature: String,
}

#[derive(Deserialize)]
struct Registered {
    org: OrgId,
    user: UserId,
    device: DeviceId,
    display_name: String,
    administrator: bool,
    #[serde(default)]
    org_name: String,
    /// The invite's certificate, as hex (invites only).
    #[serde(default)]
    invite_certificate: Option<String>,
}

/// What an invite link's fragment carries: the relay's secret (sent to the
/// relay), the invite key and the organisation key's fingerprint (both
/// kept on this phone).
struct InviteLink {
    secret: String,
    invite_key: InviteKey,
    org_key: OrgKeyFingerprint,
}

impl InviteLink {
    fn parse(fragment: &str) -> Option<InviteLink> {
        let mut parts = fragment.trim().split('.');
        let secret = parts.next()?;
        hex::decode_array::<32>(secret)?;
        let invite_key = hex::decode_array::<48>(parts.next()?)?;
        let org_key = OrgKeyFingerprint::from_hex(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(InviteLink {
            secret: secret.to_owned(),
            invite_key: InviteKey::new(invite_key.to_vec()),
            org_key,
        })
    }
}

#[derive(Deserialize)]
struct ApiError {
    message: String,
}

/// Whether a link's fragment has the right shape (before asking the relay).
pub fn secret_looks_complete(kind: LinkKind, fragment: &str) -> bool {
    match kind {
        LinkKind::Setup => hex::decode_array::<32>(fragment.trim()).is_some(),
        LinkKind::Invite => InviteLink::parse(fragment).is_some(),
    }
}

/// Registers this phone with a link; on success the device is open in the
/// returned worker and the enrolment is saved in the returned cache.
pub async fn register(
    kind: LinkKind,
    secret: &str,
    org_name: &str,
    display_name: &str,
) -> Result<(IdbCache, Enrolment, WorkerCrypto), JoinError> {
    let invite = match kind {
        LinkKind::Setup => None,
        LinkKind::Invite => Some(InviteLink::parse(secret).ok_or(JoinError::Incomplete)?),
    };
    let secret = match &invite {
        Some(invite) => invite.secret.as_str(),
        None => secret.trim(),
    };
    let secret_bytes = hex::decode_array::<32>(secret).ok_or(JoinError::Incomplete)?;
    let device = DeviceId::from_bytes(browser::random_id());
    let worker = WorkerCrypto::spawn().map_err(JoinError::NoKey)?;
    let transcript = registration_transcript(&secret_bytes, device);
    let (public_key, signature) = match worker
        .request(WorkerRequest::PrepareRegistration { transcript })
        .await
        .map_err(JoinError::NoKey)?
    {
        WorkerResponse::Registration {
            public_key,
            signature,
        } => (public_key, signature),
        _ => return Err(JoinError::NoKey(huddle_session::CryptoError::Stopped)),
    };
    let body = serde_json::to_string(&RegisterDevice {
        secret,
        org_name,
        display_name,
        device,
        public_key: hex::encode(&public_key),
        signature: hex::encode(&signature),
    })
    .map_err(|_| JoinError::Unreadable)?;
    let path = match kind {
        LinkKind::Setup => "/api/setup",
        LinkKind::Invite => "/api/join",
    };
    let (status, text) = browser::post_json(path, &body)
        .await
        .map_err(|()| JoinError::Unreachable)?;
    if !(200..300).contains(&status) {
        // The relay's refusals are sentences written for the person.
        return Err(match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => JoinError::Refused(error.message),
            Err(_) => JoinError::RefusedWithStatus(status),
        });
    }
    let registered: Registered = serde_json::from_str(&text).map_err(|_| JoinError::Unreadable)?;
    if registered.device != device {
        return Err(JoinError::WrongDevice);
    }
    let identity = DeviceIdentity {
        org: registered.org,
        user: registered.user,
        device,
    };
    match worker
        .request(WorkerRequest::OpenDevice { identity })
        .await
        .map_err(JoinError::NoKey)?
    {
        WorkerResponse::DeviceReady { .. } => {}
        _ => return Err(JoinError::NoKey(huddle_session::CryptoError::Stopped)),
    }
    // Certify the device: the first administrator founds the organisation
    // key; everyone else checks the invite against the link and certifies
    // themselves with the invite key.
    let certify = match invite {
        None => WorkerRequest::FoundOrganisation {
            display_name: registered.display_name.clone(),
            now: browser::now(),
        },
        Some(invite) => WorkerRequest::AcceptInvite {
            certificate: registered
                .invite_certificate
                .as_deref()
                .and_then(hex::decode)
                .ok_or_else(|| JoinError::Untrusted("the server sent no certificate".into()))?,
            invite_key: invite.invite_key,
            org_key: invite.org_key,
            now: browser::now(),
        },
    };
    match worker.request(certify).await {
        Ok(WorkerResponse::Certified { .. }) => {}
        Err(huddle_session::CryptoError::Refused(error)) => {
            return Err(JoinError::Untrusted(error.message))
        }
        Err(error) => return Err(JoinError::NoKey(error)),
        Ok(_) => return Err(JoinError::NoKey(huddle_session::CryptoError::Stopped)),
    }
    let enrolment = Enrolment {
        org: registered.org,
        org_name: if registered.org_name.is_empty() {
            org_name.to_owned()
        } else {
            registered.org_name
        },
        user: registered.user,
        device,
        display_name: registered.display_name,
        administrator: registered.administrator,
        key_packages_published: false,
    };
    let cache = IdbCache::open()
        .await
        .map_err(JoinError::Storage)?
        .unlock()
        .await
        .map_err(JoinError::Storage)?;
    // The relay has just answered: the phone's first standing is saved with
    // its enrolment, so that a phone that never signs in afterwards still
    // wipes itself once it has been away too long. The organisation's own
    // limit replaces the default at the first sign-in.
    let now = browser::now();
    let standing = Standing {
        latest_seen: now,
        last_reached_relay: now,
        max_offline_millis: PhonePolicy::default()
            .max_offline_secs
            .saturating_mul(1_000),
    };
    huddle_session::Cache::write(
        &cache,
        vec![
            CacheWrite::Enrolment(enrolment.clone()),
            CacheWrite::Standing(standing),
        ],
    )
    .await
    .map_err(JoinError::Storage)?;
    // Ask the browser to keep Huddle's storage, without waiting for the
    // answer: some browsers ask the person, and joining must never hang on
    // a permission prompt (a refusal is not an error either).
    wasm_bindgen_futures::spawn_local(async {
        let _ = browser::persist_storage().await;
    });
    Ok((cache, enrolment, worker))
}
