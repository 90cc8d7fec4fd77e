//! Urgent broadcasts on screen: each with who has acknowledged it and who has not, folded from the acknowledgements this phone holds; the acknowledgements themselves are not shown as messages.

use crate::records::{Delivery, MessageBody, MessageRecord};
use huddle_core::broadcast::acknowledged_in;
use huddle_core::ids::UserId;
use huddle_core::retention::{GroupKind, UnixMillis};
use huddle_core::shift::MessageRef;
use std::collections::HashMap;

/// Where a broadcast stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastCard {
    /// Who has acknowledged it, and when by her phone's clock, earliest
    /// first (each person once, at her first).
    pub acknowledged: Vec<(UserId, UnixMillis)>,
    /// The group's members who have not acknowledged it yet (never its
    /// sender), in the group's order.
    pub waiting: Vec<UserId>,
    /// Where this phone's person stands with it.
    pub mine: MyPart,
}

/// This phone's person and one broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MyPart {
    /// She sent it: she sees who has acknowledged it.
    Sender,
    /// She has not acknowledged it: it stays pinned until she does.
    ToAcknowledge,
    /// Her acknowledgement is written but the relay has not stored it yet.
    Sending,
    /// Her acknowledgement could not be sent: she can acknowledge again.
    Failed,
    Acknowledged,
}

impl MyPart {
    /// Whether she still has to do something about it.
    pub fn to_do(self) -> bool {
        matches!(self, MyPart::ToAcknowledge | MyPart::Failed)
    }
}

/// The broadcast a message is, as every reference names it.
pub fn reference(message: &MessageRecord) -> MessageRef {
    MessageRef {
        author: message.sender,
        client_msg: message.client_msg,
    }
}

/// Takes the acknowledgements out of `messages` and returns each
/// broadcast's card, keyed by the broadcast. In a group of another kind
/// nothing is a broadcast and acknowledgements are dropped. `members` are
/// the group's people now; `me` is this phone's person; `delivery` says
/// where a message of this phone's own stands (an acknowledgement that was
/// refused counts for nothing).
pub fn take_cards(
    messages: &mut Vec<MessageRecord>,
    kind: GroupKind,
    members: &[UserId],
    me: UserId,
    delivery: impl Fn(&MessageRecord) -> Delivery,
) -> HashMap<MessageRef, BroadcastCard> {
    let mut acknowledgements = Vec::new();
    messages.retain(|message| match message.body {
        MessageBody::Acknowledgement(broadcast) => {
            acknowledgements.push((broadcast, message.clone()));
            false
        }
        _ => true,
    });
    if !acknowledged_in(kind) {
        return HashMap::new();
    }
    acknowledgements.sort_by_key(|(_, m)| (m.sent_at, m.client_msg));
    messages
        .iter()
        .filter(|message| is_broadcast(message))
        .map(|broadcast| {
            let id = reference(broadcast);
            let mut acknowledged: Vec<(UserId, UnixMillis)> = Vec::new();
            let mut mine = if broadcast.sender == me {
                MyPart::Sender
            } else {
                MyPart::ToAcknowledge
            };
            for (named, acknowledgement) in &acknowledgements {
                // A sender acknowledging her own broadcast says nothing.
                if *named != id || acknowledgement.sender == broadcast.sender {
                    continue;
                }
                let counted = if acknowledgement.sender == me {
                    let part = match delivery(acknowledgement) {
                        Delivery::Received | Delivery::Sent => MyPart::Acknowledged,
                        Delivery::Waiting | Delivery::Sending => MyPart::Sending,
                        Delivery::Failed(_) => MyPart::Failed,
                    };
                    mine = better(mine, part);
                    part != MyPart::Failed
                } else {
                    true
                };
                let person = acknowledgement.sender;
                if counted && !acknowledged.iter().any(|(who, _)| *who == person) {
                    // Its time is its sender's clock: never shown as before
                    // the broadcast it answers.
                    let at = acknowledgement.sent_at.max(broadcast.sent_at);
                    acknowledged.push((person, at));
                }
            }
            let waiting = members
                .iter()
                .copied()
                .filter(|member| {
                    *member != broadcast.sender
                        && !acknowledged.iter().any(|(who, _)| who == member)
                })
                .collect();
            let card = BroadcastCard {
                acknowledged,
                waiting,
                mine,
            };
            (id, card)
        })
        .collect()
}

/// Whether a message is an urgent broadcast (in a broadcast group: only
/// administrators write anything but acknowledgements there, which every
/// phone checks as it opens a message).
fn is_broadcast(message: &MessageRecord) -> bool {
    matches!(message.body, MessageBody::Text(_))
}

/// Of two acknowledgements of one's own, the one that says most: stored
/// beats sending beats refused.
fn better(current: MyPart, next: MyPart) -> MyPart {
    let rank = |part: MyPart| match part {
        MyPart::Sender => 4,
        MyPart::Acknowledged => 3,
        MyPart::Sending => 2,
        MyPart::Failed => 1,
        MyPart::ToAcknowledge => 0,
    };
    if rank(next) > rank(current) {
        next
    } else {
        current
    }
}

#[cfg(test)]
mod tests;
