//! Under a message: "Recorded in the care record" (clinical groups) and "Delete for everyone" (one's own), each asked once more before the message leaves every phone for good.

use crate::model::AppModel;
use huddle_core::ids::GroupId;
use huddle_core::retention::UnixMillis;
use huddle_core::shift::MessageRef;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Which question is on screen.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asking {
    Nothing,
    Recorded,
    Delete,
}

/// The care record named last, offered again: a home writes into the same
/// one all night.
fn last_record() -> &'static std::thread::LocalKey<std::cell::RefCell<String>> {
    thread_local! {
        static LAST: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    &LAST
}

/// "More" under a message, folded: the two ways its content leaves every
/// phone, each with its own question.
#[component]
pub fn MessageActions(
    group: GroupId,
    message: MessageRef,
    expires_at: UnixMillis,
    can_record: bool,
    can_delete: bool,
) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let asking = RwSignal::new(Asking::Nothing);
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<String>);
    let record = RwSignal::new(last_record().with(|last| last.borrow().clone()));
    // The question takes the focus as it opens (which also brings it into
    // view above the composer, and tells a screen reader where she is).
    let record_field = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(field) = record_field.get() {
            let _ = field.focus();
        }
    });
    let remove = move |recorded_in: Option<String>| {
        let Some(phone) = model.phone() else {
            model.tell(&huddle_session::SessionError::Starting);
            return;
        };
        busy.set(true);
        problem.set(None);
        spawn_local(async move {
            let result = phone
                .remove_message(group, message, expires_at, recorded_in.as_deref())
                .await;
            busy.set(false);
            match result {
                Ok(()) => {
                    if let Some(name) = recorded_in {
                        last_record().with(|last| *last.borrow_mut() = name.trim().to_owned());
                    }
                    asking.set(Asking::Nothing);
                }
                Err(error) => problem.set(Some(
                    model
                        .directory
                        .with_untracked(|d| crate::state::words::session_error(&error, d)),
                )),
            }
        });
    };
    let recorded = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        remove(Some(record.get_untracked()));
    };
    view! {
        <details class="message-actions" data-testid="message-actions">
            <summary class="message-actions__open">"More"<span class="visually-hidden">" for this message"</span></summary>
            <div class="message-actions__choices">
                <Show when=move || asking.get() == Asking::Nothing>
                    {can_record.then(|| view! {
                        <button class="button button--secondary" type="button"
                            on:click=move |_| asking.set(Asking::Recorded)>
                            "Recorded in the care record"
                        </button>
                    })}
                    {can_delete.then(|| view! {
                        <button class="button button--secondary" type="button"
                            on:click=move |_| asking.set(Asking::Delete)>
                            "Delete for everyone"
                        </button>
                    })}
                </Show>
                <Show when=move || asking.get() == Asking::Recorded>
                    <form class="message-actions__question" on:submit=recorded>
                        <label class="field">
                            <span class="field__label">"Which care record did you write it into?"</span>
                            <input class="field__input" type="text" name="record" required node_ref=record_field
                                maxlength=huddle_core::removal::MAX_RECORD_NAME_BYTES.to_string()
                                placeholder="For example Nourish, or the paper notes"
                                prop:value=move || record.get()
                                on:input=move |ev| record.set(event_target_value(&ev))
                                data-testid="record-system" />
                        </label>
                        <p class="message-actions__warning">
                            "The message will be deleted from everyone's phones and from the server. This cannot be undone."
                        </p>
                        <button class="button button--danger" type="submit" disabled=move || busy.get()
                            data-testid="confirm-recorded">
                            "Delete it, it's in the record"
                        </button>
                        <button class="button button--quiet" type="button"
                            on:click=move |_| asking.set(Asking::Nothing)>
                            "Keep it"
                        </button>
                    </form>
                </Show>
                <Show when=move || asking.get() == Asking::Delete>
                    <div class="message-actions__question">
                        <p class="message-actions__warning">
                            "Delete this message from everyone's phones and from the server? This cannot be undone."
                        </p>
                        <button class="button button--danger" type="button" disabled=move || busy.get()
                            on:click=move |_| remove(None) data-testid="confirm-delete">
                            "Delete for everyone"
                        </button>
                        <button class="button button--quiet" type="button"
                            on:click=move |_| asking.set(Asking::Nothing)>
                            "Keep it"
                        </button>
                    </div>
                </Show>
                {move || problem.get().map(|text| view! {
                    <p class="notice notice--error" role="alert">{text}</p>
                })}
            </div>
        </details>
    }
}
