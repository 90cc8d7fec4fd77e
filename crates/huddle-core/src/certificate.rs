//! Certificates: who vouches for each device's key, from the organisation key down, and the rules every phone checks.
//!
//! A certificate is one signed statement: this public key belongs to this
//! organisation, this person (id, name, role), and either this device or
//! this invite. A device's MLS credential carries its whole chain (see
//! SECURITY.md, "Identities"). Who may sign what:
//!
//! - the organisation key signs device certificates, of any role;
//! - an administrator's device key signs invite certificates;
//! - an invite key signs one device certificate for the same person, name
//!   and role, made before the invite expired;
//! - a staff device key signs nothing.
//!
//! This crate has no signature code: checking takes a verifier function
//! (the crypto worker passes P-384 ECDSA), so that the page, which only
//! shows certificates, does not carry the elliptic-curve code.

use crate::identity::DeviceIdentity;
use crate::ids::{DeviceId, OrgId, UserId};
use crate::retention::UnixMillis;
use crate::wire::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha384};
use std::fmt;

/// The most links a chain may have (organisation, then up to three rounds
/// of administrator and invite, then the device).
pub const MAX_CHAIN_LINKS: usize = 8;

/// The most bytes one encoded certificate may take.
pub const MAX_CERTIFICATE_BYTES: usize = 1024;

/// The most bytes of a display name in a certificate.
pub const MAX_NAME_BYTES: usize = 120;

/// The first bytes of a Huddle credential (version 2: a certificate chain).
const CREDENTIAL_MAGIC: &[u8; 4] = b"HDL2";

/// What a certificate's key stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Subject {
    /// A device of the person: its signing key.
    Device(DeviceId),
    /// A one-time invite for the person: the key in the invite link.
    Invite,
}

/// The signed part of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Statement {
    pub org: OrgId,
    pub user: UserId,
    pub display_name: String,
    pub role: Role,
    pub subject: Subject,
    /// SEC1-encoded P-384 public key.
    pub public_key: Vec<u8>,
    pub issued_at: UnixMillis,
    /// Invites expire; device certificates do not (devices are revoked).
    pub expires_at: Option<UnixMillis>,
}

/// A statement and its issuer's signature (ECDSA P-384 with SHA-384, DER).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Certificate {
    pub statement: Statement,
    pub signature: Vec<u8>,
}

impl Statement {
    /// The bytes the issuer signs: a fixed label and the encoded statement,
    /// so that a certificate signature is good for nothing else.
    pub fn to_be_signed(&self) -> Vec<u8> {
        let mut bytes = b"huddle certificate v1".to_vec();
        bytes.extend_from_slice(
            &postcard::to_allocvec(self).expect("a statement always serialises into a Vec"),
        );
        bytes
    }

    fn identity(&self) -> Option<DeviceIdentity> {
        match self.subject {
            Subject::Device(device) => Some(DeviceIdentity {
                org: self.org,
                user: self.user,
                device,
            }),
            Subject::Invite => None,
        }
    }
}

/// The certificates from the organisation key down to one key, first link
/// signed by the organisation key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Chain(pub Vec<Certificate>);

/// Why a chain is not acceptable. Each names what a phone can tell the person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the credential is not a Huddle certificate chain")]
    Unreadable,
    #[error("the certificate chain is empty or longer than {MAX_CHAIN_LINKS} links")]
    Length,
    #[error("a certificate is too large")]
    TooLarge,
    #[error("a signature in the certificate chain does not verify")]
    Signature,
    #[error("the certificate chain mixes organisations")]
    OtherOrganisation,
    #[error("a key certified something it may not certify")]
    NotAllowed,
    #[error("the certificate was made after its invite expired")]
    InviteExpired,
    #[error("the chain does not end with a device")]
    NotADevice,
    #[error("the certificate names {found}, not {expected}")]
    WrongIdentity { expected: String, found: String },
    #[error("the certified key is not the key in use")]
    WrongKey,
    #[error("the organisation key is not the one this phone trusts")]
    UntrustedOrganisation,
}

/// Checks one signature: `(public key, message, signature) -> valid`.
pub type Verify<'a> = &'a dyn Fn(&[u8], &[u8], &[u8]) -> bool;

/// Who signed the link being checked.
enum Issuer<'a> {
    Organisation,
    Link(&'a Statement),
}

impl Chain {
    /// The last link: the key this chain certifies.
    pub fn leaf(&self) -> Option<&Certificate> {
        self.0.last()
    }

    /// The device the chain names, read without checking anything (for
    /// showing and routing; [`Chain::verify`] is what makes it true).
    pub fn claimed_identity(&self) -> Option<DeviceIdentity> {
        self.leaf()?.statement.identity()
    }

    /// Checks every link from `org_key` down and returns the leaf's
    /// statement, which must be a device. A chain once made stays valid
    /// (see SECURITY.md, limits).
    pub fn verify(&self, org_key: &[u8], verify: Verify) -> Result<&Statement, CertificateError> {
        let last = self.verify_to_any(org_key, verify)?;
        if !matches!(last.subject, Subject::Device(_)) {
            return Err(CertificateError::NotADevice);
        }
        Ok(last)
    }

    /// Checks the links, whatever the leaf is (an invite chain ends with the
    /// invite).
    pub fn verify_to_any(
        &self,
        org_key: &[u8],
        verify: Verify,
    ) -> Result<&Statement, CertificateError> {
        if self.0.is_empty() || self.0.len() > MAX_CHAIN_LINKS {
            return Err(CertificateError::Length);
        }
        let org = self.0[0].statement.org;
        let mut issuer = Issuer::Organisation;
        let mut issuer_key = org_key;
        for certificate in &self.0 {
            let statement = &certificate.statement;
            if statement.org != org {
                return Err(CertificateError::OtherOrganisation);
            }
            if statement.display_name.len() > MAX_NAME_BYTES {
                return Err(CertificateError::TooLarge);
            }
            check_issuer_may_sign(&issuer, statement)?;
            if !verify(
                issuer_key,
                &statement.to_be_signed(),
                &certificate.signature,
            ) {
                return Err(CertificateError::Signature);
            }
            issuer = Issuer::Link(statement);
            issuer_key = &statement.public_key;
        }
        Ok(&self.0[self.0.len() - 1].statement)
    }

    /// The chain as carried in an MLS basic credential.
    pub fn to_credential_bytes(&self) -> Vec<u8> {
        let mut bytes = CREDENTIAL_MAGIC.to_vec();
        bytes.extend_from_slice(
            &postcard::to_allocvec(self).expect("a chain always serialises into a Vec"),
        );
        bytes
    }

    /// Reads a credential; bounded before anything is kept, so that a
    /// hostile credential costs at most its own length.
    pub fn from_credential_bytes(bytes: &[u8]) -> Result<Chain, CertificateError> {
        let body = bytes
            .strip_prefix(CREDENTIAL_MAGIC.as_slice())
            .ok_or(CertificateError::Unreadable)?;
        if body.len() > MAX_CHAIN_LINKS * MAX_CERTIFICATE_BYTES {
            return Err(CertificateError::TooLarge);
        }
        // Nothing may follow the chain: one chain, one encoding.
        let (chain, rest): (Chain, &[u8]) =
            postcard::take_from_bytes(body).map_err(|_| CertificateError::Unreadable)?;
        if !rest.is_empty() {
            return Err(CertificateError::Unreadable);
        }
        if chain.0.is_empty() || chain.0.len() > MAX_CHAIN_LINKS {
            return Err(CertificateError::Length);
        }
        Ok(chain)
    }

    /// The chain extended by one certificate.
    pub fn extended(&self, certificate: Certificate) -> Chain {
        let mut links = self.0.clone();
        links.push(certificate);
        Chain(links)
    }
}

fn check_issuer_may_sign(issuer: &Issuer, statement: &Statement) -> Result<(), CertificateError> {
    match (issuer, statement.subject) {
        (Issuer::Organisation, Subject::Device(_)) => Ok(()),
        (Issuer::Link(parent), Subject::Invite)
            if matches!(parent.subject, Subject::Device(_))
                && parent.role == Role::Administrator =>
        {
            Ok(())
        }
        (Issuer::Link(invite), Subject::Device(_)) if invite.subject == Subject::Invite => {
            if invite.user != statement.user
                || invite.display_name != statement.display_name
                || invite.role != statement.role
            {
                return Err(CertificateError::NotAllowed);
            }
            match invite.expires_at {
                Some(expires) if statement.issued_at > expires => {
                    Err(CertificateError::InviteExpired)
                }
                _ => Ok(()),
            }
        }
        _ => Err(CertificateError::NotAllowed),
    }
}

/// What a joining phone receives with an invite: the organisation key and
/// the chain down to the invite's key. Public; the relay stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCertificate {
    pub org_key: Vec<u8>,
    pub chain: Chain,
}

impl InviteCertificate {
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("an invite certificate always serialises into a Vec")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertificateError> {
        if bytes.len() > (MAX_CHAIN_LINKS + 1) * MAX_CERTIFICATE_BYTES {
            return Err(CertificateError::TooLarge);
        }
        let (invite, rest): (InviteCertificate, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|_| CertificateError::Unreadable)?;
        if !rest.is_empty() {
            return Err(CertificateError::Unreadable);
        }
        Ok(invite)
    }
}

/// The first 16 bytes of SHA-384 of the organisation key: what an invite
/// link carries so that the joining phone pins the right key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrgKeyFingerprint(pub [u8; 16]);

impl OrgKeyFingerprint {
    pub fn of(org_key: &[u8]) -> Self {
        let hash = Sha384::new()
            .chain_update(b"huddle organisation key v1")
            .chain_update(org_key)
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash[..16]);
        OrgKeyFingerprint(bytes)
    }

    pub fn to_hex(self) -> String {
        crate::hex::encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        crate::hex::decode_array::<16>(text).map(OrgKeyFingerprint)
    }
}

impl fmt::Debug for OrgKeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgKeyFingerprint({})", self.to_hex())
    }
}

/// Checks that a credential's chain names `expected` and certifies `key`.
pub fn check_names(
    statement: &Statement,
    expected: Option<DeviceIdentity>,
    key: &[u8],
) -> Result<DeviceIdentity, CertificateError> {
    let found = statement.identity().ok_or(CertificateError::NotADevice)?;
    if let Some(expected) = expected {
        if expected != found {
            return Err(CertificateError::WrongIdentity {
                expected: format!("device {} of {}", expected.device, expected.user),
                found: format!("device {} of {}", found.device, found.user),
            });
        }
    }
    if statement.public_key != key {
        return Err(CertificateError::WrongKey);
    }
    Ok(found)
}

#[cfg(test)]
pub(crate) mod tests;
