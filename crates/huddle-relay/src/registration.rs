//! The HTTP side of joining: completing the first-run setup link, and using an invite to register a person's first device.
//!
//! Both take the secret from the link, the device's id and P-384 public key,
//! and a signature by that key over the registration transcript, which
//! proves the device holds the key it registers. Refusals say what happened
//! and what to do; nothing changes on a refusal.

use crate::api_error::ApiError;
use crate::auth::verify_signature;
use crate::clock::now;
use crate::socket::limits::NetworkKey;
use crate::store::people::{Joined, LinkRefusal};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::wire::registration_transcript;
use huddle_core::wire::Role;
use serde::{Deserialize, Serialize};

/// What the page sends to register this device.
#[derive(Debug, Deserialize)]
pub struct RegisterDevice {
    /// The secret from the link, as hex.
    pub secret: String,
    /// For setup: the organisation's name. Ignored when joining.
    #[serde(default)]
    pub org_name: String,
    /// The name colleagues will see. For an invite, empty keeps the name on
    /// the invite.
    #[serde(default)]
    pub display_name: String,
    pub device: DeviceId,
    /// SEC1-encoded P-384 public key, as hex.
    pub public_key: String,
    /// DER ECDSA signature over the registration transcript, as hex.
    pub signature: String,
}

/// Who the device now belongs to.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registered {
    pub org: huddle_core::ids::OrgId,
    pub user: UserId,
    pub device: DeviceId,
    pub display_name: String,
    pub administrator: bool,
    /// The invite's certificate, as hex (absent for the setup link): the
    /// joining phone checks it and certifies itself with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_certificate: Option<String>,
    /// The organisation's name, for the app's title bar.
    pub org_name: String,
}

/// Hex from a request, refused beyond any size a key or signature has.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() > 4096 {
        return None;
    }
    huddle_core::hex::decode(text)
}

fn bad_request(error: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        error,
        message: message.into(),
    }
}

fn refusal(refusal: LinkRefusal) -> ApiError {
    let (status, error) = match refusal {
        LinkRefusal::Unknown => (StatusCode::NOT_FOUND, "unknown_link"),
        LinkRefusal::Used => (StatusCode::GONE, "invite_used"),
        LinkRefusal::Expired => (StatusCode::GONE, "invite_expired"),
        LinkRefusal::Revoked => (StatusCode::GONE, "invite_revoked"),
        LinkRefusal::AlreadySetUp => (StatusCode::CONFLICT, "already_set_up"),
        LinkRefusal::BadProof => (StatusCode::BAD_REQUEST, "bad_proof"),
        LinkRefusal::DeviceExists => (StatusCode::CONFLICT, "device_exists"),
        LinkRefusal::BadName => (StatusCode::BAD_REQUEST, "bad_name"),
        LinkRefusal::NotCertified => (StatusCode::CONFLICT, "invite_not_certified"),
    };
    ApiError {
        status,
        error,
        message: refusal.to_string(),
    }
}

struct Checked {
    secret: Vec<u8>,
    public_key: Vec<u8>,
}

fn check(request: &RegisterDevice) -> Result<Checked, ApiError> {
    let secret = unhex(&request.secret)
        .filter(|s| s.len() == 32)
        .ok_or_else(|| {
            bad_request(
                "bad_secret",
                "The link is incomplete. Open the whole link again.",
            )
        })?;
    let public_key = unhex(&request.public_key)
        .ok_or_else(|| bad_request("bad_key", "The device's key is not readable."))?;
    let signature = unhex(&request.signature)
        .ok_or_else(|| bad_request("bad_proof", "The device's signature is not readable."))?;
    if !verify_signature(
        &public_key,
        &registration_transcript(&secret, request.device),
        &signature,
    ) {
        return Err(refusal(LinkRefusal::BadProof));
    }
    Ok(Checked { secret, public_key })
}

async fn registered(state: &AppState, device: DeviceId, joined: Joined) -> Json<Registered> {
    // The name is only a title: a read failure leaves it empty rather than
    // failing a registration that has already committed.
    let org_name = state
        .store
        .org_name()
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    Json(Registered {
        org: state.org,
        user: joined.user,
        device,
        display_name: joined.display_name,
        administrator: joined.role == Role::Administrator,
        org_name,
        invite_certificate: joined
            .invite_certificate
            .as_deref()
            .map(huddle_core::hex::encode),
    })
}

fn store_failed(error: crate::store::StoreError) -> ApiError {
    tracing::error!(%error, "registration: database error");
    ApiError::unavailable("The relay could not save this. Try again in a minute.")
}

/// In front of `/api/setup` and `/api/join`: each costs the relay a
/// signature check without a signed-in device to charge, so each network,
/// and everyone together, may make only so many a minute. Past it: 429,
/// with when to try again.
pub async fn limit(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let now = now().0;
    let allowed = network_of(&request)
        .map_or(Ok(()), |key| state.registration_limiter.take(key, now, 1))
        .and_then(|()| state.all_registrations.take((), now, 1));
    match allowed {
        Ok(()) => next.run(request).await,
        Err(retry_after_ms) => too_many_requests(retry_after_ms),
    }
}

/// The network a request came from (an IPv6 address's /64).
pub fn network_of(request: &axum::extract::Request) -> Option<NetworkKey> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| NetworkKey::from(info.0.ip()))
}

/// 429, with when to try again.
pub fn too_many_requests(retry_after_ms: u32) -> axum::response::Response {
    let seconds = retry_after_ms.div_ceil(1000).max(1);
    let error = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        error: "too_many_requests",
        message: format!("Too many requests from here at once. Try again in {seconds} seconds."),
    };
    let mut response = error.into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(seconds),
    );
    response
}

/// `POST /api/setup`: the first administrator, from the first-run link.
pub async fn setup(
    State(state): State<AppState>,
    Json(request): Json<RegisterDevice>,
) -> Result<Json<Registered>, ApiError> {
    let checked = check(&request)?;
    let mut user = [0u8; 16];
    getrandom::getrandom(&mut user)
        .map_err(|_| ApiError::unavailable("No secure random numbers."))?;
    let result = state
        .store
        .complete_setup(
            &checked.secret,
            &request.org_name,
            &request.display_name,
            UserId::from_bytes(user),
            request.device,
            &checked.public_key,
            now(),
        )
        .await
        .map_err(store_failed)?;
    match result {
        Ok(joined) => {
            tracing::info!(device = %request.device, "organisation set up");
            Ok(registered(&state, request.device, joined).await)
        }
        Err(why) => Err(refusal(why)),
    }
}

/// `POST /api/join`: a person's first device, from an invite.
pub async fn join(
    State(state): State<AppState>,
    Json(request): Json<RegisterDevice>,
) -> Result<Json<Registered>, ApiError> {
    let checked = check(&request)?;
    let result = state
        .store
        .redeem_invite(
            &checked.secret,
            request.device,
            &checked.public_key,
            &request.display_name,
            now(),
        )
        .await
        .map_err(store_failed)?;
    match result {
        Ok(joined) => {
            tracing::info!(device = %request.device, "a person joined");
            Ok(registered(&state, request.device, joined).await)
        }
        Err(why) => {
            tracing::info!(reason = ?why, "an invite was refused");
            Err(refusal(why))
        }
    }
}
