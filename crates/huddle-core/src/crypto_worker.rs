//! What the page and the crypto worker say to each other: the requests, the answers, and what each MLS operation produces, with no key in any of them.
//!
//! MLS runs only in the crypto worker (`huddle-worker`, on `huddle-mls`).
//! The page, the session layer and their tests speak to it in these types,
//! so that none of them links MLS. What crosses: ciphertext, public
//! identities, group profiles, and message plaintext (sealed on the way in,
//! opened on the way out). What never crosses: the device's signing key,
//! group secrets and the worker's storage key.

use crate::attestation::{Identities, KeyDigest, Method};
use crate::certificate::OrgKeyFingerprint;
use crate::group::GroupProfile;
use crate::identity::DeviceIdentity;
use crate::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use crate::retention::UnixMillis;
use crate::wire::{
    ClaimedKeyPackage, DeviceCertificate, LockSecrets, MembershipChange, PhonePolicy, Refusal, Role,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroize;

/// The crypto worker's IndexedDB database, apart from the page's (the page
/// deletes it too when it wipes the phone without the worker running).
pub const WORKER_DATABASE: &str = "huddle-worker";

/// Message plaintext (an encoded [`crate::Envelope`]) on its way to be
/// sealed or just opened. It prints its length only, and is wiped from
/// memory when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Plaintext(Vec<u8>);

impl Plaintext {
    pub fn new(bytes: Vec<u8>) -> Self {
        Plaintext(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The private half of a one-time invite key: it goes into the invite
/// link's fragment and nowhere else. Prints as `InviteKey(***)`; wiped
/// from memory when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InviteKey(Vec<u8>);

impl InviteKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        InviteKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for InviteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteKey(***)")
    }
}

impl Drop for InviteKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A passcode on its way to the worker, the only place it is stretched.
/// Prints as `PasscodeText(***)`; wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasscodeText(String);

impl PasscodeText {
    pub fn new(typed: String) -> Self {
        PasscodeText(typed)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasscodeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasscodeText(***)")
    }
}

impl Drop for PasscodeText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The page's data key, crossing to the worker to be wrapped under the
/// unlock key when a passcode is set, and back when the phone is unlocked.
/// Prints as `PageKey(***)`; wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PageKey(Vec<u8>);

impl PageKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        PageKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PageKey(***)")
    }
}

impl Drop for PageKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Whether this phone is locked by a passcode, read before anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStatus {
    /// A passcode locks the phone: nothing opens without it.
    pub locked: bool,
    /// The phone has not unlocked with the relay for longer than the
    /// organisation allows: it must wipe itself now.
    pub away_too_long: bool,
    /// Until when it can be unlocked without the relay; `None` if it
    /// cannot (never allowed, or the time is over and the copy deleted).
    pub offline_until: Option<UnixMillis>,
}

/// How an unlock went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnlockOutcome {
    /// The passcode was right: the page's key, and what the organisation
    /// asks of its phones (the worker has opened its own store).
    Unlocked {
        page_key: PageKey,
        policy: PhonePolicy,
    },
    /// It was wrong. `left` guesses remain: with the relay before it
    /// destroys this phone's share (`offline`: false), or on this phone
    /// before its offline copy is deleted (`offline`: true).
    WrongPasscode { left: u32, offline: bool },
    /// Ten wrong passcodes: the relay destroyed the share, and the worker
    /// has deleted its store. The page must wipe now.
    Wiped,
    /// The relay says this phone was signed out: wipe now.
    SignedOut,
    /// The relay cannot be reached and this phone may not be unlocked
    /// without it (never allowed, too long since the last unlock, or too
    /// many wrong guesses here).
    NeedsRelay,
    /// The relay refused: the phone's clock is too far from the relay's.
    ClockWrong,
    /// The relay no longer knows this phone's passcode (restored from an
    /// older backup, say), and there is no offline copy to open it with:
    /// it can never be unlocked.
    NotKnown,
}

/// A sealed application message, ready for a `Submit` frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub epoch: u64,
    pub ciphertext: Vec<u8>,
}

/// A commit made by this device, waiting for the relay to accept it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitOut {
    /// The epoch the commit was made in (the relay orders on it).
    pub epoch: u64,
    pub commit: Vec<u8>,
    /// For the devices it adds.
    pub welcome: Option<Vec<u8>>,
    /// What it does, declared to the relay and checked by every member.
    pub change: MembershipChange,
}

/// A group this device has joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedGroup {
    pub group: GroupId,
    pub epoch: u64,
    pub profile: GroupProfile,
    pub members: Vec<DeviceIdentity>,
}

/// What opening a delivered message did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Incoming {
    /// An application message: the envelope and who sent it.
    Message {
        sender: DeviceIdentity,
        /// The sender's certificate (as MLS authenticated it) makes her an
        /// administrator: who may settle a shift is read from here, never
        /// from the relay's directory.
        sender_is_administrator: bool,
        client_msg: ClientMessageId,
        /// The expiry this device enforces (the claim, capped by the group's retention).
        expires_at: UnixMillis,
        epoch: u64,
        envelope: Plaintext,
    },
    /// A message that had expired before it arrived: opened (the ratchet
    /// must move on) and dropped.
    Expired { client_msg: ClientMessageId },
    /// A commit that changed who is in the group.
    MembershipChanged {
        epoch: u64,
        added: Vec<DeviceIdentity>,
        removed: Vec<DeviceIdentity>,
        /// This device was removed: the group is gone from it.
        removed_self: bool,
    },
    /// A commit that only renewed keys (or changed the profile).
    EpochChanged { epoch: u64, profile: GroupProfile },
    /// A member asked to leave; an administrator's next commit applies it.
    LeaveRequested { member: DeviceIdentity },
}

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
    /// Adds the devices the relay handed key packages out for; each key
    /// package must be certified for the person and device named with it.
    AddMembers {
        group: GroupId,
        key_packages: Vec<ClaimedKeyPackage>,
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
        now: UnixMillis,
    },
    /// Another commit won the epoch.
    DiscardPendingCommit {
        group: GroupId,
    },
    Join {
        welcome: Vec<u8>,
    },
    /// Restarts a stopped group's encryption in `chain` with a key package
    /// for each member the worker holds that `active` (the organisation's
    /// directory) still lists; answered by a `Commit`, pending until the
    /// relay accepts it like any commit.
    Restart {
        group: GroupId,
        chain: u32,
        key_packages: Vec<ClaimedKeyPackage>,
        active: Vec<DeviceId>,
    },
    /// Joins another member's restart of `group` into `chain` (what the
    /// log's entry announced), if the welcome is that restart's, made by
    /// `sender` (the device the relay authenticated), and its members are
    /// the ones held (less those `active` no longer lists).
    JoinRestart {
        welcome: Vec<u8>,
        group: GroupId,
        chain: u32,
        sender: DeviceId,
        active: Vec<DeviceId>,
    },
    /// Forgets a restart of this device's that the relay refused (and
    /// nothing else).
    DiscardPendingRestart {
        group: GroupId,
    },
    Seal {
        group: GroupId,
        client_msg: ClientMessageId,
        expires_at: UnixMillis,
        envelope: Plaintext,
    },
    Open {
        group: GroupId,
        message: Vec<u8>,
        /// The device the relay authenticated as the sender.
        sender: DeviceId,
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
    /// Setup: makes the organisation key on this phone and certifies this
    /// device as the first administrator's.
    FoundOrganisation {
        display_name: String,
        now: UnixMillis,
    },
    /// An administrator certifies an invite the relay has made: answered by
    /// `InviteCertified`.
    CertifyInvite {
        user: UserId,
        display_name: String,
        role: Role,
        expires_at: UnixMillis,
        now: UnixMillis,
    },
    /// A joining phone checks the invite the relay handed over against the
    /// organisation key fingerprint from its link, and certifies itself
    /// with the invite key from the link.
    AcceptInvite {
        certificate: Vec<u8>,
        invite_key: InviteKey,
        org_key: OrgKeyFingerprint,
        now: UnixMillis,
    },
    /// Of these groups, those where this device should renew its keys now
    /// (a week since its last commit there, or a member removed since):
    /// answered by `Groups`.
    KeysDue {
        groups: Vec<GroupId>,
        now: UnixMillis,
    },
    /// This device's certificate chain, for the relay to hand to
    /// colleagues: answered by `Certificate`.
    OwnCertificate,
    /// Checks colleagues' chains and the attestations about them against
    /// the pinned organisation key: answered by `Identities` with what
    /// holds, about `users` only. The devices of `users` met in `groups`
    /// are added (the relay cannot hide them), and this device is always
    /// described from its own key, never from the relay's copy.
    CheckIdentities {
        users: Vec<UserId>,
        groups: Vec<GroupId>,
        devices: Vec<DeviceCertificate>,
        attestations: Vec<Vec<u8>>,
    },
    /// This phone checked `subject`'s key in person: answered by
    /// `Attestation`, signed with the device key.
    Attest {
        subject: DeviceIdentity,
        subject_key: KeyDigest,
        method: Method,
        now: UnixMillis,
    },
    /// Whether a passcode locks this phone (answered by `LockStatus`).
    /// Deletes the offline copy of the share once its time is over.
    LockStatus {
        now: UnixMillis,
    },
    /// Prepares a passcode lock: stretches the passcode, makes the share and
    /// the lock key, and wraps both data keys under the unlock key, in
    /// memory only. Answered by `PasscodeLock`, what the relay is to keep;
    /// `CommitPasscode` stores it once the relay has.
    SetPasscode {
        passcode: PasscodeText,
        page_key: PageKey,
        org: OrgId,
        device: DeviceId,
        policy: PhonePolicy,
        now: UnixMillis,
    },
    /// The relay keeps the lock: store it, and delete the data keys kept
    /// any other way.
    CommitPasscode,
    /// Unlocks with the relay (or, without it, within the grace period):
    /// answered by `Unlock`.
    Unlock {
        passcode: PasscodeText,
        now: UnixMillis,
    },
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
        /// The organisation key this device trusts; `None` until certified.
        org_key: Option<OrgKeyFingerprint>,
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
    Groups {
        groups: Vec<GroupId>,
    },
    /// This device is certified, under this organisation key.
    Certified {
        org_key: OrgKeyFingerprint,
    },
    /// The invite's certificate (for the relay) and key (for the link).
    InviteCertified {
        certificate: Vec<u8>,
        invite_key: InviteKey,
        org_key: OrgKeyFingerprint,
    },
    /// This device's certificate chain (public).
    Certificate {
        chain: Vec<u8>,
    },
    /// Colleagues' devices and attestations that checked out.
    Identities(Identities),
    /// An encoded attestation, for the relay.
    Attestation {
        attestation: Vec<u8>,
    },
    LockStatus(LockStatus),
    /// What the relay is to keep of a new passcode lock.
    PasscodeLock {
        /// The lock key's public half (SEC1).
        lock_key: Vec<u8>,
        secrets: LockSecrets,
    },
    Unlock(UnlockOutcome),
}

/// Why a request failed, in words for logs (never secrets). What the person
/// is told is decided by the page from the kind.
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
    /// Something did not come from who it claims to: a certificate that
    /// does not check out, a sender other than the one the relay named, a
    /// commit that does not make the change it declared. `refusal` says
    /// which, for the relay's audit log.
    Untrusted(Refusal),
    /// The worker's store could not be read or written.
    Storage,
    /// A passcode locks the phone, and it has not been unlocked.
    Locked,
    /// The passcode is not one Huddle accepts (the message says why).
    Passcode,
    /// A commit of this device waits in the group: nothing else can be
    /// made there until it is merged or discarded.
    CommitPending,
}

#[cfg(test)]
mod tests;
