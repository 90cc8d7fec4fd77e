//! Screens, one per route, named `…Page`.

mod audit;
mod conversation;
mod conversations;
mod invite;
mod lock;
mod members;
mod new_direct;
mod new_group;
mod passcode;
mod people;
mod person;
mod register;
mod signed_out;
mod welcome;

pub use audit::AuditPage;
pub use conversation::ConversationPage;
pub use conversations::ConversationsPage;
pub use invite::InvitePage;
pub use lock::LockPage;
pub use members::MembersPage;
pub use new_direct::NewDirectPage;
pub use new_group::NewGroupPage;
pub use passcode::ChoosePasscodePage;
pub use people::PeoplePage;
pub use person::PersonPage;
pub use register::RegisterPage;
pub use signed_out::{NotRecognisedPage, SignedOutPage};
pub use welcome::WelcomePage;
