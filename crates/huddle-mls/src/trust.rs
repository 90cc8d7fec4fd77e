//! Making and checking certificates with real P-384 keys: founding an organisation, certifying an invite, accepting one, and vouching for a colleague's phone.
//!
//! The rules (who may sign what) are in `huddle_core::certificate`; this
//! module holds the keys that sign and the verifier that checks, so that
//! they stay in the crypto worker.

use crate::identity::{verify_device_signature, DeviceSigner};
use crate::provider::SignatureMemo;
use huddle_core::attestation::{
    check_device, Attestation, AttestationStatement, CheckedAttestation, CheckedDevice, Identities,
    KeyDigest, Method,
};
use huddle_core::certificate::{
    Certificate, CertificateError, Chain, InviteCertificate, OrgKeyFingerprint, Statement, Subject,
};
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::UserId;
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{DeviceCertificate, Role};
use openmls_traits::signatures::Signer;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a device trusts and how it is vouched for: the organisation key it
/// pinned and its own chain. Public; kept by the worker with the device key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trust {
    pub org_key: Vec<u8>,
    pub chain: Chain,
}

impl Trust {
    /// The person's name and role as certified.
    pub fn leaf(&self) -> Option<&Statement> {
        self.chain.leaf().map(|c| &c.statement)
    }
}

/// Why certifying failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustError {
    #[error("{0}")]
    Certificate(#[from] CertificateError),
    #[error("the invite link does not belong to this organisation's key")]
    WrongOrganisationKey,
    #[error("the invite key in the link does not match the invite")]
    WrongInviteKey,
    #[error("the invite is for someone else")]
    NotThisInvite,
    #[error("only an administrator's phone can certify an invite")]
    NotAnAdministrator,
    #[error("the name is too long")]
    NameTooLong,
    #[error("an invite must end within 30 days, and not in the past")]
    InviteLifetime,
    #[error("this invite has expired")]
    InviteExpired,
    #[error("this phone is already certified")]
    AlreadyCertified,
    #[error("a phone can only vouch for a colleague's phone")]
    NotAColleague,
    #[error("could not sign: {0}")]
    Signing(String),
}

/// The longest an invite may last (the relay's limit too).
const MAX_INVITE_MILLIS: u64 = 30 * 24 * 60 * 60 * 1000;

fn sign(issuer: &DeviceSigner, statement: Statement) -> Result<Certificate, TrustError> {
    let signature = issuer
        .sign(&statement.to_be_signed())
        .map_err(|e| TrustError::Signing(format!("{e:?}")))?;
    Ok(Certificate {
        statement,
        signature,
    })
}

fn check_name(name: &str) -> Result<(), TrustError> {
    if name.len() > huddle_core::certificate::MAX_NAME_BYTES {
        return Err(TrustError::NameTooLong);
    }
    Ok(())
}

/// Setup: a new organisation key certifies the first administrator's
/// device. Returns the key (for the worker's sealed store and the recovery
/// code) and the device's trust.
pub fn found_organisation(
    device: &DeviceSigner,
    identity: DeviceIdentity,
    display_name: &str,
    now: UnixMillis,
) -> Result<(DeviceSigner, Trust), TrustError> {
    check_name(display_name)?;
    let org_key = DeviceSigner::generate().map_err(|e| TrustError::Signing(e.to_string()))?;
    let statement = Statement {
        org: identity.org,
        user: identity.user,
        display_name: display_name.to_owned(),
        role: Role::Administrator,
        subject: Subject::Device(identity.device),
        public_key: device.public_key().to_vec(),
        issued_at: now,
        expires_at: None,
    };
    let chain = Chain(vec![sign(&org_key, statement)?]);
    let trust = Trust {
        org_key: org_key.public_key().to_vec(),
        chain,
    };
    Ok((org_key, trust))
}

/// An administrator's phone certifies a one-time invite key for the person
/// the relay created. The key's private half goes into the link only.
pub fn certify_invite(
    device: &DeviceSigner,
    trust: &Trust,
    user: UserId,
    display_name: &str,
    role: Role,
    expires_at: UnixMillis,
    now: UnixMillis,
) -> Result<(InviteCertificate, DeviceSigner), TrustError> {
    check_name(display_name)?;
    // The relay says when the invite ends; a relay that claims "never"
    // must not get an invite key that works for ever.
    let longest = now
        .saturating_add_millis(MAX_INVITE_MILLIS + huddle_core::retention::MAX_CLOCK_SKEW_MILLIS);
    if expires_at <= now || expires_at > longest {
        return Err(TrustError::InviteLifetime);
    }
    let own = trust.leaf().ok_or(CertificateError::Length)?;
    if own.role != Role::Administrator || !matches!(own.subject, Subject::Device(_)) {
        return Err(TrustError::NotAnAdministrator);
    }
    let invite_key = DeviceSigner::generate().map_err(|e| TrustError::Signing(e.to_string()))?;
    let statement = Statement {
        org: own.org,
        user,
        display_name: display_name.to_owned(),
        role,
        subject: Subject::Invite,
        public_key: invite_key.public_key().to_vec(),
        issued_at: now,
        expires_at: Some(expires_at),
    };
    let chain = trust.chain.extended(sign(device, statement)?);
    Ok((
        InviteCertificate {
            org_key: trust.org_key.clone(),
            chain,
        },
        invite_key,
    ))
}

/// A joining phone checks the invite it was given against the fingerprint
/// in its link and certifies its own device key with the invite key.
pub fn accept_invite(
    identity: DeviceIdentity,
    device_public_key: &[u8],
    invite: &InviteCertificate,
    invite_key: &DeviceSigner,
    pinned: OrgKeyFingerprint,
    now: UnixMillis,
) -> Result<Trust, TrustError> {
    if OrgKeyFingerprint::of(&invite.org_key) != pinned {
        return Err(TrustError::WrongOrganisationKey);
    }
    let verifier = Verifier::default();
    let invited = invite
        .chain
        .verify_to_any(&invite.org_key, &|k, m, s| verifier.verify(k, m, s))?;
    if invited.subject != Subject::Invite {
        return Err(CertificateError::NotAllowed.into());
    }
    if invited.public_key != invite_key.public_key() {
        return Err(TrustError::WrongInviteKey);
    }
    if invited.org != identity.org || invited.user != identity.user {
        return Err(TrustError::NotThisInvite);
    }
    if invited.expires_at.is_some_and(|end| {
        now > end.saturating_add_millis(huddle_core::retention::MAX_CLOCK_SKEW_MILLIS)
    }) {
        return Err(TrustError::InviteExpired);
    }
    let statement = Statement {
        org: identity.org,
        user: identity.user,
        display_name: invited.display_name.clone(),
        role: invited.role,
        subject: Subject::Device(identity.device),
        public_key: device_public_key.to_vec(),
        // Never later than the invite's end: a phone whose clock runs fast
        // must still be able to use a fresh invite.
        issued_at: invited.expires_at.map_or(now, |end| now.min(end)),
        expires_at: None,
    };
    let chain = invite.chain.extended(sign(invite_key, statement)?);
    let trust = Trust {
        org_key: invite.org_key.clone(),
        chain,
    };
    // Check the result as every other phone will.
    let leaf = trust
        .chain
        .verify(&trust.org_key, &|k, m, s| verifier.verify(k, m, s))?;
    huddle_core::certificate::check_names(leaf, Some(identity), device_public_key)?;
    Ok(trust)
}

/// Verifies P-384 signatures, remembering the ones that held: the links
/// near the organisation key are shared by many chains, and a group of 200
/// should not check the same administrator's certificate 200 times. A
/// device's verifier shares its memory with the device's MLS provider.
#[derive(Debug, Default)]
pub struct Verifier {
    memo: Arc<SignatureMemo>,
}

impl Verifier {
    pub fn sharing(memo: Arc<SignatureMemo>) -> Self {
        Verifier { memo }
    }

    pub fn verify(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        self.memo.verify(public_key, message, signature, || {
            verify_device_signature(public_key, message, signature)
        })
    }
}

/// The most chains, and the most attestations, one check looks at: a
/// relay that sends more gets the first ones checked, not a busy worker.
pub const MAX_IDENTITY_ITEMS: usize = 2_000;

/// Checks colleagues' chains (each for the person and device it was listed
/// under) and the attestations about `users`, and keeps what holds.
/// Anything that does not check out is left out: the person then shows as
/// not verified, never as verified. The same bytes are checked once.
pub fn check_identities(
    trust: &Trust,
    verifier: &Verifier,
    users: &[UserId],
    mut devices: Vec<DeviceCertificate>,
    attestations: &[Vec<u8>],
) -> Identities {
    let verify = |k: &[u8], m: &[u8], s: &[u8]| verifier.verify(k, m, s);
    let Some(org) = trust.chain.claimed_identity().map(|id| id.org) else {
        return Identities::default();
    };
    devices.sort_by(|a, b| (a.user, a.device, &a.chain).cmp(&(b.user, b.device, &b.chain)));
    devices.dedup();
    let mut checked: Vec<CheckedDevice> = Vec::new();
    for card in devices.iter().take(MAX_IDENTITY_ITEMS) {
        let expected = DeviceIdentity {
            org,
            user: card.user,
            device: card.device,
        };
        if let Ok(device) = check_device(&card.chain, expected, &trust.org_key, &verify) {
            if !checked.contains(&device) {
                checked.push(device);
            }
        }
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut kept: Vec<CheckedAttestation> = Vec::new();
    for bytes in attestations.iter().take(MAX_IDENTITY_ITEMS) {
        if seen.contains(&bytes.as_slice()) {
            continue;
        }
        seen.push(bytes);
        let Ok(attestation) = Attestation::from_bytes(bytes) else {
            continue;
        };
        // Only about the people asked for, and only checked if it is.
        if !users.contains(&attestation.statement.subject.user) {
            continue;
        }
        if let Ok(attested) = attestation.check(&trust.org_key, &verify) {
            if attested.attester.org == org {
                kept.push(attested);
            }
        }
    }
    Identities {
        devices: checked,
        attestations: kept,
    }
}

/// This device's signed word that it checked `subject`'s key in person.
pub fn attest(
    trust: &Trust,
    signer: &DeviceSigner,
    attester: DeviceIdentity,
    subject: DeviceIdentity,
    subject_key: KeyDigest,
    method: Method,
    now: UnixMillis,
) -> Result<Vec<u8>, TrustError> {
    if subject.device == attester.device || subject.org != attester.org {
        return Err(TrustError::NotAColleague);
    }
    let statement = AttestationStatement {
        attester,
        subject,
        subject_key,
        method,
        verified_at: now,
    };
    let signature = signer
        .sign(&statement.to_be_signed())
        .map_err(|e| TrustError::Signing(format!("{e:?}")))?;
    Ok(Attestation {
        statement,
        attester_chain: trust.chain.clone(),
        signature,
    }
    .to_bytes())
}
