//! The audit log as administrators read it: who did what, about whom, with ids turned into the names this phone knows; filtered by person and day; and written out as CSV for the home's records.

use crate::state::time::{date_value, local_day, minutes_label};
use huddle_core::ids::{DeviceId, GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::AuditEntry;
use huddle_session::Directory;

/// One line of the audit log on screen and in the CSV. It holds names and
/// ids, never message content (the relay has none to give).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub id: u64,
    pub at: UnixMillis,
    /// Who acted: a name, "the relay" when no person did.
    pub who: String,
    pub action: String,
    /// What it was about, with the ids this phone knows named.
    pub about: String,
    /// The relay's own words for it, ids and all.
    pub subject: String,
}

/// What the list is narrowed to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only what this person did, or what was done about her or her phones.
    pub person: Option<UserId>,
    /// Only from this day (on the phone's calendar), inclusive.
    pub from_day: Option<u32>,
    /// Only up to this day, inclusive.
    pub to_day: Option<u32>,
}

/// The names this phone knows for the ids a subject may hold.
pub struct Names<'a> {
    pub directory: &'a Directory,
    /// The conversations on this phone, by group, with their titles.
    pub groups: &'a [(GroupId, String)],
}

impl Names<'_> {
    fn of_hex(&self, hex: &str) -> Option<String> {
        if let Ok(group) = hex.parse::<GroupId>() {
            if let Some((_, title)) = self.groups.iter().find(|(g, _)| *g == group) {
                return Some(format!("\u{201c}{title}\u{201d}"));
            }
        }
        if let Ok(user) = hex.parse::<UserId>() {
            if let Some(name) = self.directory.name_of(user) {
                return Some(name.to_owned());
            }
        }
        if let Ok(device) = hex.parse::<DeviceId>() {
            if let Some(person) = self
                .directory
                .people
                .iter()
                .find(|p| p.devices.contains(&device))
            {
                return Some(format!("{}'s phone", person.display_name));
            }
        }
        None
    }

    /// `subject` with each id it holds that this phone knows replaced by
    /// its name ("group 1f2e…" becomes "group “Handover”").
    pub fn named(&self, subject: &str) -> String {
        let mut out = String::with_capacity(subject.len());
        let mut rest = subject;
        while let Some(start) = rest.find(|c: char| c.is_ascii_hexdigit()) {
            let (before, from) = rest.split_at(start);
            out.push_str(before);
            let len = from
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(from.len());
            let (token, after) = from.split_at(len);
            // Ids are 32 hex digits standing alone; a word such as "face"
            // or a number is left as it is.
            let standalone = len == 32 && !out.ends_with(|c: char| c.is_alphanumeric());
            match self.of_hex(token).filter(|_| standalone) {
                Some(name) => out.push_str(&name),
                None => out.push_str(token),
            }
            rest = after;
        }
        out.push_str(rest);
        out
    }
}

/// The relay's entries as rows, newest first as they came.
pub fn audit_rows(entries: &[AuditEntry], names: &Names<'_>) -> Vec<AuditRow> {
    entries
        .iter()
        .map(|entry| AuditRow {
            id: entry.id,
            at: entry.at,
            who: match entry.actor {
                Some(actor) => names
                    .directory
                    .name_of(actor)
                    .map_or_else(|| format!("person {actor}"), str::to_owned),
                None => "the relay".to_owned(),
            },
            action: entry.action.clone(),
            about: names.named(&entry.subject),
            subject: entry.subject.clone(),
        })
        .collect()
}

/// Whether `entry` passes `filter`, reading days on the phone's calendar.
pub fn passes(
    entry: &AuditEntry,
    filter: &AuditFilter,
    directory: &Directory,
    offset_minutes: i64,
) -> bool {
    let day = local_day(entry.at, offset_minutes);
    if filter.from_day.is_some_and(|from| day < from) || filter.to_day.is_some_and(|to| day > to) {
        return false;
    }
    let Some(person) = filter.person else {
        return true;
    };
    if entry.actor == Some(person) || entry.subject.contains(&person.to_string()) {
        return true;
    }
    directory.person(person).is_some_and(|p| {
        p.devices
            .iter()
            .any(|device| entry.subject.contains(&device.to_string()))
    })
}

/// The rows as CSV (RFC 4180, with a header), times on the phone's
/// calendar. A cell a spreadsheet would run as a formula is written as
/// text.
pub fn to_csv(rows: &[AuditRow], offset_minutes: i64) -> String {
    let mut csv = String::from("Date,Time,Who,What,About,Details\r\n");
    for row in rows {
        let local_minutes =
            (row.at.0 as i64 + offset_minutes * 60_000).rem_euclid(86_400_000) / 60_000;
        let cells = [
            date_value(local_day(row.at, offset_minutes)),
            minutes_label(u16::try_from(local_minutes).unwrap_or(0)),
            row.who.clone(),
            row.action.clone(),
            row.about.clone(),
            row.subject.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
        csv.push_str(&line.join(","));
        csv.push_str("\r\n");
    }
    csv
}

fn csv_cell(value: &str) -> String {
    // A name or group title starting with these would be a formula.
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::wire::{Person, Role};

    const MIA: UserId = UserId::from_bytes([1; 16]);
    const BEN: UserId = UserId::from_bytes([2; 16]);
    const BENS_PHONE: DeviceId = DeviceId::from_bytes([0x22; 16]);
    const HANDOVER: GroupId = GroupId::from_bytes([0x31; 16]);

    fn directory() -> Directory {
        Directory {
            people: vec![
                Person {
                    user: MIA,
                    display_name: "Mia Patel".into(),
                    role: Role::Administrator,
                    devices: vec![DeviceId::from_bytes([0x11; 16])],
                },
                Person {
                    user: BEN,
                    display_name: "=Ben, \"the nurse\"".into(),
                    role: Role::Staff,
                    devices: vec![BENS_PHONE],
                },
            ],
        }
    }

    fn entry(id: u64, at: u64, actor: Option<UserId>, action: &str, subject: String) -> AuditEntry {
        AuditEntry {
            id,
            at: UnixMillis(at),
            actor,
            action: action.into(),
            subject,
        }
    }

    fn entries() -> Vec<AuditEntry> {
        let day = 86_400_000;
        vec![
            entry(
                3,
                20_000 * day + 14 * 3_600_000 + 2 * 60_000,
                Some(MIA),
                "message removed",
                format!("group {HANDOVER}: entry 2 (another member's)"),
            ),
            entry(
                2,
                20_000 * day - 1,
                Some(MIA),
                "members added",
                format!(
                    "group {HANDOVER}: devices {BENS_PHONE}, {}",
                    DeviceId::from_bytes([9; 16])
                ),
            ),
            entry(
                1,
                19_990 * day,
                None,
                "organisation set up",
                "Rosewood House".into(),
            ),
        ]
    }

    #[test]
    fn ids_read_as_the_names_this_phone_knows_and_unknown_ones_stay() {
        let directory = directory();
        let groups = [(HANDOVER, "Handover".to_owned())];
        let names = Names {
            directory: &directory,
            groups: &groups,
        };
        let rows = audit_rows(&entries(), &names);
        assert_eq!(rows[0].who, "Mia Patel");
        assert_eq!(
            rows[0].about,
            "group \u{201c}Handover\u{201d}: entry 2 (another member's)"
        );
        assert_eq!(
            rows[1].about,
            format!(
                "group \u{201c}Handover\u{201d}: devices =Ben, \"the nurse\"'s phone, {}",
                DeviceId::from_bytes([9; 16])
            )
        );
        assert_eq!(rows[2].who, "the relay");
        assert_eq!(rows[2].about, "Rosewood House");
        // A word of hex letters is not an id.
        assert_eq!(names.named("added a face"), "added a face");
    }

    #[test]
    fn a_person_filter_finds_what_she_did_and_what_was_done_about_her_phones() {
        let directory = directory();
        let by_ben = AuditFilter {
            person: Some(BEN),
            ..AuditFilter::default()
        };
        let kept: Vec<u64> = entries()
            .iter()
            .filter(|e| passes(e, &by_ben, &directory, 0))
            .map(|e| e.id)
            .collect();
        assert_eq!(kept, vec![2]);
        let by_mia = AuditFilter {
            person: Some(MIA),
            ..AuditFilter::default()
        };
        assert_eq!(
            entries()
                .iter()
                .filter(|e| passes(e, &by_mia, &directory, 0))
                .count(),
            2
        );
    }

    #[test]
    fn days_are_read_on_the_phones_calendar_and_include_both_ends() {
        let directory = directory();
        let on_the_day = AuditFilter {
            from_day: Some(20_000),
            to_day: Some(20_000),
            ..AuditFilter::default()
        };
        let kept = |offset| -> Vec<u64> {
            entries()
                .iter()
                .filter(|e| passes(e, &on_the_day, &directory, offset))
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(kept(0), vec![3]);
        // An hour east, the entry a moment before midnight UTC is on the day.
        assert_eq!(kept(60), vec![3, 2]);
    }

    #[test]
    fn the_csv_quotes_what_it_must_and_runs_nothing_as_a_formula() {
        let directory = directory();
        let names = Names {
            directory: &directory,
            groups: &[],
        };
        let rows = audit_rows(&entries()[..2], &names);
        let csv = to_csv(&rows, 0);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], "Date,Time,Who,What,About,Details");
        assert_eq!(
            lines[1],
            format!(
                "2024-10-04,14:02,Mia Patel,message removed,group {HANDOVER}: entry 2 (another member's),group {HANDOVER}: entry 2 (another member's)"
            )
        );
        assert!(
            lines[2].contains(
                "\"group 31313131313131313131313131313131: devices =Ben, \"\"the nurse\"\"'s phone"
            ),
            "{}",
            lines[2]
        );
        assert_eq!(lines.len(), 4, "a header, two rows and the final line end");
        let by_ben = audit_rows(&[entry(4, 0, Some(BEN), "joined", "staff".into())], &names);
        assert!(to_csv(&by_ben, 0).contains(",\"'=Ben, \"\"the nurse\"\"\",joined,"));
        assert_eq!(csv_cell("-1+2"), "'-1+2");
    }
}
