//! Urgent broadcasts on screen: the card a broadcast shows as in its group, with one tap to acknowledge it and, for its sender and administrators, who has and who has not; and the broadcasts pinned above the conversation list until acknowledged.

use crate::components::VerifiedMark;
use crate::model::AppModel;
use crate::navigate;
use crate::platform::browser;
use crate::state::broadcasts::{pinned_heading, BroadcastView, PinnedView};
use crate::state::route::Route;
use crate::state::time::clock_label;
use huddle_core::broadcast::Urgency;
use huddle_core::ids::GroupId;
use huddle_core::shift::MessageRef;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Sends this phone's acknowledgement of a broadcast: saved at once, sent
/// when it can be; the card repaints with it counted.
fn acknowledge(model: AppModel, group: GroupId, broadcast: MessageRef, busy: RwSignal<bool>) {
    let Some(phone) = model.phone() else {
        model.tell(&huddle_session::SessionError::Starting);
        return;
    };
    busy.set(true);
    spawn_local(async move {
        if let Err(error) = phone.acknowledge(group, broadcast).await {
            model.tell(&error);
        }
        busy.set(false);
    });
}

/// The one big button: "Acknowledge".
#[component]
fn AcknowledgeButton(view: BroadcastView) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let busy = RwSignal::new(false);
    let (group, broadcast) = (view.group, view.broadcast);
    view! {
        <button class="button broadcast__acknowledge" type="button" disabled=move || busy.get()
            on:click=move |_| acknowledge(model, group, broadcast, busy)>
            "Acknowledge"
        </button>
    }
}

/// Who has acknowledged and who has not, folded away under the count.
#[component]
fn WhoHasAcknowledged(view: BroadcastView) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let now = model.now.get_untracked();
    view! {
        <details class="broadcast__who">
            <summary class="broadcast__count" data-testid="broadcast-count">{view.count()}</summary>
            <ul class="broadcast__people" aria-label="Who has acknowledged">
                {view.acknowledged.iter().map(|(name, at)| view! {
                    <li class="broadcast__person" data-state="acknowledged">
                        <span aria-hidden="true">"✓ "</span>{name.clone()}
                        <span class="broadcast__when">{format!(", acknowledged {}", clock_label(*at, now, offset))}</span>
                    </li>
                }).collect_view()}
                {view.waiting.iter().map(|name| view! {
                    <li class="broadcast__person" data-state="waiting">
                        {name.clone()}<span class="broadcast__when">", not yet"</span>
                    </li>
                }).collect_view()}
            </ul>
        </details>
    }
}

/// A broadcast in its conversation.
#[component]
pub fn BroadcastCard(view: BroadcastView, own: bool) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let title_id = format!("broadcast-{}", view.broadcast.client_msg);
    let labelled_by = title_id.clone();
    let author = view.broadcast.author;
    view! {
        <li class="message broadcast" class:message--own=own data-testid="broadcast"
            data-mine=format!("{:?}", view.mine) aria-labelledby=labelled_by>
            <span class="message__sender" id=title_id>
                {view.label()}
                {(!own).then(|| view! { " " <VerifiedMark user=author /> })}
            </span>
            <p class="message__text">{view.text.clone()}</p>
            {view.mine.to_do().then(|| view! { <AcknowledgeButton view=view.clone() /> })}
            {view.my_part().map(|words| view! {
                <p class="broadcast__mine" data-testid="broadcast-mine"
                    role=if view.mine == huddle_session::broadcasts::MyPart::Failed { "alert" } else { "status" }>
                    {words}
                </p>
            })}
            {view.sees_who.then(|| view! { <WhoHasAcknowledged view=view.clone() /> })}
            <span class="message__meta">
                <time>{clock_label(view.sent_at, model.now.get_untracked(), offset)}</time>
            </span>
        </li>
    }
}

/// The broadcasts waiting on the reader (or, for an administrator, on
/// anyone), above the conversation list. Each can be acknowledged there,
/// with one tap, or opened in its group.
#[component]
pub fn PinnedBroadcasts() -> impl IntoView {
    let model = expect_context::<AppModel>();
    view! {
        <Show when=move || model.pinned.with(|p| !p.is_empty())>
            <section class="pinned" aria-label="Urgent messages" data-testid="pinned-broadcasts">
                <For
                    each=move || model.pinned.get()
                    key=|pin: &PinnedView| (pin.view.broadcast, pin.view.mine, pin.view.acknowledged.len(), pin.view.waiting.len())
                    let:pin
                >
                    <PinnedBroadcast pin=pin />
                </For>
            </section>
        </Show>
    }
}

#[component]
fn PinnedBroadcast(pin: PinnedView) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let group = pin.view.group;
    let escalation = move || model.policy.with(|p| p.escalation());
    let urgency = {
        let view = pin.view.clone();
        Memo::new(move |_| view.urgency(escalation(), model.now.get()))
    };
    let heading = {
        let pin = pin.clone();
        move || pinned_heading(&pin, escalation(), model.now.get())
    };
    // Past the reminder (or, for an administrator, the alert), it is read
    // out at once, whatever else the screen reader is saying.
    let loud = move || match urgency.get() {
        Some(Urgency::Reminder) if pin.view.mine.to_do() => true,
        Some(Urgency::NotGettingThrough) => true,
        _ => false,
    };
    let state = move || match urgency.get() {
        Some(Urgency::Waiting) | None => "waiting",
        Some(Urgency::Reminder) => "reminder",
        Some(Urgency::NotGettingThrough) => "not-getting-through",
    };
    // The sender and the administrators go to the card to see who has
    // acknowledged; the others to read the group.
    let (open_words, open_label) = if pin.view.mine.to_do() || !pin.view.sees_who {
        ("Open", format!("Open {}", pin.group_title))
    } else {
        (
            "See who has acknowledged",
            format!("See who has acknowledged, in {}", pin.group_title),
        )
    };
    view! {
        <article class="pinned-broadcast" data-state=state data-testid="pinned-broadcast">
            <h2 class="pinned-broadcast__heading">{heading.clone()}</h2>
            // Inserted when it becomes urgent, so that a screen reader says
            // it at once, whatever else it is reading.
            <Show when=loud>
                <p class="visually-hidden" role="alert">{heading.clone()}</p>
            </Show>
            <p class="pinned-broadcast__text">{pin.view.text.clone()}</p>
            <p class="pinned-broadcast__group">{pin.group_title.clone()}</p>
            {pin.view.not_yet().map(|names| view! {
                <p class="pinned-broadcast__waiting" data-testid="pinned-waiting">{names}</p>
            })}
            <div class="pinned-broadcast__actions">
                {pin.view.mine.to_do().then(|| view! { <AcknowledgeButton view=pin.view.clone() /> })}
                <a class="button button--secondary" href=format!("/c/{group}") aria-label=open_label
                    on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Conversation(group)) }>
                    {open_words}
                </a>
            </div>
        </article>
    }
}
