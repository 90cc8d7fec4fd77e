//! One person: who verified them in person, and the safety number between this phone and each of theirs, to scan or read aloud.

use crate::components::{QrCodeView, VerifiedMark};
use crate::model::AppModel;
use crate::platform::browser;
use crate::platform::camera::Camera;
use crate::state::export::{export_html, file_name};
use crate::state::time::{date_value, local_day, phone_history_label};
use crate::state::verification::{standing, verification_of};
use crate::state::words;
use huddle_core::attestation::{CheckedDevice, Method};
use huddle_core::identity::SafetyNumber;
use huddle_core::ids::{DeviceId, UserId};
use huddle_core::wire::{DeviceSeen, Role};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Whether a scanned code is a Huddle safety number at all.
fn is_safety_number(code: &str) -> bool {
    code.trim_start().starts_with(SafetyNumber::QR_PREFIX)
}

/// How often the camera's picture is looked at for a code.
const SCAN_EVERY_MS: u32 = 250;

/// Their phones as this page shows them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Phones {
    /// Each phone whose certificate checked out, with the safety number.
    checked: Vec<(CheckedDevice, SafetyNumber)>,
    /// Phones of theirs this phone knows of but could not check.
    missing: usize,
    /// This phone's own certificate is not known yet.
    own_missing: bool,
}

/// Where a check of one of their phones stands.
#[derive(Clone, Debug, PartialEq)]
enum Check {
    Idle,
    /// The camera is open, looking for their code.
    Scanning,
    /// The person is about to confirm that the digits match.
    Confirming,
    Saving,
    Done,
    /// The scanned code is not this phone's number with theirs.
    Mismatch,
    Failed(String),
}

#[component]
pub fn PersonPage(user: UserId) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let me = model
        .enrolment
        .with_untracked(|e| e.as_ref().map(|e| (e.user, e.device)));
    if let (Some(phone), Some((my_user, _))) = (model.phone(), me) {
        phone.refresh_directory_soon();
        spawn_local(async move {
            // Offline, the page shows what the phone last knew.
            let _ = phone.refresh_identities(vec![user, my_user]).await;
        });
    }
    let is_me = me.is_some_and(|(u, _)| u == user);
    let person = move || model.directory.with(|d| d.person(user).cloned());
    let name = move || {
        person()
            .map(|p| p.display_name)
            .unwrap_or_else(|| "Someone".into())
    };
    let offset = browser::utc_offset_minutes();
    let words_now = move || {
        let verification = model
            .directory
            .with(|d| model.identities.with(|i| verification_of(user, d, i)));
        standing(&verification, me.map(|(u, _)| u), offset)
    };
    // Their phones, each with this phone's safety number with it: those
    // the relay lists and those met in groups. A memo: fetching the same
    // again (as a check does when it is saved) must not redraw the checks
    // and lose their state.
    let phones = Memo::new(move |_| -> Phones {
        let Some((_, my_device)) = me else {
            return Phones::default();
        };
        let Some(person) = person() else {
            return Phones::default();
        };
        model.identities.with(|identities| {
            let Some(mine) = identities.device(my_device) else {
                return Phones {
                    own_missing: true,
                    ..Phones::default()
                };
            };
            let mut phones = Phones::default();
            for device in identities.devices_of(&person) {
                match identities.device(device) {
                    Some(theirs) => {
                        let number = SafetyNumber::between(mine.fingerprint, theirs.fingerprint);
                        phones.checked.push((theirs.clone(), number));
                    }
                    None => phones.missing += 1,
                }
            }
            phones
        })
    });
    // Read once per drawing, untracked: a new directory must not redraw
    // the checks (and stop a scan half-way).
    let name_now = move || {
        model
            .directory
            .with_untracked(|d| d.name_of(user).map(str::to_owned))
            .unwrap_or_else(|| "Someone".into())
    };

    view! {
        <main class="page" id="main">
            <h1 class="page__title">{name}" "<VerifiedMark user=user /></h1>
            <p class="field__hint">
                {move || match person().map(|p| p.role) {
                    Some(Role::Administrator) => "Administrator",
                    Some(Role::Staff) => "Staff",
                    None => "No longer in the team",
                }}
            </p>
            {if is_me {
                view! {
                    <p class="page__lead">
                        "This is you. Colleagues verify you from their phones: they open your name under Team, and you show them the code on your screen from theirs."
                    </p>
                    <YourPhones user=user />
                    <YourExport />
                }.into_any()
            } else {
                view! {
                    <p class="page__lead" data-testid="verification-standing">{words_now}</p>
                    {move || {
                        let phones = phones.get();
                        let name = name_now();
                        if phones.own_missing {
                            return view! {
                                <p class="notice">"This phone's own safety number is not ready yet. Connect to the internet, then open this page again."</p>
                            }.into_any();
                        }
                        let several = phones.checked.len() + phones.missing > 1;
                        let missing = (phones.missing > 0).then(|| view! {
                            <p class="notice">
                                {if phones.missing == 1 && !several {
                                    format!("{name}'s phone has not shared its safety number with Huddle yet. It does when they next open Huddle while connected.")
                                } else {
                                    format!("{} of {name}'s phones has not shared its safety number with Huddle yet, so {name} cannot show as verified. Ask them about it, or tell your manager.", phones.missing)
                                }}
                            </p>
                        });
                        let checks = phones.checked.into_iter().enumerate().map(|(n, (device, number))| view! {
                            <SafetyNumberCheck device=device number=number
                                heading=if several { format!("Safety number, phone {}", n + 1) } else { "Safety number".to_owned() }
                                name=name.clone() />
                        }).collect_view();
                        view! { {missing} {checks} }.into_any()
                    }}
                }.into_any()
            }}
        </main>
    }
}

/// Which of her phones a person is about to sign out.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SigningOut {
    ThisPhone,
    Another(DeviceId),
}

/// The person's own phones, each of which she can sign out: another one
/// (lost, or replaced) from here, or this one before handing it on.
/// Her own export (subject access): every message this phone holds, as
/// a page she saves or shares. Made here; nothing goes to the relay.
#[component]
fn YourExport() -> impl IntoView {
    let model = expect_context::<AppModel>();
    let busy = RwSignal::new(false);
    let status = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let export = move |_| {
        let Some(phone) = model.phone() else {
            return;
        };
        busy.set(true);
        status.set(None);
        error.set(None);
        spawn_local(async move {
            let held = phone.messages_to_export().await;
            let _ = busy.try_set(false);
            let held = match held {
                Ok(held) => held,
                Err(e) => {
                    let _ = error.try_set(Some(model.sentence(&e)));
                    return;
                }
            };
            let enrolment = phone.enrolment();
            let me = enrolment.user;
            let offset = browser::utc_offset_minutes();
            let now = browser::now();
            let person = model
                .directory
                .with_untracked(|d| d.name_of(me).map(str::to_owned))
                .unwrap_or_else(|| "You".to_owned());
            let html = model.directory.with_untracked(|directory| {
                export_html(
                    &person,
                    &enrolment.org_name,
                    now,
                    offset,
                    &held,
                    directory,
                    me,
                )
            });
            let name = file_name(&date_value(local_day(now, offset)));
            if browser::download(&name, "text/html", &html) {
                let _ = status.try_set(Some(format!("Saved as {name}. {}", words::EXPORT_SAVED)));
            } else {
                let _ = error.try_set(Some(words::DOWNLOAD_FAILED.to_owned()));
            }
        });
    };
    view! {
        <h2 class="section-title" id="your-messages">"Your messages"</h2>
        <p>"Save a copy of every message on this phone, with who sent it and when, as a page that opens in any browser. It says what it does not include, such as messages that have expired."</p>
        <p class="notice" role="status" hidden=move || status.get().is_none()>{move || status.get()}</p>
        <p class="notice notice--error" role="alert" hidden=move || error.get().is_none()>{move || error.get()}</p>
        <button class="button button--secondary" type="button" on:click=export
            prop:disabled=move || busy.get() data-testid="export-messages">
            "Save my messages"
        </button>
    }
}

#[component]
fn YourPhones(user: UserId) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let this_phone = model
        .enrolment
        .with_untracked(|e| e.as_ref().map(|e| e.device));
    let asking = RwSignal::new(None::<SigningOut>);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let status = RwSignal::new(None::<&'static str>);
    // The question takes the focus when it opens (a screen reader reads
    // it out, and Escape or Cancel leaves it).
    let confirm_button = NodeRef::<html::Button>::new();
    Effect::new(move |_| {
        if asking.get().is_some() {
            if let Some(button) = confirm_button.get() {
                let _ = button.focus();
            }
        }
    });
    // When each phone was added and last used, from the relay (online
    // only: offline, the list shows the phones without them).
    let seen = RwSignal::new(Vec::<DeviceSeen>::new());
    if let Some(phone) = model.phone() {
        spawn_local(async move {
            if let Ok(devices) = phone.devices_of(user).await {
                let _ = seen.try_set(devices);
            }
        });
    }
    let history = move |device: DeviceId| {
        seen.with(|seen| {
            seen.iter().find(|s| s.device == device).map(|s| {
                phone_history_label(
                    s.added_at,
                    s.last_seen,
                    model.now.get(),
                    browser::utc_offset_minutes(),
                )
            })
        })
    };
    let phones = move || {
        model.directory.with(|d| {
            let mut phones = d
                .person(user)
                .map(|p| p.devices.clone())
                .unwrap_or_default();
            // This phone first, whatever the relay lists.
            phones.sort_by_key(|device| Some(*device) != this_phone);
            phones
        })
    };
    let sign_out = move |which: SigningOut| {
        let Some(phone) = model.phone() else {
            return;
        };
        busy.set(true);
        error.set(None);
        status.set(None);
        spawn_local(async move {
            let outcome = match which {
                SigningOut::ThisPhone => phone.sign_out_this_phone().await,
                SigningOut::Another(device) => phone.revoke_device(device).await,
            };
            let _ = busy.try_set(false);
            let _ = asking.try_set(None);
            match outcome {
                // This phone is wiped and the signed-out screen replaces
                // everything.
                Ok(()) if which == SigningOut::ThisPhone => {}
                Ok(()) => {
                    let _ = status.try_set(Some("Signed out. Your other phone is disconnected now and wiped the next time it opens Huddle."));
                    let _ = phone.refresh_directory().await;
                }
                Err(e) => {
                    let _ = error.try_set(Some(model.sentence(&e)));
                }
            }
        });
    };
    view! {
        <h2 class="section-title" id="your-phones">"Your phones"</h2>
        // Always in the page, so that screen readers announce what appears.
        <p class="notice" role="status" hidden=move || status.get().is_none()>{move || status.get()}</p>
        <p class="notice notice--error" role="alert" hidden=move || error.get().is_none()>{move || error.get()}</p>
        {move || asking.get().map(|which| {
            let (title, body, action) = match which {
                SigningOut::ThisPhone => (
                    "Sign this phone out of Huddle?",
                    "Everything Huddle keeps on this phone is deleted: your conversations, your messages, and anything you have not sent yet. To use Huddle on it again you will need a new invite from your manager.",
                    "Sign out and wipe this phone",
                ),
                SigningOut::Another(_) => (
                    "Sign your other phone out?",
                    "It is disconnected at once and wiped the next time it opens Huddle. Do this for a phone that is lost, stolen or no longer yours.",
                    "Sign out and wipe that phone",
                ),
            };
            view! {
                <div class="warning" role="alertdialog" aria-labelledby="sign-out-title" aria-describedby="sign-out-body"
                    on:keydown=move |ev| if ev.key() == "Escape" { asking.set(None) }>
                    <h2 id="sign-out-title" class="warning__title">{title}</h2>
                    <p id="sign-out-body">{body}</p>
                    <div class="warning__actions">
                        <button class="button button--danger" type="button" node_ref=confirm_button
                            prop:disabled=move || busy.get()
                            on:click=move |_| sign_out(which)>{action}</button>
                        <button class="button button--secondary" type="button"
                            on:click=move |_| asking.set(None)>"Cancel"</button>
                    </div>
                </div>
            }
        })}
        <ul class="people-list" aria-labelledby="your-phones">
            {move || {
                let mut others = 0;
                phones().into_iter().map(|device| {
                    let here = Some(device) == this_phone;
                    let label = if here {
                        "This phone".to_owned()
                    } else {
                        others += 1;
                        format!("Another phone ({others})")
                    };
                    let which = if here { SigningOut::ThisPhone } else { SigningOut::Another(device) };
                    let button = if here { "Sign out this phone" } else { "Sign out" };
                    let spoken = if here { button.to_owned() } else { format!("Sign out another phone ({others})") };
                    view! {
                        <li class="person-row">
                            <span class="person-row__name">{label.clone()}
                                <span class="person-row__detail">{move || history(device)}</span>
                            </span>
                            <button class="button button--small button--danger" type="button"
                                aria-label=spoken
                                prop:disabled=move || busy.get()
                                on:click=move |_| asking.set(Some(which))>{button}</button>
                        </li>
                    }
                }).collect_view()
            }}
        </ul>
    }
}

/// The safety number with one of their phones: the code to show, the
/// digits to read, and the two ways to check.
#[component]
fn SafetyNumberCheck(
    device: CheckedDevice,
    number: SafetyNumber,
    heading: String,
    name: String,
) -> impl IntoView {
    let model = expect_context::<AppModel>();
    let check = RwSignal::new(Check::Idle);
    let video = NodeRef::<html::Video>::new();
    let canvas = NodeRef::<html::Canvas>::new();
    let subject = device.identity;
    let key = device.key;
    // Work that finishes after the person left the page (the component and
    // its signals are gone) does nothing: `try_set` rather than `set`.
    let save = move |method: Method| {
        check.set(Check::Saving);
        let Some(phone) = model.phone() else {
            check.set(Check::Failed(
                model.sentence(&huddle_session::SessionError::Starting),
            ));
            return;
        };
        spawn_local(async move {
            let outcome = match phone.verify_in_person(subject, key, method).await {
                Ok(()) => Check::Done,
                Err(error) => Check::Failed(model.sentence(&error)),
            };
            let _ = check.try_set(outcome);
        });
    };
    // The camera lives in this task: when the person stops scanning, or
    // leaves the page, the loop ends and dropping the camera turns it off.
    let scanning = move || check.try_get_untracked() == Some(Check::Scanning);
    let scan = move |_| {
        check.set(Check::Scanning);
        spawn_local(async move {
            // Wait for the video element to be on screen.
            gloo_timers::future::TimeoutFuture::new(0).await;
            let Some(Some(video_element)) = video.try_get_untracked() else {
                return;
            };
            let video_element = wasm_bindgen::JsValue::from(video_element);
            let camera = match Camera::open(&video_element).await {
                Ok(camera) => camera,
                Err(error) => {
                    let _ = check.try_set(Check::Failed(error.words().to_owned()));
                    return;
                }
            };
            while scanning() {
                if let Some(Some(canvas_element)) = canvas.try_get_untracked() {
                    let canvas_element = wasm_bindgen::JsValue::from(canvas_element);
                    // Anything that is not a Huddle safety number (a poster,
                    // a half-read code) is passed over.
                    let code = camera
                        .read(&video_element, &canvas_element)
                        .await
                        .filter(|code| is_safety_number(code));
                    if let Some(code) = code {
                        camera.stop();
                        if !scanning() {
                            return;
                        }
                        if number.matches_qr(&code) {
                            save(Method::ScannedCode);
                        } else {
                            check.set(Check::Mismatch);
                        }
                        return;
                    }
                }
                gloo_timers::future::TimeoutFuture::new(SCAN_EVERY_MS).await;
            }
        });
    };
    let cancel = move |_| check.set(Check::Idle);
    let payload = number.qr_payload();
    let groups = number.groups();
    let spoken = groups.join(", ");
    let name_for_label = name.clone();
    let name_for_confirm = name.clone();
    let name_for_scan = name.clone();
    let name_for_done = name.clone();
    let name_for_mismatch = name;

    view! {
        <section class="safety" aria-labelledby=format!("safety-{}", subject.device)>
            <h2 class="safety__title" id=format!("safety-{}", subject.device)>{heading}</h2>
            <Show when=move || check.get() == Check::Scanning fallback=move || view! {
                <QrCodeView text=payload.clone() label=format!("Safety number code for you and {name_for_label}") />
            }>
                <div class="scanner">
                    <video class="scanner__video" node_ref=video autoplay=true muted=true playsinline=true
                        aria-label="Camera picture"></video>
                    <canvas class="visually-hidden" node_ref=canvas aria-hidden="true"></canvas>
                    <p role="status">{format!("Point your camera at the code on {name_for_scan}'s phone.")}</p>
                    <button class="button button--secondary" type="button" on:click=cancel>"Stop scanning"</button>
                </div>
            </Show>
            <p class="safety__digits" data-testid="safety-digits" aria-label=format!("Safety number: {spoken}")>
                {groups.into_iter().map(|g| view! { <span>{g}</span> }).collect_view()}
            </p>
            {move || match check.get() {
                Check::Done => view! {
                    <p class="notice notice--ok" role="status">
                        {format!("{name_for_done} is verified. Everyone in your team will see it.")}
                    </p>
                }.into_any(),
                Check::Mismatch => view! {
                    <p class="notice notice--error" role="alert">
                        {format!("These codes do not match. This may not be {name_for_mismatch}'s phone. Do not share anything clinical with this account, and tell your manager.")}
                    </p>
                }.into_any(),
                Check::Failed(reason) => view! {
                    <p class="notice notice--error" role="alert">{reason}</p>
                }.into_any(),
                Check::Saving => view! { <p role="status">"Saving…"</p> }.into_any(),
                Check::Confirming => {
                    let name = name_for_confirm.clone();
                    view! {
                        <div class="warning" role="alertdialog" aria-labelledby="confirm-title">
                            <h2 id="confirm-title" class="warning__title">"Do all 60 digits match?"</h2>
                            <p>{format!("Only say yes with {name} in front of you, when every group of digits on their phone is the same as here.")}</p>
                            <div class="warning__actions">
                                <button class="button" type="button" on:click=move |_| save(Method::ComparedDigits)>"Yes, every digit matches"</button>
                                <button class="button button--secondary" type="button" on:click=move |_| check.set(Check::Idle)>"Cancel"</button>
                            </div>
                        </div>
                    }.into_any()
                }
                Check::Idle | Check::Scanning => ().into_any(),
            }}
            <Show when=move || matches!(check.get(), Check::Idle | Check::Done | Check::Mismatch | Check::Failed(_))>
                <div class="safety__actions">
                    <button class="button" type="button" on:click=scan>"Scan their code"</button>
                    <button class="button button--secondary" type="button"
                        on:click=move |_| check.set(Check::Confirming)>"The numbers match"</button>
                </div>
            </Show>
        </section>
    }
}
