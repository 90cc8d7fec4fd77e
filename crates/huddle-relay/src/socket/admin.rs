//! Administration over the device socket: invites (until a date, for agency staff), ends of access, membership reviews, revocations, the directory, the audit log, and who is who (certificates and attestations). Only administrators may act, except for reading the directory and the identity requests every member makes.

use super::connection::Connection;
use super::internal_error;
use crate::auth::random_nonce;
use crate::clock::now;
use crate::live::bus;
use crate::store::access_ends::AccessRefusal;
use crate::store::people::{clean_name, RevokeRefusal, MAX_INVITE_SECS};
use crate::store::StoreError;
use crate::AppState;
use axum::extract::ws::Message;
use futures::{Sink, Stream};
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{DeviceId, GroupId, UserId};
use huddle_core::passcode::{SHARE_LEN, VERIFIER_LEN};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{
    ClientFrame, LinkSecret, LockSecrets, RequestId, Role, ServerFrame, MAX_ACCESS_AHEAD_MILLIS,
    MAX_IDENTITY_USERS, SIGNED_OUT_SHOWN_DAYS,
};

/// Why the last administrator stays.
const LAST_ADMINISTRATOR: &str = "Huddle must keep at least one administrator. \
Invite another administrator before removing this one.";

/// The administration frames of the wire, as their own type: what
/// [`administer`] handles, each once.
#[derive(Debug)]
pub enum AdminRequest {
    CreateInvite {
        /// The id the administrator's phone chose; the relay picks one if not.
        user: Option<UserId>,
        display_name: String,
        role: Role,
        valid_for_secs: u64,
        /// When the person's access ends (agency and bank staff).
        access_ends_at: Option<UnixMillis>,
    },
    SetAccessEnds {
        user: UserId,
        ends_at: Option<UnixMillis>,
    },
    AccessEnds,
    ReviewsDue,
    MembersReviewed {
        group: GroupId,
        kept: u32,
        removed: u32,
    },
    RevokeInvite {
        user: UserId,
    },
    RevokeDevice {
        device: DeviceId,
    },
    RevokeUser {
        user: UserId,
    },
    Directory,
    ReadAudit {
        before: Option<u64>,
        limit: u32,
    },
    AttachInviteCertificate {
        user: UserId,
        certificate: Vec<u8>,
    },
    /// Anyone: this device's own certificate chain.
    PublishCertificate {
        chain: Vec<u8>,
    },
    /// Anyone: colleagues' chains and attestations.
    Identities {
        users: Vec<UserId>,
    },
    /// Anyone: this device checked a colleague's in person.
    Attest {
        attestation: Vec<u8>,
    },
    /// Anyone: this device's passcode lock.
    SetPasscodeLock {
        lock_key: Vec<u8>,
        secrets: LockSecrets,
    },
    /// Anyone: her own phones (administrators: anyone's).
    Devices {
        user: UserId,
    },
    /// Anyone: her own signed-out phones (administrators: everyone's).
    SignedOutPhones,
}

/// A device's frame, sorted: administration, or the rest of the protocol.
pub enum Sorted {
    Admin(RequestId, AdminRequest),
    Device(ClientFrame),
}

impl AdminRequest {
    /// Takes the administration request out of `frame`, if it is one.
    pub fn sort(frame: ClientFrame) -> Sorted {
        let (request, admin) = match frame {
            ClientFrame::CreateInvite {
                request,
                display_name,
                role,
                valid_for_secs,
            } => (
                request,
                AdminRequest::CreateInvite {
                    user: None,
                    display_name,
                    role,
                    valid_for_secs,
                    access_ends_at: None,
                },
            ),
            ClientFrame::CreateInviteFor {
                request,
                user,
                display_name,
                role,
                valid_for_secs,
            } => (
                request,
                AdminRequest::CreateInvite {
                    user: Some(user),
                    display_name,
                    role,
                    valid_for_secs,
                    access_ends_at: None,
                },
            ),
            ClientFrame::CreateInviteEnding {
                request,
                user,
                display_name,
                role,
                valid_for_secs,
                access_ends_at,
            } => (
                request,
                AdminRequest::CreateInvite {
                    user: Some(user),
                    display_name,
                    role,
                    valid_for_secs,
                    access_ends_at: Some(access_ends_at),
                },
            ),
            ClientFrame::SetAccessEnds {
                request,
                user,
                ends_at,
            } => (request, AdminRequest::SetAccessEnds { user, ends_at }),
            ClientFrame::AccessEnds { request } => (request, AdminRequest::AccessEnds),
            ClientFrame::ReviewsDue { request } => (request, AdminRequest::ReviewsDue),
            ClientFrame::MembersReviewed {
                request,
                group,
                kept,
                removed,
            } => (
                request,
                AdminRequest::MembersReviewed {
                    group,
                    kept,
                    removed,
                },
            ),
            ClientFrame::RevokeInvite { request, user } => {
                (request, AdminRequest::RevokeInvite { user })
            }
            ClientFrame::RevokeDevice { request, device } => {
                (request, AdminRequest::RevokeDevice { device })
            }
            ClientFrame::RevokeUser { request, user } => {
                (request, AdminRequest::RevokeUser { user })
            }
            ClientFrame::Directory { request } => (request, AdminRequest::Directory),
            ClientFrame::ReadAudit {
                request,
                before,
                limit,
            } => (request, AdminRequest::ReadAudit { before, limit }),
            ClientFrame::AttachInviteCertificate {
                request,
                user,
                certificate,
            } => (
                request,
                AdminRequest::AttachInviteCertificate { user, certificate },
            ),
            ClientFrame::PublishCertificate { request, chain } => {
                (request, AdminRequest::PublishCertificate { chain })
            }
            ClientFrame::Identities { request, users } => {
                (request, AdminRequest::Identities { users })
            }
            ClientFrame::Attest {
                request,
                attestation,
            } => (request, AdminRequest::Attest { attestation }),
            ClientFrame::SetPasscodeLock {
                request,
                lock_key,
                secrets,
            } => (request, AdminRequest::SetPasscodeLock { lock_key, secrets }),
            ClientFrame::Devices { request, user } => (request, AdminRequest::Devices { user }),
            ClientFrame::SignedOutPhones { request } => (request, AdminRequest::SignedOutPhones),
            other => return Sorted::Device(other),
        };
        Sorted::Admin(request, admin)
    }

    /// Whether staff may ask this too (a revocation: of their own phones
    /// only, checked when it is carried out).
    fn open_to_staff(&self) -> bool {
        matches!(
            self,
            AdminRequest::Directory
                | AdminRequest::RevokeDevice { .. }
                | AdminRequest::PublishCertificate { .. }
                | AdminRequest::Identities { .. }
                | AdminRequest::Attest { .. }
                | AdminRequest::SetPasscodeLock { .. }
                | AdminRequest::Devices { .. }
                | AdminRequest::SignedOutPhones
        )
    }
}

/// Carries out one administration request and answers it; false once the
/// connection is gone.
pub async fn administer<S>(
    connection: &mut Connection<S>,
    state: &AppState,
    device: DeviceId,
    request: RequestId,
    admin: AdminRequest,
) -> bool
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let refuse = |reason: &str| ServerFrame::Refused {
        request,
        reason: reason.to_owned(),
    };
    let (actor, role) = match state.store.role_of(device).await {
        Ok(Some(actor)) => actor,
        Ok(None) => {
            return connection
                .send(&refuse("This device is no longer registered."))
                .await
        }
        Err(error) => {
            tracing::error!(%error, "could not look up a role");
            return connection.send(&internal_error()).await;
        }
    };
    if role != Role::Administrator && !admin.open_to_staff() {
        return connection
            .send(&refuse("Only administrators can do this."))
            .await;
    }
    let identity = DeviceIdentity {
        org: state.org,
        user: actor,
        device,
    };
    let answer = match carry_out(state, identity, role, request, admin).await {
        Ok(Ok(frame)) => frame,
        Ok(Err(reason)) => refuse(reason),
        Err(error) => {
            tracing::error!(%error, "an administration request failed");
            internal_error()
        }
    };
    connection.send(&answer).await
}

/// Refuses an end of access that has passed or is more than a year away.
fn check_access_end(ends_at: UnixMillis, now: UnixMillis) -> Result<(), &'static str> {
    if ends_at <= now {
        return Err("That end date has passed. Choose a time still to come.");
    }
    if ends_at > now.saturating_add_millis(MAX_ACCESS_AHEAD_MILLIS) {
        return Err("An end date can be at most a year ahead.");
    }
    Ok(())
}

/// The answer to an administration request, or the refusal in words.
async fn carry_out(
    state: &AppState,
    identity: DeviceIdentity,
    role: Role,
    request: RequestId,
    admin: AdminRequest,
) -> Result<Result<ServerFrame, &'static str>, StoreError> {
    let now = now();
    let actor = identity.user;
    Ok(Ok(match admin {
        AdminRequest::CreateInvite {
            user: chosen,
            display_name,
            role,
            valid_for_secs,
            access_ends_at,
        } => {
            let Some(display_name) = clean_name(&display_name) else {
                return Ok(Err("Names need 1 to 80 characters."));
            };
            if !(60..=MAX_INVITE_SECS).contains(&valid_for_secs) {
                return Ok(Err("An invite lasts between a minute and 30 days."));
            }
            if let Some(ends_at) = access_ends_at {
                if role == Role::Administrator {
                    return Ok(Err(AccessRefusal::Administrator.words()));
                }
                if let Err(refusal) = check_access_end(ends_at, now) {
                    return Ok(Err(refusal));
                }
            }
            let (Some(secret), Some(user)) = (random_nonce(), random_nonce()) else {
                return Err(StoreError::Corrupt("no secure random numbers"));
            };
            let mut user_id = [0u8; 16];
            user_id.copy_from_slice(&user[..16]);
            let user = chosen.unwrap_or(UserId::from_bytes(user_id));
            // The link lasts no longer than the access it grants.
            let expires_at = now
                .saturating_add_millis(valid_for_secs.saturating_mul(1000))
                .min(access_ends_at.unwrap_or(UnixMillis(u64::MAX)));
            if !state
                .store
                .create_invite(
                    actor,
                    user,
                    &secret,
                    &display_name,
                    role,
                    expires_at,
                    access_ends_at,
                    now,
                )
                .await?
            {
                return Ok(Err("That person already exists or has an invite."));
            }
            ServerFrame::InviteCreated {
                request,
                user,
                secret: LinkSecret(secret),
                expires_at,
            }
        }
        AdminRequest::AttachInviteCertificate { user, certificate } => {
            if certificate.is_empty()
                || certificate.len() > huddle_core::wire::MAX_INVITE_CERTIFICATE_BYTES
            {
                return Ok(Err("That is not an invite certificate."));
            }
            if !state
                .store
                .attach_invite_certificate(user, &certificate)
                .await?
            {
                return Ok(Err("There is no unused invite for that person."));
            }
            ServerFrame::Done { request }
        }
        AdminRequest::SetAccessEnds { user, ends_at } => {
            if let Some(Err(refusal)) = ends_at.map(|at| check_access_end(at, now)) {
                return Ok(Err(refusal));
            }
            if let Err(refusal) = state
                .store
                .set_access_ends(actor, user, ends_at, now)
                .await?
            {
                return Ok(Err(refusal.words()));
            }
            ServerFrame::Done { request }
        }
        AdminRequest::AccessEnds => ServerFrame::AccessEnds {
            request,
            people: state.store.access_ends(now).await?,
        },
        AdminRequest::ReviewsDue => ServerFrame::ReviewsDue {
            request,
            groups: state
                .store
                .reviews_due(identity.device, state.membership_review_millis)
                .await?,
        },
        AdminRequest::MembersReviewed {
            group,
            kept,
            removed,
        } => {
            if let Err(refusal) = state
                .store
                .members_reviewed(actor, identity.device, group, kept, removed, now)
                .await?
            {
                return Ok(Err(refusal.words()));
            }
            ServerFrame::Done { request }
        }
        AdminRequest::RevokeInvite { user } => {
            if !state.store.revoke_invite(actor, user, now).await? {
                return Ok(Err("There is no unused invite for that person."));
            }
            ServerFrame::Done { request }
        }
        AdminRequest::RevokeDevice { device } => {
            if role != Role::Administrator {
                let owner = state.store.role_of(device).await?.map(|(owner, _)| owner);
                if owner != Some(actor) {
                    return Ok(Err("You can sign out only your own phones."));
                }
            }
            match state.store.revoke_device(actor, device, now).await? {
                Ok(()) => {}
                Err(RevokeRefusal::Unknown) => {
                    return Ok(Err("That device is unknown or already revoked."))
                }
                Err(RevokeRefusal::LastAdministrator) => return Ok(Err(LAST_ADMINISTRATOR)),
            }
            bus::revoked(&state.store, &state.hub, &[device]).await;
            ServerFrame::Done { request }
        }
        AdminRequest::RevokeUser { user } => {
            let devices = match state.store.revoke_user(actor, user, now).await? {
                Ok(devices) => devices,
                Err(RevokeRefusal::Unknown) => {
                    return Ok(Err("That person is unknown or already revoked."))
                }
                Err(RevokeRefusal::LastAdministrator) => return Ok(Err(LAST_ADMINISTRATOR)),
            };
            bus::revoked(&state.store, &state.hub, &devices).await;
            ServerFrame::Done { request }
        }
        AdminRequest::SetPasscodeLock { lock_key, secrets } => {
            let verifier: Result<[u8; VERIFIER_LEN], _> = secrets.verifier.as_slice().try_into();
            let share: Result<[u8; SHARE_LEN], _> = secrets.share.as_slice().try_into();
            let key_ok = p384::ecdsa::VerifyingKey::from_sec1_bytes(&lock_key).is_ok();
            let (Ok(verifier), Ok(share), true) = (verifier, share, key_ok) else {
                return Ok(Err("That is not a passcode lock Huddle can keep."));
            };
            state
                .store
                .set_passcode_lock(identity.device, &lock_key, &verifier, &share, now)
                .await?;
            ServerFrame::Done { request }
        }
        AdminRequest::Devices { user } => {
            if role != Role::Administrator && user != actor {
                return Ok(Err("You can see only your own phones."));
            }
            ServerFrame::Devices {
                request,
                devices: state.store.devices_seen(user).await?,
            }
        }
        AdminRequest::SignedOutPhones => {
            let owner = (role != Role::Administrator).then_some(actor);
            let since = now.saturating_sub_millis(SIGNED_OUT_SHOWN_DAYS * 24 * 60 * 60 * 1000);
            ServerFrame::SignedOutPhones {
                request,
                phones: state.store.signed_out_phones(owner, since).await?,
            }
        }
        AdminRequest::Directory => ServerFrame::People {
            request,
            people: state.store.directory().await?,
        },
        AdminRequest::PublishCertificate { chain } => {
            if let Err(refusal) = state.store.publish_certificate(identity, &chain).await? {
                return Ok(Err(refusal.words()));
            }
            ServerFrame::Done { request }
        }
        AdminRequest::Identities { users } => {
            if users.len() > MAX_IDENTITY_USERS {
                return Ok(Err("Ask about fewer people at once."));
            }
            let found = state.store.identities(&users).await?;
            ServerFrame::Identities {
                request,
                devices: found.devices,
                attestations: found.attestations,
            }
        }
        AdminRequest::Attest { attestation } => {
            if let Err(refusal) = state.store.attest(identity, &attestation, now).await? {
                return Ok(Err(refusal.words()));
            }
            ServerFrame::Done { request }
        }
        AdminRequest::ReadAudit { before, limit } => ServerFrame::Audit {
            request,
            entries: state.store.read_audit(before, limit).await?,
        },
    }))
}
