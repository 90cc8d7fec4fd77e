//! What one relay process tells the others sharing its PostgreSQL database, as a typed announcement: a new log entry to deliver, or a device whose connections must end.
//!
//! Announcements travel as `pg_notify` payloads on one channel. Entries are
//! announced by the statement that stores them, a trigger of the log table
//! (PostgreSQL migration 0015, which writes the same lines): the
//! notification is sent if and only if the transaction commits. A
//! revocation is announced right after it is stored. Each line is text:
//! `e:GROUP:SEQ` or `r:DEVICE`, ids in lowercase hex; a payload may hold
//! several lines; anything else is ignored as unreadable.

use huddle_core::ids::{DeviceId, GroupId};

/// The PostgreSQL channel every announcement travels on.
pub const BUS_CHANNEL: &str = "huddle_bus";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// The entry at `seq` of `group` is stored: deliver it to this
    /// process's connections of its members.
    Entry { group: GroupId, seq: u64 },
    /// The device was revoked: end its connections in this process.
    Revoked { device: DeviceId },
}

impl Announcement {
    pub fn encode(&self) -> String {
        match self {
            Announcement::Entry { group, seq } => format!("e:{group}:{seq}"),
            Announcement::Revoked { device } => format!("r:{device}"),
        }
    }

    pub fn decode(payload: &str) -> Option<Announcement> {
        match payload.split(':').collect::<Vec<_>>().as_slice() {
            ["e", group, seq] => Some(Announcement::Entry {
                group: group.parse().ok()?,
                seq: seq.parse().ok()?,
            }),
            ["r", device] => Some(Announcement::Revoked {
                device: device.parse().ok()?,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trigger_that_announces_entries_writes_this_format_on_this_channel() {
        // The trigger is SQL; it must agree with the encoding here.
        let trigger = include_str!("../migrations/postgres/0015_entries_announced_by_trigger.sql");
        assert!(trigger.contains(&format!("pg_notify('{BUS_CHANNEL}'")));
        assert!(trigger.contains("'e:' || encode(NEW.group_id, 'hex') || ':' || NEW.seq::text"));
        let entry = Announcement::Entry {
            group: GroupId::from_bytes([0xab; 16]),
            seq: 7,
        };
        assert_eq!(entry.encode(), format!("e:{}:7", "ab".repeat(16)));
    }

    #[test]
    fn announcements_round_trip_and_anything_else_is_ignored() {
        let entry = Announcement::Entry {
            group: GroupId::from_bytes([1; 16]),
            seq: 42,
        };
        let revoked = Announcement::Revoked {
            device: DeviceId::from_bytes([2; 16]),
        };
        for announcement in [entry, revoked] {
            assert_eq!(
                Announcement::decode(&announcement.encode()),
                Some(announcement)
            );
        }
        // The old format of entries (`GROUP:SEQ`), and junk, are not announcements.
        for junk in [
            "01010101010101010101010101010101:42",
            "e:zz:1",
            "e:01010101010101010101010101010101:x",
            "r:",
            "",
            "x:y:z:w",
        ] {
            assert_eq!(Announcement::decode(junk), None, "{junk}");
        }
    }
}
