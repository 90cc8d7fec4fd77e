//! The HTTP side of unlocking a locked phone: a nonce to answer, then a proof of the passcode signed by the phone's lock key, answered with the share or with how many guesses are left.
//!
//! A locked phone cannot sign in (its device key is locked too), so these
//! come before any socket, limited per network like registrations. No guess
//! is counted for a request the phone's lock key did not sign or for a nonce
//! that is not the one handed out (SECURITY.md, "The lost phone").

use crate::api_error::ApiError;
use crate::clock::now;
use crate::store::locks::{UnlockRefusal, Unlocked};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use huddle_core::hex;
use huddle_core::passcode::{
    nonce_request_transcript, ClockRefusal, NonceAnswer, NonceRequest, UnlockAnswer, UnlockRequest,
    NONCE_LEN_UNLOCK, PROOF_LEN,
};
use huddle_core::retention::UnixMillis;

/// How far a nonce request's time may be from the relay's.
const NONCE_REQUEST_SKEW_MILLIS: u64 = 5 * 60 * 1000;

fn refused(refusal: UnlockRefusal) -> ApiError {
    let (status, error, message) = match refusal {
        UnlockRefusal::NoLock => (
            StatusCode::NOT_FOUND,
            "no_lock",
            "This phone has no passcode set with Huddle.",
        ),
        UnlockRefusal::Revoked => (
            StatusCode::FORBIDDEN,
            "revoked",
            "This phone was signed out of Huddle.",
        ),
        UnlockRefusal::StaleNonce => (
            StatusCode::CONFLICT,
            "stale_nonce",
            "That took too long. Try again.",
        ),
        UnlockRefusal::BadSignature => (
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "This request did not come from the phone it names.",
        ),
    };
    ApiError {
        status,
        error,
        message: message.to_owned(),
    }
}

fn unreadable(what: &'static str) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        error: "unreadable",
        message: format!("The {what} is not readable."),
    }
}

fn store_failed(error: crate::store::StoreError) -> ApiError {
    tracing::error!(%error, "unlock: database error");
    ApiError::unavailable("The relay could not check this. Try again in a minute.")
}

/// Hex of a bounded size.
fn unhex(text: &str, max: usize) -> Option<Vec<u8>> {
    if text.len() > max * 2 {
        return None;
    }
    hex::decode(text)
}

/// Unlocks a network may ask for a minute (each is two requests): a home's
/// Wi-Fi, behind one address, with every phone unlocking after its two
/// minutes' idle lock, stays well inside it. Apart from registrations, so
/// that neither can use up the other's allowance.
pub const UNLOCK_REQUESTS_PER_MINUTE: u32 = 240;

/// In front of `/api/unlock/nonce` and `/api/unlock`: each costs a
/// signature check before any device is known, so each network may make
/// only so many. (Guesses themselves are limited per device, by the count.)
pub async fn limit(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let allowed = crate::registration::network_of(&request)
        .map_or(Ok(()), |key| state.unlock_limiter.take(key, now().0, 1));
    match allowed {
        Ok(()) => next.run(request).await,
        Err(retry_after_ms) => crate::registration::too_many_requests(retry_after_ms),
    }
}

/// `POST /api/unlock/nonce`: a fresh nonce for the device's next unlock.
pub async fn nonce(
    State(state): State<AppState>,
    Json(request): Json<NonceRequest>,
) -> Result<Json<NonceAnswer>, Response> {
    let now = now();
    if request.at.abs_diff(now.0) > NONCE_REQUEST_SKEW_MILLIS {
        let refusal = ClockRefusal {
            error: "clock".into(),
            message: "This phone's clock is too far from the relay's. Set the phone's time, then try again.".into(),
            relay_time: now.0,
        };
        return Err((StatusCode::BAD_REQUEST, Json(refusal)).into_response());
    }
    nonce_for(&state, request, now)
        .await
        .map_err(IntoResponse::into_response)
}

/// A nonce for a request whose time is the relay's, give or take.
async fn nonce_for(
    state: &AppState,
    request: NonceRequest,
    now: UnixMillis,
) -> Result<Json<NonceAnswer>, ApiError> {
    let signature = unhex(&request.signature, 128).ok_or_else(|| unreadable("signature"))?;
    let transcript = nonce_request_transcript(request.device, request.at);
    let signed = |lock_key: &[u8]| crate::auth::verify_signature(lock_key, &transcript, &signature);
    let mut nonce = [0u8; NONCE_LEN_UNLOCK];
    getrandom::getrandom(&mut nonce)
        .map_err(|_| ApiError::unavailable("No secure random numbers."))?;
    state
        .store
        .unlock_nonce(request.device, &nonce, signed, now)
        .await
        .map_err(store_failed)?
        .map_err(refused)?;
    Ok(Json(NonceAnswer {
        nonce: hex::encode(&nonce),
    }))
}

/// `POST /api/unlock`: checks a proof of the passcode.
pub async fn unlock(
    State(state): State<AppState>,
    Json(request): Json<UnlockRequest>,
) -> Result<Json<UnlockAnswer>, ApiError> {
    let nonce: [u8; NONCE_LEN_UNLOCK] = unhex(&request.nonce, NONCE_LEN_UNLOCK)
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| unreadable("nonce"))?;
    let proof = unhex(&request.proof, PROOF_LEN).ok_or_else(|| unreadable("proof"))?;
    let signature = unhex(&request.signature, 128).ok_or_else(|| unreadable("signature"))?;
    let outcome = state
        .store
        .try_unlock(request.device, &nonce, &proof, &signature, now())
        .await
        .map_err(store_failed)?
        .map_err(refused)?;
    Ok(Json(match outcome {
        Unlocked::Released(share) => UnlockAnswer::Unlocked {
            share: hex::encode(share.as_bytes()),
            policy: state.phone_policy,
        },
        Unlocked::Wrong { left } => UnlockAnswer::WrongPasscode { left },
        Unlocked::Destroyed => {
            // Its connections end as for any revocation.
            crate::live::bus::revoked(&state.store, &state.hub, &[request.device]).await;
            UnlockAnswer::Wiped
        }
    }))
}
