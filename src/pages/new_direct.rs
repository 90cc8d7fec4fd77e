//! Start a one-to-one conversation with a colleague (or open the one that exists).

use crate::model::AppModel;
use crate::navigate;
use crate::state::route::Route;
use crate::state::words;
use huddle_core::group::GroupProfile;
use huddle_core::retention::GroupKind;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn NewDirectPage() -> impl IntoView {
    let model = expect_context::<AppModel>();
    if let Some(phone) = model.phone() {
        phone.refresh_directory_soon();
    }
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let colleagues = move || {
        let me = model.enrolment.with(|s| s.as_ref().map(|s| s.user));
        model.directory.with(|d| {
            d.people
                .iter()
                .filter(|p| Some(p.user) != me)
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let open_with = move |user, name: String| {
        if busy.get_untracked() {
            return;
        }
        let existing = model.records.with_untracked(|records| {
            records
                .iter()
                .find(|r| r.kind == GroupKind::Direct && r.peer == Some(user) && !r.ended)
                .map(|r| r.group)
        });
        if let Some(group) = existing {
            navigate(model, Route::Conversation(group));
            return;
        }
        let Some(phone) = model.phone() else {
            model.tell(&huddle_session::SessionError::Starting);
            return;
        };
        let me = phone.enrolment().display_name;
        let policy = GroupKind::Direct.retention_policy();
        let profile = match GroupProfile::new(
            GroupKind::Direct,
            policy.default,
            format!("{me} and {name}"),
        ) {
            Ok(profile) => profile,
            Err(e) => {
                error.set(Some(words::profile_error(&e)));
                return;
            }
        };
        busy.set(true);
        spawn_local(async move {
            match phone.create_group(profile, Some(user), vec![user]).await {
                Ok(group) => navigate(model, Route::Conversation(group)),
                Err(e) => {
                    error.set(Some(
                        model
                            .directory
                            .with_untracked(|d| words::session_error(&e, d)),
                    ));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <main class="page" id="main">
            <h1 class="page__title">"Message a colleague"</h1>
            <Show when=move || error.get().is_some()>
                <p class="notice notice--error" role="alert">{move || error.get()}</p>
            </Show>
            <Show when=move || colleagues().is_empty()>
                <p class="empty">"Nobody else has joined yet."</p>
            </Show>
            <ul class="people-list" aria-label="Colleagues">
                {move || colleagues().into_iter().map(|person| {
                    let (user, name) = (person.user, person.display_name.clone());
                    let ready = !person.devices.is_empty();
                    view! {
                        <li>
                            <button class="person-row" type="button" prop:disabled=move || !ready || busy.get()
                                on:click=move |_| open_with(user, name.clone())>
                                <span class="person-row__name">{person.display_name.clone()}</span>
                                {(!ready).then(|| view! { <span class="field__hint">"Has not joined yet"</span> })}
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </main>
    }
}
