//! The lock screen: the only thing a locked phone shows (no name, preview or count), where the passcode is typed, and the way out for a forgotten one.

use crate::model::AppModel;
use crate::on_demand;
use crate::platform::lock::NotOpened;
use crate::state::words;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn LockPage() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let ready = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let passcode = RwSignal::new(String::new());
    let words_mode = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let forgotten = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Input>::new();

    spawn_local(async move {
        match on_demand::prepare_unlock(model).await {
            Ok(()) => {
                let _ = ready.try_set(true);
            }
            Err(said) => {
                let _ = error.try_set(Some(said));
            }
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() || !ready.get_untracked() {
            return;
        }
        let typed = passcode.get_untracked();
        if typed.trim().is_empty() {
            error.set(Some(words::ENTER_PASSCODE.into()));
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match on_demand::unlock(model, typed).await {
                Ok(()) => {
                    let _ = passcode.try_set(String::new());
                    on_demand::prefetch_screens();
                }
                Err(NotOpened::Wiped) => {}
                Err(NotOpened::Say(said)) => {
                    let _ = passcode.try_set(String::new());
                    let _ = error.try_set(Some(said));
                    let _ = busy.try_set(false);
                    if let Some(input) = input.get_untracked() {
                        let _ = input.focus();
                    }
                }
            }
        });
    };

    let wipe = move |_| {
        busy.set(true);
        spawn_local(on_demand::wipe_forgotten(model));
    };

    view! {
        <main class="page page--lock" id="main">
            <h1 class="page__title">"Huddle is locked"</h1>
            <p class="page__lead">"Enter your passcode to open Huddle."</p>
            <form class="form" on:submit=submit>
                <label class="field">
                    <span class="field__label">"Passcode"</span>
                    <input class="field__input field__input--passcode" type="password" name="passcode"
                        autocomplete="current-password" autofocus=true node_ref=input
                        inputmode=move || if words_mode.get() { "text" } else { "numeric" }
                        aria-describedby="unlock-problem"
                        prop:value=move || passcode.get()
                        on:input=move |ev| passcode.set(event_target_value(&ev)) />
                </label>
                <button class="button button--quiet button--small" type="button"
                    on:click=move |_| words_mode.update(|w| *w = !*w)>
                    {move || if words_mode.get() { "My passcode is digits" } else { "My passcode is words" }}
                </button>
                <p id="unlock-problem" class="notice notice--error" role="alert"
                    hidden=move || error.with(Option::is_none)>
                    {move || error.get()}
                </p>
                <button class="button" type="submit" prop:disabled=move || busy.get() || !ready.get()
                    aria-busy=move || if busy.get() { "true" } else { "false" }>
                    {move || if busy.get() { "Checking…" } else if ready.get() { "Unlock" } else { "Getting ready…" }}
                </button>
            </form>
            <section aria-labelledby="forgotten-title">
                <h2 class="section-title" id="forgotten-title">"Forgotten your passcode?"</h2>
                <p>"Nobody can look it up, not even your manager. Wipe this phone, then ask your manager for a new invite. What Huddle kept on this phone will be deleted."</p>
                <Show when=move || !forgotten.get()
                    fallback=move || view! {
                        <p role="alert">"Wipe this phone now? This cannot be undone."</p>
                        <div class="actions">
                            <button class="button button--danger" type="button" on:click=wipe
                                prop:disabled=move || busy.get()>"Yes, wipe this phone"</button>
                            <button class="button button--quiet" type="button"
                                on:click=move |_| forgotten.set(false)>"Keep it"</button>
                        </div>
                    }>
                    <button class="button button--quiet" type="button"
                        on:click=move |_| forgotten.set(true)>"Wipe this phone"</button>
                </Show>
            </section>
        </main>
    }
}
