//! The typed messages between the page's main thread and the crypto worker.
//!
//! Only requests and results cross this boundary: ciphertext, public keys,
//! envelopes to seal and envelopes opened. The device's private key, the
//! MLS group secrets and the worker's storage key stay on the worker's side.

use huddle_core::ids::{ClientMessageId, DeviceId, GroupId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::MembershipChange;
use huddle_mls::{CommitOut, DeviceIdentity, GroupProfile, Incoming, JoinedGroup, Sealed};
use serde::{Deserialize, Serialize};

/// One request, with the id its answer will carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    pub id: u32,
    pub request: WorkerRequest,
}

/// One answer, paired with its request by `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    pub id: u32,
    pub result: Result<WorkerResponse, WorkerError>,
}

/// What the main thread asks of the crypto worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerRequest {
    /// Is the worker loaded and able to answer?
    Ping,
    /// Loads this device's key and MLS state from the worker's encrypted
    /// store, or creates them on first use. Everything else needs this first.
    OpenDevice {
        identity: DeviceIdentity,
    },
    /// Before the device has an identity: makes (or reuses) the key it will
    /// register with, and signs the relay's registration transcript with it.
    /// `OpenDevice` adopts that key once the relay has said who we are.
    PrepareRegistration {
        transcript: Vec<u8>,
    },
    /// Signs the relay's authentication transcript with the device key.
    SignChallenge {
        transcript: Vec<u8>,
    },
    /// Fresh key packages for the relay (single use, or the last-resort one).
    KeyPackages {
        count: u32,
        last_resort: bool,
    },
    CreateGroup {
        group: GroupId,
        profile: GroupProfile,
    },
    AddMembers {
        group: GroupId,
        key_packages: Vec<Vec<u8>>,
    },
    RemoveMembers {
        group: GroupId,
        devices: Vec<DeviceId>,
    },
    SelfUpdate {
        group: GroupId,
    },
    Leave {
        group: GroupId,
    },
    /// The relay accepted this device's commit and the log reached it.
    MergePendingCommit {
        group: GroupId,
    },
    /// Another commit won the epoch.
    DiscardPendingCommit {
        group: GroupId,
    },
    Join {
        welcome: Vec<u8>,
    },
    Seal {
        group: GroupId,
        client_msg: ClientMessageId,
        expires_at: UnixMillis,
        envelope: Vec<u8>,
    },
    Open {
        group: GroupId,
        message: Vec<u8>,
        declared: Option<MembershipChange>,
        now: UnixMillis,
    },
    Members {
        group: GroupId,
    },
    /// Forgets a group and its secrets (left, removed or expired).
    DeleteGroup {
        group: GroupId,
    },
    /// Remote wipe: forgets the device key and every group secret.
    Wipe,
}

/// What the crypto worker answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerResponse {
    Pong {
        /// The worker's build, so that the page can tell a stale worker.
        version: String,
        /// The MLS ciphersuite the worker speaks.
        ciphersuite: String,
    },
    DeviceReady {
        /// Whether the key was made just now (first run on this device).
        created: bool,
        /// This device's half of a safety number.
        fingerprint: String,
        public_key: Vec<u8>,
    },
    Signature {
        signature: Vec<u8>,
    },
    /// The key to register, and its signature over the registration transcript.
    Registration {
        public_key: Vec<u8>,
        signature: Vec<u8>,
    },
    KeyPackages {
        key_packages: Vec<Vec<u8>>,
    },
    Done,
    Commit(CommitOut),
    /// A proposal to send (a leave request).
    Proposal {
        message: Vec<u8>,
    },
    Epoch {
        epoch: u64,
    },
    Joined(JoinedGroup),
    Sealed(Sealed),
    Opened(Incoming),
    Members {
        members: Vec<DeviceIdentity>,
    },
}

/// Why a request failed, in words the page can show or log (never secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct WorkerError {
    pub kind: WorkerErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerErrorKind {
    /// `OpenDevice` has not been called.
    NoDevice,
    /// The MLS layer refused (bad input, wrong epoch, unknown group...).
    Mls,
    /// The worker's store could not be read or written.
    Storage,
}
