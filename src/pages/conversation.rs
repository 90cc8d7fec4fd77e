//! One conversation: its type always in view, messages with sender, time, state and when each disappears, and the composer.

use crate::components::{
    BroadcastCard, CannotWorkCard, KindBadge, MessageActions, NotSent, Readers, ShiftCard,
    ShiftForm, VerifiedMark,
};
use crate::model::AppModel;
use crate::navigate;
use crate::platform::browser;
use crate::state::conversations::{delivery_label, patient_data_warning, removal_actions, title};
use crate::state::route::Route;
use crate::state::shifts::shift_week;
use crate::state::time::{clock_label, duration_label, expiry_soon_label, local_day, year_of};
use crate::state::verification::{clinical_note, verification_of};
use huddle_core::ids::GroupId;
use huddle_core::retention::GroupKind;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn ConversationPage(group: GroupId) -> impl IntoView {
    let model = expect_context::<AppModel>();
    model.open.set(Some(group));
    model.messages.set(Vec::new());
    // The session paints the messages from the cache, then marks the
    // conversation read (which repaints the list).
    if let Some(phone) = model.phone() {
        phone.open(Some(group));
        // Badges as they stand now: someone may have been verified (or got
        // a new phone) since this phone signed in.
        let members = model.record(group).map(|r| r.members).unwrap_or_default();
        spawn_local(async move {
            let _ = phone.refresh_identities(members).await;
        });
    }
    on_cleanup(move || {
        model.open.set(None);
        if let Some(phone) = model.phone() {
            phone.open(None);
        }
    });

    let record = Memo::new(move |_| {
        model
            .records
            .with(|records| records.iter().find(|r| r.group == group).cloned())
    });
    let heading = move || {
        record
            .get()
            .map(|r| model.directory.with(|d| title(&r, d)))
            .unwrap_or_else(|| "Conversation".to_owned())
    };
    let offset = browser::utc_offset_minutes();
    let end = NodeRef::<html::Div>::new();
    // Screen readers announce messages that arrive, not the page of
    // messages the conversation opens with: the list becomes a live region
    // once that page is on screen.
    let painted = RwSignal::new(false);
    // Keep the newest message in view as messages arrive.
    Effect::new(move |_| {
        let any = model.messages.with(|m| !m.is_empty());
        if let Some(end) = end.get() {
            end.scroll_into_view_with_bool(false);
        }
        if any && !painted.get_untracked() {
            painted.set(true);
            browser::mark_after_render("huddle:conversation-painted");
        }
    });

    let needs_repair = move || {
        model
            .conversations
            .with(|list| list.iter().any(|c| c.group == group && c.needs_repair))
    };
    let can_post = move || {
        record.get().is_some_and(|r| {
            !r.ended && (r.kind != GroupKind::EmergencyBroadcast || model.is_admin())
        })
    };
    // Shifts are offered in operational groups, by whoever may post there.
    let offers_shifts = move || {
        can_post()
            && record
                .get()
                .is_some_and(|r| huddle_session::shifts::offers_allowed_in(r.kind))
    };
    let offering = RwSignal::new(false);
    // "I can't make my shift": its form, and whom it told.
    let cannot_work = RwSignal::new(false);
    let told = RwSignal::new(None::<String>);
    let more = move |_| {
        if let Some(phone) = model.phone() {
            phone.show_earlier();
        }
    };

    view! {
        <main class="page page--conversation" id="main">
            <header class="conversation-head">
                <h1 class="page__title">{heading}</h1>
                {move || record.get().map(|r| view! {
                    <p class="conversation-head__meta">
                        <KindBadge kind=r.kind />
                        <span>{format!("Messages disappear after {}", duration_label(r.retention.as_millis()))}</span>
                    </p>
                })}
                <a class="button button--quiet" href=format!("/c/{group}/members")
                    on:click=move |ev| { ev.prevent_default(); navigate(model, Route::Members(group)) }>
                    "People in this conversation"
                </a>
            </header>
            <Show when=offers_shifts>
                <ShiftWeek />
            </Show>
            <Show when=move || model.more_messages.get()>
                <button class="button button--quiet" type="button" on:click=more>"Show earlier messages"</button>
            </Show>
            <ol class="messages" aria-label="Messages" aria-live=move || if painted.get() { "polite" } else { "off" }>
                <For
                    each=move || model.messages.get()
                    key=|m| (
                        m.client_msg,
                        m.delivery.clone(),
                        m.expires_at,
                        m.shift.as_ref().map(|s| (s.status.clone(), s.sending, s.failed, s.buttons.len())),
                        m.broadcast.as_ref().map(|b| (b.mine, b.acknowledged.len(), b.waiting.clone(), b.waiting_why.clone())),
                        m.readers.clone(),
                        m.removed.is_some(),
                    )
                    let:message
                >
                    {
                        if let Some(shift) = message.shift.clone() {
                            return view! { <ShiftCard group=group message=message shift=shift /> }.into_any();
                        }
                        if let Some(broadcast) = message.broadcast.clone() {
                            return view! { <BroadcastCard message=message view=broadcast /> }.into_any();
                        }
                        if let Some(cannot) = message.cannot_work.clone() {
                            return view! { <CannotWorkCard message=message view=cannot /> }.into_any();
                        }
                        let state = delivery_label(&message.delivery);
                        let id = message.client_msg;
                        let expires_at = message.expires_at;
                        if message.notice {
                            return view! {
                                <li class="message message--notice" data-testid="conversation-notice">
                                    <p class="message__text">{message.sender_name.clone()}" "{message.text.clone()}</p>
                                    <span class="message__meta">
                                        <time>{clock_label(message.sent_at, model.now.get_untracked(), offset)}</time>
                                    </span>
                                </li>
                            }.into_any();
                        }
                        if let Some((stub, removed_at)) = message.removed.clone() {
                            return view! {
                                <li class="message message--removed" class:message--own=message.own data-testid="message-removed">
                                    <span class="message__sender">{message.sender_name.clone()}</span>
                                    <p class="message__text">
                                        {stub}" at "
                                        <time>{clock_label(removed_at, model.now.get_untracked(), offset)}</time>"."
                                    </p>
                                </li>
                            }.into_any();
                        }
                        let reference = huddle_core::shift::MessageRef { author: message.sender, client_msg: id };
                        let kind = record.get_untracked().map_or(GroupKind::Direct, |r| r.kind);
                        let (can_record, can_delete) = removal_actions(&message, kind);
                        let readers = message.readers.clone();
                        let state_line = match readers {
                            Some(readers) => view! { <Readers id=reference readers=readers /> }.into_any(),
                            None => (!state.is_empty()).then(|| view! { <span class="message__state" data-state=state>{state}</span> }).into_any(),
                        };
                        view! {
                            <li class="message" class:message--own=message.own data-testid="message">
                                <span class="message__sender">
                                    {message.sender_name.clone()}
                                    {(!message.own).then(|| view! { " " <VerifiedMark user=message.sender /> })}
                                </span>
                                <p class="message__text">{message.text.clone()}</p>
                                <span class="message__meta">
                                    <time>{clock_label(message.sent_at, model.now.get_untracked(), offset)}</time>
                                    {state_line}
                                    {move || {
                                        let retention = record.with(|r| r.as_ref().map(|r| r.retention.as_millis()))?;
                                        expiry_soon_label(expires_at, model.now.get(), retention)
                                            .map(|label| view! { <span class="message__expiry">{label}</span> })
                                    }}
                                </span>
                                <NotSent delivery=message.delivery.clone() id=id />
                                {(can_record || can_delete).then(|| view! {
                                    <MessageActions group=group message=reference expires_at=expires_at
                                        can_record=can_record can_delete=can_delete />
                                })}
                            </li>
                        }.into_any()
                    }
                </For>
            </ol>
            <Show when=needs_repair>
                <p class="notice notice--error" role="status">
                    {crate::state::words::NEEDS_REPAIR}" "{crate::state::words::NEEDS_REPAIR_WAITS}
                </p>
            </Show>
            <Show
                when=can_post
                fallback=move || view! {
                    <p class="notice">
                        {move || if record.get().is_some_and(|r| r.ended) {
                            "You are no longer in this conversation."
                        } else {
                            "Only administrators write here. Tap Acknowledge on an urgent message to say you have seen it."
                        }}
                    </p>
                }
            >
                <Show when=move || offers_shifts() && !offering.get() && !cannot_work.get()>
                    <div class="shift-offer-buttons">
                        <button class="button button--secondary shift-offer-button" type="button"
                            on:click=move |_| { told.set(None); offering.set(true) }>
                            "Offer a shift"
                        </button>
                        <button class="button button--secondary shift-offer-button" type="button"
                            on:click=move |_| { told.set(None); cannot_work.set(true) }>
                            "I can't make my shift"
                        </button>
                    </div>
                </Show>
                {move || told.get().map(|text| view! {
                    <p class="notice" role="status" data-testid="cannot-work-told">{text}</p>
                })}
                <Show when=move || offering.get()>
                    <ShiftForm group=group done=Callback::new(move |()| offering.set(false)) />
                </Show>
                <Show when=move || cannot_work.get()>
                    <ShiftForm group=group cannot_work=true told=told
                        done=Callback::new(move |()| cannot_work.set(false)) />
                </Show>
                <Composer group=group />
            </Show>
            // The very end of the page, below the composer: scrolled to, it
            // brings the newest message (and a card's buttons) above the
            // composer, which sticks to the bottom of the screen.
            <div node_ref=end></div>
        </main>
    }
}

/// The group's shifts for the coming week, by day, with how many are still
/// not covered: folded away until opened, so the conversation stays first.
#[component]
fn ShiftWeek() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let week = Memo::new(move |_| {
        let now = browser::now();
        let offers: Vec<_> = model.messages.with(|messages| {
            messages
                .iter()
                .filter_map(|m| Some((m.client_msg, m.shift.clone()?)))
                .collect()
        });
        shift_week(offers, local_day(now, offset), year_of(now))
    });
    let summary = move || match week.with(|(days, gaps)| (days.is_empty(), *gaps)) {
        (true, _) => "Shifts this week: none offered".to_owned(),
        (false, 0) => "Shifts this week: all covered".to_owned(),
        (false, 1) => "Shifts this week: 1 still open".to_owned(),
        (false, gaps) => format!("Shifts this week: {gaps} still open"),
    };
    view! {
        <details class="shift-week" data-testid="shift-week">
            <summary class="shift-week__summary">{summary}</summary>
            <ul class="shift-week__days">
                {move || week.get().0.into_iter().map(|day| view! {
                    <li class="shift-week__day">
                        <h2 class="shift-week__label">{day.label}</h2>
                        <ul class="shift-week__shifts">
                            {day.shifts.into_iter().map(|(_, shift)| view! {
                                <li class="shift-week__shift" data-state=shift.state>
                                    <span class="shift-week__hours">{shift.hours}" · "{shift.what}</span>
                                    <span class="shift-week__status">{shift.status}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    </li>
                }).collect_view()}
            </ul>
        </details>
    }
}

/// Where a message is written. It warns before sending what looks like
/// patient-identifiable details.
#[component]
fn Composer(group: GroupId) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let text = RwSignal::new(String::new());
    let warning = RwSignal::new(None::<String>);
    let input = NodeRef::<html::Textarea>::new();
    // In clinical groups, who has not been verified in person, said before
    // anything is sent (SECURITY.md, "Verification in person").
    let unverified_note = move || {
        let record = model
            .records
            .with(|r| r.iter().find(|r| r.group == group).cloned())?;
        if record.kind != GroupKind::Clinical {
            return None;
        }
        let me = model.enrolment.with(|e| e.as_ref().map(|e| e.user));
        let names: Vec<String> = model.directory.with(|directory| {
            model.identities.with(|identities| {
                record
                    .members
                    .iter()
                    .filter(|user| Some(**user) != me)
                    .filter(|user| !verification_of(**user, directory, identities).is_verified())
                    .map(|user| directory.name_of(*user).unwrap_or("Someone").to_owned())
                    .collect()
            })
        });
        clinical_note(&names)
    };

    // In an emergency broadcast group every message is an urgent broadcast.
    let broadcasts = move || {
        model.records.with(|r| {
            r.iter()
                .any(|r| r.group == group && huddle_core::broadcast::acknowledged_in(r.kind))
        })
    };

    let send_now = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        let typed = body.clone();
        let body = body.trim_end().to_owned();
        // Clears the box once the message is saved, unless the person has
        // already started the next one.
        let sent = move || {
            if text.get_untracked() == typed {
                text.set(String::new());
            }
            warning.set(None);
            if let Some(input) = input.get_untracked() {
                let _ = input.focus();
            }
        };
        let Some(phone) = model.phone() else {
            model.tell(&huddle_session::SessionError::Starting);
            return;
        };
        // The text stays in the box until it is saved on the phone, which
        // happens at once, whether or not the phone is connected.
        spawn_local(async move {
            match phone.compose(group, body).await {
                Ok(()) => sent(),
                Err(e) => model.tell(&e),
            }
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        match patient_data_warning(&body, year_of(browser::now())) {
            Some(found) => warning.set(Some(found)),
            None => send_now(),
        }
    };

    view! {
        // autocomplete=off also keeps the browser from saving the draft in
        // its session-restore files, in the clear.
        <form class="composer" autocomplete="off" on:submit=submit>
            {move || unverified_note().map(|note| view! {
                <p class="composer__note" role="note" data-testid="unverified-note">{note}</p>
            })}
            {move || broadcasts().then(|| view! {
                <p class="composer__note" role="note">
                    "Everyone in this group is asked to acknowledge what you send, and reminded until they do."
                </p>
            })}
            <Show when=move || warning.get().is_some()>
                <div class="warning" role="alertdialog" aria-labelledby="pii-title" aria-describedby="pii-text">
                    <h2 id="pii-title" class="warning__title">"Check before you send"</h2>
                    <p id="pii-text">{move || warning.get()}</p>
                    <div class="warning__actions">
                        <button class="button" type="button" on:click=move |_| {
                            warning.set(None);
                            if let Some(input) = input.get_untracked() { let _ = input.focus(); }
                        }>"Edit message"</button>
                        <button class="button button--secondary" type="button" on:click=move |_| send_now()>
                            "Send anyway"
                        </button>
                    </div>
                </div>
            </Show>
            <label class="visually-hidden" for="composer-text">"Message"</label>
            <textarea id="composer-text" class="composer__input" rows="2" node_ref=input autocomplete="off"
                placeholder="Write a message"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            <button class="button composer__send" type="submit">"Send"</button>
        </form>
    }
}
