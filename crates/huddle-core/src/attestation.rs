//! Verification in person: one phone's signed word that it checked another device's key face to face, and what every phone makes of such words.
//!
//! See SECURITY.md, "Verification in person". An attestation names the
//! device that checked, the device checked and a digest of the key it saw,
//! and carries the checker's certificate chain, so that any phone of the
//! organisation can check it without sharing a group with either. The
//! relay stores and hands them out; it holds no key that could make one.
//!
//! Like certificates, checking takes a verifier function: the crypto worker
//! passes P-384 ECDSA, so the page does not carry the elliptic-curve code.

use crate::certificate::{check_names, CertificateError, Chain, Statement, Verify};
use crate::identity::{DeviceIdentity, Fingerprint};
use crate::ids::{DeviceId, UserId};
use crate::retention::UnixMillis;
use crate::wire::{Person, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha384};
use std::fmt;

/// The most bytes an encoded attestation may take: a full chain and a
/// statement with its signature.
pub const MAX_ATTESTATION_BYTES: usize =
    crate::certificate::MAX_CHAIN_LINKS * crate::certificate::MAX_CERTIFICATE_BYTES + 512;

/// What stands for a device's public key in an attestation: the first 32
/// bytes of a labelled SHA-384 of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyDigest(pub [u8; 32]);

impl KeyDigest {
    pub fn of(public_key: &[u8]) -> KeyDigest {
        let hash = Sha384::new()
            .chain_update(b"huddle device key v1")
            .chain_update(public_key)
            .finalize();
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&hash[..32]);
        KeyDigest(bytes)
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({})", crate::hex::encode(&self.0[..8]))
    }
}

/// How the two phones were compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// This phone's camera read the other phone's code, and it matched.
    ScannedCode,
    /// The person read the digits on the other screen and said they match.
    ComparedDigits,
}

/// The signed part of an attestation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttestationStatement {
    pub attester: DeviceIdentity,
    pub subject: DeviceIdentity,
    pub subject_key: KeyDigest,
    pub method: Method,
    pub verified_at: UnixMillis,
}

impl AttestationStatement {
    /// The bytes the attester signs: a fixed label first, so that the
    /// signature is good for nothing else (not a certificate, not a login).
    pub fn to_be_signed(&self) -> Vec<u8> {
        let mut bytes = b"huddle attestation v1".to_vec();
        bytes.extend_from_slice(
            &postcard::to_allocvec(self).expect("a statement always serialises into a Vec"),
        );
        bytes
    }
}

/// An attestation as it travels: the statement, the attester's chain and
/// the attester's signature (ECDSA P-384 with SHA-384, DER).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub statement: AttestationStatement,
    pub attester_chain: Chain,
    pub signature: Vec<u8>,
}

/// An attestation that checked out, with the attester's certified name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedAttestation {
    pub attester: DeviceIdentity,
    pub attester_name: String,
    /// The key the attester's chain certifies: it must be the key this
    /// phone knows for the attester's device, where it knows one.
    pub attester_key: KeyDigest,
    pub subject: DeviceIdentity,
    pub subject_key: KeyDigest,
    pub method: Method,
    pub verified_at: UnixMillis,
}

impl Attestation {
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("an attestation always serialises into a Vec")
    }

    /// Reads an attestation; bounded before anything is kept.
    pub fn from_bytes(bytes: &[u8]) -> Result<Attestation, CertificateError> {
        if bytes.len() > MAX_ATTESTATION_BYTES {
            return Err(CertificateError::TooLarge);
        }
        match postcard::take_from_bytes(bytes) {
            Ok((attestation, [])) => Ok(attestation),
            _ => Err(CertificateError::Unreadable),
        }
    }

    /// Checks the attester's chain from `org_key`, that it names the
    /// attester, and the signature; both devices must be of the chain's
    /// organisation, and of different people (nobody vouches for herself,
    /// not even for another phone of hers).
    pub fn check(
        &self,
        org_key: &[u8],
        verify: Verify,
    ) -> Result<CheckedAttestation, CertificateError> {
        let leaf = self.attester_chain.verify(org_key, verify)?;
        let attester = check_names(leaf, Some(self.statement.attester), &leaf.public_key)?;
        if self.statement.subject.org != attester.org {
            return Err(CertificateError::OtherOrganisation);
        }
        if self.statement.subject.user == attester.user {
            return Err(CertificateError::NotAllowed);
        }
        if !verify(
            &leaf.public_key,
            &self.statement.to_be_signed(),
            &self.signature,
        ) {
            return Err(CertificateError::Signature);
        }
        Ok(CheckedAttestation {
            attester,
            attester_name: leaf.display_name.clone(),
            attester_key: KeyDigest::of(&leaf.public_key),
            subject: self.statement.subject,
            subject_key: self.statement.subject_key,
            method: self.statement.method,
            verified_at: self.statement.verified_at,
        })
    }
}

/// A colleague's device whose chain checked out: who it is, as certified,
/// and what stands for its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedDevice {
    pub identity: DeviceIdentity,
    pub display_name: String,
    pub role: Role,
    pub key: KeyDigest,
    pub fingerprint: Fingerprint,
}

/// Checks a device's chain (as the relay handed it over for `expected`)
/// and describes the device.
pub fn check_device(
    chain_bytes: &[u8],
    expected: DeviceIdentity,
    org_key: &[u8],
    verify: Verify,
) -> Result<CheckedDevice, CertificateError> {
    let chain = Chain::from_credential_bytes(chain_bytes)?;
    let leaf: &Statement = chain.verify(org_key, verify)?;
    let identity = check_names(leaf, Some(expected), &leaf.public_key)?;
    Ok(CheckedDevice {
        identity,
        display_name: leaf.display_name.clone(),
        role: leaf.role,
        key: KeyDigest::of(&leaf.public_key),
        fingerprint: Fingerprint::of(&identity, &leaf.public_key),
    })
}

/// What this phone knows of colleagues' keys and who checked them: the
/// checked results, kept so that badges show offline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identities {
    pub devices: Vec<CheckedDevice>,
    pub attestations: Vec<CheckedAttestation>,
}

impl Identities {
    /// Replaces what is known of `users` with `fresh` (of which only what
    /// concerns `users` is kept: an answer cannot rewrite anyone else).
    pub fn replace(&mut self, users: &[UserId], fresh: Identities) {
        self.devices.retain(|d| !users.contains(&d.identity.user));
        self.attestations
            .retain(|a| !users.contains(&a.subject.user));
        for device in fresh.devices {
            if users.contains(&device.identity.user) && !self.devices.contains(&device) {
                self.devices.push(device);
            }
        }
        for attestation in fresh.attestations {
            if users.contains(&attestation.subject.user)
                && !self.attestations.contains(&attestation)
            {
                self.attestations.push(attestation);
            }
        }
    }

    /// A device's checked identity, when exactly one key is known for it
    /// (two keys for one device is a forgery somewhere: neither is shown).
    pub fn device(&self, device: DeviceId) -> Option<&CheckedDevice> {
        let mut found = self.devices.iter().filter(|d| d.identity.device == device);
        let first = found.next()?;
        match found.all(|other| other.key == first.key) {
            true => Some(first),
            false => None,
        }
    }

    /// Every device this phone knows a person has: those the relay lists,
    /// and those met in groups (which the relay cannot hide).
    pub fn devices_of(&self, person: &Person) -> Vec<DeviceId> {
        let mut devices = person.devices.clone();
        for known in &self.devices {
            if known.identity.user == person.user && !devices.contains(&known.identity.device) {
                devices.push(known.identity.device);
            }
        }
        devices
    }

    /// Whether a person is verified in person, as this phone sees it.
    /// `person` is the directory's entry. Their devices are those it lists
    /// and those this phone met in its groups; each must have exactly one
    /// known key, attested by a colleague. The directory says whose
    /// attestations still count (an attester's device must still be
    /// listed: a revoked phone's word stops counting), and an attester's
    /// key must be the one this phone knows for her device, where it
    /// knows one.
    pub fn verification_of(&self, person: &Person, people: &[Person]) -> Verification {
        let counts = |attestation: &&CheckedAttestation| {
            attestation.attester.user != person.user
                && people.iter().any(|p| {
                    p.user == attestation.attester.user
                        && p.devices.contains(&attestation.attester.device)
                })
                && self
                    .devices
                    .iter()
                    .filter(|d| d.identity == attestation.attester)
                    .all(|d| d.key == attestation.attester_key)
        };
        let about: Vec<&CheckedAttestation> = self
            .attestations
            .iter()
            .filter(|a| a.subject.user == person.user)
            .filter(counts)
            .collect();
        let devices = self.devices_of(person);
        let mut by = Vec::new();
        let mut every_device = !devices.is_empty();
        for device in &devices {
            let current = self.device(*device);
            let good: Vec<&&CheckedAttestation> = about
                .iter()
                .filter(|a| {
                    current.is_some_and(|c| a.subject == c.identity && a.subject_key == c.key)
                })
                .collect();
            if good.is_empty() {
                every_device = false;
            }
            by.extend(good.into_iter().map(|a| Attester {
                user: a.attester.user,
                name: a.attester_name.clone(),
                at: a.verified_at,
            }));
        }
        if every_device {
            // One line per colleague, her latest word first.
            by.sort_by_key(|a| (a.user, std::cmp::Reverse(a.at)));
            by.dedup_by_key(|a| a.user);
            by.sort_by_key(|a| std::cmp::Reverse(a.at));
            Verification::Verified { by }
        } else if !about.is_empty() {
            Verification::Lapsed
        } else {
            Verification::NotVerified
        }
    }
}

/// Who vouched for a person in person, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attester {
    pub user: UserId,
    pub name: String,
    pub at: UnixMillis,
}

/// A person's standing, as the badge shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every device they have now was checked in person (newest first).
    Verified {
        by: Vec<Attester>,
    },
    /// They were checked once, but on a phone or key they no longer use.
    Lapsed,
    NotVerified,
}

impl Verification {
    pub fn is_verified(&self) -> bool {
        matches!(self, Verification::Verified { .. })
    }
}

#[cfg(test)]
mod tests;
