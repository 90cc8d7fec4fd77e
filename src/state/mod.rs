//! View state as plain Rust types with methods: no browser, tested natively.

pub mod device_checks;
