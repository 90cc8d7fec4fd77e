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
    /// One of this phone's own answers to it was refused or could not be
    /// sent: it is left out, and the card says so.
    pub failed: bool,
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
/// Whether an answer's sender is an administrator is what her certificate
/// said as the answer was opened. `failed` says whether one of this phone's
/// own answers was refused or could not be sent: it is left out.
pub fn fold(
    messages: Vec<MessageRecord>,
    kind: GroupKind,
    failed: impl Fn(&MessageRecord) -> bool,
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
            let (mut sending, mut refused) = (false, false);
            let folded: Vec<Answer> = answers
                .iter()
                .filter_map(|answer| match answer.body {
                    MessageBody::ShiftUpdate {
                        update,
                        logged_at,
                        by_administrator,
                    } if update.offer == offer => {
                        if logged_at.is_none() && failed(answer) {
                            refused = true;
                            return None;
                        }
                        sending |= logged_at.is_none();
                        Some(Answer {
                            id: MessageRef {
                                author: answer.sender,
                                client_msg: answer.client_msg,
                            },
                            by_administrator,
                            action: update.action,
                        })
                    }
                    _ => None,
                })
                .collect();
            let status = settle(offer, &folded);
            let card = ShiftCard {
                status,
                sending,
                failed: refused,
            };
            (message, Some(card))
        })
        .collect()
}

#[cfg(test)]
mod tests;
