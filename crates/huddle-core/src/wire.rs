//! The wire frames between a device and the relay: one definition, used by the app and the relay alike.
//!
//! One WebSocket per device carries binary frames. Each frame is
//! `version` (a postcard varint) followed by a postcard-encoded
//! [`ClientFrame`] or [`ServerFrame`]. New frame kinds are appended to the
//! enums, never inserted, so older bytes keep their meaning; the frozen
//! vectors in `wire/tests.rs` hold that promise.
//!
//! The relay sees what it needs to order and deliver messages (group, epoch,
//! sequence number, expiry, the declared membership change of a commit) and
//! nothing else: payloads are MLS ciphertext that it cannot open.

use crate::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use crate::retention::{GroupKind, RetentionSecs, UnixMillis};
use serde::{Deserialize, Serialize};

/// The frame format this version speaks.
pub const WIRE_VERSION: u16 = 1;

/// The largest frame either side accepts. A welcome for a large group carries
/// the whole ratchet tree, which is why this is larger than a message.
pub const MAX_FRAME_BYTES: usize = 2 * 1024 * 1024;

/// The largest application ciphertext the relay stores.
pub const MAX_APPLICATION_BYTES: usize = 128 * 1024;

/// What a device signs to prove it holds its key: a fixed label, the relay's
/// nonce and the device id, so that a signature is useless anywhere else.
pub fn auth_transcript(nonce: &[u8; 32], device: DeviceId) -> Vec<u8> {
    const LABEL: &[u8] = b"huddle relay authentication v1";
    let mut transcript = Vec::with_capacity(LABEL.len() + 32 + 16);
    transcript.extend_from_slice(LABEL);
    transcript.extend_from_slice(nonce);
    transcript.extend_from_slice(device.as_bytes());
    transcript
}

/// What a device signs to register with a setup link or an invite: proof
/// that it holds the key it registers, bound to the link's secret.
pub fn registration_transcript(secret: &[u8], device: DeviceId) -> Vec<u8> {
    let mut transcript = b"huddle device registration v1".to_vec();
    transcript.extend_from_slice(secret);
    transcript.extend_from_slice(device.as_bytes());
    transcript
}

/// Pairs a request with its answer on one connection.
pub type RequestId = u32;

/// The secret of a one-time link (an invite): whoever holds it may join.
/// It goes into the link and its QR code and nowhere else: it prints as
/// `LinkSecret(***)` and is wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkSecret(pub [u8; 32]);

impl LinkSecret {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSecret(***)")
    }
}

/// A passcode lock's secret parts on their way to the relay: the verifier
/// and the share. Prints as `LockSecrets(***)`; wiped from memory when
/// dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockSecrets {
    pub verifier: Vec<u8>,
    pub share: Vec<u8>,
}

impl std::fmt::Debug for LockSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockSecrets(***)")
    }
}

impl Drop for LockSecrets {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.verifier);
        zeroize::Zeroize::zeroize(&mut self.share);
    }
}

impl Drop for LinkSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A position in a group's log: the last sequence number a device has processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCursor {
    pub group: GroupId,
    pub seq: u64,
}

/// Epochs on the wire carry a group's chain in their high 32 bits (how many
/// times its encryption has been restarted, see [`MembershipChange::create`])
/// and the MLS epoch within that chain in their low 32: every epoch of a
/// chain lies above every epoch of the chain before, so the relay's ordering
/// refuses anything made in an earlier chain as stale.
pub const fn wire_epoch(chain: u32, mls_epoch: u64) -> u64 {
    ((chain as u64) << 32) | (mls_epoch & 0xffff_ffff)
}

/// The chain an epoch on the wire belongs to (see [`wire_epoch`]).
pub const fn chain_of_epoch(epoch: u64) -> u32 {
    (epoch >> 32) as u32
}

/// The MLS group id of a Huddle group in `chain`: the Huddle id alone for the
/// first chain, followed by the chain number (4 bytes, big-endian) after
/// each restart. The relay reads it in a commit's clear header.
pub fn mls_group_id_bytes(group: GroupId, chain: u32) -> Vec<u8> {
    let mut bytes = group.as_bytes().to_vec();
    if chain > 0 {
        bytes.extend_from_slice(&chain.to_be_bytes());
    }
    bytes
}

/// The MLS epoch inside its chain of an epoch on the wire (see [`wire_epoch`]).
pub const fn mls_epoch_of(epoch: u64) -> u64 {
    epoch & 0xffff_ffff
}

/// The epoch a restart to `chain` is made in: the chain's first.
pub const fn restart_epoch(chain: u32) -> u64 {
    wire_epoch(chain, 0)
}

/// How often a group's encryption may be restarted, at most.
pub const RESTART_EVERY_MILLIS: u64 = 60_000;

/// A group's type and retention time, as the relay enforces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub kind: GroupKind,
    pub retention: RetentionSecs,
}

/// The membership change a commit makes, declared so that the relay can check
/// permissions and route welcomes. Members check that the MLS commit makes
/// exactly this change and reject it otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// Set on the first commit of a new group, and on a restart of an
    /// existing group's encryption (a new MLS group of the same members, in
    /// the next chain: its epoch is [`restart_epoch`]), which repairs a
    /// group whose phones stopped at a commit they could not open.
    pub create: Option<GroupSpec>,
    pub add: Vec<DeviceId>,
    pub remove: Vec<DeviceId>,
}

impl MembershipChange {
    /// Whether a commit made in `epoch` with this change restarts an
    /// existing group's encryption (rather than creating the group).
    pub fn is_restart(&self, epoch: u64) -> bool {
        self.create.is_some() && chain_of_epoch(epoch) > 0
    }

    /// The bytes the relay stores with a commit (the same encoding as on the wire).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a membership change always serialises into a Vec")
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match postcard::take_from_bytes(bytes) {
            Ok((change, [])) => Some(change),
            _ => None,
        }
    }
}

/// What is appended to a group's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// An MLS application message (a sealed envelope).
    Application { ciphertext: Vec<u8> },
    /// An MLS commit, the welcome for the devices it adds, and the change it declares.
    Commit {
        commit: Vec<u8>,
        welcome: Option<Vec<u8>>,
        change: MembershipChange,
    },
    /// An MLS application message that takes another message's content
    /// off every phone (a sealed [`crate::removal::Removal`]), naming that
    /// message's id so that the relay empties its ciphertext as it stores
    /// this one. Stored and delivered as an application message.
    Removing {
        ciphertext: Vec<u8>,
        removes: ClientMessageId,
    },
}

impl Payload {
    pub fn kind(&self) -> EntryKind {
        match self {
            Payload::Application { .. } | Payload::Removing { .. } => EntryKind::Application,
            Payload::Commit { .. } => EntryKind::Commit,
        }
    }
}

/// A device asks the relay to append to a group's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub client_msg: ClientMessageId,
    pub group: GroupId,
    /// The MLS epoch the payload was made in. For a commit, the relay accepts
    /// only the first one per (group, epoch).
    pub epoch: u64,
    /// When an application message must be deleted everywhere.
    pub expires_at: Option<UnixMillis>,
    pub payload: Payload,
}

/// The kind of a log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    Application,
    Commit,
}

/// One entry of a group's log, as the relay delivers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub group: GroupId,
    pub seq: u64,
    pub epoch: u64,
    pub sender: DeviceId,
    pub client_msg: ClientMessageId,
    pub kind: EntryKind,
    pub expires_at: Option<UnixMillis>,
    /// The MLS message: a commit or an application message.
    pub payload: Vec<u8>,
}

/// A key package the relay handed out for one device of a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKeyPackage {
    pub user: UserId,
    pub device: DeviceId,
    pub key_package: Vec<u8>,
}

/// Why the relay did not append a submission.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// Another commit for this epoch was accepted first. Process the log up
    /// to `current_epoch` and make the commit again.
    #[error("the group has moved on to epoch {current_epoch}")]
    StaleEpoch { current_epoch: u64 },
    #[error("this group does not exist")]
    UnknownGroup,
    #[error("this device is not a member of the group")]
    NotAMember,
    #[error("only an administrator can change this group")]
    NotPermitted,
    #[error("the retention time is not allowed for this group type")]
    InvalidRetention,
    #[error("the message has already expired")]
    Expired,
    #[error("the message is too large (the limit is {max} bytes)")]
    TooLarge { max: u32 },
    #[error("too many messages; try again in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u32 },
    #[error("the commit does not match the group: {0}")]
    InvalidCommit(String),
    /// The sending device, or its person, has been revoked.
    #[error("this device has been signed out")]
    Revoked,
    /// The group's encryption was restarted less than a minute ago: a
    /// restart waits for it (see [`RESTART_EVERY_MILLIS`]).
    #[error("the group was repaired less than a minute ago")]
    RepairedRecently,
}

impl Rejection {
    /// Whether sending again (after catching up, or after a pause) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Rejection::StaleEpoch { .. } | Rejection::RateLimited { .. }
        )
    }
}

/// Problems with a frame as a whole, reported in [`ServerFrame::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    Malformed,
    UnsupportedVersion,
    NotAuthenticated,
    AuthenticationFailed,
    Revoked,
    TooLarge,
    RateLimited,
    Internal,
}

/// Frames a device sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// The answer to [`ServerFrame::Challenge`]: a signature over
    /// [`auth_transcript`] with the device key.
    Authenticate {
        device: DeviceId,
        signature: Vec<u8>,
    },
    /// Where this device is in each of its groups. The relay answers with each
    /// group's backlog, then [`ServerFrame::Synced`], then live traffic.
    Sync {
        cursors: Vec<GroupCursor>,
    },
    /// Append to a group's log; answered by `Accepted` or `Rejected`.
    Submit(Submission),
    /// Everything up to `seq` in `group` has been processed and stored.
    Ack {
        group: GroupId,
        seq: u64,
    },
    PublishKeyPackages {
        request: RequestId,
        key_packages: Vec<Vec<u8>>,
        last_resort: Option<Vec<u8>>,
    },
    /// One key package for each device of each person.
    ClaimKeyPackages {
        request: RequestId,
        users: Vec<UserId>,
    },
    Ping {
        nonce: u64,
    },
    // Administration (administrators only; answered by `Done`, `Refused`,
    // or the named answer).
    /// A one-time invite for a named person; answered by `InviteCreated`.
    CreateInvite {
        request: RequestId,
        display_name: String,
        role: Role,
        valid_for_secs: u64,
    },
    /// Withdraws an unused invite (named by the person it would create).
    RevokeInvite {
        request: RequestId,
        user: UserId,
    },
    /// Ends a device's connections at once and refuses it afterwards.
    /// Administrators may revoke any device; anyone, her own.
    RevokeDevice {
        request: RequestId,
        device: DeviceId,
    },
    /// Revokes a person and every device of theirs.
    RevokeUser {
        request: RequestId,
        user: UserId,
    },
    /// The people of the organisation (anyone may ask); answered by `People`.
    Directory {
        request: RequestId,
    },
    /// The audit log, newest first; answered by `Audit`.
    ReadAudit {
        request: RequestId,
        before: Option<u64>,
        limit: u32,
    },
    /// The certificate an administrator's phone made for an unused invite
    /// (the chain from the organisation key to the invite's key), for the
    /// relay to hand to whoever redeems the invite. The relay cannot make
    /// one and does not need to read it.
    AttachInviteCertificate {
        request: RequestId,
        user: UserId,
        certificate: Vec<u8>,
    },
    /// As `CreateInvite`, for a person whose id the administrator's phone
    /// chose: the phone certifies the invite for that id, so the relay
    /// cannot make it stand for someone who already exists. Refused if
    /// the id is taken.
    CreateInviteFor {
        request: RequestId,
        user: UserId,
        display_name: String,
        role: Role,
        valid_for_secs: u64,
    },
    /// This phone refused the entry at `seq` of `group` (which the relay
    /// says `sender` sent): recorded in the audit log for administrators.
    /// Not answered.
    ReportRefused {
        group: GroupId,
        seq: u64,
        sender: DeviceId,
        refusal: Refusal,
    },
    /// This device's certificate chain (as in its MLS credential), for the
    /// relay to hand to colleagues who check who it is. The relay keeps it
    /// only if it names this device and certifies the key this device
    /// signs in with. Answered by `Done` or `Refused`.
    PublishCertificate {
        request: RequestId,
        chain: Vec<u8>,
    },
    /// The certificate chains of these people's devices and the
    /// attestations about them (at most [`MAX_IDENTITY_USERS`] people);
    /// answered by `Identities`.
    Identities {
        request: RequestId,
        users: Vec<UserId>,
    },
    /// This device checked a colleague's device in person: an encoded
    /// `huddle_core::attestation::Attestation` it signed. Answered by
    /// `Done` or `Refused`.
    Attest {
        request: RequestId,
        attestation: Vec<u8>,
    },
    /// This device sets (or changes) its passcode lock: the public key that
    /// will sign its unlock requests (SEC1 P-384), the passcode's verifier
    /// and the relay's share of the unlock key (SECURITY.md, "The lost
    /// phone"). Answered by `Done` or `Refused`.
    SetPasscodeLock {
        request: RequestId,
        lock_key: Vec<u8>,
        secrets: LockSecrets,
    },
    /// A person's phones, with when each was added and last signed in
    /// (anyone: her own; administrators: anyone's). Answered by `Devices`.
    Devices {
        request: RequestId,
        user: UserId,
    },
    /// Phones signed out in the last [`SIGNED_OUT_SHOWN_DAYS`] days, and
    /// whether each has been told to wipe itself (administrators: everyone's;
    /// anyone else: her own). Answered by `SignedOutPhones`.
    SignedOutPhones {
        request: RequestId,
    },
    /// Administrators: as `CreateInviteFor`, for someone whose access ends
    /// at `access_ends_at` (agency and bank staff). Then the relay signs her
    /// out, as an administrator's revocation would, and the first phone of
    /// each of her groups to hear removes her by a commit. Refused for an
    /// administrator, and for an end that has passed.
    CreateInviteEnding {
        request: RequestId,
        user: UserId,
        display_name: String,
        role: Role,
        valid_for_secs: u64,
        access_ends_at: UnixMillis,
    },
    /// Administrators: moves the end of a person's access (or of an unused
    /// invite's), or lifts it (`None`). Answered by `Done`.
    SetAccessEnds {
        request: RequestId,
        user: UserId,
        ends_at: Option<UnixMillis>,
    },
    /// Administrators: the people and unused invites whose access ends.
    /// Answered by `AccessEnds`.
    AccessEnds {
        request: RequestId,
    },
    /// Administrators: the groups this device is in (not one-to-one
    /// conversations), each with when its members are next due for review.
    /// Answered by `ReviewsDue`.
    ReviewsDue {
        request: RequestId,
    },
    /// Administrators: each member of `group` was kept or removed (the
    /// removals are commits of their own): the next review falls due one
    /// review interval from now. Answered by `Done`.
    MembersReviewed {
        request: RequestId,
        group: GroupId,
        kept: u32,
        removed: u32,
    },
}

/// When a group's members are next due for review (see
/// `ClientFrame::ReviewsDue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDue {
    pub group: GroupId,
    pub due_at: UnixMillis,
    /// The last review; `None` if there has been none since it was made.
    pub reviewed_at: Option<UnixMillis>,
}

/// The furthest ahead an end of access may be set: a year.
pub const MAX_ACCESS_AHEAD_MILLIS: u64 = 366 * 24 * 60 * 60 * 1000;

/// When one person's access ends (see `ClientFrame::CreateInviteEnding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEnd {
    pub user: UserId,
    pub ends_at: UnixMillis,
    /// Whether she has yet to join (her invite is unused).
    pub invited: bool,
}

/// The most people one `Identities` request may ask about.
pub const MAX_IDENTITY_USERS: usize = 100;

/// One device's certificate chain, as its phone published it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertificate {
    pub user: UserId,
    pub device: DeviceId,
    pub chain: Vec<u8>,
}

/// Why a member's phone refused a log entry, in a fixed vocabulary (never
/// content): reported to the relay's audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Refusal {
    /// A certificate in the entry did not chain to the organisation key,
    /// or named someone else.
    Certificate,
    /// The entry was signed by another device than the relay named.
    WrongSender,
    /// A commit did not make the membership change recorded for it.
    UndeclaredChange,
    /// A commit changed a member's credential or key.
    CredentialChanged,
    /// A second leaf for a device already in the group.
    DuplicateDevice,
    /// A change or broadcast that only an administrator may make, from
    /// someone who is not one.
    NotPermitted,
    /// A restart of the group's encryption whose members are not the ones
    /// the group had (less devices signed out).
    RestartMembers,
}

impl Refusal {
    /// The words in the audit log.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Certificate => "a certificate that does not check out",
            Refusal::WrongSender => "signed by another device than the relay named",
            Refusal::UndeclaredChange => "a commit that does not make the change it declared",
            Refusal::CredentialChanged => "a commit that changes a member's identity",
            Refusal::DuplicateDevice => "a second copy of a device already in the group",
            Refusal::NotPermitted => "a change or broadcast only an administrator may make",
            Refusal::RestartMembers => "a repair of the group with other members than it had",
        }
    }
}

/// The largest invite certificate the relay stores.
pub const MAX_INVITE_CERTIFICATE_BYTES: usize = 16 * 1024;

/// What a person may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Staff,
    Administrator,
}

/// A person in the organisation's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub user: UserId,
    pub display_name: String,
    pub role: Role,
    pub devices: Vec<DeviceId>,
}

/// One of a person's phones, as her own list of phones shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSeen {
    pub device: DeviceId,
    /// When it joined.
    pub added_at: UnixMillis,
    /// When it last signed in to the relay; `None` if it has not since the
    /// relay began keeping this.
    pub last_seen: Option<UnixMillis>,
}

/// How far back the list of signed-out phones reaches.
pub const SIGNED_OUT_SHOWN_DAYS: u64 = 30;

/// The most signed-out phones one answer lists.
pub const MAX_SIGNED_OUT_PHONES: usize = 100;

/// A phone that was signed out, and whether it has been told to wipe itself: what an
/// administrator checks after signing out a lost phone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOutPhone {
    pub user: UserId,
    pub display_name: String,
    pub device: DeviceId,
    /// When it joined: tells apart the phones of one person.
    pub added_at: UnixMillis,
    pub signed_out_at: UnixMillis,
    /// When the relay told the phone to wipe itself, after the phone proved
    /// it was that phone (its signature, or its lock key's), or destroyed
    /// its share after ten wrong passcodes; `None` while the phone has not
    /// been in touch since. The app wipes itself on hearing it; a modified
    /// one need not.
    pub wiped_at: Option<UnixMillis>,
}

/// One line of the audit log: who did what to whom and when. Never content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub at: UnixMillis,
    /// The person who acted, if a person did.
    pub actor: Option<UserId>,
    /// What happened, in a fixed vocabulary ("invite created", "joined", ...).
    pub action: String,
    /// Whom or what it concerned (ids and names, never message content).
    pub subject: String,
}

/// What the organisation asks of its phones, told to each at sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhonePolicy {
    /// A phone that has not signed in to the relay for this long wipes
    /// itself when it next opens, unread messages and all (0: never).
    pub max_offline_secs: u64,
    /// The app locks after this long without a touch (0: never).
    pub lock_after_idle_secs: u64,
    /// The app locks after it has been hidden for this long (0: at once).
    pub lock_after_hidden_secs: u64,
    /// How long after its last unlock with the relay a phone may be
    /// unlocked without it (0: never offline).
    pub offline_unlock_secs: u64,
    /// How long after an urgent broadcast a member who has not acknowledged
    /// it is reminded on her phone.
    pub broadcast_reminder_secs: u64,
    /// How long after an urgent broadcast its group's administrators are
    /// told that it is not getting through, while anyone has not
    /// acknowledged it.
    pub broadcast_alert_secs: u64,
}

impl PhonePolicy {
    /// A week: the longest a lost phone kept offline keeps what it holds.
    pub const DEFAULT_MAX_OFFLINE_SECS: u64 = 7 * 24 * 60 * 60;
    /// Two minutes without a touch.
    pub const DEFAULT_LOCK_AFTER_IDLE_SECS: u64 = 2 * 60;
    /// Thirty seconds in the background.
    pub const DEFAULT_LOCK_AFTER_HIDDEN_SECS: u64 = 30;
    /// A shift and a half: a night without Wi-Fi still opens.
    pub const DEFAULT_OFFLINE_UNLOCK_SECS: u64 = 12 * 60 * 60;
    /// Ten minutes: long enough to finish with a resident, short enough
    /// for an emergency.
    pub const DEFAULT_BROADCAST_REMINDER_SECS: u64 = 10 * 60;
    /// Half an hour: time for a manager to phone round.
    pub const DEFAULT_BROADCAST_ALERT_SECS: u64 = 30 * 60;

    /// When reminders and alerts about an unacknowledged broadcast fire.
    /// The alert never comes before the reminder.
    pub fn escalation(&self) -> crate::broadcast::Escalation {
        let remind = self.broadcast_reminder_secs.saturating_mul(1000);
        crate::broadcast::Escalation {
            remind_after_millis: remind,
            alert_after_millis: self.broadcast_alert_secs.saturating_mul(1000).max(remind),
        }
    }
}

impl Default for PhonePolicy {
    fn default() -> Self {
        PhonePolicy {
            max_offline_secs: Self::DEFAULT_MAX_OFFLINE_SECS,
            lock_after_idle_secs: Self::DEFAULT_LOCK_AFTER_IDLE_SECS,
            lock_after_hidden_secs: Self::DEFAULT_LOCK_AFTER_HIDDEN_SECS,
            offline_unlock_secs: Self::DEFAULT_OFFLINE_UNLOCK_SECS,
            broadcast_reminder_secs: Self::DEFAULT_BROADCAST_REMINDER_SECS,
            broadcast_alert_secs: Self::DEFAULT_BROADCAST_ALERT_SECS,
        }
    }
}

/// Frames the relay sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// Sent first on every connection.
    Challenge {
        nonce: [u8; 32],
        relay_time: UnixMillis,
    },
    /// Authentication succeeded.
    Ready {
        org: OrgId,
        user: UserId,
        device: DeviceId,
        /// What the organisation asks of its phones.
        policy: PhonePolicy,
    },
    /// The submission is durably stored at `seq` (also sent again for a
    /// resend). The sender's own `Deliver` of the entry can come first (a
    /// resend after a lost connection, or relays sharing PostgreSQL); it
    /// means the same.
    Accepted {
        client_msg: ClientMessageId,
        group: GroupId,
        seq: u64,
    },
    Rejected {
        client_msg: ClientMessageId,
        group: GroupId,
        reason: Rejection,
    },
    Deliver(LogEntry),
    /// This device was added to a group by the commit at `seq`; its log
    /// starts after that.
    Welcome {
        group: GroupId,
        seq: u64,
        spec: GroupSpec,
        welcome: Vec<u8>,
    },
    /// The backlog asked for by `Sync` has been sent.
    Synced,
    KeyPackagesPublished {
        request: RequestId,
    },
    KeyPackages {
        request: RequestId,
        key_packages: Vec<ClaimedKeyPackage>,
    },
    Pong {
        nonce: u64,
    },
    /// A frame could not be handled; the connection carries on unless the
    /// code says otherwise.
    Error {
        code: ErrorCode,
        message: String,
    },
    /// An invite was made: the secret goes into the link and QR code and is
    /// not stored by the relay (only its hash is).
    InviteCreated {
        request: RequestId,
        user: UserId,
        secret: LinkSecret,
        expires_at: UnixMillis,
    },
    /// An administration request was carried out.
    Done {
        request: RequestId,
    },
    /// An administration request was refused, with the reason in words.
    Refused {
        request: RequestId,
        reason: String,
    },
    People {
        request: RequestId,
        people: Vec<Person>,
    },
    Audit {
        request: RequestId,
        entries: Vec<AuditEntry>,
    },
    /// Entries of `group` up to `up_to` that follow the device's cursor no
    /// longer exist (expired, or handshakes everyone has passed): there is
    /// nothing to wait for. Sent within a backlog, before the next entry.
    Skipped {
        group: GroupId,
        up_to: u64,
    },
    /// A commit, with the membership change its sender declared and the
    /// relay recorded: every member checks that the commit makes exactly
    /// that change (commits never come as plain `Deliver`).
    DeliverCommit {
        entry: LogEntry,
        declared: MembershipChange,
    },
    /// The answer to `Identities`: the chains of the people's devices that
    /// are not revoked, and the attestations about them, newest first.
    /// Unchecked: every phone checks each one itself.
    Identities {
        request: RequestId,
        devices: Vec<DeviceCertificate>,
        attestations: Vec<Vec<u8>>,
    },
    /// Devices that were revoked but are still members of groups this
    /// device is in: any member may remove them by a commit, and should.
    /// Sent after `Ready` when there are any, and again while connected
    /// when a device is revoked.
    RevokedMembers {
        groups: Vec<RevokedInGroup>,
    },
    /// A person's phones, oldest first.
    Devices {
        request: RequestId,
        devices: Vec<DeviceSeen>,
    },
    /// Phones signed out recently, newest first.
    SignedOutPhones {
        request: RequestId,
        phones: Vec<SignedOutPhone>,
    },
    /// The answer to `AccessEnds`: soonest first.
    AccessEnds {
        request: RequestId,
        people: Vec<AccessEnd>,
    },
    /// The answer to `ReviewsDue`: soonest first.
    ReviewsDue {
        request: RequestId,
        groups: Vec<ReviewDue>,
    },
}

/// One group's revoked members (see `ServerFrame::RevokedMembers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedInGroup {
    pub group: GroupId,
    pub devices: Vec<DeviceId>,
}

/// Why bytes are not a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the frame is too large ({len} bytes; the limit is {max})")]
    TooLarge { len: usize, max: usize },
    #[error("frame version {0} is not supported by this version of Huddle")]
    UnsupportedVersion(u16),
    #[error("the frame is malformed")]
    Malformed,
}

impl ClientFrame {
    pub fn encode(&self) -> Vec<u8> {
        encode_frame(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        decode_frame(bytes)
    }
}

impl ServerFrame {
    /// The frame that delivers a stored entry: commits with their
    /// declaration, messages as they are.
    pub fn delivery(entry: LogEntry, declared: Option<MembershipChange>) -> ServerFrame {
        match (entry.kind, declared) {
            (EntryKind::Commit, Some(declared)) => ServerFrame::DeliverCommit { entry, declared },
            _ => ServerFrame::Deliver(entry),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_frame(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        decode_frame(bytes)
    }

    /// The log entry a delivery carries (a message or a commit).
    pub fn delivered(&self) -> Option<&LogEntry> {
        match self {
            ServerFrame::Deliver(entry) | ServerFrame::DeliverCommit { entry, .. } => Some(entry),
            _ => None,
        }
    }
}

fn encode_frame<T: Serialize>(frame: &T) -> Vec<u8> {
    // The version is written first, then the frame: the same bytes as the
    // tuple. Serialising these plain types into a Vec cannot fail (postcard
    // fails only on unsized sequences or a full fixed buffer).
    postcard::to_allocvec(&(WIRE_VERSION, frame)).expect("frames always serialise into a Vec")
}

fn decode_frame<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    let (version, rest): (u16, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|_| WireError::Malformed)?;
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    let (frame, rest): (T, &[u8]) =
        postcard::take_from_bytes(rest).map_err(|_| WireError::Malformed)?;
    if !rest.is_empty() {
        return Err(WireError::Malformed);
    }
    Ok(frame)
}

#[cfg(test)]
mod tests;
