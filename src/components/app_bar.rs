//! The bar at the top of every screen: a way back, the screen's title, and the team's name.

use crate::model::AppModel;
use crate::navigate;
use crate::state::route::Route;
use leptos::prelude::*;

#[component]
pub fn AppBar() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let title = move || {
        model
            .enrolment
            .with(|s| s.as_ref().map(|s| s.org_name.clone()))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "Huddle".to_owned())
    };
    let can_go_back = move || {
        model.enrolment.with(Option::is_some)
            && !matches!(
                model.route.get(),
                Route::Conversations | Route::Welcome | Route::Setup { .. } | Route::Join { .. }
            )
    };
    let back = move |_| {
        let to = match model.route.get_untracked() {
            Route::Members(group) => Route::Conversation(group),
            Route::Audit => Route::People,
            _ => Route::Conversations,
        };
        navigate(model, to);
    };
    view! {
        <header class="app-bar">
            <Show when=can_go_back>
                <button class="app-bar__back" type="button" on:click=back aria-label="Back">
                    "‹"
                </button>
            </Show>
            <span class="app-bar__title">{title}</span>
        </header>
    }
}
