//! Administrators invite a colleague: a one-time link and QR code with the person's name, role and the invite's expiry; for agency and bank staff, the day and time their access ends.

use crate::components::QrCodeView;
use crate::model::AppModel;
use crate::platform::browser;
use crate::state::time::{
    access_end_label, clock_label, date_value, duration_label, local_day, parse_date, parse_time,
};
use crate::state::words;
use huddle_core::wire::Role;
use leptos::prelude::*;
use leptos::task::spawn_local;

const VALIDITY_CHOICES: [u64; 3] = [24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600];

#[derive(Clone)]
struct Made {
    name: String,
    role: Role,
    link: String,
    expires: String,
    /// When their access ends, in words, for agency and bank staff.
    access_ends: Option<String>,
}

/// Where the end of an agency worker's access starts: a week from today,
/// at eight in the evening.
const DEFAULT_END_DAYS: u32 = 7;
const DEFAULT_END_TIME: &str = "20:00";

#[component]
pub fn InvitePage() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let name = RwSignal::new(String::new());
    let administrator = RwSignal::new(false);
    let valid_for = RwSignal::new(VALIDITY_CHOICES[1]);
    let agency = RwSignal::new(false);
    let offset = browser::utc_offset_minutes();
    let end_day = RwSignal::new(date_value(
        local_day(browser::now(), offset) + DEFAULT_END_DAYS,
    ));
    let end_time = RwSignal::new(DEFAULT_END_TIME.to_owned());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let made = RwSignal::new(None::<Made>);
    let copied = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let display_name = name.get_untracked().trim().to_owned();
        if display_name.is_empty() {
            error.set(Some(
                "Enter the name of the person you are inviting.".into(),
            ));
            return;
        }
        let Some(phone) = model.phone() else {
            model.tell(&huddle_session::SessionError::Starting);
            return;
        };
        let role = if administrator.get_untracked() {
            Role::Administrator
        } else {
            Role::Staff
        };
        let valid_for_secs = valid_for.get_untracked();
        let access_ends_at = if agency.get_untracked() {
            let chosen = end_day
                .with_untracked(|day| parse_date(day))
                .zip(end_time.with_untracked(|time| parse_time(time)))
                .map(|(day, minutes)| browser::local_instant(day, minutes));
            let problem = match chosen {
                None => Some(words::CHOOSE_ACCESS_END),
                Some(_) if role == Role::Administrator => Some(words::ADMINISTRATOR_NEVER_ENDS),
                Some(at) if at <= browser::now() => Some(words::ACCESS_END_PASSED),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                error.set(Some(problem.to_owned()));
                return;
            }
            chosen
        } else {
            None
        };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let answer = phone
                .create_invite(display_name.clone(), role, valid_for_secs, access_ends_at)
                .await;
            busy.set(false);
            match answer {
                Ok(invite) => {
                    copied.set(false);
                    made.set(Some(Made {
                        name: display_name,
                        role,
                        link: format!("{}/join#{}", browser::origin(), invite.link_fragment()),
                        expires: clock_label(
                            invite.expires_at,
                            browser::now(),
                            browser::utc_offset_minutes(),
                        ),
                        access_ends: access_ends_at.map(|at| {
                            access_end_label(at, browser::now(), browser::utc_offset_minutes_at(at))
                        }),
                    }));
                    name.set(String::new());
                }
                Err(e) => error.set(Some(
                    model
                        .directory
                        .with_untracked(|d| words::session_error(&e, d)),
                )),
            }
        });
    };

    view! {
        <main class="page" id="main">
            <h1 class="page__title">"Invite someone"</h1>
            {move || made.get().map(|invite| {
                let link = invite.link.clone();
                let copy_link = link.clone();
                view! {
                    <section class="card invite" aria-labelledby="invite-title" data-testid="invite">
                        <h2 id="invite-title" class="card__title">{format!("Invite for {}", invite.name)}</h2>
                        <p>{format!(
                            "Role: {}. Works once, until {}.",
                            if invite.role == Role::Administrator { "administrator" } else { "staff" },
                            invite.expires
                        )}</p>
                        {invite.access_ends.clone().map(|ends| view! {
                            <p data-testid="invite-access-ends">{format!(
                                "Their access ends {ends}: Huddle then signs them out and takes them out of their groups."
                            )}</p>
                        })}
                        <QrCodeView text=link.clone() label=format!("Invite code for {}", invite.name) />
                        <p class="field__hint">"Ask them to scan this code with their phone's camera, or send them the link. Anyone with the link can use it once, so send it only to them."</p>
                        <input class="field__input invite__link" readonly prop:value=link.clone() aria-label="Invite link" data-testid="invite-link" />
                        <button class="button button--secondary" type="button" on:click=move |_| {
                            let link = copy_link.clone();
                            spawn_local(async move { copied.set(browser::copy_text(&link).await) });
                        }>{move || if copied.get() { "Link copied" } else { "Copy link" }}</button>
                    </section>
                }
            })}
            <form class="form" autocomplete="off" on:submit=submit>
                <label class="field">
                    <span class="field__label">"Their name"</span>
                    <input class="field__input" name="invite-name" maxlength="80" autocomplete="off"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                </label>
                <label class="choice">
                    <input type="checkbox" name="administrator" prop:checked=move || administrator.get()
                        on:change=move |_| administrator.update(|a| *a = !*a) />
                    <span class="choice__text">
                        <strong>"Administrator"</strong>
                        <span class="field__hint">"Can invite people, make groups and remove people."</span>
                    </span>
                </label>
                <label class="choice">
                    <input type="checkbox" name="agency" prop:checked=move || agency.get()
                        on:change=move |_| agency.update(|a| *a = !*a) />
                    <span class="choice__text">
                        <strong>"Agency or bank staff"</strong>
                        <span class="field__hint">"Their access ends when you say: Huddle signs them out then, even if nobody opens the app, and takes them out of each group as soon as a colleague's phone is online."</span>
                    </span>
                </label>
                <Show when=move || agency.get()>
                    <fieldset class="field-row">
                        <legend class="field__label">"Their access ends"</legend>
                        <label class="field">
                            <span class="field__label">"On"</span>
                            <input class="field__input" type="date" name="access-end-day" required
                                prop:value=move || end_day.get()
                                on:input=move |ev| end_day.set(event_target_value(&ev)) />
                        </label>
                        <label class="field">
                            <span class="field__label">"At"</span>
                            <input class="field__input" type="time" name="access-end-time" required
                                prop:value=move || end_time.get()
                                on:input=move |ev| end_time.set(event_target_value(&ev)) />
                        </label>
                    </fieldset>
                </Show>
                <label class="field">
                    <span class="field__label">"The invite works for"</span>
                    <select class="field__input" name="valid-for" on:change=move |ev| {
                        if let Ok(secs) = event_target_value(&ev).parse() { valid_for.set(secs) }
                    }>
                        {VALIDITY_CHOICES.into_iter().map(|secs| view! {
                            <option value=secs.to_string() prop:selected=move || valid_for.get() == secs>
                                {duration_label(secs * 1000)}
                            </option>
                        }).collect_view()}
                    </select>
                </label>
                <Show when=move || error.get().is_some()>
                    <p class="notice notice--error" role="alert">{move || error.get()}</p>
                </Show>
                <button class="button" type="submit" prop:disabled=move || busy.get() || !model.connection.get().live>
                    "Create invite"
                </button>
                <Show when=move || !model.connection.get().live>
                    <p class="field__hint">"Invites need a connection."</p>
                </Show>
            </form>
        </main>
    }
}
