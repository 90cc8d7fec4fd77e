//! Messages to the browser console. Never pass message content, keys or names of the people in our care here.

pub fn error(message: &str) {
    web_sys::console::error_1(&message.into());
}

/// Something worth knowing that the app recovers from by itself.
pub fn warn(message: &str) {
    web_sys::console::warn_1(&message.into());
}
