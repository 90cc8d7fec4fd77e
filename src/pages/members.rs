//! Who is in a conversation, each with their verification badge; administrators add and remove people here.

use crate::components::VerifiedMark;
use crate::model::AppModel;
use crate::navigate;
use crate::state::route::Route;
use crate::state::words;
use huddle_core::ids::{GroupId, UserId};
use huddle_core::retention::GroupKind;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn MembersPage(group: GroupId) -> impl IntoView {
    let model = expect_context::<AppModel>();
    if let Some(phone) = model.phone() {
        phone.refresh_directory_soon();
        let members = model.record(group).map(|r| r.members).unwrap_or_default();
        spawn_local(async move {
            let _ = phone.refresh_identities(members).await;
        });
    }
    let error = RwSignal::new(None::<String>);
    let status = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let record = Memo::new(move |_| {
        model
            .records
            .with(|records| records.iter().find(|r| r.group == group).cloned())
    });
    let me = move || model.enrolment.with(|s| s.as_ref().map(|s| s.user));
    let name_of = move |user: UserId| {
        model
            .directory
            .with(|d| d.name_of(user).map(str::to_owned))
            .unwrap_or_else(|| "Someone".to_owned())
    };
    let members = move || record.get().map(|r| r.members).unwrap_or_default();
    let can_manage = move || {
        model.is_admin()
            && record
                .get()
                .is_some_and(|r| !r.ended && r.kind != GroupKind::Direct)
    };
    let others = move || {
        let inside = members();
        model.directory.with(|d| {
            d.people
                .iter()
                .filter(|p| !inside.contains(&p.user) && !p.devices.is_empty())
                .cloned()
                .collect::<Vec<_>>()
        })
    };

    let change = move |user: UserId, add: bool| {
        let Some(phone) = model.phone() else {
            return;
        };
        busy.set(true);
        error.set(None);
        status.set(None);
        spawn_local(async move {
            let result = if add {
                phone.add_people(group, vec![user]).await
            } else {
                phone.remove_people(group, vec![user]).await
            };
            busy.set(false);
            match result {
                Ok(()) => status.set(Some(if add {
                    "Added. They will see new messages from now on.".into()
                } else {
                    "Removed. They will not receive anything new.".into()
                })),
                Err(e) => error.set(Some(
                    model
                        .directory
                        .with_untracked(|d| words::session_error(&e, d)),
                )),
            }
        });
    };

    view! {
        <main class="page" id="main">
            <h1 class="page__title">"People in this conversation"</h1>
            <Show when=move || status.get().is_some()>
                <p class="notice" role="status">{move || status.get()}</p>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="notice notice--error" role="alert">{move || error.get()}</p>
            </Show>
            <ul class="people-list" aria-label="Members">
                {move || members().into_iter().map(|user| {
                    let is_me = me() == Some(user);
                    view! {
                        <li class="person-row">
                            {if is_me {
                                view! { <span class="person-row__name">"You"</span> }.into_any()
                            } else {
                                view! {
                                    <a class="person-row__name" href=format!("/people/{user}")
                                        on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Person(user)) }>
                                        {name_of(user)}
                                    </a>
                                    <VerifiedMark user=user />
                                }.into_any()
                            }}
                            <Show when=move || can_manage() && !is_me>
                                <button class="button button--small button--danger" type="button"
                                    prop:disabled=move || busy.get()
                                    on:click=move |_| change(user, false)>"Remove"</button>
                            </Show>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <Show when=move || can_manage() && !others().is_empty()>
                <h2 class="section-title">"Add people"</h2>
                <ul class="people-list" aria-label="People to add">
                    {move || others().into_iter().map(|person| {
                        let user = person.user;
                        view! {
                            <li class="person-row">
                                <span class="person-row__name">{person.display_name.clone()}</span>
                                <button class="button button--small" type="button"
                                    prop:disabled=move || busy.get()
                                    on:click=move |_| change(user, true)>"Add"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Show>
        </main>
    }
}
