//! Live delivery: the connections of this process (`hub.rs`) and the bus that carries announcements between relay processes sharing one PostgreSQL database (`bus.rs`).

pub mod bus;
pub mod hub;
