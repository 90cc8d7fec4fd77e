//! Screens, one per route, named `…Page`.

mod welcome;

pub use welcome::WelcomePage;
