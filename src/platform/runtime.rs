//! The session's clock, randomness, tasks and log, in the browser.

use super::browser;
use futures::future::LocalBoxFuture;
use huddle_core::retention::UnixMillis;
use huddle_session::{Clock, Log, Randomness, Tasks};

/// The browser's clock, and its timers.
pub struct BrowserClock;

impl Clock for BrowserClock {
    fn now(&self) -> UnixMillis {
        browser::now()
    }

    fn monotonic_millis(&self) -> u64 {
        browser::monotonic_millis()
    }

    fn after(&self, millis: u64, then: Box<dyn FnOnce()>) {
        let millis = i32::try_from(millis).unwrap_or(i32::MAX);
        browser::after(millis, then);
    }
}

/// WebCrypto's random numbers.
pub struct BrowserRandomness;

impl Randomness for BrowserRandomness {
    fn id(&self) -> [u8; 16] {
        browser::random_id()
    }

    fn jitter(&self) -> f64 {
        browser::jitter()
    }
}

/// Tasks on the page's event loop.
pub struct LocalTasks;

impl Tasks for LocalTasks {
    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        wasm_bindgen_futures::spawn_local(task);
    }
}

/// The browser console.
pub struct ConsoleLog;

impl Log for ConsoleLog {
    fn warn(&self, line: &str) {
        super::log::warn(line);
    }
}
