//! What a phone shows once the relay has signed it out and everything on it has been wiped, and what it asks when the relay does not recognise it.

use crate::model::AppModel;
use crate::platform::cache::delete_everything;
use crate::state::words;
use huddle_session::SignOut;
use leptos::prelude::*;

#[component]
pub fn SignedOutPage(why: SignOut) -> impl IntoView {
    // Every record is gone already; what is left (the empty databases, the
    // app's offline copy, its service worker) goes now.
    let deleted = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        delete_everything().await;
        crate::platform::browser::mark("huddle:wiped");
        let _ = deleted.try_set(true);
    });
    view! {
        <main class="page" id="main">
            <h1 class="page__title">"This phone has been signed out"</h1>
            <p class="page__lead">{words::sign_out(&why)}</p>
            <p role="status">
                {move || if deleted.get() {
                    "Everything Huddle kept on it has been deleted."
                } else {
                    "Deleting what Huddle kept on this phone…"
                }}
            </p>
            <p>"To use Huddle again, ask your manager for a new invite."</p>
        </main>
    }
}

/// The relay did not recognise this phone, without saying it was signed out
/// (a server restored from an older backup, say): nothing is deleted until
/// the person chooses, and she is told what was not sent.
#[component]
pub fn NotRecognisedPage(unsent: usize) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let confirm = RwSignal::new(false);
    let try_again = move |_| {
        model.refused.set(false);
        model.not_recognised.set(None);
        if let Some(phone) = model.phone() {
            phone.try_again();
        }
    };
    // The banner goes on saying that nothing is sent; reloading Huddle
    // asks the relay again.
    let keep = move |_| model.not_recognised.set(None);
    let delete = move |_| {
        if let Some(phone) = model.phone() {
            phone.wipe_now();
        }
    };
    let what_goes = match unsent {
        0 => "Every conversation on this phone is deleted. This cannot be undone.".to_owned(),
        1 => "Every conversation on this phone is deleted, and the message you wrote that was not sent. This cannot be undone.".to_owned(),
        n => format!("Every conversation on this phone is deleted, and the {n} messages you wrote that were not sent. This cannot be undone."),
    };
    view! {
        <main class="page" id="main">
            <h1 class="page__title">"Huddle's server does not recognise this phone"</h1>
            <p class="page__lead">"This can happen when the server has been restored from an older backup. Nothing on this phone has been deleted, and nothing more is sent until you choose what to do."</p>
            <p>{words::unsent_messages(unsent)}</p>
            <p>"Ask your manager what happened. If they give you a new invite, delete what Huddle keeps on this phone first."</p>
            <div class="actions">
                <button class="button" type="button" on:click=try_again>"Try again"</button>
                <button class="button button--secondary" type="button" on:click=keep>"Keep reading for now"</button>
                <button class="button button--danger" type="button" on:click=move |_| confirm.set(true)>"Delete everything on this phone"</button>
            </div>
            <Show when=move || confirm.get()>
                <div class="warning" role="alertdialog" aria-labelledby="wipe-title">
                    <h2 id="wipe-title" class="warning__title">"Delete everything Huddle keeps on this phone?"</h2>
                    <p>{what_goes.clone()}</p>
                    <div class="warning__actions">
                        <button class="button button--danger" type="button" on:click=delete>"Delete everything"</button>
                        <button class="button button--secondary" type="button" on:click=move |_| confirm.set(false)>"Cancel"</button>
                    </div>
                </div>
            </Show>
        </main>
    }
}
