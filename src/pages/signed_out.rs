//! What a phone shows once the relay has signed it out and everything on it has been wiped.

use crate::state::words;
use huddle_session::SignOut;
use leptos::prelude::*;

#[component]
pub fn SignedOutPage(why: SignOut) -> impl IntoView {
    view! {
        <main class="page" id="main">
            <h1 class="page__title">"This phone has been signed out"</h1>
            <p class="page__lead">{words::sign_out(&why)}" Everything Huddle kept on it has been deleted."</p>
            <p>"To use Huddle again, ask your manager for a new invite."</p>
        </main>
    }
}
