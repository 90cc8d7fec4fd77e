//! Administrators make a group: a name, a type that can never change, a retention time within the type's limits, and its first members.

use crate::model::AppModel;
use crate::navigate;
use crate::state::route::Route;
use crate::state::time::duration_label;
use crate::state::words;
use huddle_core::group::GroupProfile;
use huddle_core::ids::UserId;
use huddle_core::retention::{GroupKind, RetentionSecs};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The retention times offered, filtered by each type's limits.
const RETENTION_CHOICES: [RetentionSecs; 9] = [
    RetentionSecs::minutes(5),
    RetentionSecs::HOUR,
    RetentionSecs::hours(12),
    RetentionSecs::DAY,
    RetentionSecs::days(3),
    RetentionSecs::days(7),
    RetentionSecs::days(14),
    RetentionSecs::days(30),
    RetentionSecs::days(90),
];

fn kind_help(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Clinical => "About the people in our care. Decisions go into the care record.",
        GroupKind::Operational => "Rotas, shift cover, sickness and handover logistics.",
        GroupKind::Social => "Chat and morale. Never anything about the people in our care.",
        GroupKind::EmergencyBroadcast => {
            "Urgent alerts from administrators; everyone else acknowledges them."
        }
        GroupKind::Direct => "",
    }
}

#[component]
pub fn NewGroupPage() -> impl IntoView {
    let model = expect_context::<AppModel>();
    if let Some(phone) = model.phone() {
        phone.refresh_directory_soon();
    }
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new(GroupKind::Operational);
    let retention = RwSignal::new(GroupKind::Operational.retention_policy().default);
    let chosen = RwSignal::new(Vec::<UserId>::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let choices = move || {
        let policy = kind.get().retention_policy();
        RETENTION_CHOICES
            .iter()
            .copied()
            .filter(|r| *r >= policy.min && *r <= policy.max)
            .collect::<Vec<_>>()
    };
    let colleagues = move || {
        let me = model.enrolment.with(|s| s.as_ref().map(|s| s.user));
        model.directory.with(|d| {
            d.people
                .iter()
                .filter(|p| Some(p.user) != me && !p.devices.is_empty())
                .cloned()
                .collect::<Vec<_>>()
        })
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let profile = match GroupProfile::new(
            kind.get_untracked(),
            retention.get_untracked(),
            name.get_untracked(),
        ) {
            Ok(profile) => profile,
            Err(e) => {
                error.set(Some(words::profile_error(&e)));
                return;
            }
        };
        let Some(phone) = model.phone() else {
            model.tell(&huddle_session::SessionError::Starting);
            return;
        };
        busy.set(true);
        error.set(None);
        let users = chosen.get_untracked();
        spawn_local(async move {
            match phone.create_group(profile, None, users).await {
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
            <h1 class="page__title">"New group"</h1>
            // Kept out of the browser's form history, as every name is.
            <form class="form" autocomplete="off" on:submit=submit>
                <label class="field">
                    <span class="field__label">"Group name"</span>
                    <input class="field__input" name="group-name" maxlength="80" autocomplete="off"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                </label>
                <fieldset class="field">
                    <legend class="field__label">"Type (it cannot be changed later)"</legend>
                    {[GroupKind::Clinical, GroupKind::Operational, GroupKind::Social, GroupKind::EmergencyBroadcast]
                        .into_iter()
                        .map(|k| view! {
                            <label class=format!("choice choice--{}", crate::state::conversations::kind_class(k))>
                                <input type="radio" name="kind" prop:checked=move || kind.get() == k
                                    on:change=move |_| {
                                        kind.set(k);
                                        retention.set(k.retention_policy().default);
                                    } />
                                <span class="choice__text">
                                    <strong>{crate::state::conversations::kind_label(k)}</strong>
                                    <span class="field__hint">{kind_help(k)}</span>
                                </span>
                            </label>
                        })
                        .collect_view()}
                </fieldset>
                <label class="field">
                    <span class="field__label">"Messages disappear after"</span>
                    <select class="field__input" name="retention"
                        on:change=move |ev| {
                            if let Ok(secs) = event_target_value(&ev).parse::<u64>() {
                                retention.set(RetentionSecs(secs));
                            }
                        }>
                        {move || choices().into_iter().map(|r| view! {
                            <option value=r.0.to_string() prop:selected=move || retention.get() == r>
                                {duration_label(r.as_millis())}
                            </option>
                        }).collect_view()}
                    </select>
                </label>
                <fieldset class="field">
                    <legend class="field__label">"People"</legend>
                    <Show when=move || colleagues().is_empty()>
                        <p class="field__hint">"Nobody else has joined yet. You can add people later."</p>
                    </Show>
                    {move || colleagues().into_iter().map(|person| {
                        let user = person.user;
                        view! {
                            <label class="choice">
                                <input type="checkbox" name="member"
                                    prop:checked=move || chosen.with(|c| c.contains(&user))
                                    on:change=move |_| chosen.update(|c| {
                                        if let Some(i) = c.iter().position(|u| *u == user) { c.remove(i); } else { c.push(user); }
                                    }) />
                                <span class="choice__text">{person.display_name.clone()}</span>
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <Show when=move || error.get().is_some()>
                    <p class="notice notice--error" role="alert">{move || error.get()}</p>
                </Show>
                <button class="button" type="submit" prop:disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create group" }}
                </button>
            </form>
        </main>
    }
}
