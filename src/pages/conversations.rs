//! The conversation list: newest first, each with its type, latest message and unread count.

use crate::components::KindBadge;
use crate::model::AppModel;
use crate::navigate;
use crate::platform::browser;
use crate::state::route::Route;
use crate::state::time::clock_label;
use leptos::prelude::*;

#[component]
pub fn ConversationsPage(
    /// The urgent broadcasts pinned above the list (from the screens'
    /// module: see `on_demand::pinned_broadcasts`).
    pinned: AnyView,
) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let admin = move || model.is_admin();
    view! {
        <main class="page page--list" id="main">
            <h1 class="page__title">"Conversations"</h1>
            {pinned}
            <nav class="actions" aria-label="Start">
                <a class="button" href="/new-chat" on:click=move |ev| { ev.prevent_default(); navigate(model, Route::NewDirect) }>
                    "Message a colleague"
                </a>
                <Show when=admin>
                    <a class="button button--secondary" href="/new-group" on:click=move |ev| { ev.prevent_default(); navigate(model, Route::NewGroup) }>
                        "New group"
                    </a>
                    <a class="button button--secondary" href="/invite" on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Invite) }>
                        "Invite someone"
                    </a>
                </Show>
                <a class="button button--quiet" href="/people" on:click=move |ev| { ev.prevent_default(); navigate(model, Route::People) }>
                    "Team"
                </a>
            </nav>
            <Show when=move || model.loaded.get() && model.conversations.with(Vec::is_empty)>
                <p class="empty">
                    {move || if model.is_admin() {
                        "No conversations yet. Invite your colleagues, then start a group or message someone."
                    } else {
                        "No conversations yet. When someone adds you to a group or messages you, it appears here."
                    }}
                </p>
            </Show>
            <ul class="conversation-list" aria-label="Conversations">
                <For
                    each=move || model.conversations.get()
                    key=|c| (c.group, c.unread, c.last_at, c.preview.clone(), c.title.clone(), c.ended, c.needs_repair)
                    let:summary
                >
                    {
                        let group = summary.group;
                        let unread = summary.unread;
                        let when = clock_label(summary.last_at, model.now.get_untracked(), offset);
                        let label = if unread > 0 {
                            format!("{}, {} unread", summary.title, unread)
                        } else {
                            summary.title.clone()
                        };
                        view! {
                            <li>
                                <a class="conversation-row" href=format!("/c/{group}") aria-label=label
                                    on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Conversation(group)) }>
                                    <span class="conversation-row__top">
                                        <span class="conversation-row__title">{summary.title.clone()}</span>
                                        <span class="conversation-row__time">{when}</span>
                                    </span>
                                    <span class="conversation-row__bottom">
                                        <KindBadge kind=summary.kind />
                                        <span class="conversation-row__preview">
                                            {if summary.ended {
                                                Some("You are no longer in this conversation".to_owned())
                                            } else if summary.needs_repair {
                                                Some("Needs repairing: not reading or sending".to_owned())
                                            } else {
                                                summary.preview.clone()
                                            }}
                                        </span>
                                        <Show when=move || unread != 0>
                                            <span class="unread" aria-hidden="true">{unread}</span>
                                        </Show>
                                    </span>
                                </a>
                            </li>
                        }
                    }
                </For>
            </ul>
        </main>
    }
}
