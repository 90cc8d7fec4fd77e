//! The team: everyone in the organisation, each with their verification badge and a link to their page; administrators see when agency staff's access ends, can sign a person out of every device, and see whether each signed-out phone has been told to wipe itself.

use crate::components::VerifiedMark;
use crate::model::AppModel;
use crate::navigate;
use crate::platform::browser;
use crate::state::route::Route;
use crate::state::time::{access_end_label, signed_out_label};
use crate::state::words;
use huddle_core::ids::UserId;
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{AccessEnd, Role, SignedOutPhone};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// How often the list of signed-out phones is asked again while one of
/// them, signed out in the last [`SIGNED_OUT_WATCH_MILLIS`], has not been
/// told to wipe itself yet (a phone online at the time hears within
/// seconds; one that is off may not for days, and the page does not poll
/// for it).
const SIGNED_OUT_REFRESH_MILLIS: u64 = 5_000;
const SIGNED_OUT_WATCH_MILLIS: u64 = 10 * 60 * 1000;

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
    // Phones signed out lately, and whether each has been told to wipe
    // itself: asked on opening, after a sign-out, and every few seconds
    // while one signed out in the last few minutes has not (online only;
    // offline the section stays as it was). Only the latest answer counts.
    let signed_out = RwSignal::new(Vec::<SignedOutPhone>::new());
    let asked_at = StoredValue::new(UnixMillis(0));
    let asked = StoredValue::new(0u64);
    let ask_signed_out = move || {
        let Some(phone) = model.phone() else {
            return;
        };
        asked_at.set_value(model.now.get_untracked());
        let this = asked.get_value() + 1;
        asked.set_value(this);
        spawn_local(async move {
            if let Ok(phones) = phone.signed_out_phones().await {
                if asked.try_get_value() == Some(this) {
                    let _ = signed_out.try_set(phones);
                }
            }
        });
    };
    ask_signed_out();
    Effect::new(move |_| {
        let now = model.now.get();
        let waiting = signed_out.with_untracked(|phones| {
            phones.iter().any(|p| {
                p.wiped_at.is_none()
                    && now.0.saturating_sub(p.signed_out_at.0) < SIGNED_OUT_WATCH_MILLIS
            })
        });
        if waiting && now.0.saturating_sub(asked_at.get_value().0) >= SIGNED_OUT_REFRESH_MILLIS {
            ask_signed_out();
        }
    });
    // When agency and bank staff's access ends (administrators only; asked
    // on opening, offline the list shows without it).
    let access_ends = RwSignal::new(Vec::<AccessEnd>::new());
    let live = Memo::new(move |_| model.connection.with(|c| c.live));
    Effect::new(move |_| {
        if !live.get() || !model.is_admin() {
            return;
        }
        if let Some(phone) = model.phone() {
            spawn_local(async move {
                if let Ok(ends) = phone.access_ends().await {
                    let _ = access_ends.try_set(ends);
                }
            });
        }
    });
    let access_end_of = move |user: UserId| {
        access_ends.with(|ends| {
            ends.iter().find(|end| end.user == user).map(|end| {
                format!(
                    " · access ends {}",
                    access_end_label(
                        end.ends_at,
                        model.now.get(),
                        browser::utc_offset_minutes_at(end.ends_at),
                    )
                )
            })
        })
    };
    let revoke = move |user: UserId| {
        let Some(phone) = model.phone() else {
            return;
        };
        confirm.set(None);
        spawn_local(async move {
            match phone.revoke_person(user).await {
                Ok(()) => {
                    let _ = phone.refresh_directory().await;
                    ask_signed_out();
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
            <Show when=move || model.is_admin()>
                <a class="button button--secondary" href="/audit"
                    on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Audit) }>
                    "Audit log"
                </a>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="notice notice--error" role="alert">{move || error.get()}</p>
            </Show>
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
                                {move || access_end_of(user)}
                            </span>
                            <Show when=move || model.is_admin() && !is_me>
                                <button class="button button--small button--danger" type="button"
                                    aria-expanded=move || if confirm.with(|c| c.as_ref().is_some_and(|(u, _)| *u == user)) { "true" } else { "false" }
                                    on:click={
                                        let name = name.clone();
                                        move |_| confirm.set(Some((user, name.clone())))
                                    }>"Sign them out"</button>
                            </Show>
                            // Asked in her row, where the finger is, not at
                            // the top of a long list.
                            {move || confirm.get().filter(|(u, _)| *u == user).map(|(user, name)| view! {
                                <div class="row-confirm" role="alertdialog" aria-labelledby="revoke-title">
                                    <h2 id="revoke-title" class="warning__title">{format!("Sign {name} out of Huddle?")}</h2>
                                    <p>"Their phones are disconnected and wiped: at once where Huddle is open, otherwise the next time it is opened online. They will need a new invite to come back."</p>
                                    <div class="warning__actions">
                                        <button class="button button--danger" type="button" on:click=move |_| revoke(user)>"Sign out and wipe"</button>
                                        <button class="button button--secondary" type="button" on:click=move |_| confirm.set(None)>"Cancel"</button>
                                    </div>
                                </div>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <Show when=move || signed_out.with(|p| !p.is_empty())>
                <section aria-labelledby="signed-out-title">
                    <h2 id="signed-out-title" class="section-title">"Signed out"</h2>
                    <ul class="people-list" aria-label="Signed out">
                        {move || signed_out.get().into_iter().map(|phone| {
                            let label = signed_out_label(
                                phone.added_at,
                                phone.signed_out_at,
                                phone.wiped_at,
                                model.now.get(),
                                browser::utc_offset_minutes(),
                            );
                            view! {
                                <li class="person-row">
                                    <span class="person-row__name">
                                        {phone.display_name}
                                        <span class="person-row__detail">{label}</span>
                                    </span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </section>
            </Show>
        </main>
    }
}
