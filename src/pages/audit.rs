//! The audit log, for administrators: who joined, was invited, verified, removed or signed out, which groups were made or changed and which messages were removed, never content; narrowed by person and day, and saved as a CSV file.

use crate::model::AppModel;
use crate::platform::browser;
use crate::state::audit::{audit_rows, passes, to_csv, AuditFilter, AuditRow, Names};
use crate::state::conversations::title;
use crate::state::time::{clock_label, date_value, local_day, parse_date};
use crate::state::words;
use huddle_core::ids::UserId;
use huddle_core::wire::AuditEntry;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Entries asked of the relay at a time.
const PAGE: u32 = 200;

#[component]
pub fn AuditPage() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let entries = RwSignal::new(Vec::<AuditEntry>::new());
    let older = RwSignal::new(false);
    let loading = RwSignal::new(false);
    let problem = RwSignal::new(None::<String>);
    let person = RwSignal::new(None::<UserId>);
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let offset = browser::utc_offset_minutes();

    let load = move |before: Option<u64>| {
        let Some(phone) = model.phone() else {
            problem.set(Some(
                model.sentence(&huddle_session::SessionError::Starting),
            ));
            return;
        };
        loading.set(true);
        spawn_local(async move {
            match phone.read_audit(before, PAGE).await {
                Ok(page) => {
                    let _ = older.try_set(page.len() == PAGE as usize);
                    let _ = entries.try_update(|all| all.extend(page));
                    let _ = problem.try_set(None);
                }
                Err(error) => {
                    let _ = problem.try_set(Some(model.sentence(&error)));
                }
            }
            let _ = loading.try_set(false);
        });
    };
    load(None);

    let rows = Memo::new(move |_| {
        let filter = AuditFilter {
            person: person.get(),
            from_day: parse_date(&from.get()),
            to_day: parse_date(&to.get()),
        };
        model.directory.with(|directory| {
            let groups: Vec<_> = model.records.with(|records| {
                records
                    .iter()
                    .map(|r| (r.group, title(r, directory)))
                    .collect()
            });
            let kept: Vec<AuditEntry> = entries.with(|all| {
                all.iter()
                    .filter(|e| passes(e, &filter, directory, offset))
                    .cloned()
                    .collect()
            });
            audit_rows(
                &kept,
                &Names {
                    directory,
                    groups: &groups,
                },
            )
        })
    });
    let save = move |_| {
        let today = date_value(local_day(model.now.get_untracked(), offset));
        let csv = rows.with_untracked(|rows| to_csv(rows, offset));
        if !browser::download(&format!("huddle-audit-{today}.csv"), "text/csv", &csv) {
            problem.set(Some(words::DOWNLOAD_FAILED.to_owned()));
        }
    };
    let chosen = move |ev: leptos::ev::Event| {
        person.set(event_target_value(&ev).parse::<UserId>().ok());
    };

    view! {
        <main class="page page--audit" id="main">
            <h1 class="page__title">"Audit log"</h1>
            <p class="field__hint">
                "What happened in this organisation's Huddle, newest first: who joined, was invited, verified, removed or signed out, and which groups and messages changed. It never holds what anyone wrote."
            </p>
            <form class="audit-filter" on:submit=|ev| ev.prevent_default()>
                <label class="field">
                    <span class="field__label">"Person"</span>
                    <select class="field__input" name="audit-person" on:change=chosen data-testid="audit-person">
                        <option value="">"Everyone"</option>
                        {move || model.directory.get().people.into_iter().map(|p| view! {
                            <option value=p.user.to_string()>{p.display_name}</option>
                        }).collect_view()}
                    </select>
                </label>
                <div class="audit-filter__days">
                    <label class="field">
                        <span class="field__label">"From"</span>
                        <input class="field__input" type="date" name="audit-from"
                            on:input=move |ev| from.set(event_target_value(&ev)) />
                    </label>
                    <label class="field">
                        <span class="field__label">"To"</span>
                        <input class="field__input" type="date" name="audit-to"
                            on:input=move |ev| to.set(event_target_value(&ev)) />
                    </label>
                </div>
            </form>
            <button class="button button--secondary" type="button" on:click=save
                disabled=move || rows.with(Vec::is_empty) data-testid="audit-csv">
                "Save as a spreadsheet (CSV)"
            </button>
            {move || problem.get().map(|text| view! { <p class="notice notice--error" role="alert">{text}</p> })}
            <p class="field__hint" role="status">
                {move || match rows.with(Vec::len) {
                    1 => "1 entry".to_owned(),
                    n => format!("{n} entries"),
                }}
            </p>
            <ol class="audit-list" aria-label="Audit log">
                {move || {
                    let now = model.now.get_untracked();
                    rows.get().into_iter().map(|row: AuditRow| view! {
                        <li class="audit-row" data-testid="audit-row">
                            <span class="audit-row__when">{clock_label(row.at, now, offset)}</span>
                            <span class="audit-row__what"><strong>{row.who}</strong>" · "{row.action}</span>
                            <span class="audit-row__about">{row.about}</span>
                        </li>
                    }).collect_view()
                }}
            </ol>
            <Show when=move || older.get()>
                <button class="button button--quiet" type="button" disabled=move || loading.get()
                    on:click=move |_| load(entries.with_untracked(|all| all.last().map(|e| e.id)))>
                    "Show older entries"
                </button>
            </Show>
        </main>
    }
}
