//! View state as plain Rust types with methods, and every sentence the app shows about a problem: no browser, tested natively.

pub mod audit;
pub mod broadcasts;
pub mod conversations;
pub mod device_checks;
pub mod export;
pub mod receipts;
pub mod reviews;
pub mod route;
pub mod shifts;
pub mod time;
pub mod verification;
pub mod words;
