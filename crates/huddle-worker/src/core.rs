//! The worker's logic without the browser: one `MlsDevice`, answering requests and reporting the state to persist.
//!
//! The wasm glue in `browser.rs` loads and saves through IndexedDB; the
//! native tests use a map. Keeping this part free of IO is what lets the
//! whole request set be tested without a browser.

use huddle_core::certificate::InviteCertificate;
use huddle_core::crypto_worker::{WorkerError, WorkerErrorKind, WorkerRequest, WorkerResponse};
use huddle_core::wire::Refusal;
use huddle_mls::provider::SignatureCheck;
use huddle_mls::state::StateChange;
use huddle_mls::{DeviceIdentity, DeviceSigner, MlsDevice, MlsError};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// What the worker keeps about its device besides MLS state: the identity
/// and the signing key, saved (encrypted) under [`DEVICE_RECORD`].
#[derive(serde::Serialize, serde::Deserialize)]
pub struct DeviceRecord {
    pub identity: DeviceIdentity,
    pub private_key: Zeroizing<Vec<u8>>,
    pub public_key: Vec<u8>,
}

/// The id of the device record in the worker's store.
pub const DEVICE_RECORD: &str = "device";

/// The id of the key made for registration, before the device has an identity.
pub const PENDING_KEY_RECORD: &str = "pending-key";

/// A device key made before the relay said which organisation and person it
/// belongs to (the identity is part of the MLS credential, so the device
/// cannot be made until then).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct PendingKey {
    pub private_key: Zeroizing<Vec<u8>>,
    pub public_key: Vec<u8>,
}

impl std::fmt::Debug for PendingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingKey").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The worker's state.
#[derive(Default)]
pub struct WorkerCore {
    device: Option<MlsDevice>,
}

fn mls_error(error: MlsError) -> WorkerError {
    let kind = match &error {
        MlsError::Untrusted(_) | MlsError::BadCredential => {
            WorkerErrorKind::Untrusted(Refusal::Certificate)
        }
        MlsError::WrongSender { .. } => WorkerErrorKind::Untrusted(Refusal::WrongSender),
        MlsError::UndeclaredChange => WorkerErrorKind::Untrusted(Refusal::UndeclaredChange),
        MlsError::CredentialChanged => WorkerErrorKind::Untrusted(Refusal::CredentialChanged),
        MlsError::DuplicateDevice => WorkerErrorKind::Untrusted(Refusal::DuplicateDevice),
        MlsError::NotPermitted => WorkerErrorKind::Untrusted(Refusal::NotPermitted),
        MlsError::RestartRefused(_) => WorkerErrorKind::Untrusted(Refusal::RestartMembers),
        MlsError::CommitPending => WorkerErrorKind::CommitPending,
        _ => WorkerErrorKind::Mls,
    };
    WorkerError {
        kind,
        message: error.to_string(),
    }
}

fn storage_error(message: impl Into<String>) -> WorkerError {
    WorkerError {
        kind: WorkerErrorKind::Storage,
        message: message.into(),
    }
}

impl WorkerCore {
    /// Opens the device from what the store holds, or creates it. Returns
    /// the record to save when the device is new.
    pub fn open_device(
        &mut self,
        identity: DeviceIdentity,
        saved: Option<DeviceRecord>,
        pending: Option<PendingKey>,
        entries: HashMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(WorkerResponse, Option<DeviceRecord>), WorkerError> {
        let (device, new_record) = match saved {
            Some(record) => {
                if record.identity != identity {
                    return Err(storage_error(
                        "this browser holds the key of another device; sign out first",
                    ));
                }
                let signer = DeviceSigner::restore(&record.private_key, &record.public_key)
                    .map_err(|e| storage_error(e.to_string()))?;
                (MlsDevice::restore(identity, signer, entries), None)
            }
            None if pending.is_some() => {
                let pending = pending.ok_or_else(|| storage_error("the key is missing"))?;
                let signer = DeviceSigner::restore(&pending.private_key, &pending.public_key)
                    .map_err(|e| storage_error(e.to_string()))?;
                let device = MlsDevice::restore(identity, signer, HashMap::new());
                let record = DeviceRecord {
                    identity,
                    private_key: pending.private_key,
                    public_key: pending.public_key,
                };
                (device, Some(record))
            }
            None => {
                let device = MlsDevice::create(identity).map_err(mls_error)?;
                let (private, public) = device.signer().export();
                let record = DeviceRecord {
                    identity,
                    private_key: private,
                    public_key: public,
                };
                (device, Some(record))
            }
        };
        let response = WorkerResponse::DeviceReady {
            created: new_record.is_some(),
            fingerprint: device.fingerprint().to_string(),
            public_key: device.signer().public_key().to_vec(),
            org_key: device.org_key_fingerprint(),
        };
        self.device = Some(device);
        Ok((response, new_record))
    }

    /// Signs the registration transcript with the key the device will be
    /// registered under: the saved pending key, or a new one (returned, to
    /// be saved before the answer leaves the worker).
    pub fn prepare_registration(
        saved: Option<PendingKey>,
        transcript: &[u8],
    ) -> Result<(WorkerResponse, Option<PendingKey>), WorkerError> {
        let (signer, new_key) = match saved {
            Some(key) => (
                DeviceSigner::restore(&key.private_key, &key.public_key)
                    .map_err(|e| storage_error(e.to_string()))?,
                None,
            ),
            None => {
                let signer = DeviceSigner::generate().map_err(|e| storage_error(e.to_string()))?;
                let (private, public) = signer.export();
                let key = PendingKey {
                    private_key: private,
                    public_key: public,
                };
                (signer, Some(key))
            }
        };
        let signature = signer
            .sign_challenge(transcript)
            .map_err(|e| mls_error(MlsError::Internal(format!("{e:?}"))))?;
        let response = WorkerResponse::Registration {
            public_key: signer.public_key().to_vec(),
            signature,
        };
        Ok((response, new_key))
    }

    /// Forgets the open device (its stored records are cleared by the caller).
    pub fn forget_device(&mut self) {
        self.device = None;
    }

    /// The signatures answering `request` will check, where it is worth
    /// checking them together first (a join: one per member's leaf and
    /// certificate link). Changes nothing.
    pub fn signatures_ahead(&mut self, request: &WorkerRequest) -> Vec<SignatureCheck> {
        match (request, self.device.as_mut()) {
            (WorkerRequest::Join { welcome }, Some(device))
            | (WorkerRequest::JoinRestart { welcome, .. }, Some(device)) => {
                device.signatures_to_join(welcome)
            }
            _ => Vec::new(),
        }
    }

    /// For an `Open`: the answer, given before the message's signature is
    /// checked, and the checks it skipped, which the caller must make before
    /// the answer leaves the worker (see `huddle_mls::fast_checks::open`).
    /// `None` for any other request.
    pub fn open_checking_later(
        &mut self,
        request: &WorkerRequest,
    ) -> Option<(Result<WorkerResponse, WorkerError>, Vec<SignatureCheck>)> {
        let WorkerRequest::Open {
            group,
            message,
            sender,
            declared,
            now,
        } = request
        else {
            return None;
        };
        let device = self.device.as_mut()?;
        let (opened, skipped) =
            device.open_checking_later(*group, message, *sender, declared.as_ref(), *now);
        Some((
            opened.map(WorkerResponse::Opened).map_err(mls_error),
            skipped,
        ))
    }

    /// Remembers signatures that WebCrypto found valid.
    pub fn remember_valid<'a>(&self, checks: impl IntoIterator<Item = &'a SignatureCheck>) {
        if let Some(device) = &self.device {
            device.remember_valid(checks);
        }
    }

    /// The MLS state changes to persist before the answer is sent.
    pub fn take_state_changes(&mut self) -> Vec<StateChange> {
        self.device
            .as_mut()
            .map(MlsDevice::take_state_changes)
            .unwrap_or_default()
    }

    /// Answers every request except those that need the store (opening
    /// the device, registration, the wipe and the passcode lock).
    pub fn handle(&mut self, request: WorkerRequest) -> Result<WorkerResponse, WorkerError> {
        if let WorkerRequest::Ping = request {
            return Ok(WorkerResponse::Pong {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ciphersuite: huddle_mls::ciphersuite_name().to_owned(),
            });
        }
        let device = self.device.as_mut().ok_or(WorkerError {
            kind: WorkerErrorKind::NoDevice,
            message: "the device is not open yet".into(),
        })?;
        use WorkerRequest as R;
        use WorkerResponse as A;
        let answer = match request {
            R::Ping
            | R::OpenDevice { .. }
            | R::PrepareRegistration { .. }
            | R::Wipe
            | R::LockStatus { .. }
            | R::SetPasscode { .. }
            | R::CommitPasscode
            | R::Unlock { .. } => {
                return Err(WorkerError {
                    kind: WorkerErrorKind::NoDevice,
                    message: "this request is handled by the worker's store".into(),
                })
            }
            R::SignChallenge { transcript } => A::Signature {
                signature: device
                    .signer()
                    .sign_challenge(&transcript)
                    .map_err(|e| mls_error(MlsError::Internal(format!("{e:?}"))))?,
            },
            R::KeyPackages { count, last_resort } => A::KeyPackages {
                key_packages: if last_resort {
                    vec![device.last_resort_key_package().map_err(mls_error)?]
                } else {
                    device
                        .key_packages(count.min(100) as usize)
                        .map_err(mls_error)?
                },
            },
            R::CreateGroup { group, profile } => {
                device.create_group(group, &profile).map_err(mls_error)?;
                A::Done
            }
            R::AddMembers {
                group,
                key_packages,
            } => A::Commit(
                device
                    .add_members(group, &key_packages)
                    .map_err(mls_error)?,
            ),
            R::RemoveMembers { group, devices } => {
                A::Commit(device.remove_members(group, &devices).map_err(mls_error)?)
            }
            R::SelfUpdate { group } => A::Commit(device.self_update(group).map_err(mls_error)?),
            R::Leave { group } => A::Proposal {
                message: device.leave(group).map_err(mls_error)?,
            },
            R::MergePendingCommit { group, now } => A::Epoch {
                epoch: device.merge_pending_commit(group, now).map_err(mls_error)?,
            },
            R::KeysDue { groups, now } => A::Groups {
                groups: device.keys_due(&groups, now),
            },
            R::DiscardPendingCommit { group } => {
                device.discard_pending_commit(group).map_err(mls_error)?;
                A::Done
            }
            R::Join { welcome } => A::Joined(device.join(&welcome).map_err(mls_error)?),
            R::Restart {
                group,
                chain,
                key_packages,
                active,
            } => A::Commit(
                device
                    .restart(group, chain, &key_packages, &active)
                    .map_err(mls_error)?,
            ),
            R::JoinRestart {
                welcome,
                group,
                chain,
                sender,
                active,
            } => A::Joined(
                device
                    .join_restart(&welcome, (group, chain), sender, &active)
                    .map_err(mls_error)?,
            ),
            R::DiscardPendingRestart { group } => {
                device.discard_pending_restart(group).map_err(mls_error)?;
                A::Done
            }
            R::Seal {
                group,
                client_msg,
                expires_at,
                envelope,
            } => A::Sealed(
                device
                    .seal(group, client_msg, expires_at, envelope.as_bytes())
                    .map_err(mls_error)?,
            ),
            R::Open {
                group,
                message,
                sender,
                declared,
                now,
            } => A::Opened(
                device
                    .open(group, &message, sender, declared.as_ref(), now)
                    .map_err(mls_error)?,
            ),
            R::FoundOrganisation { display_name, now } => A::Certified {
                org_key: device
                    .found_organisation(&display_name, now)
                    .map_err(mls_error)?,
            },
            R::CertifyInvite {
                user,
                display_name,
                role,
                expires_at,
                now,
            } => {
                let (certificate, invite_key) = device
                    .certify_invite(user, &display_name, role, expires_at, now)
                    .map_err(mls_error)?;
                A::InviteCertified {
                    org_key: huddle_core::certificate::OrgKeyFingerprint::of(&certificate.org_key),
                    certificate: certificate.to_bytes(),
                    invite_key,
                }
            }
            R::AcceptInvite {
                certificate,
                invite_key,
                org_key,
                now,
            } => {
                let invite = InviteCertificate::from_bytes(&certificate)
                    .map_err(|e| mls_error(MlsError::Untrusted(e)))?;
                A::Certified {
                    org_key: device
                        .accept_invite(&invite, &invite_key, org_key, now)
                        .map_err(mls_error)?,
                }
            }
            R::OwnCertificate => A::Certificate {
                chain: device.own_certificate().map_err(mls_error)?,
            },
            R::CheckIdentities {
                users,
                groups,
                devices,
                attestations,
            } => A::Identities(
                device
                    .check_identities(&users, &groups, devices, &attestations)
                    .map_err(mls_error)?,
            ),
            R::Attest {
                subject,
                subject_key,
                method,
                now,
            } => A::Attestation {
                attestation: device
                    .attest(subject, subject_key, method, now)
                    .map_err(mls_error)?,
            },
            R::Members { group } => A::Members {
                members: device.members(group).map_err(mls_error)?,
            },
            R::DeleteGroup { group } => {
                device.delete_group(group).map_err(mls_error)?;
                A::Done
            }
        };
        Ok(answer)
    }
}

#[cfg(test)]
mod tests;
