//! Where MLS carries the group profile: a group context extension that every member signs and checks on join and on each commit.
//!
//! The profile itself (type, retention, name, and the rules they obey) is
//! `huddle_core::group::GroupProfile`.

pub use huddle_core::group::{GroupProfile, ProfileError};

/// The extension type, from the private-use range of RFC 9420 (0xF000–0xFFFF).
pub const PROFILE_EXTENSION_TYPE: u16 = 0xF0A1;
