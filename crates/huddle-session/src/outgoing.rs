//! A message just written: checked and encoded once, into the record the conversation shows and the outbox record that sends it.

use crate::error::SessionError;
use crate::records::{
    ConversationRecord, Enrolment, Intent, MessageBody, MessageRecord, OutboxRecord,
};
use huddle_core::crypto_worker::Plaintext;
use huddle_core::envelope::{Envelope, EnvelopeBody};
use huddle_core::ids::ClientMessageId;
use huddle_core::retention::UnixMillis;
use huddle_core::sync::OutboxItem;

/// What writing one message produces: both are saved in one write, before
/// anything is encrypted or sent, so that nothing typed is ever lost.
#[derive(Debug)]
pub struct Outgoing {
    pub message: MessageRecord,
    pub outbox: OutboxRecord,
}

impl Outgoing {
    /// The one constructor of a message this phone sends: it checks the
    /// body, encodes the envelope once (the outbox keeps those bytes, so a
    /// message made again in a later epoch is the same message), and takes
    /// the expiry from the conversation's retention.
    pub fn new(
        enrolment: &Enrolment,
        conversation: &ConversationRecord,
        client_msg: ClientMessageId,
        order: u64,
        now: UnixMillis,
        body: EnvelopeBody,
    ) -> Result<Outgoing, SessionError> {
        if conversation.ended {
            return Err(SessionError::NotInConversation);
        }
        let is_shift = matches!(
            body,
            EnvelopeBody::ShiftOffer(_) | EnvelopeBody::ShiftUpdate(_)
        );
        if is_shift && !crate::shifts::offers_allowed_in(conversation.kind) {
            return Err(SessionError::NoShiftsHere);
        }
        if matches!(body, EnvelopeBody::CannotWork(_))
            && conversation.kind != huddle_core::retention::GroupKind::Direct
        {
            return Err(SessionError::NotOneToOne);
        }
        let broadcasts = huddle_core::broadcast::acknowledged_in(conversation.kind);
        if matches!(body, EnvelopeBody::Acknowledgement(_)) && !broadcasts {
            return Err(SessionError::NotABroadcast);
        }
        // Every other phone, and the relay, refuses anything else from staff.
        if broadcasts && !enrolment.administrator && !body.is_reply() {
            return Err(SessionError::AdministratorsOnly);
        }
        if let EnvelopeBody::Removal(removal) = &body {
            removal
                .allowed(enrolment.user, conversation.kind)
                .map_err(|error| SessionError::Invalid(error.into()))?;
        }
        let mut shown = MessageBody::of(&body);
        if let MessageBody::ShiftUpdate {
            by_administrator, ..
        } = &mut shown
        {
            *by_administrator = enrolment.administrator;
        }
        let envelope = Envelope { sent_at: now, body }
            .encode()
            .map_err(SessionError::Invalid)?;
        let expires_at = now.saturating_add(conversation.retention);
        let group = conversation.group;
        Ok(Outgoing {
            message: MessageRecord {
                group,
                client_msg,
                sender: enrolment.user,
                sender_device: enrolment.device,
                sent_at: now,
                expires_at,
                body: shown,
            },
            outbox: OutboxRecord {
                order,
                item: OutboxItem::unsealed(client_msg, group, expires_at),
                intent: Intent::Text {
                    envelope: Plaintext::new(envelope),
                },
            },
        })
    }
}
