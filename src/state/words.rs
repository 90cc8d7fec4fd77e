//! Every sentence the app says about something that went wrong: the session's, the platform's and the relay's typed errors, in words a tired care worker can act on.
//!
//! The layers below speak in types; only this module chooses the words, so
//! that the same problem always reads the same way, wherever it shows.

use huddle_core::crypto_worker::UnlockOutcome;
use huddle_core::group::ProfileError;
use huddle_core::ids::UserId;
use huddle_core::retention::RetentionError;
use huddle_core::sync::Failure;
use huddle_core::wire::Rejection;
use huddle_session::{CacheError, CryptoError, Directory, Problem, SessionError, SignOut};

/// "Ann, Ben and someone who has since left", for a list of people.
pub fn names(users: &[UserId], directory: &Directory) -> String {
    let names: Vec<&str> = users
        .iter()
        .map(|u| {
            directory
                .name_of(*u)
                .unwrap_or("someone who has not joined yet")
        })
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// When the browser would not take a file to save.
pub const DOWNLOAD_FAILED: &str =
    "This browser would not save the file. Try again, or try another browser.";

/// After a person's export is saved.
pub const EXPORT_SAVED: &str = "It holds your messages in the clear: keep it somewhere safe, and delete it when you no longer need it.";

/// Why something the person asked for did not happen.
pub fn session_error(error: &SessionError, directory: &Directory) -> String {
    match error {
        SessionError::Starting => {
            "Huddle is still starting. Try again in a moment.".into()
        }
        SessionError::Stopped => "Huddle stopped. Reload the page.".into(),
        SessionError::ConversationGone => {
            "That conversation is no longer on this phone.".into()
        }
        SessionError::NotInConversation => "You are no longer in this conversation.".into(),
        SessionError::Invalid(error) => message_invalid(error),
        SessionError::Storage(error) => cache_error(error).into(),
        SessionError::Crypto(error) => crypto_error(error),
        SessionError::Offline => "You're offline. Try again when Huddle is connected.".into(),
        SessionError::NoAnswer => "The relay did not answer. Try again in a moment.".into(),
        SessionError::Dropped => "The connection dropped. Try again in a moment.".into(),
        // The relay's own sentence (it is written for people).
        SessionError::Refused(reason) => reason.clone(),
        SessionError::UnexpectedAnswer => {
            "Huddle's server answered in a way this version does not understand. Reload the page to update Huddle.".into()
        }
        SessionError::NotSetUpYet(users) => not_set_up_yet(users, directory),
        SessionError::NotMembers => "They are not in this group.".into(),
        SessionError::NoShiftsHere => {
            "Shifts are offered in operational groups, where the rota is worked out.".into()
        }
        SessionError::NotABroadcast => {
            "Only urgent messages in an emergency group are acknowledged.".into()
        }
        SessionError::AdministratorsOnly => {
            "Only administrators write in an emergency group. Tap Acknowledge to say you've seen a message.".into()
        }
        SessionError::NotOneToOne => {
            "That goes to your manager on their own, not to a group.".into()
        }
        SessionError::NoManagers => {
            "There is no manager in Huddle to tell yet. Call your manager instead.".into()
        }
        SessionError::NothingToRemove => {
            "That message is no longer on this phone: it has expired or was removed already.".into()
        }
        SessionError::NotSentYet => {
            "That message has not been sent yet. Wait until it shows as sent, then try again.".into()
        }
    }
}

fn message_invalid(error: &huddle_core::envelope::EnvelopeError) -> String {
    use huddle_core::envelope::EnvelopeError as E;
    match error {
        E::EmptyText => "Write something first.".into(),
        E::TextTooLong { max, .. } => format!(
            "This message is too long to send. Shorten it (the limit is about {} letters) and send again.",
            max
        ),
        E::TooLarge { .. } | E::Malformed(_) | E::Receipt(_) => {
            "This message can't be sent as it is.".into()
        }
        E::Shift(error) => shift_invalid(error),
        E::Removal(error) => removal_invalid(error),
    }
}

/// Why a message cannot be recorded or deleted, in the form's words.
pub fn removal_invalid(error: &huddle_core::removal::RemovalError) -> String {
    use huddle_core::removal::RemovalError as E;
    match error {
        E::NoRecordSystem => "Say which care record you wrote it into.".into(),
        E::RecordNameTooLong => format!(
            "Keep the name of the care record under {} letters.",
            huddle_core::removal::MAX_RECORD_NAME_BYTES
        ),
        E::RecordNameNotPlain => {
            "Write the name of the care record in letters and numbers only.".into()
        }
        E::NotTheAuthor => "Only the person who wrote a message can delete it for everyone.".into(),
        E::NotClinical => {
            "Messages are marked as recorded in the care record only in clinical groups.".into()
        }
    }
}

/// Why a shift offer cannot be sent as written, in the form's words.
pub fn shift_invalid(error: &huddle_core::shift::ShiftError) -> String {
    use huddle_core::shift::ShiftError as E;
    match error {
        E::NoRole => "Say which role is needed.".into(),
        E::NotATime => "Choose a start and end time.".into(),
        E::NoLength => "The shift starts and ends at the same time. Check the times.".into(),
        E::TooLong { field, max, .. } => {
            format!("The {field} is too long. Keep it under {max} letters.")
        }
    }
}

/// Why a shift cannot be offered that far ahead: the offer would disappear
/// with the group's messages before the day.
pub fn offer_too_far(kept_days: u64) -> String {
    match kept_days {
        0 | 1 => "This group keeps messages for less than two days: offer shifts for today only.".into(),
        days => format!(
            "This group keeps messages for {days} days, so the offer would disappear before then. Offer shifts up to {} days ahead.",
            days - 1
        ),
    }
}

fn not_set_up_yet(users: &[UserId], directory: &Directory) -> String {
    format!(
        "{} could not be added yet: their phone has not finished setting up. Add them later from \"People in this conversation\".",
        names(users, directory)
    )
}

/// Why the phone's conversations could not be read as the app opened.
pub fn load_error(error: &SessionError) -> &'static str {
    match error {
        SessionError::Storage(error) => cache_error(error),
        _ => "Huddle could not open what it keeps on this phone. Reload the page.",
    }
}

/// Said where a group stopped at a change this phone could not open.
pub const NEEDS_REPAIR: &str = "This group needs repairing: a change to it could not be opened on this phone, so Huddle has stopped reading and sending here rather than show anything out of order.";
/// What happens to what the person writes meanwhile.
pub const NEEDS_REPAIR_WAITS: &str =
    "Huddle is repairing it: within a minute or two it starts again with the same people. What you write here waits safely on this phone and is sent then. If this stays, tell your manager.";

/// The banner about a group that stopped.
pub fn needs_repair() -> String {
    format!("{NEEDS_REPAIR} {NEEDS_REPAIR_WAITS}")
}

/// Something that went wrong in the background.
pub fn problem(problem: &Problem, directory: &Directory) -> String {
    match problem {
        Problem::NotSetUpYet(users) => not_set_up_yet(users, directory),
        Problem::Storage(error) => cache_error(error).into(),
        Problem::Crypto(error) => crypto_error(error),
        Problem::Refused { .. } => "Something sent to one of your conversations did not come from who it said it came from, so Huddle did not show it. Your administrator can see this in the audit log.".into(),
        Problem::NeedsRepair { .. } => needs_repair(),
        Problem::RelayNewer => "Huddle has been updated on its server, and this copy of the app cannot talk to it. Reload the page to get the new version; nothing you wrote is lost.".into(),
    }
}

pub fn cache_error(error: &CacheError) -> &'static str {
    match error {
        CacheError::Unavailable => "This phone's browser would not open Huddle's storage. Leave private browsing, or free some space, then reload.",
        CacheError::Failed => "Huddle could not read or write its storage on this phone. Reload the page; if it happens again, free some space.",
        CacheError::Damaged => "Some of Huddle's storage on this phone is damaged. Reload the page; if it happens again, ask your manager for a new invite.",
    }
}

pub fn crypto_error(error: &CryptoError) -> String {
    match error {
        CryptoError::Unsupported => {
            "This browser cannot run Huddle's encryption. Update your browser, then reload the page.".into()
        }
        CryptoError::TimedOut => {
            "Huddle's encryption did not start in time. Check your connection, then reload the page.".into()
        }
        CryptoError::Stopped => "Huddle's encryption stopped unexpectedly. Reload the page.".into(),
        CryptoError::Refused(_) => "Huddle's encryption could not do that. Reload the page and try again.".into(),
    }
}

/// Why the phone was signed out, on the screen that replaces everything.
pub fn sign_out(why: &SignOut) -> &'static str {
    match why {
        SignOut::Revoked => "This phone was signed out of Huddle by an administrator, or by you from another phone.",
        SignOut::SignedOutHere => "You signed this phone out of Huddle.",
        SignOut::NotRecognised => "Huddle's server no longer recognises this phone.",
        SignOut::AwayTooLong => {
            "This phone had not connected to Huddle for longer than your organisation allows, so it was treated as lost."
        }
        SignOut::WrongPasscodes => {
            "The wrong passcode was entered ten times, so this phone was treated as lost."
        }
        SignOut::ForgottenPasscode => "You wiped this phone because the passcode was forgotten.",
    }
}

/// An invite for agency or bank staff without a day and time its access ends.
pub const CHOOSE_ACCESS_END: &str = "Choose the day and the time their access ends.";

/// An end of access that has already passed.
pub const ACCESS_END_PASSED: &str = "That time has passed. Choose a time still to come.";

/// An end of access asked of an administrator.
pub const ADMINISTRATOR_NEVER_ENDS: &str = "An administrator cannot have an end date. Untick \"Administrator\" or \"Agency or bank staff\".";

/// The lock screen, sent with nothing typed.
pub const ENTER_PASSCODE: &str = "Enter your passcode.";
/// Choosing a passcode, sent with nothing typed.
pub const CHOOSE_PASSCODE: &str = "Choose a passcode.";
/// Choosing a passcode, typed differently twice.
pub const PASSCODES_DIFFER: &str = "The two passcodes are not the same. Type them again.";
/// Choosing a passcode, without a connection to the relay.
pub const PASSCODE_NEEDS_CONNECTION: &str =
    "Saving your passcode needs a connection to Huddle. Connect to Wi-Fi or mobile data, then try again.";
/// A screen's action before the phone has loaded.
pub const STILL_STARTING: &str = "Huddle is still starting. Try again in a moment.";

/// Why an unlock did not open the phone.
pub fn unlock_refused(outcome: &UnlockOutcome) -> String {
    match outcome {
        UnlockOutcome::WrongPasscode { left, offline: false } => match left {
            1 => "That passcode is not right. One more wrong try and this phone will be wiped.".into(),
            n => format!("That passcode is not right. {n} tries left before this phone is wiped."),
        },
        UnlockOutcome::WrongPasscode { left, offline: true } => match left {
            0 => "That passcode is not right. Connect to the internet to try again.".into(),
            1 => "That passcode is not right. One more try without a connection.".into(),
            n => format!("That passcode is not right. {n} more tries without a connection."),
        },
        UnlockOutcome::NeedsRelay => "Connect to the internet to unlock Huddle. Without a connection it opens only for a while after you last unlocked it, and not after wrong tries.".into(),
        UnlockOutcome::ClockWrong => "This phone's clock is wrong. Set the date and time in the phone's settings, then try again.".into(),
        UnlockOutcome::NotKnown => "Huddle's server no longer has this phone's passcode, so it cannot be unlocked. Wipe this phone below, then ask your manager for a new invite.".into(),
        UnlockOutcome::Unlocked { .. } | UnlockOutcome::Wiped | UnlockOutcome::SignedOut => String::new(),
    }
}

/// How many of her messages a phone the relay did not recognise holds
/// unsent.
pub fn unsent_messages(unsent: usize) -> String {
    match unsent {
        0 => "Every message you wrote has been sent.".into(),
        1 => "1 message you wrote has not been sent. It is still on this phone.".into(),
        n => format!("{n} messages you wrote have not been sent. They are still on this phone."),
    }
}

/// Why a message was not sent, next to it.
pub fn failure(failure: &Failure) -> String {
    match failure {
        Failure::NotEncrypted => "Huddle could not encrypt it on this phone. Try again.".into(),
        Failure::Refused(rejection) => rejection_words(rejection),
    }
}

fn rejection_words(reason: &Rejection) -> String {
    match reason {
        Rejection::NotAMember | Rejection::UnknownGroup => {
            "You are no longer in this conversation.".into()
        }
        Rejection::NotPermitted => "Only administrators can post here.".into(),
        Rejection::Expired => "It was too old to send: it had already expired.".into(),
        Rejection::TooLarge { .. } => "It is too long. Shorten it and send again.".into(),
        Rejection::InvalidRetention | Rejection::InvalidCommit(_) => {
            "Huddle's server refused it. Try again.".into()
        }
        Rejection::StaleEpoch { .. }
        | Rejection::RateLimited { .. }
        | Rejection::RepairedRecently => "It could not be sent yet. Try again.".into(),
        Rejection::Revoked => "This phone has been signed out of Huddle.".into(),
    }
}

/// Why joining with a link did not work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The link's secret is cut short.
    Incomplete,
    /// The crypto worker could not make or open the device key.
    NoKey(CryptoError),
    /// The relay could not be reached.
    Unreachable,
    /// The relay refused, with its sentence.
    Refused(String),
    /// The relay refused without one.
    RefusedWithStatus(u16),
    /// The relay's answer (or our request) could not be read or written.
    Unreadable,
    /// The relay registered another device than this one.
    WrongDevice,
    /// The invite's certificate did not check out against the link (the
    /// worker's reason, for the log and the person).
    Untrusted(String),
    Storage(CacheError),
}

pub fn join_error(error: &JoinError) -> String {
    match error {
        JoinError::Incomplete => {
            "This link is incomplete. Open the whole link again, or scan the code again.".into()
        }
        JoinError::NoKey(error) => {
            format!("This phone could not make its key. {}", crypto_error(error))
        }
        JoinError::Unreachable => {
            "Huddle could not reach your team's server. Check your connection and try again.".into()
        }
        JoinError::Refused(message) => message.clone(),
        JoinError::RefusedWithStatus(status) => {
            format!("The server refused this link (error {status}).")
        }
        JoinError::Unreadable => "The server's answer was unreadable. Try again.".into(),
        JoinError::WrongDevice => "The server registered a different device. Try again.".into(),
        JoinError::Untrusted(reason) => format!(
            "This invite could not be checked, so this phone will not use it ({reason}). Ask your manager for a new invite."
        ),
        JoinError::Storage(error) => cache_error(error).into(),
    }
}

/// Why the app cannot be kept for offline use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceWorkerError {
    /// The browser has no service workers (an insecure origin, some
    /// private modes, an old browser).
    Unsupported,
    /// The browser refused to register it.
    RegistrationFailed,
}

pub fn offline_start(error: &ServiceWorkerError) -> &'static str {
    match error {
        ServiceWorkerError::Unsupported => "This browser cannot keep Huddle for offline use. Open Huddle in Chrome, Samsung Internet or Safari.",
        ServiceWorkerError::RegistrationFailed => "Huddle could not be saved for offline use. Check that you are not in private browsing, then reload the page.",
    }
}

/// Why a group could not be made as described.
pub fn profile_error(error: &ProfileError) -> String {
    match error {
        ProfileError::Name => format!(
            "Give the group a name of 1 to {} characters.",
            huddle_core::group::MAX_NAME_CHARS
        ),
        ProfileError::Retention(RetentionError::TooShort { .. })
        | ProfileError::Retention(RetentionError::TooLong { .. }) => {
            "Choose one of the times offered for how long messages are kept.".into()
        }
        ProfileError::Missing | ProfileError::Malformed => {
            "This group's details are damaged.".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::wire::{Person, Role};

    fn directory() -> Directory {
        Directory {
            people: vec![
                Person {
                    user: UserId::from_bytes([1; 16]),
                    display_name: "Ann".into(),
                    role: Role::Staff,
                    devices: vec![],
                },
                Person {
                    user: UserId::from_bytes([2; 16]),
                    display_name: "Ben".into(),
                    role: Role::Staff,
                    devices: vec![],
                },
            ],
        }
    }

    #[test]
    fn a_wrong_passcode_says_how_many_tries_are_left_and_where() {
        let said = |left, offline| unlock_refused(&UnlockOutcome::WrongPasscode { left, offline });
        assert_eq!(
            said(9, false),
            "That passcode is not right. 9 tries left before this phone is wiped."
        );
        assert!(said(1, false).contains("One more wrong try and this phone will be wiped"));
        assert!(said(3, true).contains("3 more tries without a connection"));
        assert!(said(0, true).contains("Connect to the internet"));
        assert!(unlock_refused(&UnlockOutcome::NeedsRelay).contains("Connect to the internet"));
        assert!(unlock_refused(&UnlockOutcome::NotKnown).contains("Wipe this phone"));
    }

    #[test]
    fn people_are_named_in_plain_english() {
        let d = directory();
        let (ann, ben, gone) = (
            UserId::from_bytes([1; 16]),
            UserId::from_bytes([2; 16]),
            UserId::from_bytes([3; 16]),
        );
        assert_eq!(names(&[ann], &d), "Ann");
        assert_eq!(names(&[ann, ben], &d), "Ann and Ben");
        assert_eq!(
            names(&[ann, ben, gone], &d),
            "Ann, Ben and someone who has not joined yet"
        );
        assert!(
            problem(&Problem::NotSetUpYet(vec![ben]), &d).starts_with("Ben could not be added yet")
        );
    }

    #[test]
    fn an_offer_too_far_ahead_says_how_far_the_group_allows() {
        assert_eq!(
            offer_too_far(7),
            "This group keeps messages for 7 days, so the offer would disappear before then. Offer shifts up to 6 days ahead."
        );
        assert!(offer_too_far(1).contains("today only"));
    }

    #[test]
    fn no_sentence_shows_internals() {
        // What the old screens showed: Rust's debug output of a rejection.
        let rejections = [
            Rejection::StaleEpoch { current_epoch: 4 },
            Rejection::InvalidCommit("x".into()),
            Rejection::RateLimited { retry_after_ms: 5 },
        ];
        for rejection in rejections {
            let words = failure(&Failure::Refused(rejection));
            assert!(!words.contains('{') && !words.contains("epoch"), "{words}");
        }
        let words = session_error(&SessionError::UnexpectedAnswer, &directory());
        assert!(
            !words.contains("relay answered something unexpected"),
            "{words}"
        );
    }
}
