//! Identifiers shared by every part of Huddle: organisations, people, devices, groups and messages.
//!
//! They are 16 random bytes, made by whoever creates the thing (the caller
//! passes the randomness in, so this crate stays free of IO). They print as
//! lowercase hex so that logs and URLs can carry them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a piece of text is not an identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an identifier is 32 hexadecimal characters")]
pub struct ParseIdError;

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&crate::hex::encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(text: &str) -> Result<Self, ParseIdError> {
                parse_hex16(text).map(Self)
            }
        }
    };
}

random_id!(
    /// A care home, council team or other organisation that runs a relay.
    OrgId
);
random_id!(
    /// A person in an organisation.
    UserId
);
random_id!(
    /// One device (browser profile) of a person; each has its own keys.
    DeviceId
);
random_id!(
    /// A conversation: a group or a one-to-one chat. Also the MLS group id.
    GroupId
);
random_id!(
    /// Chosen by the sending device for each message, so that a resend is
    /// recognised and stored once.
    ClientMessageId
);

fn parse_hex16(text: &str) -> Result<[u8; 16], ParseIdError> {
    crate::hex::decode_array(text).ok_or(ParseIdError)
}

#[cfg(test)]
mod tests;
