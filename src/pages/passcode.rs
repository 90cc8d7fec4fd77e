//! Choosing a passcode: at joining, before the conversation list (and once on a phone that joined before passcodes), with the rules said up front and typed twice.

use crate::model::{AppModel, LockView};
use crate::navigate;
use crate::state::route::Route;
use crate::state::words;
use huddle_core::crypto_worker::{PasscodeText, WorkerErrorKind};
use huddle_session::{CryptoError, SessionError};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// How long saving waits for the phone to sign in: 20 s in steps.
const CONNECT_WAIT_STEPS: u32 = 100;
const CONNECT_WAIT_STEP_MS: u32 = 200;

#[component]
pub fn ChoosePasscodePage() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let first = RwSignal::new(String::new());
    let again = RwSignal::new(String::new());
    let words_mode = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (typed, repeated) = (first.get_untracked(), again.get_untracked());
        if typed.trim().is_empty() {
            error.set(Some(words::CHOOSE_PASSCODE.into()));
            return;
        }
        if typed.trim() != repeated.trim() {
            error.set(Some(words::PASSCODES_DIFFER.into()));
            again.set(String::new());
            return;
        }
        let Some(phone) = model.phone() else {
            error.set(Some(words::STILL_STARTING.into()));
            return;
        };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            // Just after joining, the phone may still be signing in: wait a
            // little for it rather than send the person away.
            for _ in 0..CONNECT_WAIT_STEPS {
                if model.connection.get_untracked().live {
                    break;
                }
                gloo_timers::future::TimeoutFuture::new(CONNECT_WAIT_STEP_MS).await;
            }
            match phone.set_passcode(PasscodeText::new(typed)).await {
                Ok(()) => {
                    first.set(String::new());
                    again.set(String::new());
                    model.lock.set(LockView::Open);
                    navigate(model, Route::Conversations);
                }
                Err(e) => {
                    let said = match &e {
                        SessionError::Crypto(CryptoError::Refused(refusal))
                            if refusal.kind == WorkerErrorKind::Passcode =>
                        {
                            refusal.message.clone()
                        }
                        SessionError::Offline | SessionError::Starting | SessionError::Dropped => {
                            words::PASSCODE_NEEDS_CONNECTION.into()
                        }
                        other => model
                            .directory
                            .with_untracked(|d| words::session_error(other, d)),
                    };
                    error.set(Some(said));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <main class="page" id="main">
            <h1 class="page__title">"Choose a passcode"</h1>
            <p class="page__lead">"You will type it each time you open Huddle. If this phone is lost, it keeps your team's messages safe."</p>
            <form class="form" on:submit=submit>
                <div class="field">
                    <label class="field__label" for="new-passcode">"Passcode"</label>
                    <span class="field__hint" id="passcode-rules">
                        {move || if words_mode.get() {
                            "At least 4 words with spaces between them, like: maple river candle stone."
                        } else {
                            "At least 6 digits. Not 123456, 111111 or the like."
                        }}
                    </span>
                    <input class="field__input field__input--passcode" type="password" name="new-passcode"
                        id="new-passcode" autocomplete="new-password" autofocus=true
                        inputmode=move || if words_mode.get() { "text" } else { "numeric" }
                        aria-describedby="passcode-rules"
                        prop:value=move || first.get()
                        on:input=move |ev| first.set(event_target_value(&ev)) />
                </div>
                <button class="button button--quiet button--small" type="button"
                    on:click=move |_| words_mode.update(|w| *w = !*w)>
                    {move || if words_mode.get() { "Use digits instead" } else { "Use words instead" }}
                </button>
                <label class="field">
                    <span class="field__label">"Type it again"</span>
                    <input class="field__input field__input--passcode" type="password" name="repeat-passcode"
                        autocomplete="new-password"
                        inputmode=move || if words_mode.get() { "text" } else { "numeric" }
                        prop:value=move || again.get()
                        on:input=move |ev| again.set(event_target_value(&ev)) />
                </label>
                <p class="notice notice--error" role="alert" hidden=move || error.with(Option::is_none)>
                    {move || error.get()}
                </p>
                <p>"Nobody can look your passcode up, not even your manager. After 10 wrong tries, this phone is wiped."</p>
                // The browser may offer to keep it in its password manager,
                // which would fill the lock screen for whoever holds the
                // phone; the app cannot refuse that offer for her.
                <p>"Keep it in your head. If your browser offers to save it, choose Never: a saved passcode opens Huddle for anyone who has your phone."</p>
                <button class="button" type="submit" prop:disabled=move || busy.get()
                    aria-busy=move || if busy.get() { "true" } else { "false" }>
                    {move || if busy.get() { "Saving your passcode…" } else { "Save passcode" }}
                </button>
            </form>
        </main>
    }
}
