//! Under one of the phone's own messages that could not be sent: why, in words, and a button to send it again.

use crate::model::AppModel;
use crate::state::words;
use huddle_core::ids::ClientMessageId;
use huddle_session::Delivery;
use leptos::prelude::*;

/// Nothing unless `delivery` failed; then the reason and "Try again".
#[component]
pub fn NotSent(delivery: Delivery, id: ClientMessageId) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let Delivery::Failed(reason) = delivery else {
        return None;
    };
    Some(view! {
        <span class="message__failed" role="alert">
            {words::failure(&reason)}
            <button class="button button--small" type="button"
                on:click=move |_| { if let Some(phone) = model.phone() { phone.retry(id) } }>
                "Try again"
            </button>
        </span>
    })
}
