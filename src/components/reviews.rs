//! Above an administrator's conversation list: the groups whose members are due for review, each a link to its members screen, where every person is kept or removed.

use crate::model::AppModel;
use crate::navigate;
use crate::platform::browser;
use crate::state::reviews::prompts;
use crate::state::route::Route;
use huddle_core::wire::ReviewDue;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The reviews due, asked of the relay whenever an administrator's list
/// shows while connected (offline, nothing: the relay keeps the dates).
#[component]
pub fn ReviewsDue() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let due = RwSignal::new(Vec::<ReviewDue>::new());
    // Asked as the connection comes up, not at every change of its view.
    let live = Memo::new(move |_| model.connection.with(|c| c.live));
    Effect::new(move |_| {
        if !live.get() || !model.is_admin() {
            return;
        }
        let Some(phone) = model.phone() else {
            return;
        };
        spawn_local(async move {
            if let Ok(reviews) = phone.reviews_due().await {
                let _ = due.try_set(reviews);
            }
        });
    });
    let shown = Memo::new(move |_| {
        due.with(|due| {
            model.records.with(|records| {
                model.directory.with(|directory| {
                    prompts(
                        due,
                        records,
                        directory,
                        model.now.get(),
                        browser::utc_offset_minutes(),
                    )
                })
            })
        })
    });
    view! {
        <Show when=move || shown.with(|s| !s.is_empty())>
            <section class="reviews" aria-label="Membership reviews due" data-testid="reviews-due">
                {move || shown.get().into_iter().map(|prompt| {
                    let group = prompt.group;
                    view! {
                        <div class="card review-prompt">
                            <h2 class="card__title">{prompt.heading.clone()}</h2>
                            <p class="field__hint">{prompt.detail.clone()}</p>
                            <a class="button button--secondary" href=format!("/c/{group}/members")
                                on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Members(group)) }>
                                "Review members"
                            </a>
                        </div>
                    }
                }).collect_view()}
            </section>
        </Show>
    }
}
