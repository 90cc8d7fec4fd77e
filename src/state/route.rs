//! The app's screens as a route, read from and written to the address bar.
//!
//! Secrets in links (setup and invites) travel in the fragment after `#`,
//! which browsers never send to a server or put in a `Referer`.

use huddle_core::ids::{GroupId, UserId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Not set up: what Huddle is and how to join.
    Welcome,
    /// The first-run link: name the home and become its administrator.
    Setup {
        secret: String,
    },
    /// An invite link.
    Join {
        secret: String,
    },
    /// The conversation list.
    Conversations,
    Conversation(GroupId),
    /// Who is in a group; administrators add and remove people here.
    Members(GroupId),
    NewGroup,
    /// Start a one-to-one conversation.
    NewDirect,
    /// Administrators: invite someone.
    Invite,
    /// The team, and (for administrators) revoking people.
    People,
    /// One person: who verified them, and their safety number with this phone.
    Person(UserId),
    /// Administrators: the audit log.
    Audit,
}

impl Route {
    /// Reads a route from the address bar's path and fragment.
    pub fn parse(path: &str, fragment: &str) -> Route {
        let fragment = fragment.trim_start_matches('#').to_owned();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["setup"] => Route::Setup { secret: fragment },
            ["join"] => Route::Join { secret: fragment },
            ["new-group"] => Route::NewGroup,
            ["new-chat"] => Route::NewDirect,
            ["invite"] => Route::Invite,
            ["people"] => Route::People,
            ["audit"] => Route::Audit,
            ["people", id] => id.parse().map(Route::Person).unwrap_or(Route::People),
            ["c", id] => id
                .parse()
                .map(Route::Conversation)
                .unwrap_or(Route::Conversations),
            ["c", id, "members"] => id
                .parse()
                .map(Route::Members)
                .unwrap_or(Route::Conversations),
            _ => Route::Conversations,
        }
    }

    /// The address for this route. Link secrets are not written back: once
    /// read, they leave the address bar and the history.
    pub fn path(&self) -> String {
        match self {
            Route::Welcome | Route::Conversations => "/".to_owned(),
            Route::Setup { .. } => "/setup".to_owned(),
            Route::Join { .. } => "/join".to_owned(),
            Route::Conversation(group) => format!("/c/{group}"),
            Route::Members(group) => format!("/c/{group}/members"),
            Route::NewGroup => "/new-group".to_owned(),
            Route::NewDirect => "/new-chat".to_owned(),
            Route::Invite => "/invite".to_owned(),
            Route::People => "/people".to_owned(),
            Route::Person(user) => format!("/people/{user}"),
            Route::Audit => "/audit".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_back_from_their_paths() {
        let group = GroupId::from_bytes([7; 16]);
        for route in [
            Route::Conversations,
            Route::Conversation(group),
            Route::Members(group),
            Route::NewGroup,
            Route::NewDirect,
            Route::Invite,
            Route::People,
            Route::Person(UserId::from_bytes([9; 16])),
            Route::Audit,
        ] {
            assert_eq!(Route::parse(&route.path(), ""), route);
        }
    }

    #[test]
    fn link_secrets_come_from_the_fragment() {
        assert_eq!(
            Route::parse("/join", "#abcd"),
            Route::Join {
                secret: "abcd".into()
            }
        );
        assert_eq!(
            Route::parse("/setup", "#ff"),
            Route::Setup {
                secret: "ff".into()
            }
        );
        assert_eq!(Route::parse("/setup", "").path(), "/setup");
    }

    #[test]
    fn unknown_or_damaged_paths_go_to_the_list() {
        assert_eq!(Route::parse("/c/not-an-id", ""), Route::Conversations);
        assert_eq!(Route::parse("/nowhere/at/all", ""), Route::Conversations);
        assert_eq!(Route::parse("/people/not-an-id", ""), Route::People);
    }
}
