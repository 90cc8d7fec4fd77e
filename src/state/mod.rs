//! View state as plain Rust types with methods: no browser, tested natively.

pub mod conversations;
pub mod device_checks;
pub mod records;
pub mod route;
pub mod time;
