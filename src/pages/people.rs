//! The team: everyone in the organisation, each with their verification badge and a link to their page; administrators can sign a person out of every device.

use crate::components::VerifiedMark;
use crate::model::AppModel;
use crate::navigate;
use crate::state::route::Route;
use crate::state::words;
use huddle_core::ids::UserId;
use huddle_core::wire::Role;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn PeoplePage() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let error = RwSignal::new(None::<String>);
    let confirm = RwSignal::new(None::<(UserId, String)>);
    let me = move || model.enrolment.with(|s| s.as_ref().map(|s| s.user));
    if let Some(phone) = model.phone() {
        phone.refresh_directory_soon();
        // Badges for those listed, not only the people in this phone's
        // conversations: the first hundred (a batch), the rest as their
        // pages open; offline, the cached ones show.
        let everyone: Vec<UserId> = model
            .directory
            .with_untracked(|d| d.people.iter().map(|p| p.user).collect());
        spawn_local(async move {
            let _ = phone.refresh_identities(everyone).await;
        });
    }
    let revoke = move |user: UserId| {
        let Some(phone) = model.phone() else {
            return;
        };
        confirm.set(None);
        spawn_local(async move {
            match phone.revoke_person(user).await {
                Ok(()) => {
                    let _ = phone.refresh_directory().await;
                }
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
            <h1 class="page__title">"Team"</h1>
            <Show when=move || error.get().is_some()>
                <p class="notice notice--error" role="alert">{move || error.get()}</p>
            </Show>
            {move || confirm.get().map(|(user, name)| view! {
                <div class="warning" role="alertdialog" aria-labelledby="revoke-title">
                    <h2 id="revoke-title" class="warning__title">{format!("Sign {name} out of Huddle?")}</h2>
                    <p>"Their phones are disconnected at once and wiped the next time they open Huddle. They will need a new invite to come back."</p>
                    <div class="warning__actions">
                        <button class="button button--danger" type="button" on:click=move |_| revoke(user)>"Sign out and wipe"</button>
                        <button class="button button--secondary" type="button" on:click=move |_| confirm.set(None)>"Cancel"</button>
                    </div>
                </div>
            })}
            <ul class="people-list" aria-label="Team">
                {move || model.directory.get().people.into_iter().map(|person| {
                    let user = person.user;
                    let name = person.display_name.clone();
                    let is_me = me() == Some(user);
                    view! {
                        <li class="person-row">
                            <a class="person-row__name" href=format!("/people/{user}")
                                on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Person(user)) }>
                                {person.display_name.clone()}
                                {is_me.then_some(" (you)")}
                            </a>
                            <VerifiedMark user=user />
                            <span class="field__hint">
                                {if person.role == Role::Administrator { "Administrator" } else { "Staff" }}
                                {person.devices.is_empty().then_some(" · not joined")}
                            </span>
                            <Show when=move || model.is_admin() && !is_me>
                                <button class="button button--small button--danger" type="button"
                                    on:click={
                                        let name = name.clone();
                                        move |_| confirm.set(Some((user, name.clone())))
                                    }>"Sign out"</button>
                            </Show>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </main>
    }
}
