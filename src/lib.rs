//! Huddle's web app: a Leptos single-page app for phones, with the browser behind `platform`.
//!
//! Layers, one way only: `pages` and `components` render `state` through the
//! signals in `model`; `model` applies the session's updates (`huddle-session`,
//! which does what the phone does); `state` is plain Rust tested natively,
//! with every sentence about a problem; `platform` is the only module that
//! touches the browser (web-sys, js-sys, gloo, rexie, wasm-bindgen), and
//! mostly implements the session's traits.
#![forbid(unsafe_code)]

pub mod components;
pub mod model;
pub mod on_demand;
pub mod pages;
pub mod platform;
pub mod state;

use leptos::prelude::*;
use model::{AppModel, LockView};
use platform::browser;
use platform::phone::Opened;
use platform::registration::LinkKind;
use state::route::Route;

/// Starts the app in the browser: replaces the static shell with the live app
/// and registers the service worker that lets the app open offline.
pub fn start() {
    platform::install_panic_hook();
    let Some(root) = platform::dom::take_app_root() else {
        platform::log::error("Huddle could not find its place on the page (#app).");
        return;
    };
    leptos::mount::mount_to(root, App).forget();
}

/// Shows another screen and puts it in the address bar's history.
pub fn navigate(model: AppModel, route: Route) {
    browser::set_path(&route.path(), false);
    model.route.set(route);
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let (path, fragment) = browser::location();
    let route = Route::parse(&path, &fragment);
    if matches!(route, Route::Setup { .. } | Route::Join { .. }) {
        // The secret has been read: it leaves the address bar and history.
        browser::set_path(&route.path(), true);
    }
    let model = AppModel::new(route, browser::now());
    provide_context(model);
    browser::on_back(move || {
        let (path, fragment) = browser::location();
        model.route.set(Route::parse(&path, &fragment));
    });
    platform::lock::watch(model);
    model.hidden.set(browser::is_hidden());
    browser::on_cover(move |covered| model.hidden.set(covered));
    // Paint from the cache first; the crypto worker and the connection follow.
    leptos::task::spawn_local(async move {
        match platform::phone::load(model).await {
            Ok(Opened::Phone(phone)) => {
                // Opened without a passcode (a phone that joined before
                // passcodes): one is chosen before anything else.
                model.lock.set(LockView::Choosing);
                model.loaded.set(true);
                browser::mark_after_render("huddle:list-painted");
                on_demand::prefetch_screens();
                on_demand::start_phone(model, phone, None).await;
            }
            Ok(Opened::Locked) => {
                model.lock.set(LockView::Locked);
                model.loaded.set(true);
                browser::mark_after_render("huddle:lock-painted");
            }
            Ok(Opened::NotJoined) => {
                model.loaded.set(true);
                browser::mark_after_render("huddle:first-screen");
            }
            Err(e) => {
                model
                    .notice
                    .set(Some(state::words::load_error(&e).to_owned()));
                model.loaded.set(true);
            }
        }
    });
    leptos::task::spawn_local(async {
        // The welcome page reports a failure; elsewhere it only costs offline start.
        let _ = platform::service_worker::register().await;
    });

    view! {
        <div class="shell" class:shell--hidden=move || model.hidden.get()>
            <Show when=move || model.lock.get() != LockView::Locked>
                <div class="shell__top">
                    <components::AppBar />
                    <components::ConnectionBanner />
                </div>
            </Show>
            <Show when=move || model.notice.get().is_some() && model.lock.get() != LockView::Locked>
                <p class="banner banner--error" role="alert">
                    {move || model.notice.get()}
                    <button class="button button--small button--quiet" type="button"
                        on:click=move |_| model.notice.set(None)>"Dismiss"</button>
                </p>
            </Show>
            {move || screen(model)}
        </div>
    }
}

fn screen(model: AppModel) -> AnyView {
    if let Some(why) = model.signed_out.get() {
        // Only a running phone is signed out, so this screen comes with the
        // others, not with the first screens.
        return on_demand::signed_out_screen(model, why);
    }
    if let Some(unsent) = model.not_recognised.get() {
        return on_demand::not_recognised_screen(model, unsent);
    }
    match model.lock.get() {
        // Nothing but the lock screen: no name, preview or count.
        LockView::Locked => return view! { <pages::LockPage /> }.into_any(),
        LockView::Choosing if model.enrolment.with(Option::is_some) => {
            return on_demand::choose_passcode_screen(model)
        }
        _ => {}
    }
    let route = model.route.get();
    match route {
        Route::Setup { secret } => {
            return view! { <pages::RegisterPage kind=LinkKind::Setup secret=secret /> }.into_any()
        }
        Route::Join { secret } => {
            return view! { <pages::RegisterPage kind=LinkKind::Invite secret=secret /> }.into_any()
        }
        _ => {}
    }
    if !model.loaded.get() {
        return view! {
            <main class="page page--loading" aria-busy="true">
                <p class="page__lead" role="status">"Opening Huddle…"</p>
            </main>
        }
        .into_any();
    }
    if model.enrolment.with(Option::is_none) {
        return view! { <pages::WelcomePage /> }.into_any();
    }
    match route {
        Route::Conversation(_)
        | Route::Members(_)
        | Route::NewGroup
        | Route::NewDirect
        | Route::Invite
        | Route::People
        | Route::Person(_)
        | Route::Audit => on_demand::screen(model, route),
        // The install help and the pinned broadcasts come from the screens'
        // module, a moment after the list. (Called here, not inside the
        // list's component, which the screens' module itself shows too: code
        // in a split module must not load another split module.)
        _ => view! {
            <pages::ConversationsPage pinned=on_demand::pinned_broadcasts() />
            {on_demand::install_help()}
        }
        .into_any(),
    }
}
