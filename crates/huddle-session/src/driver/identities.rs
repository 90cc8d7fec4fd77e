//! Who is who: this phone's certificate published for colleagues, colleagues' keys and attestations fetched and checked, and verifying a colleague in person.
//!
//! The relay hands chains and attestations over unchecked; the crypto
//! worker checks each against the pinned organisation key, and only what
//! holds is kept (SECURITY.md, "Verification in person").

use super::Input;
use crate::error::SessionError;
use crate::phone::{Phone, Shared};
use crate::platform::{Crypto, CryptoError, Platform};
use futures::channel::mpsc;
use huddle_core::attestation::{Identities, KeyDigest, Method};
use huddle_core::crypto_worker::{WorkerRequest, WorkerResponse};
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{GroupId, UserId};
use huddle_core::wire::{ClientFrame, ServerFrame, MAX_IDENTITY_USERS};

/// The crypto worker, once the phone has started.
pub(crate) fn crypto<P: Platform>(
    shared: &Shared<P>,
) -> Result<std::rc::Rc<P::Crypto>, SessionError> {
    shared
        .live
        .borrow()
        .as_ref()
        .map(|live| live.crypto.clone())
        .ok_or(SessionError::Starting)
}

/// Gives the relay this device's chain, for colleagues to check (after
/// every sign-in: it is small, and the relay keeps the one it has).
pub(crate) async fn publish_own_certificate<P: Platform>(
    shared: &Shared<P>,
) -> Result<(), SessionError> {
    let chain = match crypto(shared)?
        .request(WorkerRequest::OwnCertificate)
        .await?
    {
        WorkerResponse::Certificate { chain } => chain,
        _ => return Err(SessionError::Crypto(CryptoError::Stopped)),
    };
    shared
        .ask_done(|request| ClientFrame::PublishCertificate { request, chain })
        .await
}

/// This person and those who share a conversation with her, one-to-one
/// partners first: the people whose badges the screens show most.
pub(crate) fn colleagues<P: Platform>(shared: &Shared<P>) -> Vec<UserId> {
    let state = shared.state.borrow();
    let mut conversations: Vec<&crate::records::ConversationRecord> =
        state.conversations.iter().collect();
    conversations.sort_by_key(|c| c.members.len());
    std::iter::once(state.enrolment.user)
        .chain(
            conversations
                .iter()
                .flat_map(|c| c.peer.into_iter().chain(c.members.iter().copied())),
        )
        .collect()
}

/// Fetches and checks what the relay has about `users` (the first
/// [`MAX_IDENTITY_USERS`] of them, in the order given), and has the driver
/// keep it. One batch per call, on purpose: checking a chain costs the
/// crypto worker a signature check or two (not yet remembered after a
/// restart), and it answers one request at a time, so a council's
/// thousand colleagues are fetched as the screens that show them open,
/// not all at sign-in in front of the messages waiting to be opened.
pub(crate) async fn refresh<P: Platform>(
    shared: &Shared<P>,
    inputs: &mpsc::UnboundedSender<Input<P>>,
    users: Vec<UserId>,
) -> Result<(), SessionError> {
    let mut batch: Vec<UserId> = Vec::new();
    for user in users {
        if batch.len() == MAX_IDENTITY_USERS {
            break;
        }
        if !batch.contains(&user) {
            batch.push(user);
        }
    }
    // Devices met in these groups are added by the worker, so that a relay
    // cannot hide a phone that sits in a conversation.
    let groups: Vec<GroupId> = shared.state.borrow().active_groups();
    let (devices, attestations) = match shared
        .ask(|request| ClientFrame::Identities {
            request,
            users: batch.clone(),
        })
        .await?
    {
        ServerFrame::Identities {
            devices,
            attestations,
            ..
        } => (devices, attestations),
        _ => return Err(SessionError::UnexpectedAnswer),
    };
    let fresh = match crypto(shared)?
        .request(WorkerRequest::CheckIdentities {
            users: batch.clone(),
            groups,
            devices,
            attestations,
        })
        .await?
    {
        WorkerResponse::Identities(fresh) => fresh,
        _ => return Err(SessionError::Crypto(CryptoError::Stopped)),
    };
    let _ = inputs.unbounded_send(Input::SaveIdentities {
        users: batch,
        fresh,
    });
    Ok(())
}

impl<P: Platform> Phone<P> {
    /// Colleagues' checked keys and who verified them, as last fetched.
    pub fn identities(&self) -> Identities {
        self.shared.state.borrow().identities.clone()
    }

    /// Fetches and checks what the relay has about `users` now.
    pub async fn refresh_identities(&self, users: Vec<UserId>) -> Result<(), SessionError> {
        let inputs = self
            .shared
            .inputs
            .borrow()
            .clone()
            .ok_or(SessionError::Starting)?;
        refresh(&self.shared, &inputs, users).await
    }

    /// This phone checked `subject`'s key in person (its code scanned, or
    /// its digits read): signs the attestation, gives it to the relay, and
    /// fetches the person again so that the badge shows.
    pub async fn verify_in_person(
        &self,
        subject: DeviceIdentity,
        subject_key: KeyDigest,
        method: Method,
    ) -> Result<(), SessionError> {
        let now = self.shared.expiry_now();
        let attestation = match crypto(&self.shared)?
            .request(WorkerRequest::Attest {
                subject,
                subject_key,
                method,
                now,
            })
            .await?
        {
            WorkerResponse::Attestation { attestation } => attestation,
            _ => return Err(SessionError::Crypto(CryptoError::Stopped)),
        };
        self.shared
            .ask_done(|request| ClientFrame::Attest {
                request,
                attestation,
            })
            .await?;
        self.refresh_identities(vec![subject.user]).await
    }
}
