//! A message's readers in words: the ticks and the line beside one's own message ("Read by 2 of 3"), the list of names behind it, and why someone has not acknowledged a broadcast yet.

use huddle_core::ids::UserId;
use huddle_core::receipt::Reached;
use huddle_session::Directory;

/// How far one of the reader's own messages has got, as its line and list
/// show it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReadersView {
    /// "Read by 2 of 3", "Delivered", "Sent, not on her phone yet".
    pub summary: String,
    /// 1: the relay has it; 2: on every phone; 3: read by everyone.
    pub ticks: u8,
    /// Each person and how far it has got with her: read first, then by name.
    pub people: Vec<(String, Reached)>,
}

/// The readers of a message whose reach is `reach`; `None` when nobody
/// else is in the conversation.
pub fn readers_view(reach: &[(UserId, Reached)], directory: &Directory) -> Option<ReadersView> {
    let total = reach.len();
    if total == 0 {
        return None;
    }
    let read = reach.iter().filter(|(_, r)| *r == Reached::Read).count();
    let delivered = reach
        .iter()
        .filter(|(_, r)| *r >= Reached::Delivered)
        .count();
    let summary = match (read, delivered, total) {
        (1, _, 1) => "Read".to_owned(),
        (read, _, total) if read == total => format!("Read by all {total}"),
        (read, _, total) if read > 0 => format!("Read by {read} of {total}"),
        (_, 1, 1) => "Delivered, not read yet".to_owned(),
        (_, delivered, total) if delivered == total => format!("Delivered to all {total}"),
        (_, delivered, total) if delivered > 0 => format!("Delivered to {delivered} of {total}"),
        (_, _, 1) => "Sent, not on their phone yet".to_owned(),
        _ => "Sent, not on anyone's phone yet".to_owned(),
    };
    let ticks = if read == total {
        3
    } else if delivered == total {
        2
    } else {
        1
    };
    let mut people: Vec<(String, Reached)> = reach
        .iter()
        .map(|(user, reached)| {
            let name = directory.name_of(*user).unwrap_or("Someone").to_owned();
            (name, *reached)
        })
        .collect();
    people.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Some(ReadersView {
        summary,
        ticks,
        people,
    })
}

/// How far a message has got with one person, after her name.
pub fn reached_label(reached: Reached) -> &'static str {
    match reached {
        Reached::Read => "read it",
        Reached::Delivered => "on their phone, not read yet",
        Reached::Sent => "not on their phone yet",
    }
}

/// Why someone has not acknowledged a broadcast, after her name.
pub fn not_acknowledged_because(reached: Option<Reached>) -> &'static str {
    match reached {
        Some(Reached::Read) => "read it, not acknowledged yet",
        Some(Reached::Delivered) => "on their phone, not read yet",
        Some(Reached::Sent) => "not on their phone yet",
        None => "not yet",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::wire::Person;

    fn directory() -> Directory {
        let person = |n: u8, name: &str| Person {
            user: UserId::from_bytes([n; 16]),
            display_name: name.to_owned(),
            role: huddle_core::wire::Role::Staff,
            devices: vec![],
        };
        Directory {
            people: vec![person(2, "Ben Okafor"), person(3, "Cara Jones")],
        }
    }

    fn user(n: u8) -> UserId {
        UserId::from_bytes([n; 16])
    }

    #[test]
    fn the_line_says_how_far_it_has_got_with_everyone() {
        let d = directory();
        let view = |reach: &[(UserId, Reached)]| readers_view(reach, &d).unwrap();
        let one = view(&[(user(2), Reached::Sent)]);
        assert_eq!(
            (one.summary.as_str(), one.ticks),
            ("Sent, not on their phone yet", 1)
        );
        let one = view(&[(user(2), Reached::Delivered)]);
        assert_eq!(
            (one.summary.as_str(), one.ticks),
            ("Delivered, not read yet", 2)
        );
        let one = view(&[(user(2), Reached::Read)]);
        assert_eq!((one.summary.as_str(), one.ticks), ("Read", 3));
        let two = view(&[(user(2), Reached::Sent), (user(3), Reached::Sent)]);
        assert_eq!(two.summary, "Sent, not on anyone's phone yet");
        let two = view(&[(user(2), Reached::Delivered), (user(3), Reached::Sent)]);
        assert_eq!(
            (two.summary.as_str(), two.ticks),
            ("Delivered to 1 of 2", 1)
        );
        let two = view(&[(user(2), Reached::Delivered), (user(3), Reached::Delivered)]);
        assert_eq!((two.summary.as_str(), two.ticks), ("Delivered to all 2", 2));
        let two = view(&[(user(2), Reached::Delivered), (user(3), Reached::Read)]);
        assert_eq!((two.summary.as_str(), two.ticks), ("Read by 1 of 2", 2));
        assert_eq!(
            two.people,
            vec![
                ("Cara Jones".to_owned(), Reached::Read),
                ("Ben Okafor".to_owned(), Reached::Delivered)
            ]
        );
        let two = view(&[(user(2), Reached::Read), (user(3), Reached::Read)]);
        assert_eq!((two.summary.as_str(), two.ticks), ("Read by all 2", 3));
        assert_eq!(readers_view(&[], &d), None);
    }

    #[test]
    fn a_broadcast_says_why_someone_has_not_acknowledged() {
        assert_eq!(
            not_acknowledged_because(Some(Reached::Read)),
            "read it, not acknowledged yet"
        );
        assert_eq!(not_acknowledged_because(None), "not yet");
    }
}
