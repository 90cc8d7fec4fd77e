//! Who has been verified in person, as the screens say it: the badge beside a name, the line on a person's page, and the clinical composer's note.

use crate::state::time::date_label;
use huddle_core::attestation::{Identities, Verification};
use huddle_core::ids::UserId;
use huddle_session::Directory;

/// A person's standing as this phone sees it (`NotVerified` for someone the
/// directory does not list).
pub fn verification_of(
    user: UserId,
    directory: &Directory,
    identities: &Identities,
) -> Verification {
    match directory.person(user) {
        Some(person) => identities.verification_of(person, &directory.people),
        None => Verification::NotVerified,
    }
}

/// The short badge beside a name: words and its style. Nothing for people
/// nobody has verified, so that the badge stands out where it is earned.
pub fn badge(verification: &Verification) -> Option<(&'static str, &'static str)> {
    match verification {
        Verification::Verified { .. } => Some(("Verified", "verified")),
        Verification::Lapsed => Some(("New phone: check again", "verified verified--lapsed")),
        Verification::NotVerified => None,
    }
}

/// The sentence on a person's page, as `me` reads it.
pub fn standing(verification: &Verification, me: Option<UserId>, offset_minutes: i64) -> String {
    match verification {
        Verification::Verified { by } => {
            let names: Vec<String> = by
                .iter()
                .take(3)
                .map(|a| {
                    let who = if Some(a.user) == me {
                        "you"
                    } else {
                        a.name.as_str()
                    };
                    format!("{who} on {}", date_label(a.at, offset_minutes))
                })
                .collect();
            format!("Verified in person by {}.", names.join(", and by "))
        }
        Verification::Lapsed => "Their phone has changed since they were verified in person. \
Check their safety number again before you share anything clinical."
            .to_owned(),
        Verification::NotVerified => "Not verified in person yet. \
Meet them, and scan the code on their phone, or compare the numbers below."
            .to_owned(),
    }
}

/// The note above a clinical group's composer when some of its people are
/// not verified in person (`None` when everyone is).
pub fn clinical_note(unverified: &[String]) -> Option<String> {
    match unverified {
        [] => None,
        [one] => Some(format!(
            "{one} has not been verified in person. Check who they are before you share anything clinical."
        )),
        many => Some(format!(
            "{} have not been verified in person. Check who they are before you share anything clinical.",
            list(many)
        )),
    }
}

fn list(names: &[String]) -> String {
    if names.len() > 4 {
        return format!(
            "{}, {}, {} and {} others",
            names[0],
            names[1],
            names[2],
            names.len() - 3
        );
    }
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::attestation::Attester;
    use huddle_core::retention::UnixMillis;

    #[test]
    fn only_verified_and_lapsed_people_carry_a_badge() {
        let verified = Verification::Verified { by: Vec::new() };
        assert_eq!(badge(&verified).map(|b| b.0), Some("Verified"));
        assert_eq!(
            badge(&Verification::Lapsed).map(|b| b.0),
            Some("New phone: check again")
        );
        assert_eq!(badge(&Verification::NotVerified), None);
    }

    #[test]
    fn the_person_page_says_who_verified_them_and_when() {
        let by = vec![Attester {
            user: UserId::from_bytes([1; 16]),
            name: "Asha".into(),
            at: UnixMillis(1_795_356_300_000),
        }];
        let asha = by[0].user;
        assert_eq!(
            standing(&Verification::Verified { by: by.clone() }, None, 0),
            "Verified in person by Asha on 22 Nov 2026."
        );
        assert_eq!(
            standing(&Verification::Verified { by }, Some(asha), 0),
            "Verified in person by you on 22 Nov 2026."
        );
        assert!(standing(&Verification::Lapsed, None, 0).contains("changed"));
    }

    #[test]
    fn the_clinical_note_names_who_is_not_verified() {
        assert_eq!(clinical_note(&[]), None);
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(clinical_note(&names(&["Ben"]))
            .is_some_and(|s| s.starts_with("Ben has not been verified")));
        assert!(clinical_note(&names(&["Ben", "Cara"]))
            .is_some_and(|s| s.starts_with("Ben and Cara have not")));
        assert!(clinical_note(&names(&["A", "B", "C", "D", "E", "F"]))
            .is_some_and(|s| s.starts_with("A, B, C and 3 others have not")));
    }
}
