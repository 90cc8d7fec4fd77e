//! Joining: the first-run setup link and invites, from the link's secret to a device the relay knows.
//!
//! The crypto worker makes the device key and signs the registration
//! transcript; the relay answers with the organisation and person the device
//! now belongs to; only then is the MLS device opened under that identity.

use crate::platform::browser;
use crate::platform::crypto_worker::CryptoWorkerClient;
use crate::platform::idb::{IdbDatabase, DATABASE_NAME};
use crate::state::records::Session;
use huddle_core::ids::{DeviceId, OrgId, UserId};
use huddle_core::wire::registration_transcript;
use huddle_mls::DeviceIdentity;
use huddle_worker::{WorkerRequest, WorkerResponse};
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

/// Lowercase hex, as link secrets are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether a link's secret has the right shape (before asking the relay).
pub fn secret_looks_complete(secret: &str) -> bool {
    unhex(secret.trim()).is_some_and(|s| s.len() == 32)
}

/// Registers this phone with a link; on success the device is open in the
/// returned worker and the session is saved.
pub async fn register(
    kind: LinkKind,
    secret: &str,
    org_name: &str,
    display_name: &str,
) -> Result<(IdbDatabase, Session, CryptoWorkerClient), String> {
    let secret = secret.trim();
    let secret_bytes = unhex(secret)
        .filter(|s| s.len() == 32)
        .ok_or("This link is incomplete. Open the whole link again, or scan the code again.")?;
    let device = DeviceId::from_bytes(browser::random_id());
    let worker = CryptoWorkerClient::spawn().map_err(|e| e.to_string())?;
    let transcript = registration_transcript(&secret_bytes, device);
    let (public_key, signature) = match worker
        .request(WorkerRequest::PrepareRegistration { transcript })
        .await
    {
        Ok(Ok(WorkerResponse::Registration {
            public_key,
            signature,
        })) => (public_key, signature),
        Ok(Err(e)) => return Err(format!("This phone could not make its key: {e}")),
        Ok(Ok(_)) => return Err("This phone could not make its key.".into()),
        Err(e) => return Err(e.to_string()),
    };
    let body = serde_json::to_string(&RegisterDevice {
        secret,
        org_name,
        display_name,
        device,
        public_key: hex(&public_key),
        signature: hex(&signature),
    })
    .map_err(|_| "This phone could not write its request.".to_owned())?;
    let path = match kind {
        LinkKind::Setup => "/api/setup",
        LinkKind::Invite => "/api/join",
    };
    let (status, text) = browser::post_json(path, &body).await.map_err(|()| {
        "Huddle could not reach your team's server. Check your connection and try again.".to_owned()
    })?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<ApiError>(&text)
            .map(|e| e.message)
            .unwrap_or_else(|_| format!("The server refused this link (error {status})."));
        return Err(message);
    }
    let registered: Registered = serde_json::from_str(&text)
        .map_err(|_| "The server's answer was unreadable. Try again.".to_owned())?;
    if registered.device != device {
        return Err("The server registered a different device. Try again.".into());
    }
    let identity = DeviceIdentity {
        org: registered.org,
        user: registered.user,
        device,
    };
    match worker.request(WorkerRequest::OpenDevice { identity }).await {
        Ok(Ok(WorkerResponse::DeviceReady { .. })) => {}
        Ok(Err(e)) => return Err(format!("This phone could not open its key: {e}")),
        _ => return Err("This phone could not open its key.".into()),
    }
    let session = Session {
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
    let db = IdbDatabase::open_sealed(DATABASE_NAME)
        .await
        .map_err(|e| e.to_string())?;
    db.save_session(&session).await.map_err(|e| e.to_string())?;
    // Ask the browser to keep Huddle's storage; a refusal is not an error.
    let _ = browser::persist_storage().await;
    Ok((db, session, worker))
}
