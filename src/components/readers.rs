//! Beside one of the reader's own messages: its ticks and "Read by 2 of 3", which open to the list of who has read it, who has it and who has not yet.

use crate::model::AppModel;
use crate::state::receipts::{reached_label, ReadersView};
use huddle_core::shift::MessageRef;
use leptos::prelude::*;

/// The ticks and the line, folded over the names. It stays open while
/// receipts come in.
#[component]
pub fn Readers(id: MessageRef, readers: ReadersView) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let open = move || model.is_expanded(id);
    let toggled = move |ev: leptos::ev::Event| model.expanded_toggled(id, &ev);
    let ticks = match readers.ticks {
        1 => "✓",
        _ => "✓✓",
    };
    view! {
        <details class="readers" prop:open=open on:toggle=toggled data-testid="readers">
            <summary class="message__state readers__summary" data-state="Sent"
                data-ticks=readers.ticks.to_string() data-testid="readers-summary">
                <span class="readers__ticks" aria-hidden="true">{ticks}</span>
                " "{readers.summary.clone()}
            </summary>
            <ul class="readers__people" aria-label="Who has it, and who has read it">
                {readers.people.iter().map(|(name, reached)| view! {
                    <li class="readers__person" data-reached=format!("{reached:?}")>
                        {name.clone()}{format!(", {}", reached_label(*reached))}
                    </li>
                }).collect_view()}
            </ul>
        </details>
    }
}
