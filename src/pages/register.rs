//! The first-run link and invite links: name the home (first run) or yourself, and this phone joins.

use crate::model::AppModel;
use crate::navigate;
use crate::on_demand;
use crate::platform::phone;
use crate::platform::registration::{self, LinkKind};
use crate::state::route::Route;
use crate::state::words;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn RegisterPage(kind: LinkKind, secret: String) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let org_name = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let complete = registration::secret_looks_complete(kind, &secret);
    let secret = StoredValue::new(secret);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (org, name) = (org_name.get_untracked(), display_name.get_untracked());
        if kind == LinkKind::Setup && org.trim().is_empty() {
            error.set(Some("Enter the name of your care home or team.".into()));
            return;
        }
        if kind == LinkKind::Setup && name.trim().is_empty() {
            error.set(Some("Enter your name as colleagues will see it.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let secret = secret.get_value();
            match on_demand::register(kind, secret, org.trim().to_owned(), name.trim().to_owned())
                .await
            {
                Ok((cache, _enrolment, worker)) => match phone::load_from(model, cache).await {
                    Ok(Some(phone)) => {
                        // A passcode is chosen before the conversation list.
                        model.lock.set(crate::model::LockView::Choosing);
                        model.loaded.set(true);
                        navigate(model, Route::Conversations);
                        on_demand::prefetch_screens();
                        on_demand::start_phone(model, phone, Some(worker)).await;
                    }
                    Ok(None) => {
                        error.set(Some(
                            words::cache_error(&huddle_session::CacheError::Failed).to_owned(),
                        ));
                        busy.set(false);
                    }
                    Err(e) => {
                        error.set(Some(words::load_error(&e).to_owned()));
                        busy.set(false);
                    }
                },
                Err(e) => {
                    error.set(Some(e));
                    busy.set(false);
                }
            }
        });
    };

    let (title, lead, button) = match kind {
        LinkKind::Setup => (
            "Set up Huddle for your team",
            "You are the first person here, so you will be its administrator. You can invite your colleagues next.",
            "Set up Huddle",
        ),
        LinkKind::Invite => (
            "Join your team on Huddle",
            "You've been invited to your team's secure messaging. Choose the name your colleagues will see.",
            "Join",
        ),
    };

    view! {
        <main class="page" id="main">
            <h1 class="page__title">{title}</h1>
            <p class="page__lead">{lead}</p>
            <Show when=move || model.enrolment.with(Option::is_some)>
                <p class="notice">"This phone is already set up for Huddle. "
                    <a href="/">"Go to your conversations"</a>
                </p>
            </Show>
            <Show
                when=move || complete
                fallback=|| view! {
                    <p class="notice notice--error" role="alert">
                        "This link is incomplete. Open the whole link again, or ask for a new one."
                    </p>
                }
            >
                // Nothing typed here goes into the browser's form history or
                // its saved page state: a lost phone's profile would keep the
                // home's and the person's names beside its locked data.
                <form class="form" autocomplete="off" on:submit=submit>
                    <Show when=move || kind == LinkKind::Setup>
                        <label class="field">
                            <span class="field__label">"Name of your care home or team"</span>
                            <input class="field__input" name="org" autocomplete="off" maxlength="80"
                                prop:value=move || org_name.get()
                                on:input=move |ev| org_name.set(event_target_value(&ev)) />
                        </label>
                    </Show>
                    <label class="field">
                        <span class="field__label">"Your name"</span>
                        <span class="field__hint">
                            {if kind == LinkKind::Invite { "Leave it empty to use the name on your invite." } else { "As your colleagues will see it." }}
                        </span>
                        <input class="field__input" name="name" autocomplete="off" maxlength="80"
                            prop:value=move || display_name.get()
                            on:input=move |ev| display_name.set(event_target_value(&ev)) />
                    </label>
                    <Show when=move || error.get().is_some()>
                        <p class="notice notice--error" role="alert">{move || error.get()}</p>
                    </Show>
                    <button class="button" type="submit" prop:disabled=move || busy.get()>
                        {move || if busy.get() { "Setting up this phone…" } else { button }}
                    </button>
                </form>
            </Show>
        </main>
    }
}
