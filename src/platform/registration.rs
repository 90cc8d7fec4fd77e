//! Joining: the first-run setup link and invites, from the link's secret to a device the relay knows.
//!
//! The crypto worker makes the device key and signs the registration
//! transcript; the relay answers with the organisation and person the device
//! now belongs to; only then is the MLS device opened under that identity.

use super::browser;
use super::cache::IdbCache;
use super::crypto_worker::WorkerCrypto;
use crate::state::words::JoinError;
use huddle_core::crypto_worker::{WorkerRequest, WorkerResponse};
use huddle_core::hex;
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{DeviceId, OrgId, UserId};
use huddle_core::wire::registration_transcript;
use huddle_session::{CacheWrite, Crypto, Enrolment};
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
}

#[derive(Deserialize)]
struct ApiError {
    message: String,
}

/// Whether a link's secret has the right shape (before asking the relay).
pub fn secret_looks_complete(secret: &str) -> bool {
    hex::decode_array::<32>(secret.trim()).is_some()
}

/// Registers this phone with a link; on success the device is open in the
/// returned worker and the enrolment is saved in the returned cache.
pub async fn register(
    kind: LinkKind,
    secret: &str,
    org_name: &str,
    display_name: &str,
) -> Result<(IdbCache, Enrolment, WorkerCrypto), JoinError> {
    let secret = secret.trim();
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
    huddle_session::Cache::write(&cache, vec![CacheWrite::Enrolment(enrolment.clone())])
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
