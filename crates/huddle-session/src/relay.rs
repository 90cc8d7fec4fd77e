//! Questions to the relay that change nothing on the phone by themselves (the directory, key packages, invites, ends of access, membership reviews, revocations, the audit log), each paired with its answer by request id.

use crate::driver::Input;
use crate::error::SessionError;
use crate::phone::{Phone, Shared};
use crate::platform::{
    Cache, Clock, Crypto, CryptoError, Log, Platform, Randomness, Tasks, Transport,
};
use crate::records::Directory;
use futures::channel::oneshot;
use futures::future::{select, Either};
use huddle_core::certificate::OrgKeyFingerprint;
use huddle_core::crypto_worker::{InviteKey, PasscodeText, WorkerRequest, WorkerResponse};
use huddle_core::ids::{DeviceId, GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{
    AccessEnd, AuditEntry, ClaimedKeyPackage, ClientFrame, DeviceSeen, LinkSecret, RequestId,
    ReviewDue, Role, ServerFrame, SignedOutPhone,
};

/// How long a question to the relay may take before the person is told.
pub const ASK_TIMEOUT_MS: u64 = 15_000;

/// A one-time invite the relay made and this phone certified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    pub user: UserId,
    pub secret: LinkSecret,
    pub expires_at: UnixMillis,
    /// The invite's key, for the link only (never sent to the relay).
    pub invite_key: InviteKey,
    /// The organisation key the person's phone must pin.
    pub org_key: OrgKeyFingerprint,
}

impl Invite {
    /// What follows `#` in the invite link: the relay's secret, the invite
    /// key and the organisation key's fingerprint. Browsers never send a
    /// fragment to the server.
    pub fn link_fragment(&self) -> String {
        format!(
            "{}.{}.{}",
            huddle_core::hex::encode(self.secret.as_bytes()),
            huddle_core::hex::encode(self.invite_key.as_bytes()),
            self.org_key.to_hex()
        )
    }
}

impl<P: Platform> Shared<P> {
    /// Sends the frame `make` builds and waits for the frame that answers it.
    pub(crate) async fn ask(
        &self,
        make: impl FnOnce(RequestId) -> ClientFrame,
    ) -> Result<ServerFrame, SessionError> {
        let transport = match &*self.live.borrow() {
            Some(live) if self.state.borrow().connection.live => live.transport.clone(),
            _ => return Err(SessionError::Offline),
        };
        let id = self.next_request.get();
        self.next_request.set(id.wrapping_add(1));
        let (reply, answer) = oneshot::channel();
        self.requests.borrow_mut().insert(id, reply);
        if !transport.send(&make(id).encode()) {
            self.requests.borrow_mut().remove(&id);
            return Err(SessionError::Offline);
        }
        let (timer, timeout) = oneshot::channel::<()>();
        self.clock.after(
            ASK_TIMEOUT_MS,
            Box::new(move || {
                let _ = timer.send(());
            }),
        );
        match select(answer, timeout).await {
            Either::Left((Ok(ServerFrame::Refused { reason, .. }), _)) => {
                Err(SessionError::Refused(reason))
            }
            Either::Left((Ok(frame), _)) => Ok(frame),
            // The connection closed: questions in flight get no answer.
            Either::Left((Err(_), _)) => Err(SessionError::Dropped),
            Either::Right(_) => {
                self.requests.borrow_mut().remove(&id);
                Err(SessionError::NoAnswer)
            }
        }
    }

    /// Hands an answer to whoever asked; false if nobody did.
    pub(crate) fn answer(&self, frame: &ServerFrame) -> bool {
        let Some(request) = request_of(frame) else {
            return false;
        };
        match self.requests.borrow_mut().remove(&request) {
            Some(reply) => {
                let _ = reply.send(frame.clone());
                true
            }
            None => false,
        }
    }

    /// Asks something the relay answers with `Done` (a refusal comes back
    /// as `SessionError::Refused`, as from `ask`).
    pub(crate) async fn ask_done(
        &self,
        make: impl FnOnce(RequestId) -> ClientFrame,
    ) -> Result<(), SessionError> {
        match self.ask(make).await? {
            ServerFrame::Done { .. } => Ok(()),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }

    /// The connection closed: nobody will answer the questions in flight.
    pub(crate) fn drop_questions(&self) {
        self.requests.borrow_mut().clear();
    }

    pub(crate) async fn claim_key_packages(
        &self,
        users: Vec<UserId>,
    ) -> Result<Vec<ClaimedKeyPackage>, SessionError> {
        match self
            .ask(|request| ClientFrame::ClaimKeyPackages { request, users })
            .await?
        {
            ServerFrame::KeyPackages { key_packages, .. } => Ok(key_packages),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }

    pub(crate) async fn fetch_directory(&self) -> Result<Directory, SessionError> {
        match self
            .ask(|request| ClientFrame::Directory { request })
            .await?
        {
            ServerFrame::People { people, .. } => Ok(Directory { people }),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }
}

impl<P: Platform> Phone<P> {
    /// One key package for each device of each person.
    pub async fn claim_key_packages(
        &self,
        users: Vec<UserId>,
    ) -> Result<Vec<ClaimedKeyPackage>, SessionError> {
        self.shared.claim_key_packages(users).await
    }

    /// The organisation's people, fresh from the relay; saved and shown.
    pub async fn refresh_directory(&self) -> Result<(), SessionError> {
        let directory = self.shared.fetch_directory().await?;
        self.send(Input::SaveDirectory(directory));
        Ok(())
    }

    /// Refreshes the directory in the background (screens that list people
    /// call this as they open; a failure leaves the cached list). Before the
    /// connection is up there is nothing to ask: each sign-in fetches it.
    pub fn refresh_directory_soon(&self) {
        if !self.shared.state.borrow().connection.live {
            return;
        }
        let phone = self.clone();
        self.shared.tasks.spawn(Box::pin(async move {
            if let Err(error) = phone.refresh_directory().await {
                phone
                    .shared
                    .log
                    .warn(&format!("the directory was not refreshed: {error}"));
            }
        }));
    }

    /// A one-time invite for a named person (administrators): the relay
    /// makes it, this phone's crypto worker certifies a key for it, and the
    /// certificate goes to the relay for the person to collect.
    /// With `access_ends_at` (agency and bank staff), the relay signs the
    /// person out then, and her colleagues' phones remove her from every
    /// group.
    pub async fn create_invite(
        &self,
        display_name: String,
        role: Role,
        valid_for_secs: u64,
        access_ends_at: Option<UnixMillis>,
    ) -> Result<Invite, SessionError> {
        let name = display_name.clone();
        // This phone names the new person, so that the invite it certifies
        // cannot be made to stand for someone who exists already.
        let user = UserId::from_bytes(self.shared.randomness.id());
        let (secret, expires_at) = match self
            .shared
            .ask(|request| match access_ends_at {
                None => ClientFrame::CreateInviteFor {
                    request,
                    user,
                    display_name: name,
                    role,
                    valid_for_secs,
                },
                Some(access_ends_at) => ClientFrame::CreateInviteEnding {
                    request,
                    user,
                    display_name: name,
                    role,
                    valid_for_secs,
                    access_ends_at,
                },
            })
            .await?
        {
            ServerFrame::InviteCreated {
                user: made_for,
                secret,
                expires_at,
                ..
            } if made_for == user => (secret, expires_at),
            _ => return Err(SessionError::UnexpectedAnswer),
        };
        let crypto = match &*self.shared.live.borrow() {
            Some(live) => live.crypto.clone(),
            None => return Err(SessionError::Starting),
        };
        let answer = crypto
            .request(WorkerRequest::CertifyInvite {
                user,
                display_name,
                role,
                expires_at,
                now: self.shared.clock.now(),
            })
            .await?;
        let WorkerResponse::InviteCertified {
            certificate,
            invite_key,
            org_key,
        } = answer
        else {
            return Err(SessionError::Crypto(CryptoError::Stopped));
        };
        self.done(|request| ClientFrame::AttachInviteCertificate {
            request,
            user,
            certificate,
        })
        .await?;
        Ok(Invite {
            user,
            secret,
            expires_at,
            invite_key,
            org_key,
        })
    }

    /// Signs a person out: every device of theirs is disconnected and wiped.
    pub async fn revoke_person(&self, user: UserId) -> Result<(), SessionError> {
        self.done(|request| ClientFrame::RevokeUser { request, user })
            .await
    }

    /// Signs one device out (an administrator: anyone's; anyone: her own).
    pub async fn revoke_device(&self, device: DeviceId) -> Result<(), SessionError> {
        self.done(|request| ClientFrame::RevokeDevice { request, device })
            .await
    }

    /// Signs this phone out, as before handing it on: the relay revokes it
    /// and the wipe follows, as for any revocation, named as the person's
    /// own. Needs the connection (offline, nothing changes).
    pub async fn sign_out_this_phone(&self) -> Result<(), SessionError> {
        let device = self.shared.state.borrow().enrolment.device;
        self.shared.state.borrow_mut().signing_out_here = true;
        let result = self.revoke_device(device).await;
        if result.is_err() && !self.shared.state.borrow().wiped {
            self.shared.state.borrow_mut().signing_out_here = false;
        }
        result
    }

    /// Locks this phone with a passcode. The crypto worker stretches it and
    /// wraps both data keys (the worker's and the cache's) under the unlock
    /// key; the relay keeps its share and the verifier; only once it has
    /// does the worker store the lock and the cache forget the key it kept
    /// beside the data. Needs the connection; a passcode that breaks the
    /// rules is refused by the worker with its reason
    /// (`WorkerErrorKind::Passcode`), and nothing changes.
    pub async fn set_passcode(&self, passcode: PasscodeText) -> Result<(), SessionError> {
        let (org, device, policy) = {
            let state = self.shared.state.borrow();
            // The organisation's policy (how long it may open offline) is
            // known only once signed in: not before.
            if !state.connection.live {
                return Err(SessionError::Offline);
            }
            (state.enrolment.org, state.enrolment.device, state.policy)
        };
        let crypto = match &*self.shared.live.borrow() {
            Some(live) => live.crypto.clone(),
            None => return Err(SessionError::Starting),
        };
        let page_key = self.shared.cache.data_key()?;
        let answer = crypto
            .request(WorkerRequest::SetPasscode {
                passcode,
                page_key,
                org,
                device,
                policy,
                now: self.shared.clock.now(),
            })
            .await?;
        let WorkerResponse::PasscodeLock { lock_key, secrets } = answer else {
            return Err(SessionError::Crypto(CryptoError::Stopped));
        };
        self.done(|request| ClientFrame::SetPasscodeLock {
            request,
            lock_key,
            secrets,
        })
        .await?;
        crypto.request(WorkerRequest::CommitPasscode).await?;
        self.shared.cache.forget_kept_key().await?;
        Ok(())
    }

    /// A person's phones, with when each was added and last signed in
    /// (her own; an administrator: anyone's). Needs the connection.
    pub async fn devices_of(&self, user: UserId) -> Result<Vec<DeviceSeen>, SessionError> {
        match self
            .shared
            .ask(|request| ClientFrame::Devices { request, user })
            .await?
        {
            ServerFrame::Devices { devices, .. } => Ok(devices),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }

    /// Phones signed out in the last month, newest first, with whether
    /// each has wiped itself yet (an administrator: everyone's; anyone
    /// else: her own). Needs the connection.
    pub async fn signed_out_phones(&self) -> Result<Vec<SignedOutPhone>, SessionError> {
        match self
            .shared
            .ask(|request| ClientFrame::SignedOutPhones { request })
            .await?
        {
            ServerFrame::SignedOutPhones { phones, .. } => Ok(phones),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }

    /// Moves or lifts the end of a person's access, or of her unused
    /// invite's (administrators; staff only, never an administrator).
    pub async fn set_access_ends(
        &self,
        user: UserId,
        ends_at: Option<UnixMillis>,
    ) -> Result<(), SessionError> {
        self.done(|request| ClientFrame::SetAccessEnds {
            request,
            user,
            ends_at,
        })
        .await
    }

    /// The people and unused invites whose access ends, soonest first
    /// (administrators). Needs the connection.
    pub async fn access_ends(&self) -> Result<Vec<AccessEnd>, SessionError> {
        match self
            .shared
            .ask(|request| ClientFrame::AccessEnds { request })
            .await?
        {
            ServerFrame::AccessEnds { people, .. } => Ok(people),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }

    /// The groups this phone is in, each with when its members are next
    /// due for review (administrators). Needs the connection.
    pub async fn reviews_due(&self) -> Result<Vec<ReviewDue>, SessionError> {
        match self
            .shared
            .ask(|request| ClientFrame::ReviewsDue { request })
            .await?
        {
            ServerFrame::ReviewsDue { groups, .. } => Ok(groups),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }

    /// Records that an administrator confirmed each member of `group`:
    /// `kept` stayed, `removed` were taken out (each by its own commit,
    /// made before this). The next review falls due from now.
    pub async fn members_reviewed(
        &self,
        group: GroupId,
        kept: u32,
        removed: u32,
    ) -> Result<(), SessionError> {
        self.done(|request| ClientFrame::MembersReviewed {
            request,
            group,
            kept,
            removed,
        })
        .await
    }

    /// Withdraws an unused invite.
    pub async fn withdraw_invite(&self, user: UserId) -> Result<(), SessionError> {
        self.done(|request| ClientFrame::RevokeInvite { request, user })
            .await
    }

    /// The audit log, newest first (administrators).
    pub async fn read_audit(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, SessionError> {
        match self
            .shared
            .ask(|request| ClientFrame::ReadAudit {
                request,
                before,
                limit,
            })
            .await?
        {
            ServerFrame::Audit { entries, .. } => Ok(entries),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }

    async fn done(&self, make: impl FnOnce(RequestId) -> ClientFrame) -> Result<(), SessionError> {
        self.shared.ask_done(make).await
    }
}

/// The request id of an answer frame, if it is one.
fn request_of(frame: &ServerFrame) -> Option<RequestId> {
    match frame {
        ServerFrame::KeyPackagesPublished { request }
        | ServerFrame::KeyPackages { request, .. }
        | ServerFrame::InviteCreated { request, .. }
        | ServerFrame::Done { request }
        | ServerFrame::Refused { request, .. }
        | ServerFrame::People { request, .. }
        | ServerFrame::Devices { request, .. }
        | ServerFrame::SignedOutPhones { request, .. }
        | ServerFrame::AccessEnds { request, .. }
        | ServerFrame::ReviewsDue { request, .. }
        | ServerFrame::Audit { request, .. }
        | ServerFrame::Identities { request, .. } => Some(*request),
        // Listed, not `_`: a new answer frame must be paired here, or its
        // asker waits for ever.
        ServerFrame::Challenge { .. }
        | ServerFrame::Ready { .. }
        | ServerFrame::Accepted { .. }
        | ServerFrame::Rejected { .. }
        | ServerFrame::Deliver(_)
        | ServerFrame::Welcome { .. }
        | ServerFrame::Synced
        | ServerFrame::Pong { .. }
        | ServerFrame::Error { .. }
        | ServerFrame::Skipped { .. }
        | ServerFrame::DeliverCommit { .. }
        | ServerFrame::RevokedMembers { .. } => None,
    }
}
