//! A list of readiness checks, each with a plain-English state that screen readers announce as it changes.

use crate::state::device_checks::{CheckState, DeviceCheck};
use leptos::prelude::*;

/// Shows each check with its state. `checks` is reactive: the list updates,
/// and is announced politely, as each check finishes.
#[component]
pub fn CheckList(
    /// The heading above the list.
    title: &'static str,
    /// The checks, in the order they are shown.
    checks: Signal<Vec<DeviceCheck>>,
) -> impl IntoView {
    view! {
        <section class="check-list" aria-label=title>
            <h2 class="check-list__title">{title}</h2>
            <ul class="check-list__items" aria-live="polite">
                <For
                    each=move || checks.get()
                    key=|check| (check.kind, check.state.clone())
                    let(check)
                >
                    <li class=format!("check-list__item check-list__item--{}", check.state.css_modifier())>
                        <span class="check-list__icon" aria-hidden="true">{check.state.icon()}</span>
                        <span class="check-list__text">
                            <span class="check-list__label">{check.kind.label()}</span>
                            <span class="check-list__detail">{check.detail()}</span>
                        </span>
                    </li>
                </For>
            </ul>
        </section>
    }
}

impl CheckState {
    fn icon(&self) -> &'static str {
        match self {
            CheckState::Pending => "…",
            CheckState::Ready => "✓",
            CheckState::Failed(_) => "!",
        }
    }
}
