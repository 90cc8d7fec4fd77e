//! The group profile: a conversation's type, retention time and name, which every member agrees on (MLS carries it in the group context).
//!
//! `huddle-mls` puts these bytes in a group context extension, so they are
//! part of what every member signs and agrees on in each epoch; a member
//! joining by welcome or processing a commit checks them against the rules
//! in `retention` and refuses a group whose retention is outside its type's
//! limits. The profile holds no secret: the page shows it.

use crate::retention::{GroupKind, RetentionError, RetentionSecs};
use serde::{Deserialize, Serialize};

/// The longest group name, in characters.
pub const MAX_NAME_CHARS: usize = 80;

/// What every member of a group agrees the group is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProfile {
    pub kind: GroupKind,
    pub retention: RetentionSecs,
    /// Shown as the conversation's title. Encrypted like everything else in
    /// the group context: the relay never sees it.
    pub name: String,
}

/// Why a profile is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("the group has no Huddle profile")]
    Missing,
    #[error("the group profile is damaged")]
    Malformed,
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error("a group name needs 1 to {MAX_NAME_CHARS} characters")]
    Name,
}

#[derive(Serialize, Deserialize)]
struct ProfileLayout<'a> {
    version: u8,
    kind: GroupKind,
    retention: RetentionSecs,
    name: &'a str,
}

impl GroupProfile {
    /// A profile checked against the rules.
    pub fn new(
        kind: GroupKind,
        retention: RetentionSecs,
        name: impl Into<String>,
    ) -> Result<Self, ProfileError> {
        let profile = GroupProfile {
            kind,
            retention,
            name: name.into().trim().to_owned(),
        };
        profile.validate()?;
        Ok(profile)
    }

    pub fn validate(&self) -> Result<(), ProfileError> {
        self.kind.check_retention(self.retention)?;
        let chars = self.name.chars().count();
        if self.name.trim().is_empty() || chars > MAX_NAME_CHARS {
            return Err(ProfileError::Name);
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(&ProfileLayout {
            version: 1,
            kind: self.kind,
            retention: self.retention,
            name: &self.name,
        })
        .expect("a profile always serialises into a Vec")
    }

    /// Reads and checks a profile from the extension's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProfileError> {
        let layout: ProfileLayout<'_> =
            postcard::from_bytes(bytes).map_err(|_| ProfileError::Malformed)?;
        if layout.version != 1 {
            return Err(ProfileError::Malformed);
        }
        let profile = GroupProfile {
            kind: layout.kind,
            retention: layout.retention,
            name: layout.name.to_owned(),
        };
        profile.validate()?;
        Ok(profile)
    }
}

#[cfg(test)]
mod tests;
