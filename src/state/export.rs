//! A person's own export (subject access): every message her phone still holds, with who sent it and when, as one readable HTML page she can save, print or share, saying plainly what it leaves out.

use crate::state::conversations::{body_text, removed_text, title};
use crate::state::time::{date_label, minutes_label};
use huddle_core::ids::UserId;
use huddle_core::retention::{GroupKind, UnixMillis};
use huddle_session::{ConversationRecord, Directory, MessageBody, MessageRecord};

/// What an export says it does not hold, in the order a reader needs it.
pub const NOT_INCLUDED: [&str; 4] = [
    "Messages that have expired. Each group deletes its messages after the time it keeps them for; they are gone from every phone and from the server.",
    "What messages said once they were recorded in the care record or deleted for everyone. A line shows where each one was; the care record holds what was recorded.",
    "Messages that never reached this phone: those sent before you joined a group, and those sent while you were in it that this phone could not open.",
    "Acknowledgements, read receipts and answers to shift offers, except as they show on the messages they answer.",
];

/// The export's file name for a day ("huddle-messages-2026-12-02.html").
pub fn file_name(day_value: &str) -> String {
    format!("huddle-messages-{day_value}.html")
}

fn kind_label(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Clinical => "Clinical group",
        GroupKind::Operational => "Operational group",
        GroupKind::Social => "Social group",
        GroupKind::EmergencyBroadcast => "Emergency broadcast group",
        GroupKind::Direct => "One-to-one conversation",
    }
}

/// Text made safe to put in HTML.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(at: UnixMillis, offset_minutes: i64) -> String {
    let local_minutes = (at.0 as i64 + offset_minutes * 60_000).rem_euclid(86_400_000) / 60_000;
    format!(
        "{} {}",
        date_label(at, offset_minutes),
        minutes_label(u16::try_from(local_minutes).unwrap_or(0))
    )
}

/// What one message reads as in the export; `None` for what is not a
/// message to read (answers, marks, a group's repair line).
fn exported_text(
    message: &MessageRecord,
    directory: &Directory,
    me: UserId,
    offset: i64,
) -> Option<String> {
    match &message.body {
        MessageBody::ShiftUpdate { .. }
        | MessageBody::Acknowledgement(_)
        | MessageBody::Removal(_)
        | MessageBody::Repaired => None,
        MessageBody::ShiftOffer(shift) => {
            let unit = if shift.unit.is_empty() {
                String::new()
            } else {
                format!(", {}", shift.unit)
            };
            let note = if shift.note.is_empty() {
                String::new()
            } else {
                format!(". {}", shift.note)
            };
            Some(format!(
                "Offered a shift: {} on {}, {} to {}{unit}{note}",
                shift.role,
                crate::state::time::date_value(shift.day),
                minutes_label(shift.start),
                minutes_label(shift.end),
            ))
        }
        MessageBody::Removed {
            by,
            at,
            recorded_in,
        } => Some(format!(
            "[{} at {}]",
            removed_text(message.sender, *by, recorded_in, directory, me),
            when(*at, offset)
        )),
        other => Some(body_text(other)),
    }
}

/// The export: a page that opens in any browser, with no script and
/// nothing fetched. `conversations` are as the phone holds them, each
/// with its messages in any order.
pub fn export_html(
    person: &str,
    organisation: &str,
    made_at: UnixMillis,
    offset_minutes: i64,
    conversations: &[(ConversationRecord, Vec<MessageRecord>)],
    directory: &Directory,
    me: UserId,
) -> String {
    let mut html = String::new();
    let heading = format!("Messages on {person}'s phone");
    html.push_str("<!doctype html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    html.push_str(&format!("<title>{}</title>\n", escaped(&heading)));
    html.push_str(
        "<style>body{font-family:system-ui,sans-serif;max-width:45rem;margin:1rem auto;padding:0 1rem;line-height:1.5}\
         h2{margin-top:2rem;border-bottom:1px solid #999}.meta{color:#555;font-size:.9em}\
         ol{list-style:none;padding:0}li{margin:.75rem 0}.text{white-space:pre-wrap;overflow-wrap:anywhere}</style>\n",
    );
    html.push_str("</head>\n<body>\n");
    html.push_str(&format!("<h1>{}</h1>\n", escaped(&heading)));
    html.push_str(&format!(
        "<p class=\"meta\">Exported from Huddle ({}) on {}. It holds what this phone held then.</p>\n",
        escaped(organisation),
        escaped(&when(made_at, offset_minutes))
    ));
    html.push_str("<h2>What this export does not include</h2>\n<ul>\n");
    for line in NOT_INCLUDED {
        html.push_str(&format!("<li>{}</li>\n", escaped(line)));
    }
    html.push_str("</ul>\n");
    let mut ordered: Vec<&(ConversationRecord, Vec<MessageRecord>)> =
        conversations.iter().collect();
    ordered.sort_by_key(|(record, _)| title(record, directory));
    for (record, messages) in ordered {
        let mut messages: Vec<&MessageRecord> = messages.iter().collect();
        messages.sort_by_key(|m| (m.sent_at, m.client_msg));
        let lines: Vec<(&MessageRecord, String)> = messages
            .into_iter()
            .filter_map(|m| Some((m, exported_text(m, directory, me, offset_minutes)?)))
            .collect();
        html.push_str(&format!(
            "<section>\n<h2>{}</h2>\n<p class=\"meta\">{}. {}.</p>\n",
            escaped(&title(record, directory)),
            kind_label(record.kind),
            match lines.len() {
                0 => "No messages on this phone".to_owned(),
                1 => "1 message".to_owned(),
                n => format!("{n} messages"),
            }
        ));
        html.push_str("<ol>\n");
        for (message, text) in lines {
            let sender = if message.sender == me {
                format!("{person} (you)")
            } else {
                directory
                    .name_of(message.sender)
                    .unwrap_or("A colleague")
                    .to_owned()
            };
            html.push_str(&format!(
                "<li><div class=\"meta\">{}, {}</div><div class=\"text\">{}</div></li>\n",
                escaped(&sender),
                escaped(&when(message.sent_at, offset_minutes)),
                escaped(&text)
            ));
        }
        html.push_str("</ol>\n</section>\n");
    }
    html.push_str("</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::ids::{ClientMessageId, DeviceId, GroupId};
    use huddle_core::retention::RetentionSecs;
    use huddle_core::wire::{Person, Role};

    const ME: UserId = UserId::from_bytes([1; 16]);
    const BEN: UserId = UserId::from_bytes([2; 16]);

    fn directory() -> Directory {
        Directory {
            people: vec![Person {
                user: BEN,
                display_name: "Ben <Okafor>".into(),
                role: Role::Staff,
                devices: vec![],
            }],
        }
    }

    fn message(n: u8, sender: UserId, body: MessageBody) -> MessageRecord {
        MessageRecord {
            group: GroupId::from_bytes([9; 16]),
            client_msg: ClientMessageId::from_bytes([n; 16]),
            sender,
            sender_device: DeviceId::from_bytes([0; 16]),
            sent_at: UnixMillis(1_795_000_000_000 + u64::from(n) * 60_000),
            expires_at: UnixMillis(1_796_000_000_000),
            body,
        }
    }

    fn handover() -> ConversationRecord {
        ConversationRecord {
            group: GroupId::from_bytes([9; 16]),
            kind: GroupKind::Clinical,
            retention: RetentionSecs::DAY,
            name: "Handover".into(),
            peer: None,
            members: vec![ME, BEN],
            unread: 0,
            created_at: UnixMillis(0),
            ended: false,
        }
    }

    #[test]
    fn the_export_lists_what_she_can_see_in_order_and_says_what_it_leaves_out() {
        let messages = vec![
            message(2, ME, MessageBody::Text("Done, thanks".into())),
            message(
                1,
                BEN,
                MessageBody::Text("Can you check <b>room 4</b>?".into()),
            ),
            message(
                3,
                BEN,
                MessageBody::Removed {
                    by: ME,
                    at: UnixMillis(1_795_000_500_000),
                    recorded_in: "Nourish".into(),
                },
            ),
            message(
                4,
                ME,
                MessageBody::Acknowledgement(huddle_core::shift::MessageRef {
                    author: BEN,
                    client_msg: ClientMessageId::from_bytes([1; 16]),
                }),
            ),
        ];
        let html = export_html(
            "Mia Patel",
            "Rosewood House",
            UnixMillis(1_795_000_900_000),
            0,
            &[(handover(), messages)],
            &directory(),
            ME,
        );
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<h1>Messages on Mia Patel&#39;s phone</h1>"));
        for line in NOT_INCLUDED {
            assert!(html.contains(&escaped(line)));
        }
        assert!(
            html.contains("Clinical group. 3 messages."),
            "the acknowledgement is not one"
        );
        // Escaped, oldest first, with names.
        let question = html
            .find("Can you check &lt;b&gt;room 4&lt;/b&gt;?")
            .expect("Ben's");
        let answer = html.find("Done, thanks").expect("hers");
        assert!(question < answer);
        assert!(html.contains("Ben &lt;Okafor&gt;, "));
        assert!(html.contains("Mia Patel (you), "));
        assert!(html.contains("[Recorded in the care record (Nourish) by you at "));
        assert!(!html.contains("<script"));
        assert_eq!(file_name("2026-12-02"), "huddle-messages-2026-12-02.html");
    }
}
