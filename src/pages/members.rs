//! Who is in a conversation, each with their verification badge; administrators add and remove people here, and review them (keep or remove each) when the group's review is due.

use crate::components::VerifiedMark;
use crate::model::AppModel;
use crate::navigate;
use crate::platform::browser;
use crate::state::reviews::{recorded, review_detail, Review};
use crate::state::route::Route;
use crate::state::words;
use huddle_core::ids::{GroupId, UserId};
use huddle_core::retention::GroupKind;
use huddle_core::wire::ReviewDue;
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
    // The person whose removal waits to be confirmed, asked in her row.
    let confirm_remove = RwSignal::new(None::<UserId>);
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

    // The group's review, for administrators: asked of the relay while
    // connected; once due, each other member is kept or removed here.
    let review_due = RwSignal::new(None::<ReviewDue>);
    let review = RwSignal::new(Review::default());
    let ask_review = move || {
        let Some(phone) = model.phone() else {
            return;
        };
        spawn_local(async move {
            if let Ok(reviews) = phone.reviews_due().await {
                let _ = review_due.try_set(reviews.into_iter().find(|r| r.group == group));
            }
        });
    };
    let live = Memo::new(move |_| model.connection.with(|c| c.live));
    Effect::new(move |_| {
        if live.get() && model.is_admin() {
            ask_review();
        }
    });
    let reviewing = move || {
        can_manage() && review_due.with(|due| due.is_some_and(|due| due.due_at <= model.now.get()))
    };
    let review_complete =
        move || me().is_some_and(|me| review.with(|r| r.is_complete(&members(), me)));
    let finish_review = move |_| {
        let Some(phone) = model.phone() else {
            return;
        };
        let (kept, removed) = review.with_untracked(|r| (r.kept_count(&members()), r.removed));
        busy.set(true);
        error.set(None);
        status.set(None);
        spawn_local(async move {
            let result = phone.members_reviewed(group, kept, removed).await;
            busy.set(false);
            match result {
                Ok(()) => {
                    review.set(Review::default());
                    // Recorded: the box goes, whatever the next question's
                    // fate (a second record would say the same again).
                    review_due.set(None);
                    if let Ok(reviews) = phone.reviews_due().await {
                        let next = reviews.into_iter().find(|r| r.group == group);
                        if let Some(next) = next {
                            status.set(Some(recorded(next.due_at, browser::utc_offset_minutes())));
                        }
                        let _ = review_due.try_set(next);
                    }
                }
                Err(e) => error.set(Some(model.sentence(&e))),
            }
        });
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
            if result.is_ok() && !add && reviewing() {
                review.update(|r| r.removed += 1);
            }
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
            <Show when=reviewing>
                <section class="card review" aria-labelledby="review-title" data-testid="review">
                    <h2 id="review-title" class="card__title">"Review who is in this group"</h2>
                    <p class="field__hint">{move || review_due.get().map(|due| review_detail(&due, browser::utc_offset_minutes()))}</p>
                    <p>"For each person, choose Keep or Remove. Remove anyone who has left, or no longer needs this group."</p>
                    <button class="button" type="button"
                        prop:disabled=move || busy.get() || !review_complete()
                        on:click=finish_review>"Finish review"</button>
                </section>
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
                            <Show when=move || reviewing() && !is_me>
                                <button class="button button--small button--secondary" type="button"
                                    aria-pressed=move || if review.with(|r| r.is_kept(user)) { "true" } else { "false" }
                                    prop:disabled=move || busy.get()
                                    on:click=move |_| review.update(|r| r.toggle_kept(user))>
                                    {move || if review.with(|r| r.is_kept(user)) {
                                        view! { <span aria-hidden="true">"✓ "</span>"Kept" }.into_any()
                                    } else {
                                        "Keep".into_any()
                                    }}
                                </button>
                            </Show>
                            <Show when=move || can_manage() && !is_me>
                                <button class="button button--small button--danger" type="button"
                                    prop:disabled=move || busy.get()
                                    aria-expanded=move || if confirm_remove.get() == Some(user) { "true" } else { "false" }
                                    on:click=move |_| confirm_remove.set(Some(user))>"Remove"</button>
                            </Show>
                            <Show when=move || confirm_remove.get() == Some(user)>
                                <div class="row-confirm" role="group" aria-label="Confirm removal">
                                    <p>{move || format!(
                                        "Remove {} from this group? They will not receive anything new here.",
                                        name_of(user)
                                    )}</p>
                                    <div class="warning__actions">
                                        <button class="button button--small button--danger" type="button"
                                            prop:disabled=move || busy.get()
                                            on:click=move |_| { confirm_remove.set(None); change(user, false) }>
                                            "Remove from group"
                                        </button>
                                        <button class="button button--small button--secondary" type="button"
                                            on:click=move |_| confirm_remove.set(None)>"Cancel"</button>
                                    </div>
                                </div>
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
