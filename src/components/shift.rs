//! Shift offers on screen: the card an offer shows as in its conversation, with the buttons to claim, confirm, release or withdraw it, and the form that offers one.

use crate::components::VerifiedMark;
use crate::model::AppModel;
use crate::platform::browser;
use crate::state::conversations::title;
use crate::state::conversations::{patient_data_warning, MessageView};
use crate::state::shifts::{CannotWorkView, ShiftView};
use crate::state::time::{clock_label, date_value, local_day, parse_date, parse_time, year_of};
use crate::state::words::{offer_too_far, shift_invalid};
use huddle_core::ids::GroupId;
use huddle_core::shift::{Shift, ShiftUpdate};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// An offer's card: when, what, where it stands for the reader, and what
/// she may do about it, one tap each.
#[component]
pub fn ShiftCard(group: GroupId, message: MessageView, shift: ShiftView) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let busy = RwSignal::new(false);
    let answer = move |update: ShiftUpdate| {
        let Some(phone) = model.phone() else {
            model.tell(&huddle_session::SessionError::Starting);
            return;
        };
        busy.set(true);
        spawn_local(async move {
            // Saved on the phone at once, sent when it can be: the card
            // repaints with the answer folded in.
            if let Err(error) = phone.answer_shift(group, update).await {
                model.tell(&error);
            }
            busy.set(false);
        });
    };
    let title_id = format!("shift-{}", message.client_msg);
    let labelled_by = title_id.clone();
    let buttons = shift
        .buttons
        .iter()
        .cloned()
        .map(|button| {
            let update = button.update;
            view! {
                <button class="button shift-card__button" class:button--secondary=!button.primary
                    type="button" disabled=move || busy.get()
                    on:click=move |_| answer(update)>
                    {button.label}
                </button>
            }
        })
        .collect_view();
    view! {
        <li class="message shift-card" class:message--own=message.own data-testid="shift-card"
            data-state=shift.state aria-labelledby=labelled_by>
            <span class="message__sender">
                {message.sender_name.clone()}
                {(!message.own).then(|| view! { " " <VerifiedMark user=message.sender /> })}
            </span>
            <h2 class="shift-card__title" id=title_id>"Shift to cover: "{shift.when.clone()}</h2>
            <p class="shift-card__what">{shift.what.clone()}</p>
            {(!shift.note.is_empty()).then(|| view! { <p class="shift-card__note">{shift.note.clone()}</p> })}
            <p class="shift-card__status" data-testid="shift-status">{shift.status.clone()}</p>
            {shift.sending.then(|| view! { <p class="shift-card__sending">"Sending your answer…"</p> })}
            {shift.failed.then(|| view! {
                <p class="shift-card__failed" role="alert">"Your last answer could not be sent. Try again."</p>
            })}
            <div class="shift-card__actions">{buttons}</div>
            <span class="message__meta">
                <time>{clock_label(message.sent_at, model.now.get_untracked(), offset)}</time>
            </span>
        </li>
    }
}

/// "I can't make my shift" on a manager's phone: the shift, and one tap to
/// offer it to the team in an operational group (chosen when she is in
/// more than one). Nothing of why travels with the offer.
#[component]
pub fn CannotWorkCard(message: MessageView, view: CannotWorkView) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let busy = RwSignal::new(false);
    let offered_in = RwSignal::new(None::<String>);
    // Where it can be offered: operational groups this phone is still in.
    let groups: Vec<(GroupId, String)> = model.directory.with_untracked(|directory| {
        model.records.with_untracked(|records| {
            records
                .iter()
                .filter(|r| huddle_session::shifts::offers_allowed_in(r.kind) && !r.ended)
                .map(|r| (r.group, title(r, directory)))
                .collect()
        })
    });
    let chosen = RwSignal::new(groups.first().map(|(group, _)| *group));
    let shift = view.shift.clone();
    let offer = move |_| {
        let Some(group) = chosen.get_untracked() else {
            return;
        };
        let Some(phone) = model.phone() else {
            model.tell(&huddle_session::SessionError::Starting);
            return;
        };
        let name = model
            .record(group)
            .map(|r| model.directory.with_untracked(|d| title(&r, d)))
            .unwrap_or_default();
        let shift = shift.clone();
        busy.set(true);
        spawn_local(async move {
            match phone.offer_shift(group, shift).await {
                Ok(()) => offered_in.set(Some(name)),
                Err(error) => model.tell(&error),
            }
            busy.set(false);
        });
    };
    let many = groups.len() > 1;
    let none = groups.is_empty();
    let options = groups
        .into_iter()
        .map(|(group, name)| view! { <option value=group.to_string()>{name}</option> })
        .collect_view();
    view! {
        <li class="message shift-card shift-card--cannot-work" class:message--own=message.own
            data-testid="cannot-work">
            <span class="message__sender">
                {message.sender_name.clone()}
                {(!message.own).then(|| view! { " " <VerifiedMark user=message.sender /> })}
            </span>
            <h2 class="shift-card__title">{view.who.clone()}</h2>
            <p class="shift-card__what"><strong>{view.when.clone()}</strong></p>
            <p class="shift-card__what">{view.what.clone()}</p>
            {view.can_offer.then(|| view! {
                <div class="shift-card__actions">
                    {move || match offered_in.get() {
                        Some(name) => view! {
                            <p class="shift-card__status" role="status" data-testid="cannot-work-offered">
                                {format!("Offered to the team in {name}.")}
                            </p>
                        }.into_any(),
                        None if none => view! {
                            <p class="field__hint">"To offer it to the team, make an operational group with them first."</p>
                        }.into_any(),
                        None => ().into_any(),
                    }}
                    {many.then(|| view! {
                        <label class="field">
                            <span class="field__label">"Offer it in"</span>
                            <select class="field__input" name="offer-in"
                                on:change=move |ev| chosen.set(event_target_value(&ev).parse().ok())>
                                {options}
                            </select>
                        </label>
                    })}
                    {(!none).then(|| view! {
                        <button class="button shift-card__button" type="button"
                            disabled=move || busy.get() || offered_in.with(Option::is_some)
                            on:click=offer>
                            "Offer this shift to the team"
                        </button>
                    })}
                </div>
            })}
            <span class="message__meta">
                <time>{clock_label(message.sent_at, model.now.get_untracked(), offset)}</time>
            </span>
        </li>
    }
}

/// The form that offers a shift in an operational group, or (with
/// `cannot_work`) tells the managers, each one to one, that the person
/// cannot work one. Closes (through `done`) once it is saved on the phone;
/// `told` then names the managers told.
#[component]
pub fn ShiftForm(
    group: GroupId,
    done: Callback<()>,
    #[prop(optional)] cannot_work: bool,
    #[prop(optional)] told: Option<RwSignal<Option<String>>>,
) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let offset = browser::utc_offset_minutes();
    let today = local_day(browser::now(), offset);
    let date = RwSignal::new(date_value(today));
    let start = RwSignal::new(String::new());
    let end = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    let unit = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(day) = parse_date(&date.get_untracked()) else {
            problem.set(Some("Choose the day of the shift.".into()));
            return;
        };
        if day < today {
            problem.set(Some(
                "That day has passed. Choose today or a later day.".into(),
            ));
            return;
        }
        // The offer disappears with the group's messages: it must still be
        // there on the day.
        let kept_days = model
            .record(group)
            .map_or(0, |r| r.retention.as_millis() / 86_400_000);
        if !cannot_work && u64::from(day - today) >= kept_days.max(1) {
            problem.set(Some(offer_too_far(kept_days)));
            return;
        }
        let (Some(start), Some(end)) = (
            parse_time(&start.get_untracked()),
            parse_time(&end.get_untracked()),
        ) else {
            problem.set(Some("Choose a start and end time.".into()));
            return;
        };
        let shift = Shift {
            day,
            start,
            end,
            unit: unit.get_untracked().trim().to_owned(),
            role: role.get_untracked().trim().to_owned(),
            note: note.get_untracked().trim().to_owned(),
        };
        if let Err(error) = shift.check() {
            problem.set(Some(shift_invalid(&error)));
            return;
        }
        // The whole group reads an offer: no patient details in it.
        for text in [&shift.note, &shift.unit, &shift.role] {
            if let Some(found) = patient_data_warning(text, year_of(browser::now())) {
                problem.set(Some(format!("{found} Leave it out of the offer.")));
                return;
            }
        }
        let Some(phone) = model.phone() else {
            model.tell(&huddle_session::SessionError::Starting);
            return;
        };
        problem.set(None);
        if cannot_work {
            busy.set(true);
            spawn_local(async move {
                let outcome = phone.cannot_work(shift).await;
                busy.set(false);
                match outcome {
                    Ok(managers) => {
                        let names = model
                            .directory
                            .with_untracked(|d| crate::state::words::names(&managers, d));
                        if let Some(told) = told {
                            told.set(Some(format!(
                                "Told {names}. They will sort out cover; you don't need to say why here."
                            )));
                        }
                        done.run(());
                    }
                    Err(error) => problem.set(Some(model.sentence(&error))),
                }
            });
            return;
        }
        spawn_local(async move {
            match phone.offer_shift(group, shift).await {
                Ok(()) => done.run(()),
                Err(error) => model.tell(&error),
            }
        });
    };

    view! {
        <form class="form shift-form" autocomplete="off" on:submit=submit aria-labelledby="shift-form-title">
            <h2 id="shift-form-title" class="shift-form__title">
                {if cannot_work { "I can't make my shift" } else { "Offer a shift" }}
            </h2>
            <p class="field__hint">
                {if cannot_work {
                    "Only your managers see this, each in a conversation with you alone. Say which shift; you don't need to say why."
                } else {
                    "Everyone in this group sees it and can claim it. You confirm who gets it."
                }}
            </p>
            <label class="field">
                <span class="field__label">"Day"</span>
                <input class="field__input" type="date" name="shift-day" required
                    min=date_value(today)
                    prop:value=move || date.get()
                    on:input=move |ev| date.set(event_target_value(&ev)) />
            </label>
            <div class="shift-form__times">
                <label class="field">
                    <span class="field__label">"Starts"</span>
                    <input class="field__input" type="time" name="shift-start" required
                        prop:value=move || start.get()
                        on:input=move |ev| start.set(event_target_value(&ev)) />
                </label>
                <label class="field">
                    <span class="field__label">"Ends"</span>
                    <input class="field__input" type="time" name="shift-end" required
                        prop:value=move || end.get()
                        on:input=move |ev| end.set(event_target_value(&ev)) />
                </label>
            </div>
            <label class="field">
                <span class="field__label">{if cannot_work { "Your role on that shift" } else { "Role needed" }}</span>
                <input class="field__input" name="shift-role" maxlength="80" required
                    placeholder="For example: Senior carer"
                    prop:value=move || role.get()
                    on:input=move |ev| role.set(event_target_value(&ev)) />
            </label>
            <label class="field">
                <span class="field__label">"Unit (optional)"</span>
                <input class="field__input" name="shift-unit" maxlength="80"
                    prop:value=move || unit.get()
                    on:input=move |ev| unit.set(event_target_value(&ev)) />
            </label>
            <label class="field" hidden=cannot_work>
                <span class="field__label">"Note (optional)"</span>
                <span class="field__hint">"No names or details of the people we care for."</span>
                <textarea class="field__input" name="shift-note" rows="2" maxlength="500"
                    prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev))></textarea>
            </label>
            {move || problem.get().map(|text| view! { <p class="notice notice--error" role="alert">{text}</p> })}
            <div class="shift-form__actions">
                <button class="button" type="submit" disabled=move || busy.get()>
                    {if cannot_work { "Tell my managers" } else { "Offer this shift" }}
                </button>
                <button class="button button--secondary" type="button" on:click=move |_| done.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
