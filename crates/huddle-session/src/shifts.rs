//! Shift cards: each offer on screen with where it stands, folded from the answers this phone holds in the log's order; the answers themselves are not shown as messages.

use crate::records::{MessageBody, MessageRecord};
use huddle_core::retention::GroupKind;
use huddle_core::shift::{settle, Answer, MessageRef, ShiftStatus};

/// Where an offer shown as a card stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShiftCard {
    pub status: ShiftStatus,
    /// One of this phone's own answers to it has not reached the relay
    /// yet: the card shows it, and says it is still being sent.
    pub sending: bool,
}

/// Whether a conversation of `kind` carries shift offers: operational
/// groups, which are for rotas and cover. Anywhere else an offer breaks the
/// group's rule and is shown to nobody.
pub fn offers_allowed_in(kind: GroupKind) -> bool {
    kind == GroupKind::Operational
}

/// The messages to show, oldest first as given, each offer with its card.
/// Answers are folded into the offers they name and not shown themselves;
/// an answer whose offer is not among `messages` changes nothing on screen.
/// `by_administrator` says whether a message's sender device holds an
/// administrator's certificate.
pub fn fold(
    messages: Vec<MessageRecord>,
    kind: GroupKind,
    by_administrator: impl Fn(&MessageRecord) -> bool,
) -> Vec<(MessageRecord, Option<ShiftCard>)> {
    let (mut answers, shown): (Vec<MessageRecord>, Vec<MessageRecord>) = messages
        .into_iter()
        .partition(|m| matches!(m.body, MessageBody::ShiftUpdate { .. }));
    // The log's order; this phone's own answers not yet stored come last,
    // in the order they were written.
    answers.sort_by_key(|m| match m.body {
        MessageBody::ShiftUpdate { logged_at, .. } => {
            (logged_at.is_none(), logged_at, m.sent_at, m.client_msg)
        }
        _ => (true, None, m.sent_at, m.client_msg),
    });
    shown
        .into_iter()
        .filter(|m| offers_allowed_in(kind) || !matches!(m.body, MessageBody::ShiftOffer(_)))
        .map(|message| {
            let MessageBody::ShiftOffer(_) = message.body else {
                return (message, None);
            };
            let offer = MessageRef {
                author: message.sender,
                client_msg: message.client_msg,
            };
            let mut sending = false;
            let folded: Vec<Answer> = answers
                .iter()
                .filter_map(|answer| match answer.body {
                    MessageBody::ShiftUpdate { update, logged_at } if update.offer == offer => {
                        sending |= logged_at.is_none();
                        Some(Answer {
                            id: MessageRef {
                                author: answer.sender,
                                client_msg: answer.client_msg,
                            },
                            by_administrator: by_administrator(answer),
                            action: update.action,
                        })
                    }
                    _ => None,
                })
                .collect();
            let status = settle(offer, &folded);
            (message, Some(ShiftCard { status, sending }))
        })
        .collect()
}

#[cfg(test)]
mod tests;
