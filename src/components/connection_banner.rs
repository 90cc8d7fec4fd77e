//! The banner that says the app is offline (or connecting) and how many messages wait to be sent.

use crate::model::AppModel;
use leptos::prelude::*;

#[component]
pub fn ConnectionBanner() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let text = move || {
        if model.enrolment.with(Option::is_none) {
            return None;
        }
        if model.refused.get() {
            return Some(
                "Not connected: Huddle's server does not recognise this phone, so nothing is sent."
                    .to_owned(),
            );
        }
        let connection = model.connection.get();
        // A socket can look open for a while after the phone has lost its
        // network; the browser's word that it is offline comes first.
        if connection.live && connection.browser_online {
            return None;
        }
        let waiting = match connection.waiting {
            0 => String::new(),
            1 => " 1 message is waiting to send.".to_owned(),
            n => format!(" {n} messages are waiting to send."),
        };
        Some(if connection.browser_online {
            format!("Connecting…{waiting}")
        } else {
            format!("You're offline. You can still read and write messages.{waiting}")
        })
    };
    view! {
        <Show when=move || text().is_some()>
            <p class="banner" role="status" aria-live="polite" data-testid="connection-banner">
                {text}
            </p>
        </Show>
    }
}
