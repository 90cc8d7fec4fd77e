//! A device's MLS state and every group operation Huddle needs: key packages, create, add, remove, update, leave, seal and open.
//!
//! This is the crate's API; OpenMLS types stay inside. Messages in and out
//! are plain bytes (TLS-encoded MLS messages) and results are Huddle types,
//! so that the crypto worker and the tests never touch OpenMLS directly.

use crate::identity::DeviceSigner;
use crate::profile::{GroupProfile, ProfileError, PROFILE_EXTENSION_TYPE};
use crate::provider::{HuddleProvider, SignatureCheck, CIPHERSUITE};
use crate::state::{storage_from_entries, StateChange, StateJournal};
use crate::trust::{Trust, TrustError, Verifier};
use huddle_core::broadcast::MLS_PADDING_BYTES;
use huddle_core::certificate::{
    check_names, CertificateError, Chain, InviteCertificate, OrgKeyFingerprint,
};
use huddle_core::crypto_worker::InviteKey;
use huddle_core::crypto_worker::{CommitOut, Incoming, JoinedGroup, Plaintext, Sealed};
use huddle_core::envelope::Envelope;
use huddle_core::identity::{DeviceIdentity, Fingerprint};
use huddle_core::ids::UserId;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId};
use huddle_core::retention::{effective_expiry, GroupKind, UnixMillis};
use huddle_core::wire::Role;
use huddle_core::wire::{wire_epoch, ClaimedKeyPackage, MembershipChange};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_memory_storage::MemoryStorage;
use openmls_traits::OpenMlsProvider;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod restart;

/// The format of what Huddle puts in MLS `authenticated_data`.
pub const AAD_VERSION: u16 = 1;

/// Key packages stay valid this long (the OpenMLS default is about 3 months).
const KEY_PACKAGE_LIFETIME_SECS: u64 = 60 * 60 * 24 * 28;

/// Where the device's trust (its chain and the pinned organisation key) is
/// kept among the MLS state entries, so that it is saved, sealed and wiped
/// with them. OpenMLS's own keys start with its labels, never with this.
const TRUST_ENTRY: &[u8] = b"huddle:trust";

/// Where the organisation key is kept, on the phone that made it.
const ORG_KEY_ENTRY: &[u8] = b"huddle:organisation-key";

/// Where the time of this device's last commit in a group is kept (the
/// group id follows): a commit renews the device's own leaf, so this is
/// when its keys in the group last rotated.
const ROTATED_ENTRY: &[u8] = b"huddle:rotated:";

/// Where a group's chain is kept (the group id follows): how many times its
/// encryption has been restarted, which is part of its MLS group id.
const CHAIN_ENTRY: &[u8] = b"huddle:chain:";

/// Where a restart this device made, not yet accepted by the relay, is kept
/// (the group id follows): the chain it starts. The restarted group itself
/// is stored by OpenMLS under its own MLS group id beside the old one.
const RESTART_ENTRY: &[u8] = b"huddle:restart:";

/// How long a device keeps the same leaf keys in a group while it is used.
pub const ROTATE_KEYS_EVERY_MILLIS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The organisation key's halves, as stored.
#[derive(Serialize, Deserialize)]
struct OrgKeyRecord {
    private: zeroize::Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

/// What every application message carries in MLS `authenticated_data`:
/// readable by the relay, and authenticated for members (a change to it
/// makes the message fail to open).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAad {
    pub version: u16,
    pub client_msg: ClientMessageId,
    pub expires_at: UnixMillis,
}

impl MessageAad {
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("the AAD always serialises into a Vec")
    }
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let aad: MessageAad = postcard::from_bytes(bytes).ok()?;
        (aad.version == AAD_VERSION).then_some(aad)
    }
}

/// Why an operation failed. Every path from untrusted bytes ends here,
/// never in a panic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MlsError {
    #[error("this device is not in that group")]
    UnknownGroup,
    #[error("the message is not a valid MLS message")]
    Malformed,
    #[error("the message is for a different group")]
    WrongGroup,
    #[error("the message is from epoch {message}, and the group is at epoch {group}")]
    WrongEpoch { message: u64, group: u64 },
    #[error("the message was rejected: {0}")]
    Rejected(String),
    #[error("the sender's credential is not a Huddle credential")]
    BadCredential,
    #[error("a certificate is not acceptable: {0}")]
    Untrusted(#[from] CertificateError),
    #[error("this device has no certificate yet")]
    NotCertified,
    #[error("{0}")]
    Trust(#[from] TrustError),
    #[error("the relay says device {relay} sent this, but it was signed by device {signed}")]
    WrongSender { relay: DeviceId, signed: DeviceId },
    #[error("a member's credential or key changed inside a commit")]
    CredentialChanged,
    #[error("a device is in the group twice")]
    DuplicateDevice,
    #[error("only an administrator may change who is in this group, or broadcast in it")]
    NotPermitted,
    #[error("the message's authenticated data is missing or damaged")]
    BadAad,
    #[error("the commit does not make the change it declares")]
    UndeclaredChange,
    #[error("the group profile is not acceptable: {0}")]
    Profile(#[from] ProfileError),
    #[error("a key package is not acceptable: {0}")]
    BadKeyPackage(String),
    #[error("there is no such member in the group")]
    NoSuchMember,
    #[error("a commit of this device is waiting for the relay")]
    CommitPending,
    #[error("a repair of the group is not acceptable: {0}")]
    RestartRefused(String),
    #[error("there is no commit of this device waiting")]
    NoPendingCommit,
    #[error("internal MLS error: {0}")]
    Internal(String),
}

fn internal(error: impl std::fmt::Debug) -> MlsError {
    MlsError::Internal(format!("{error:?}"))
}

/// One device's MLS state: its identity, key, and groups.
pub struct MlsDevice {
    identity: DeviceIdentity,
    signer: DeviceSigner,
    provider: HuddleProvider<MemoryStorage>,
    journal: StateJournal,
    groups: HashMap<GroupId, MlsGroup>,
    /// The organisation key this device pinned and its own chain; `None`
    /// until the device has been certified (just after registering).
    trust: Option<Trust>,
    verifier: Verifier,
}

impl std::fmt::Debug for MlsDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlsDevice")
            .field("identity", &self.identity)
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

fn capabilities() -> Capabilities {
    Capabilities::new(
        None,
        Some(&[CIPHERSUITE]),
        Some(&[
            ExtensionType::Unknown(PROFILE_EXTENSION_TYPE),
            ExtensionType::LastResort,
        ]),
        None,
        Some(&[CredentialType::Basic]),
    )
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        // Keep no past epochs' secrets: forward secrecy over convenience.
        .max_past_epochs(0)
        // Tolerate a little reordering inside an epoch; the relay orders
        // the log, so more is never needed.
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(8, 1000))
        // Replies to broadcasts all come out one size, and other messages'
        // lengths are hidden to within the padding (see `broadcast`).
        .padding_size(MLS_PADDING_BYTES)
        .build()
}

/// A Huddle group's MLS group id in `chain`: the Huddle id alone for the
/// first chain, followed by the chain number after each restart.
fn mls_group_id(group: GroupId, chain: u32) -> openmls::group::GroupId {
    openmls::group::GroupId::from_slice(&huddle_core::wire::mls_group_id_bytes(group, chain))
}

/// The Huddle group and chain of an MLS group id (see [`mls_group_id`]).
fn huddle_group_id(group: &openmls::group::GroupId) -> Option<(GroupId, u32)> {
    let bytes = group.as_slice();
    let id: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
    let chain = match bytes.get(16..)? {
        [] => 0,
        rest => {
            let chain = u32::from_be_bytes(rest.try_into().ok()?);
            if chain == 0 {
                return None; // the first chain is never spelled out
            }
            chain
        }
    };
    Some((GroupId::from_bytes(id), chain))
}

fn entry_key(prefix: &[u8], group: GroupId) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(group.as_bytes());
    key
}

fn chain_of(credential: &Credential) -> Result<Chain, CertificateError> {
    let basic =
        BasicCredential::try_from(credential.clone()).map_err(|_| CertificateError::Unreadable)?;
    Chain::from_credential_bytes(basic.identity())
}

/// Who a credential names, without checking it: only for credentials that
/// were checked when they entered the group (see [`MlsDevice::check_credential`]).
fn identity_of(credential: &Credential) -> Option<DeviceIdentity> {
    chain_of(credential).ok()?.claimed_identity()
}

/// See [`MlsDevice::check_credential`]; a function of the fields it needs,
/// so that it can be called while a group is borrowed.
fn check_credential(
    trust: Option<&Trust>,
    verifier: &Verifier,
    credential: &Credential,
    signature_key: &[u8],
    expected: Option<DeviceIdentity>,
) -> Result<DeviceIdentity, MlsError> {
    let trust = trust.ok_or(MlsError::NotCertified)?;
    let chain = chain_of(credential)?;
    let leaf = chain.verify(&trust.org_key, &|k, m, s| verifier.verify(k, m, s))?;
    let identity = check_names(leaf, expected, signature_key)?;
    let own_org = trust.chain.claimed_identity().map(|id| id.org);
    if Some(identity.org) != own_org {
        return Err(CertificateError::OtherOrganisation.into());
    }
    Ok(identity)
}

fn profile_of(group: &MlsGroup) -> Result<GroupProfile, ProfileError> {
    profile_in(group.extensions())
}

fn profile_in(extensions: &Extensions<GroupContext>) -> Result<GroupProfile, ProfileError> {
    let extension = extensions
        .unknown(PROFILE_EXTENSION_TYPE)
        .ok_or(ProfileError::Missing)?;
    GroupProfile::from_bytes(&extension.0)
}

fn serialize(message: &MlsMessageOut) -> Result<Vec<u8>, MlsError> {
    message.tls_serialize_detached().map_err(internal)
}

impl MlsDevice {
    /// A new device with a fresh key.
    pub fn create(identity: DeviceIdentity) -> Result<Self, MlsError> {
        let signer = DeviceSigner::generate().map_err(internal)?;
        Ok(Self::from_parts(identity, signer, HashMap::new()))
    }

    /// A device restored from its key and its saved state entries.
    pub fn restore(
        identity: DeviceIdentity,
        signer: DeviceSigner,
        entries: HashMap<Vec<u8>, Vec<u8>>,
    ) -> Self {
        Self::from_parts(identity, signer, entries)
    }

    fn from_parts(
        identity: DeviceIdentity,
        signer: DeviceSigner,
        entries: HashMap<Vec<u8>, Vec<u8>>,
    ) -> Self {
        let journal = StateJournal::restored(&entries);
        let saved_trust = entries
            .get(TRUST_ENTRY)
            .and_then(|bytes| postcard::from_bytes::<Trust>(bytes).ok());
        let provider = HuddleProvider::with_storage(storage_from_entries(entries));
        let verifier = Verifier::sharing(provider.crypto().memo());
        let mut device = MlsDevice {
            identity,
            signer,
            provider,
            journal,
            groups: HashMap::new(),
            trust: None,
            verifier,
        };
        if let Some(trust) = saved_trust {
            // A stored chain that no longer checks out is dropped: the
            // device then refuses to act until it is certified again.
            let _ = device.adopt_trust(trust);
        }
        device
    }

    fn put_entry(&self, key: &[u8], value: Vec<u8>) {
        let mut values = match self.provider.storage().values.write() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        values.insert(key.to_vec(), value);
    }

    fn adopt_trust(&mut self, trust: Trust) -> Result<(), MlsError> {
        let verifier = &self.verifier;
        let leaf = trust
            .chain
            .verify(&trust.org_key, &|k, m, s| verifier.verify(k, m, s))?;
        check_names(leaf, Some(self.identity), self.signer.public_key())?;
        self.trust = Some(trust);
        Ok(())
    }

    /// Adopts and saves a certificate chain for this device, after checking
    /// that it certifies this device's key from the organisation key.
    pub fn set_trust(&mut self, trust: Trust) -> Result<(), MlsError> {
        let bytes = postcard::to_allocvec(&trust).map_err(internal)?;
        self.adopt_trust(trust)?;
        self.put_entry(TRUST_ENTRY, bytes);
        Ok(())
    }

    /// A modified app: takes any chain as its own, checked or not (tests only).
    #[cfg(test)]
    pub(crate) fn force_trust(&mut self, trust: Trust) {
        self.trust = Some(trust);
    }

    /// A modified app: adds key packages without checking their
    /// certificates (tests only).
    #[cfg(test)]
    pub(crate) fn add_unchecked(
        &mut self,
        group: GroupId,
        key_packages: &[Vec<u8>],
    ) -> Result<CommitOut, MlsError> {
        let validated: Vec<KeyPackage> = key_packages
            .iter()
            .map(|bytes| {
                KeyPackageIn::tls_deserialize_exact(bytes)
                    .map_err(|_| MlsError::Malformed)?
                    .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                    .map_err(|e| MlsError::BadKeyPackage(format!("{e:?}")))
            })
            .collect::<Result<_, _>>()?;
        let added = validated
            .iter()
            .filter_map(|kp| identity_of(kp.leaf_node().credential()).map(|id| id.device))
            .collect();
        self.commit_adds(group, &validated, added)
    }

    /// The fingerprint of the organisation key this device trusts.
    pub fn org_key_fingerprint(&self) -> Option<OrgKeyFingerprint> {
        self.trust
            .as_ref()
            .map(|t| OrgKeyFingerprint::of(&t.org_key))
    }

    /// Setup: makes the organisation key on this (the first
    /// administrator's) device and certifies the device with it.
    pub fn found_organisation(
        &mut self,
        display_name: &str,
        now: UnixMillis,
    ) -> Result<OrgKeyFingerprint, MlsError> {
        if self.trust.is_some() {
            return Err(MlsError::Internal(
                "this device is already certified".into(),
            ));
        }
        let (org_key, trust) =
            crate::trust::found_organisation(&self.signer, self.identity, display_name, now)?;
        let (private, public) = org_key.export();
        let record = postcard::to_allocvec(&OrgKeyRecord { private, public }).map_err(internal)?;
        self.set_trust(trust)?;
        self.put_entry(ORG_KEY_ENTRY, record);
        self.org_key_fingerprint().ok_or(MlsError::NotCertified)
    }

    /// An administrator certifies an invite: the certificate for the relay
    /// to hand to the person, and the key for the link.
    pub fn certify_invite(
        &mut self,
        user: UserId,
        display_name: &str,
        role: Role,
        expires_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<(InviteCertificate, InviteKey), MlsError> {
        let trust = self.trust.as_ref().ok_or(MlsError::NotCertified)?;
        let (certificate, key) = crate::trust::certify_invite(
            &self.signer,
            trust,
            user,
            display_name,
            role,
            expires_at,
            now,
        )?;
        let (private, _public) = key.export();
        Ok((certificate, InviteKey::new(private.to_vec())))
    }

    /// A joining device checks its invite against the organisation key it
    /// pinned from the link and certifies itself with the invite key.
    pub fn accept_invite(
        &mut self,
        invite: &InviteCertificate,
        invite_key: &InviteKey,
        pinned: OrgKeyFingerprint,
        now: UnixMillis,
    ) -> Result<OrgKeyFingerprint, MlsError> {
        // The organisation key is pinned once: a page (or a link) cannot
        // swap the trust anchor of a device that has one.
        if self.trust.is_some() {
            return Err(TrustError::AlreadyCertified.into());
        }
        let invite_public = invite
            .chain
            .leaf()
            .map(|c| c.statement.public_key.clone())
            .ok_or(CertificateError::Length)?;
        let key = DeviceSigner::restore(invite_key.as_bytes(), &invite_public)
            .map_err(|_| TrustError::WrongInviteKey)?;
        let trust = crate::trust::accept_invite(
            self.identity,
            self.signer.public_key(),
            invite,
            &key,
            pinned,
            now,
        )?;
        self.set_trust(trust)?;
        self.org_key_fingerprint().ok_or(MlsError::NotCertified)
    }

    pub fn trust(&self) -> Option<&Trust> {
        self.trust.as_ref()
    }

    /// Checks a credential met in a key package, a welcome or a commit: its
    /// chain goes back to the pinned organisation key, it names `expected`
    /// (when the relay named someone) and it certifies `signature_key`.
    fn check_credential(
        &self,
        credential: &Credential,
        signature_key: &[u8],
        expected: Option<DeviceIdentity>,
    ) -> Result<DeviceIdentity, MlsError> {
        check_credential(
            self.trust.as_ref(),
            &self.verifier,
            credential,
            signature_key,
            expected,
        )
    }

    pub fn identity(&self) -> DeviceIdentity {
        self.identity
    }

    pub fn signer(&self) -> &DeviceSigner {
        &self.signer
    }

    /// This device's certificate chain as its credential carries it, for
    /// the relay to hand to colleagues.
    pub fn own_certificate(&self) -> Result<Vec<u8>, MlsError> {
        let trust = self.trust.as_ref().ok_or(MlsError::NotCertified)?;
        Ok(trust.chain.to_credential_bytes())
    }

    /// Colleagues' chains and the attestations about them, checked against
    /// the pinned organisation key (see `trust::check_identities`), about
    /// `users` only. To what the relay handed over are added the devices of
    /// `users` met in `groups`, as their credentials there say; this
    /// device's own entry always comes from its own chain.
    pub fn check_identities(
        &mut self,
        users: &[UserId],
        groups: &[GroupId],
        mut devices: Vec<huddle_core::wire::DeviceCertificate>,
        attestations: &[Vec<u8>],
    ) -> Result<huddle_core::attestation::Identities, MlsError> {
        let own = self.identity;
        devices.retain(|card| users.contains(&card.user) && card.device != own.device);
        for group in groups {
            let Ok(mls_group) = self.group_mut(*group) else {
                continue;
            };
            for member in mls_group.members() {
                let Ok(chain) = chain_of(&member.credential) else {
                    continue;
                };
                let Some(identity) = chain.claimed_identity() else {
                    continue;
                };
                if users.contains(&identity.user) && identity.device != own.device {
                    devices.push(huddle_core::wire::DeviceCertificate {
                        user: identity.user,
                        device: identity.device,
                        chain: chain.to_credential_bytes(),
                    });
                }
            }
        }
        let trust = self.trust.as_ref().ok_or(MlsError::NotCertified)?;
        if users.contains(&own.user) {
            devices.push(huddle_core::wire::DeviceCertificate {
                user: own.user,
                device: own.device,
                chain: trust.chain.to_credential_bytes(),
            });
        }
        Ok(crate::trust::check_identities(
            trust,
            &self.verifier,
            users,
            devices,
            attestations,
        ))
    }

    /// Signs this device's word that it checked `subject`'s key in person.
    pub fn attest(
        &self,
        subject: DeviceIdentity,
        subject_key: huddle_core::attestation::KeyDigest,
        method: huddle_core::attestation::Method,
        now: UnixMillis,
    ) -> Result<Vec<u8>, MlsError> {
        let trust = self.trust.as_ref().ok_or(MlsError::NotCertified)?;
        Ok(crate::trust::attest(
            trust,
            &self.signer,
            self.identity,
            subject,
            subject_key,
            method,
            now,
        )?)
    }

    /// This device's fingerprint, half of a safety number.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.identity, self.signer.public_key())
    }

    /// What changed since the last call: persist it before acting on the
    /// operation's result.
    pub fn take_state_changes(&mut self) -> Vec<StateChange> {
        self.journal.take_changes(self.provider.storage())
    }

    fn credential(&self) -> Result<CredentialWithKey, MlsError> {
        let trust = self.trust.as_ref().ok_or(MlsError::NotCertified)?;
        Ok(CredentialWithKey {
            credential: BasicCredential::new(trust.chain.to_credential_bytes()).into(),
            signature_key: self.signer.public_key().to_vec().into(),
        })
    }

    fn new_key_package(&self, last_resort: bool) -> Result<Vec<u8>, MlsError> {
        let mut builder = KeyPackage::builder()
            .leaf_node_capabilities(capabilities())
            .key_package_lifetime(Lifetime::new(KEY_PACKAGE_LIFETIME_SECS));
        if last_resort {
            builder = builder.mark_as_last_resort();
        }
        let bundle = builder
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential()?,
            )
            .map_err(internal)?;
        bundle
            .key_package()
            .tls_serialize_detached()
            .map_err(internal)
    }

    /// `count` single-use key packages for the relay to hand out.
    pub fn key_packages(&mut self, count: usize) -> Result<Vec<Vec<u8>>, MlsError> {
        (0..count).map(|_| self.new_key_package(false)).collect()
    }

    /// The key package the relay hands out when the single-use ones run out.
    pub fn last_resort_key_package(&mut self) -> Result<Vec<u8>, MlsError> {
        self.new_key_package(true)
    }

    /// Checks a key package from the relay and says whose it is.
    pub fn inspect_key_package(&self, bytes: &[u8]) -> Result<DeviceIdentity, MlsError> {
        Ok(self.validate_key_package(bytes, None)?.1)
    }

    /// Checks a key package: MLS validity, the ciphersuite, and its
    /// certificate chain, which must name `expected` (the person and device
    /// the relay said it belongs to).
    fn validate_key_package(
        &self,
        bytes: &[u8],
        expected: Option<DeviceIdentity>,
    ) -> Result<(KeyPackage, DeviceIdentity), MlsError> {
        let key_package_in = KeyPackageIn::tls_deserialize_exact(bytes)
            .map_err(|e| MlsError::BadKeyPackage(format!("{e:?}")))?;
        let key_package = key_package_in
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .map_err(|e| MlsError::BadKeyPackage(format!("{e:?}")))?;
        if key_package.ciphersuite() != CIPHERSUITE {
            return Err(MlsError::BadKeyPackage("not ciphersuite 0x0007".into()));
        }
        let leaf = key_package.leaf_node();
        let identity =
            self.check_credential(leaf.credential(), leaf.signature_key().as_slice(), expected)?;
        Ok((key_package, identity))
    }

    fn group_mut(&mut self, group: GroupId) -> Result<&mut MlsGroup, MlsError> {
        if !self.groups.contains_key(&group) {
            let loaded = MlsGroup::load(self.provider.storage(), &self.mls_id(group))
                .map_err(internal)?
                .ok_or(MlsError::UnknownGroup)?;
            self.groups.insert(group, loaded);
        }
        self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)
    }

    /// Whether this device holds the group.
    pub fn has_group(&mut self, group: GroupId) -> bool {
        self.group_mut(group).is_ok()
    }

    /// The group's epoch as the relay counts it: its chain and MLS epoch
    /// (see [`huddle_core::wire::wire_epoch`]).
    pub fn epoch(&mut self, group: GroupId) -> Result<u64, MlsError> {
        let chain = self.chain(group);
        Ok(wire_epoch(chain, self.group_mut(group)?.epoch().as_u64()))
    }

    pub fn profile(&mut self, group: GroupId) -> Result<GroupProfile, MlsError> {
        Ok(profile_of(self.group_mut(group)?)?)
    }

    /// Everyone in the group, this device included.
    pub fn members(&mut self, group: GroupId) -> Result<Vec<DeviceIdentity>, MlsError> {
        let group = self.group_mut(group)?;
        Ok(group
            .members()
            .filter_map(|member| identity_of(&member.credential))
            .collect())
    }

    /// Creates a group with this device as its only member (epoch 0).
    pub fn create_group(&mut self, group: GroupId, profile: &GroupProfile) -> Result<(), MlsError> {
        profile.validate()?;
        if self.has_group(group) {
            return Err(MlsError::Internal("the group already exists".into()));
        }
        let created = self.new_mls_group(group, 0, profile)?;
        self.groups.insert(group, created);
        Ok(())
    }

    /// A new MLS group for `group` in `chain`, with this device alone in it
    /// (stored by OpenMLS, not yet in `self.groups`).
    fn new_mls_group(
        &self,
        group: GroupId,
        chain: u32,
        profile: &GroupProfile,
    ) -> Result<MlsGroup, MlsError> {
        let extension =
            Extension::Unknown(PROFILE_EXTENSION_TYPE, UnknownExtension(profile.to_bytes()));
        let required = Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
            &[ExtensionType::Unknown(PROFILE_EXTENSION_TYPE)],
            &[],
            &[CredentialType::Basic],
        ));
        let extensions =
            Extensions::<GroupContext>::from_vec(vec![extension, required]).map_err(internal)?;
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .capabilities(capabilities())
            .with_group_context_extensions(extensions)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .max_past_epochs(0)
            .sender_ratchet_configuration(SenderRatchetConfiguration::new(8, 1000))
            .padding_size(MLS_PADDING_BYTES)
            .build();
        MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            mls_group_id(group, chain),
            self.credential()?,
        )
        .map_err(internal)
    }

    fn ensure_no_pending_commit(&mut self, group: GroupId) -> Result<(), MlsError> {
        if self.group_mut(group)?.pending_commit().is_some() {
            return Err(MlsError::CommitPending);
        }
        Ok(())
    }

    /// Adds devices by the key packages the relay handed out for them. Each
    /// must be certified for the person and device the relay named. The
    /// commit stays pending until the relay accepts it
    /// ([`MlsDevice::merge_pending_commit`]) or another commit wins the
    /// epoch ([`MlsDevice::discard_pending_commit`]).
    pub fn add_members(
        &mut self,
        group: GroupId,
        key_packages: &[ClaimedKeyPackage],
    ) -> Result<CommitOut, MlsError> {
        self.ensure_no_pending_commit(group)?;
        let org = self.identity.org;
        let (validated, added): (Vec<KeyPackage>, Vec<DeviceId>) = key_packages
            .iter()
            .map(|claimed| {
                let expected = DeviceIdentity {
                    org,
                    user: claimed.user,
                    device: claimed.device,
                };
                self.validate_key_package(&claimed.key_package, Some(expected))
                    .map(|(kp, id)| (kp, id.device))
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let mut devices: BTreeSet<DeviceId> = self
            .group_mut(group)?
            .members()
            .filter_map(|m| identity_of(&m.credential))
            .map(|id| id.device)
            .collect();
        if added.iter().any(|device| !devices.insert(*device)) {
            return Err(MlsError::DuplicateDevice);
        }
        self.commit_adds(group, &validated, added)
    }

    /// The commit and welcome that add checked key packages (pending until
    /// the relay accepts the commit).
    fn commit_adds(
        &mut self,
        group: GroupId,
        validated: &[KeyPackage],
        added: Vec<DeviceId>,
    ) -> Result<CommitOut, MlsError> {
        let provider = &self.provider;
        let signer = &self.signer;
        let chain = self.chain(group);
        let mls_group = self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)?;
        let epoch = wire_epoch(chain, mls_group.epoch().as_u64());
        // No update path: an add-only commit may leave it out (RFC 9420,
        // 12.4), and with it the adder would encrypt a path secret to every
        // member under each blank node of the tree, one HPKE sealing each
        // (about 1.7 s in wasm for a group of 200). Fresh keys come from
        // the renewal every member makes weekly and after any removal.
        let (commit, welcome, _info) = mls_group
            .add_members_without_update(provider, signer, validated)
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        Ok(CommitOut {
            epoch,
            commit: serialize(&commit)?,
            welcome: Some(serialize(&welcome)?),
            change: MembershipChange {
                create: None,
                add: added,
                remove: Vec::new(),
            },
        })
    }

    /// Removes devices; they cannot open anything sent after the commit.
    pub fn remove_members(
        &mut self,
        group: GroupId,
        devices: &[DeviceId],
    ) -> Result<CommitOut, MlsError> {
        self.ensure_no_pending_commit(group)?;
        let chain = self.chain(group);
        let provider = &self.provider;
        let signer = &self.signer;
        let mls_group = self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)?;
        let leaves: Vec<LeafNodeIndex> = devices
            .iter()
            .map(|device| {
                mls_group
                    .members()
                    .find(|m| identity_of(&m.credential).is_some_and(|id| id.device == *device))
                    .map(|m| m.index)
                    .ok_or(MlsError::NoSuchMember)
            })
            .collect::<Result<_, _>>()?;
        let epoch = wire_epoch(chain, mls_group.epoch().as_u64());
        let (commit, _welcome, _info) = mls_group
            .remove_members(provider, signer, &leaves)
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        Ok(CommitOut {
            epoch,
            commit: serialize(&commit)?,
            welcome: None,
            change: MembershipChange {
                create: None,
                add: Vec::new(),
                remove: devices.to_vec(),
            },
        })
    }

    /// Renews this device's keys in the group (post-compromise security),
    /// and applies any pending leave requests.
    pub fn self_update(&mut self, group: GroupId) -> Result<CommitOut, MlsError> {
        self.ensure_no_pending_commit(group)?;
        let chain = self.chain(group);
        let provider = &self.provider;
        let signer = &self.signer;
        let mls_group = self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)?;
        let epoch = wire_epoch(chain, mls_group.epoch().as_u64());
        let removed: Vec<DeviceId> = mls_group
            .pending_proposals()
            .filter_map(|p| match p.proposal() {
                Proposal::Remove(remove) => mls_group
                    .member(remove.removed())
                    .and_then(identity_of)
                    .map(|id| id.device),
                _ => None,
            })
            .collect();
        let bundle = mls_group
            .self_update(provider, signer, LeafNodeParameters::default())
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        let (commit, _welcome, _info) = bundle.into_messages();
        Ok(CommitOut {
            epoch,
            commit: serialize(&commit)?,
            welcome: None,
            change: MembershipChange {
                create: None,
                add: Vec::new(),
                remove: removed,
            },
        })
    }

    /// Asks to leave: a proposal that the next commit by another member
    /// applies. Returns the message to send.
    pub fn leave(&mut self, group: GroupId) -> Result<Vec<u8>, MlsError> {
        self.group_mut(group)?;
        let provider = &self.provider;
        let signer = &self.signer;
        let mls_group = self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)?;
        let proposal = mls_group
            .leave_group(provider, signer)
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        serialize(&proposal)
    }

    /// The relay accepted our commit: move to the new epoch. A commit of
    /// ours with an update path (a renewal, a removal) renews our leaf, so
    /// our keys in the group rotated `now`; an add-only commit has none.
    pub fn merge_pending_commit(
        &mut self,
        group: GroupId,
        now: UnixMillis,
    ) -> Result<u64, MlsError> {
        if let Some(chain) = self.pending_restart(group) {
            return self.merge_restart(group, chain, now);
        }
        let chain = self.chain(group);
        let mls_group = self.group_mut(group)?;
        let Some(pending) = mls_group.pending_commit() else {
            return Err(MlsError::NoPendingCommit);
        };
        let renews_our_keys = pending.update_path_leaf_node().is_some();
        let provider = &self.provider;
        let mls_group = self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)?;
        mls_group.merge_pending_commit(provider).map_err(internal)?;
        let epoch = wire_epoch(chain, mls_group.epoch().as_u64());
        if renews_our_keys || self.rotated(group).is_none() {
            self.set_rotated(group, now);
        }
        Ok(epoch)
    }

    fn rotated_key(group: GroupId) -> Vec<u8> {
        entry_key(ROTATED_ENTRY, group)
    }

    fn get_entry(&self, key: &[u8]) -> Option<Vec<u8>> {
        let values = match self.provider.storage().values.read() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        values.get(key).cloned()
    }

    fn remove_entry(&self, key: &[u8]) {
        let mut values = match self.provider.storage().values.write() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        values.remove(key);
    }

    /// The group's chain: how many times its encryption has been restarted.
    pub fn chain(&self, group: GroupId) -> u32 {
        self.get_entry(&entry_key(CHAIN_ENTRY, group))
            .and_then(|bytes| bytes.as_slice().try_into().ok())
            .map_or(0, u32::from_be_bytes)
    }

    fn set_chain(&self, group: GroupId, chain: u32) {
        let key = entry_key(CHAIN_ENTRY, group);
        if chain == 0 {
            self.remove_entry(&key);
        } else {
            self.put_entry(&key, chain.to_be_bytes().to_vec());
        }
    }

    fn mls_id(&self, group: GroupId) -> openmls::group::GroupId {
        mls_group_id(group, self.chain(group))
    }

    fn set_rotated(&self, group: GroupId, at: UnixMillis) {
        self.put_entry(&Self::rotated_key(group), at.0.to_be_bytes().to_vec());
    }

    fn rotated(&self, group: GroupId) -> Option<UnixMillis> {
        let values = match self.provider.storage().values.read() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        let bytes: [u8; 8] = values
            .get(&Self::rotated_key(group))?
            .as_slice()
            .try_into()
            .ok()?;
        Some(UnixMillis(u64::from_be_bytes(bytes)))
    }

    fn forget_rotated(&self, group: GroupId) {
        let mut values = match self.provider.storage().values.write() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        values.remove(&Self::rotated_key(group));
    }

    /// Of `groups`, those in which this device should renew its keys now:
    /// its last commit there is a week old (counted from when it was first
    /// asked, for a group it joined or made), or a member has been removed
    /// since. The caller makes an update commit in each.
    pub fn keys_due(&mut self, groups: &[GroupId], now: UnixMillis) -> Vec<GroupId> {
        let mut due = Vec::new();
        for &group in groups {
            if !self.has_group(group) {
                continue;
            }
            match self.rotated(group) {
                None => self.set_rotated(group, now),
                Some(at) if now.0.saturating_sub(at.0) >= ROTATE_KEYS_EVERY_MILLIS => {
                    due.push(group)
                }
                Some(_) => {}
            }
        }
        due
    }

    /// Another commit won the epoch: forget ours (it will be made again).
    pub fn discard_pending_commit(&mut self, group: GroupId) -> Result<(), MlsError> {
        if self.pending_restart(group).is_some() {
            return self.discard_restart(group);
        }
        self.group_mut(group)?;
        let storage = self.provider.storage();
        let mls_group = self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)?;
        mls_group.clear_pending_commit(storage).map_err(internal)?;
        Ok(())
    }

    /// Joins a group from a welcome, checking its profile and every
    /// member's certificate chain before anything is stored.
    /// A welcome to a group this device already holds is refused here: it
    /// can only be a restart, which [`MlsDevice::join_restart`] compares
    /// with the members the group had.
    pub fn join(&mut self, welcome: &[u8]) -> Result<JoinedGroup, MlsError> {
        let (staged, joined, chain) = self.stage_welcome(welcome)?;
        if self.has_group(joined.group) {
            return Err(MlsError::Rejected(
                "a welcome to a group this device already holds".into(),
            ));
        }
        let mls_group = staged
            .into_group(&self.provider)
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        self.set_chain(joined.group, chain);
        self.groups.insert(joined.group, mls_group);
        Ok(joined)
    }

    /// Every signature that joining from `welcome` would check, found by a
    /// dry run that changes nothing: see [`SignatureMemo`]. A welcome that
    /// cannot be read yields no checks (the join then fails as usual).
    pub fn signatures_to_join(&mut self, welcome: &[u8]) -> Vec<SignatureCheck> {
        // Staging a welcome deletes the key package it was sealed to; the
        // dry run must leave the store exactly as it found it.
        let saved = self.copy_of_storage();
        let memo = self.provider.crypto().memo();
        let ((), checks) = memo.record(|| {
            let _ = self.stage_welcome(welcome);
        });
        self.restore_storage(saved);
        checks
    }

    /// Opens an application message without checking its signature, and
    /// returns the one check it skipped; the caller checks it (with
    /// WebCrypto, see [`crate::fast_checks::open`]) and throws the result
    /// away if it fails. Only application messages: they change nothing but
    /// the sender's ratchet, which a message with a bad signature consumes
    /// anyway. Anything else (a commit) is opened and checked as usual.
    pub fn open_checking_later(
        &mut self,
        group: GroupId,
        bytes: &[u8],
        relay_sender: DeviceId,
        declared: Option<&MembershipChange>,
        now: UnixMillis,
    ) -> (Result<Incoming, MlsError>, Vec<SignatureCheck>) {
        let application = MlsMessageIn::tls_deserialize_exact(bytes)
            .ok()
            .and_then(|m| m.try_into_protocol_message().ok())
            .is_some_and(|p| p.content_type() == ContentType::Application);
        if !application {
            return (
                self.open(group, bytes, relay_sender, declared, now),
                Vec::new(),
            );
        }
        let memo = self.provider.crypto().memo();
        memo.record(|| self.open(group, bytes, relay_sender, declared, now))
    }

    /// Remembers signatures that a trusted, faster verifier found valid.
    pub fn remember_valid<'a>(&self, checks: impl IntoIterator<Item = &'a SignatureCheck>) {
        self.provider.crypto().memo().remember_valid(checks);
    }

    /// How many valid signatures this device remembers (tests and benchmarks).
    pub fn remembered_signatures(&self) -> usize {
        self.provider.crypto().memo().remembered()
    }

    fn copy_of_storage(&self) -> HashMap<Vec<u8>, Vec<u8>> {
        match self.provider.storage().values.read() {
            Ok(values) => values.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn restore_storage(&self, saved: HashMap<Vec<u8>, Vec<u8>>) {
        let mut values = match self.provider.storage().values.write() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut dry_run = std::mem::replace(&mut *values, saved);
        // The dry run's copies of secrets are wiped like any other.
        dry_run.values_mut().for_each(zeroize::Zeroize::zeroize);
    }

    /// Decrypts and checks a welcome without storing anything: the tree,
    /// the group's profile, and every member's chain.
    fn stage_welcome(&self, welcome: &[u8]) -> Result<(StagedWelcome, JoinedGroup, u32), MlsError> {
        let message =
            MlsMessageIn::tls_deserialize_exact(welcome).map_err(|_| MlsError::Malformed)?;
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            return Err(MlsError::Malformed);
        };
        let staged = StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, None)
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        let context = staged.group_context();
        let (group, chain) = huddle_group_id(context.group_id()).ok_or(MlsError::WrongGroup)?;
        let profile = profile_in(context.extensions())?;
        let members: Vec<DeviceIdentity> = staged
            .members()
            .map(|m| self.check_credential(&m.credential, &m.signature_key, None))
            .collect::<Result<_, _>>()?;
        let distinct: BTreeSet<DeviceId> = members.iter().map(|m| m.device).collect();
        if distinct.len() != members.len() {
            return Err(MlsError::DuplicateDevice);
        }
        let joined = JoinedGroup {
            group,
            epoch: wire_epoch(chain, context.epoch().as_u64()),
            profile,
            members,
        };
        Ok((staged, joined, chain))
    }

    /// Seals an envelope as an application message.
    pub fn seal(
        &mut self,
        group: GroupId,
        client_msg: ClientMessageId,
        expires_at: UnixMillis,
        envelope: &[u8],
    ) -> Result<Sealed, MlsError> {
        self.ensure_no_pending_commit(group)?;
        let chain = self.chain(group);
        let provider = &self.provider;
        let signer = &self.signer;
        let mls_group = self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)?;
        // A group joined before messages were padded keeps its settings in
        // storage: it pads from now on, or its replies would be refused.
        if mls_group.configuration().padding_size() != MLS_PADDING_BYTES {
            mls_group
                .set_configuration(provider.storage(), &join_config())
                .map_err(internal)?;
        }
        let aad = MessageAad {
            version: AAD_VERSION,
            client_msg,
            expires_at,
        };
        mls_group.set_aad(aad.to_bytes());
        let message = mls_group
            .create_message(provider, signer, envelope)
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        Ok(Sealed {
            epoch: wire_epoch(chain, mls_group.epoch().as_u64()),
            ciphertext: serialize(&message)?,
        })
    }

    /// Reads the Huddle AAD of a sealed message without opening it (what the
    /// relay sees).
    pub fn peek_aad(ciphertext: &[u8]) -> Option<MessageAad> {
        let message = MlsMessageIn::tls_deserialize_exact(ciphertext).ok()?;
        match message.extract() {
            MlsMessageBodyIn::PrivateMessage(private) => MessageAad::from_bytes(private.aad()),
            _ => None,
        }
    }

    /// Opens something the relay delivered for `group`. `relay_sender` is
    /// the device the relay authenticated as its sender: the MLS sender
    /// must be that device. `declared` is the membership change the relay
    /// recorded for a commit; the commit must make exactly that change.
    /// `now` is this device's clock.
    pub fn open(
        &mut self,
        group: GroupId,
        bytes: &[u8],
        relay_sender: DeviceId,
        declared: Option<&MembershipChange>,
        now: UnixMillis,
    ) -> Result<Incoming, MlsError> {
        let message =
            MlsMessageIn::tls_deserialize_exact(bytes).map_err(|_| MlsError::Malformed)?;
        let protocol = message
            .try_into_protocol_message()
            .map_err(|_| MlsError::Malformed)?;
        // A message made in another chain (before a restart, or in one this
        // device never joined) is for another MLS group.
        let chain = self.chain(group);
        if huddle_group_id(protocol.group_id()) != Some((group, chain)) {
            return Err(MlsError::WrongGroup);
        }
        let mls_group = self.group_mut(group)?;
        let group_epoch = mls_group.epoch().as_u64();
        let message_epoch = protocol.epoch().as_u64();
        if message_epoch != group_epoch {
            return Err(MlsError::WrongEpoch {
                message: message_epoch,
                group: group_epoch,
            });
        }
        let is_commit = protocol.content_type() == ContentType::Commit;
        // The relay routes and audits by what a commit declares: a commit
        // that comes without a declaration cannot be checked, so it is not
        // accepted.
        if is_commit && declared.is_none() {
            return Err(MlsError::UndeclaredChange);
        }
        let provider = &self.provider;
        let mls_group = self.groups.get_mut(&group).ok_or(MlsError::UnknownGroup)?;
        if is_commit && mls_group.pending_commit().is_some() {
            // Someone else's commit for this epoch came first; ours is void.
            mls_group
                .clear_pending_commit(provider.storage())
                .map_err(internal)?;
        }
        let processed = mls_group
            .process_message(provider, protocol)
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        let sender = identity_of(processed.credential()).ok_or(MlsError::BadCredential)?;
        if sender.device != relay_sender {
            return Err(MlsError::WrongSender {
                relay: relay_sender,
                signed: sender.device,
            });
        }
        // The sender's certified role: in clinical groups and emergency
        // broadcasts only administrators change who is in the group, and
        // only they broadcast. The relay enforces it too; a phone does not
        // take the relay's word for it.
        let sender_is_administrator = chain_of(processed.credential())
            .ok()
            .and_then(|chain| chain.leaf().map(|leaf| leaf.statement.role))
            == Some(Role::Administrator);
        // Read once: the kind decides who may send, the retention caps expiry.
        let profile = profile_of(mls_group)?;
        let kind = profile.kind;
        let sender_leaf = match processed.sender() {
            Sender::Member(index) => mls_group.member_at(*index),
            _ => None,
        };
        let aad = processed.aad().to_vec();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(application) => {
                let application = application.into_bytes();
                // Staff may only reply to broadcasts (acknowledge them):
                // anything else from them there is refused, as the relay
                // refuses anything but a reply's size.
                if kind == GroupKind::EmergencyBroadcast
                    && !sender_is_administrator
                    && !Envelope::decode(&application)
                        .is_ok_and(|envelope| envelope.body.is_reply())
                {
                    return Err(MlsError::NotPermitted);
                }
                let aad = MessageAad::from_bytes(&aad).ok_or(MlsError::BadAad)?;
                let retention = profile.retention;
                match effective_expiry(aad.expires_at, now, retention) {
                    Ok(expires_at) => Ok(Incoming::Message {
                        sender,
                        sender_is_administrator,
                        client_msg: aad.client_msg,
                        expires_at,
                        epoch: wire_epoch(chain, group_epoch),
                        envelope: Plaintext::new(application),
                    }),
                    Err(_) => Ok(Incoming::Expired {
                        client_msg: aad.client_msg,
                    }),
                }
            }
            ProcessedMessageContent::ProposalMessage(proposal) => match proposal.proposal() {
                Proposal::Remove(remove) => {
                    let removed = mls_group.member(remove.removed()).and_then(identity_of);
                    if removed != Some(sender) {
                        return Err(MlsError::Rejected(
                            "only a member's own leave request is accepted".into(),
                        ));
                    }
                    mls_group
                        .store_pending_proposal(provider.storage(), *proposal)
                        .map_err(internal)?;
                    Ok(Incoming::LeaveRequested { member: sender })
                }
                _ => Err(MlsError::Rejected("unsupported proposal".into())),
            },
            ProcessedMessageContent::OwnPendingCommit
            | ProcessedMessageContent::OwnPrivateMessage => Err(MlsError::Rejected(
                "a device's own messages are not opened again".into(),
            )),
            ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
                Err(MlsError::Rejected("external joins are not allowed".into()))
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                // Every device the commit adds must be certified, and the
                // committer may renew its keys but not change who it is.
                let added: Vec<DeviceIdentity> = staged
                    .add_proposals()
                    .map(|p| {
                        let leaf = p.add_proposal().key_package().leaf_node();
                        check_credential(
                            self.trust.as_ref(),
                            &self.verifier,
                            leaf.credential(),
                            leaf.signature_key().as_slice(),
                            None,
                        )
                    })
                    .collect::<Result<_, _>>()?;
                // One leaf per device: a second leaf under a device id
                // already in the group (or twice in one commit) would be
                // missed when that device is removed.
                let mut devices: BTreeSet<DeviceId> = mls_group
                    .members()
                    .filter_map(|m| identity_of(&m.credential))
                    .map(|id| id.device)
                    .collect();
                if added.iter().any(|id| !devices.insert(id.device)) {
                    return Err(MlsError::DuplicateDevice);
                }
                // Huddle commits add and remove members and renew keys;
                // anything else (a changed group profile, a pre-shared key,
                // a re-initialisation) is not something a phone makes.
                if staged
                    .queued_proposals()
                    .any(|p| !matches!(p.proposal(), Proposal::Add(_) | Proposal::Remove(_)))
                {
                    return Err(MlsError::Rejected(
                        "a commit may only add and remove members".into(),
                    ));
                }
                let changes_members = staged.add_proposals().next().is_some()
                    || staged.remove_proposals().next().is_some();
                if changes_members
                    && matches!(kind, GroupKind::Clinical | GroupKind::EmergencyBroadcast)
                    && !sender_is_administrator
                {
                    return Err(MlsError::NotPermitted);
                }
                if let Some(leaf) = staged.update_path_leaf_node() {
                    let unchanged = sender_leaf.as_ref().is_some_and(|old| {
                        old.credential == *leaf.credential()
                            && old.signature_key == leaf.signature_key().as_slice()
                    });
                    if !unchanged {
                        return Err(MlsError::CredentialChanged);
                    }
                }
                let removed: Vec<DeviceIdentity> = staged
                    .remove_proposals()
                    .filter_map(|p| {
                        mls_group
                            .member(p.remove_proposal().removed())
                            .and_then(identity_of)
                    })
                    .collect();
                if let Some(declared) = declared {
                    let set = |ids: &[DeviceIdentity]| {
                        ids.iter().map(|i| i.device).collect::<BTreeSet<_>>()
                    };
                    let declared_add: BTreeSet<_> = declared.add.iter().copied().collect();
                    let declared_remove: BTreeSet<_> = declared.remove.iter().copied().collect();
                    if set(&added) != declared_add || set(&removed) != declared_remove {
                        return Err(MlsError::UndeclaredChange);
                    }
                }
                let removed_self = staged.self_removed();
                mls_group
                    .merge_staged_commit(provider, *staged)
                    .map_err(internal)?;
                let epoch = wire_epoch(chain, mls_group.epoch().as_u64());
                if removed_self {
                    let _ = mls_group.delete(provider.storage());
                    self.groups.remove(&group);
                    self.forget_rotated(group);
                    self.set_chain(group, 0);
                    return Ok(Incoming::MembershipChanged {
                        epoch,
                        added,
                        removed,
                        removed_self: true,
                    });
                }
                let profile = profile_of(mls_group)?;
                if !removed.is_empty() {
                    // Someone left: renew this device's keys too, soon.
                    self.set_rotated(group, UnixMillis(0));
                }
                if added.is_empty() && removed.is_empty() {
                    Ok(Incoming::EpochChanged { epoch, profile })
                } else {
                    Ok(Incoming::MembershipChanged {
                        epoch,
                        added,
                        removed,
                        removed_self: false,
                    })
                }
            }
        }
    }

    /// Forgets a group and all its secrets on this device.
    pub fn delete_group(&mut self, group: GroupId) -> Result<(), MlsError> {
        self.forget_rotated(group);
        if self.pending_restart(group).is_some() {
            self.discard_restart(group)?;
        }
        let mut mls_group = match self.groups.remove(&group) {
            Some(g) => g,
            None => MlsGroup::load(self.provider.storage(), &self.mls_id(group))
                .map_err(internal)?
                .ok_or(MlsError::UnknownGroup)?,
        };
        self.set_chain(group, 0);
        mls_group.delete(self.provider.storage()).map_err(internal)
    }
}
