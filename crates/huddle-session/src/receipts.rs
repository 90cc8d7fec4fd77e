//! Read receipts on one phone: how far it has received and read each group (what it tells), where its own messages sit in the log, and what colleagues' phones have told, folded into how far each message has got with each person.

use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::receipt::{Reached, Receipt};
use huddle_core::retention::UnixMillis;
use serde::{Deserialize, Serialize};

/// One group's read receipts, as this phone keeps them (sealed at rest
/// like every record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptsRecord {
    pub group: GroupId,
    /// Whether `mine.since` is known: this phone made the group (0), joined
    /// it by a welcome, or has received something in it since receipts were
    /// kept. Until then it tells nothing, rather than claim messages from
    /// before it joined.
    pub started: bool,
    /// How far this phone has received and read the group's messages.
    pub mine: Receipt,
    /// What it last told the group.
    pub told: Receipt,
    /// When the newest message `mine` speaks of expires: a receipt lives
    /// no longer than what it speaks of (and none is sent after).
    pub covers_until: UnixMillis,
    /// The messages whose reach this phone shows (its own; for an
    /// administrator, every broadcast) and their places in the log.
    pub placed: Vec<Placed>,
    /// The latest receipt each colleague's phone sent, in log order.
    pub heard: Vec<Heard>,
}

/// A message and its place in the group's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    pub client_msg: ClientMessageId,
    pub seq: u64,
    /// Forgotten with the message.
    pub expires_at: UnixMillis,
}

/// What one colleague's phone last said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heard {
    pub user: UserId,
    pub device: DeviceId,
    pub receipt: Receipt,
}

impl ReceiptsRecord {
    /// A group this phone knows nothing of yet: it starts at the next
    /// entry it receives.
    pub fn new(group: GroupId) -> ReceiptsRecord {
        ReceiptsRecord {
            group,
            started: false,
            mine: Receipt::default(),
            told: Receipt::default(),
            covers_until: UnixMillis(0),
            placed: Vec::new(),
            heard: Vec::new(),
        }
    }

    /// A group this phone made (it holds its log from the start) or joined
    /// at `since` by a welcome.
    pub fn starting_at(group: GroupId, since: u64) -> ReceiptsRecord {
        let mut record = ReceiptsRecord::new(group);
        record.start(since);
        record
    }

    /// Holds the log from `since` on, with nothing of it received yet. (A
    /// phone that joined again tells its new start with its next news:
    /// places only grow, so that always passes what it told before.)
    fn start(&mut self, since: u64) {
        self.started = true;
        let before = since.saturating_sub(1);
        self.mine = Receipt {
            since,
            delivered_through: before,
            read_through: before,
            unopened: Vec::new(),
        };
        // What came before it is no news.
        self.told.delivered_through = self.told.delivered_through.max(before);
        self.told.read_through = self.told.read_through.max(before);
    }

    /// A colleague's message at `seq`, expiring at `expires_at`, is stored
    /// on this phone (and on its screen, if `reading`).
    pub fn received(&mut self, seq: u64, expires_at: UnixMillis, reading: bool) {
        if !self.started {
            self.start(seq);
        }
        self.mine.delivered_through = self.mine.delivered_through.max(seq);
        self.covers_until = self.covers_until.max(expires_at);
        if reading {
            self.read_all();
        }
    }

    /// The entry at `seq` could not be opened.
    pub fn could_not_open(&mut self, seq: u64) {
        if !self.started {
            // Nothing before it is claimed; it is not claimed either.
            self.start(seq.saturating_add(1));
            return;
        }
        self.mine.could_not_open(seq);
    }

    /// The conversation is on screen: everything received is read.
    pub fn read_all(&mut self) {
        self.mine.read_through = self.mine.delivered_through;
    }

    /// Whether this phone has news to tell.
    pub fn due(&self) -> bool {
        self.started && self.mine.says_more_than(&self.told)
    }

    /// Remembers where a message sits in the log.
    pub fn place(&mut self, client_msg: ClientMessageId, seq: u64, expires_at: UnixMillis) {
        if !self.placed.iter().any(|p| p.client_msg == client_msg) {
            self.placed.push(Placed {
                client_msg,
                seq,
                expires_at,
            });
        }
    }

    /// A colleague's phone's receipt, in log order: it replaces what that
    /// phone said before.
    pub fn heard_from(&mut self, user: UserId, device: DeviceId, receipt: Receipt) {
        match self.heard.iter_mut().find(|h| h.device == device) {
            Some(heard) => {
                heard.user = user;
                heard.receipt = receipt;
            }
            None => self.heard.push(Heard {
                user,
                device,
                receipt,
            }),
        }
    }

    /// How far a placed message has got with each of `members` but its
    /// `sender`, in the members' order; `None` for a message not placed
    /// (not stored by the relay yet, or not this phone's to follow).
    pub fn reach(
        &self,
        client_msg: ClientMessageId,
        sender: UserId,
        members: &[UserId],
    ) -> Option<Vec<(UserId, Reached)>> {
        let seq = self.placed.iter().find(|p| p.client_msg == client_msg)?.seq;
        Some(
            members
                .iter()
                .filter(|member| **member != sender)
                .map(|member| {
                    let best = self
                        .heard
                        .iter()
                        .filter(|h| h.user == *member)
                        .filter_map(|h| h.receipt.reached(seq))
                        .max()
                        .unwrap_or(Reached::Sent);
                    (*member, best)
                })
                .collect(),
        )
    }

    /// Forgets the places of messages that have expired; whether any went.
    pub fn forget_expired(&mut self, now: UnixMillis) -> bool {
        let before = self.placed.len();
        self.placed.retain(|p| p.expires_at > now);
        self.placed.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8) -> UserId {
        UserId::from_bytes([n; 16])
    }
    fn device(n: u8) -> DeviceId {
        DeviceId::from_bytes([n; 16])
    }
    fn msg(n: u8) -> ClientMessageId {
        ClientMessageId::from_bytes([n; 16])
    }

    #[test]
    fn a_message_goes_from_sent_to_delivered_to_read_per_person() {
        let mut record = ReceiptsRecord::starting_at(GroupId::from_bytes([1; 16]), 0);
        record.place(msg(1), 5, UnixMillis(1_000));
        let members = [user(1), user(2), user(3)];
        let reach = |r: &ReceiptsRecord| r.reach(msg(1), user(1), &members).unwrap();
        assert_eq!(
            reach(&record),
            vec![(user(2), Reached::Sent), (user(3), Reached::Sent)]
        );
        let delivered = Receipt {
            since: 2,
            delivered_through: 6,
            read_through: 4,
            unopened: vec![],
        };
        record.heard_from(user(2), device(2), delivered.clone());
        assert_eq!(reach(&record)[0], (user(2), Reached::Delivered));
        // Her second phone has read it: the best of her phones counts.
        let read = Receipt {
            read_through: 6,
            ..delivered
        };
        record.heard_from(user(2), device(22), read);
        assert_eq!(reach(&record)[0], (user(2), Reached::Read));
        // Someone who joined after it never had it.
        let late = Receipt {
            since: 9,
            delivered_through: 12,
            read_through: 12,
            unopened: vec![],
        };
        record.heard_from(user(3), device(3), late);
        assert_eq!(reach(&record)[1], (user(3), Reached::Sent));
        assert_eq!(record.reach(msg(9), user(1), &members), None);
        assert!(record.forget_expired(UnixMillis(1_000)));
        assert_eq!(record.reach(msg(1), user(1), &members), None);
    }

    #[test]
    fn a_phone_tells_only_news_and_never_claims_what_came_before_it() {
        let mut record = ReceiptsRecord::new(GroupId::from_bytes([1; 16]));
        assert!(!record.due());
        record.could_not_open(7);
        assert!(!record.due());
        record.received(9, UnixMillis(5), false);
        assert_eq!(record.mine.since, 8);
        assert_eq!(record.mine.delivered_through, 9);
        assert_eq!(record.mine.read_through, 7);
        assert!(record.due());
        record.told = record.mine.clone();
        assert!(!record.due());
        record.read_all();
        assert!(record.due());
        record.told = record.mine.clone();
        record.received(12, UnixMillis(5), true);
        assert_eq!(record.covers_until, UnixMillis(5));
        assert_eq!(record.mine.read_through, 12);
        record.could_not_open(13);
        assert_eq!(record.mine.unopened, vec![13]);
    }
}
