//! The bar at the top of every screen: the app's name, and room for the screen's actions.

use leptos::prelude::*;

#[component]
pub fn AppBar() -> impl IntoView {
    view! {
        <header class="app-bar">
            <span class="app-bar__title">"Huddle"</span>
        </header>
    }
}
