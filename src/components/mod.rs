//! Reusable view pieces, one per concept, each with its own scoped CSS block (`.app-bar`, `.check-list`).

mod app_bar;
mod broadcast;
mod check_list;
mod connection_banner;
mod install_help;
mod kind_badge;
mod message_actions;
mod not_sent;
mod qr_code;
mod readers;
mod reviews;
mod shift;
mod verified_mark;

pub use app_bar::AppBar;
pub use broadcast::{BroadcastCard, PinnedBroadcasts};
pub use check_list::CheckList;
pub use connection_banner::ConnectionBanner;
pub use install_help::InstallHelp;
pub use kind_badge::KindBadge;
pub use message_actions::MessageActions;
pub use not_sent::NotSent;
pub use qr_code::QrCodeView;
pub use readers::Readers;
pub use reviews::ReviewsDue;
pub use shift::{CannotWorkCard, ShiftCard, ShiftForm};
pub use verified_mark::VerifiedMark;
