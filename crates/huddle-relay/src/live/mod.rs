//! Live delivery: the connections of this process (`hub.rs`), the order entries reach them in (`publisher.rs`), and the bus that carries announcements between relay processes sharing one PostgreSQL database (`bus.rs`).

pub mod bus;
pub mod hub;
pub mod publisher;
