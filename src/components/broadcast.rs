//! Urgent broadcasts on screen: the card a broadcast shows as in its group, with one tap to acknowledge it and, for its sender and administrators, who has and who has not; and the broadcasts pinned above the conversation list until acknowledged.

use crate::components::{NotSent, VerifiedMark};
use crate::model::AppModel;
use crate::navigate;
use crate::platform::browser;
use crate::state::broadcasts::{pinned_alert, pinned_heading, BroadcastView, PinnedView};
use crate::state::conversations::{delivery_label, MessageView};
use crate::state::route::Route;
use crate::state::time::clock_label;
use huddle_core::broadcast::Urgency;
use huddle_core::ids::GroupId;
use huddle_core::shift::MessageRef;
use huddle_session::broadcasts::MyPart;
use huddle_session::Delivery;
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
fn AcknowledgeButton(group: GroupId, broadcast: MessageRef) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let busy = RwSignal::new(false);
    view! {
        <button class="button broadcast__acknowledge" type="button" disabled=move || busy.get()
            on:click=move |_| acknowledge(model, group, broadcast, busy)>
            "Acknowledge"
        </button>
    }
}

/// Who has acknowledged and who has not, folded away under the count. It
/// stays open while acknowledgements come in.
#[component]
fn WhoHasAcknowledged(view: BroadcastView) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let now = model.now.get_untracked();
    let id = view.broadcast;
    let open = move || model.is_expanded(id);
    let toggled = move |ev: leptos::ev::Event| model.expanded_toggled(id, &ev);
    view! {
        <details class="broadcast__who" prop:open=open on:toggle=toggled>
            <summary class="broadcast__count" data-testid="broadcast-count">{view.count()}</summary>
            <ul class="broadcast__people" aria-label="Who has acknowledged, and who has not">
                {view.acknowledged.iter().map(|(name, at)| view! {
                    <li class="broadcast__person" data-state="acknowledged">
                        <span aria-hidden="true">"✓ "</span>{name.clone()}
                        <span class="broadcast__when">{format!(", acknowledged {}", clock_label(*at, now, offset))}</span>
                    </li>
                }).collect_view()}
                {view.waiting.iter().enumerate().map(|(i, name)| {
                    let why = view.waiting_why.get(i).copied().unwrap_or("not yet");
                    view! {
                        <li class="broadcast__person" data-state="waiting">
                            {name.clone()}<span class="broadcast__when">{format!(", {why}")}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </details>
    }
}

/// A broadcast in its conversation.
#[component]
pub fn BroadcastCard(message: MessageView, view: BroadcastView) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let title_id = format!("broadcast-{}", view.broadcast.client_msg);
    let labelled_by = title_id.clone();
    let (own, author, id) = (message.own, message.sender, message.client_msg);
    // One's own broadcast: where it stands, as for any message, and a
    // retry if it was not sent. Nobody is asked until the relay has it.
    let state = delivery_label(&message.delivery);
    let delivered = matches!(message.delivery, Delivery::Received | Delivery::Sent);
    view! {
        <li class="message broadcast" class:message--own=own data-testid="broadcast"
            data-mine=format!("{:?}", view.mine) aria-labelledby=labelled_by>
            <span class="message__sender" id=title_id>
                {view.label()}
                {(!own).then(|| view! { " " <VerifiedMark user=author /> })}
            </span>
            <p class="message__text">{view.text.clone()}</p>
            {view.mine.to_do().then(|| view! { <AcknowledgeButton group=view.group broadcast=view.broadcast /> })}
            {view.my_part().map(|words| view! {
                <p class="broadcast__mine" data-testid="broadcast-mine"
                    role=if view.mine == MyPart::Failed { "alert" } else { "status" }>
                    {words}
                </p>
            })}
            {(view.sees_who && delivered).then(|| view! { <WhoHasAcknowledged view=view.clone() /> })}
            <span class="message__meta">
                <time>{clock_label(view.sent_at, model.now.get_untracked(), offset)}</time>
                {(!state.is_empty()).then(|| view! { <span class="message__state" data-state=state>{state}</span> })}
            </span>
            <NotSent delivery=message.delivery.clone() id=id />
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
                // Keyed on the broadcast alone: a pin is not made again (and
                // its alert not said again) as acknowledgements come in.
                <For
                    each=move || model.pinned.get()
                    key=|pin: &PinnedView| pin.view.broadcast
                    let:pin
                >
                    <PinnedBroadcast id=pin.view.broadcast />
                </For>
            </section>
        </Show>
    }
}

#[component]
fn PinnedBroadcast(id: MessageRef) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let pin = Memo::new(move |_| {
        model
            .pinned
            .with(|pins| pins.iter().find(|pin| pin.view.broadcast == id).cloned())
    });
    let escalation = move || model.policy.with(|p| p.escalation());
    let urgency = Memo::new(move |_| {
        pin.with(|pin| {
            pin.as_ref()
                .and_then(|pin| pin.view.urgency(escalation(), model.now.get()))
        })
    });
    let heading = move || {
        pin.with(|pin| {
            pin.as_ref()
                .map(|pin| pinned_heading(pin, escalation(), model.now.get()))
        })
    };
    // Past the reminder (or, for an administrator, the alert), it is said
    // once, at once, whatever else the screen reader is saying: a sentence
    // that does not change as the minutes go by.
    let alert = Memo::new(move |_| {
        let urgency = urgency.get()?;
        pin.with(|pin| pin.as_ref().and_then(|pin| pinned_alert(pin, urgency)))
    });
    let state = move || match urgency.get() {
        Some(Urgency::Waiting) | None => "waiting",
        Some(Urgency::Reminder) => "reminder",
        Some(Urgency::NotGettingThrough) => "not-getting-through",
    };
    move || {
        let pin = pin.get()?;
        let group = pin.view.group;
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
        Some(view! {
            <article class="pinned-broadcast" data-state=state data-testid="pinned-broadcast">
                <h2 class="pinned-broadcast__heading">{heading}</h2>
                {move || alert.get().map(|words| view! {
                    <p class="visually-hidden" role="alert">{words}</p>
                })}
                <p class="pinned-broadcast__text">{pin.view.text.clone()}</p>
                <p class="pinned-broadcast__group">{pin.group_title.clone()}</p>
                {pin.view.not_yet().map(|names| view! {
                    <p class="pinned-broadcast__waiting" data-testid="pinned-waiting">{names}</p>
                })}
                <div class="pinned-broadcast__actions">
                    {pin.view.mine.to_do().then(|| view! { <AcknowledgeButton group=group broadcast=pin.view.broadcast /> })}
                    <a class="button button--secondary" href=format!("/c/{group}") aria-label=open_label
                        on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Conversation(group)) }>
                        {open_words}
                    </a>
                </div>
            </article>
        })
    }
}
