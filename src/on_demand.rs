//! Code a phone needs only after its first screen, split into wasm modules of their own and fetched on first use.
//!
//! A phone on a slow network downloads the whole page module before it can
//! show anything. The first screens (the conversation list painted from the
//! cache, the welcome page, the join form) stay in it; the sync engine, the
//! registration and the other screens are cut out by the build (`cargo xtask
//! split`, see ARCHITECTURE.md) at the functions marked `#[wasm_split]` here,
//! and fetched when first called. The service worker keeps every module for
//! offline starts.
//!
//! Every split function is `fallible`: a module that cannot be fetched (the
//! phone went offline before it was ever cached) becomes an error the screen
//! can show, never an abort of the whole app.

use crate::model::AppModel;
use crate::pages;
use crate::platform::cache::IdbCache;
use crate::platform::crypto_worker::WorkerCrypto;
use crate::platform::lock::NotOpened;
use crate::platform::registration::{self, LinkKind};
use crate::platform::{phone, AppPhone};
use crate::state::route::Route;
use huddle_session::{Crypto, Enrolment, SessionError, SignOut};
use leptos::prelude::*;
use leptos::wasm_split::{wasm_split, SplitLoaderError};
use std::future::Future;
use std::pin::Pin;

/// What the user is told when a part of the app could not be fetched.
pub const NOT_LOADED: &str =
    "This part of Huddle has not been downloaded to this phone yet. Connect to the internet, then try again.";

/// A part of the app that could not be fetched.
#[derive(Debug)]
pub struct NotLoaded;

impl From<SplitLoaderError> for NotLoaded {
    fn from(_: SplitLoaderError) -> Self {
        NotLoaded
    }
}

/// Work that runs in a split module once it has been fetched.
type Work<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_start(
    model: AppModel,
    phone: &'static AppPhone,
    crypto: Option<WorkerCrypto>,
) -> Result<Work<(), SessionError>, NotLoaded> {
    Ok(Box::pin(async move {
        // What went wrong is told here, in the split module: the page
        // module carries none of these sentences.
        if let Err(error) = phone::start(model, phone, crypto).await {
            model.tell(&error);
        }
        Ok(())
    }))
}

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_register(
    kind: LinkKind,
    secret: String,
    org_name: String,
    display_name: String,
) -> Result<Work<(IdbCache, Enrolment, WorkerCrypto), String>, NotLoaded> {
    Ok(Box::pin(async move {
        // In words here, in the split module, like every other sentence
        // about joining that the page module need not carry.
        registration::register(kind, &secret, &org_name, &display_name)
            .await
            .map_err(|e| crate::state::words::join_error(&e))
    }))
}

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_check_encryption() -> Result<Work<(), String>, NotLoaded> {
    Ok(Box::pin(async {
        let ping = async {
            let worker = WorkerCrypto::spawn()?;
            worker
                .request(huddle_core::crypto_worker::WorkerRequest::Ping)
                .await
                .map(|_| ())
        };
        ping.await
            .map_err(|e| crate::state::words::crypto_error(&e))
    }))
}

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_prepare_unlock(model: AppModel) -> Result<Work<(), String>, NotLoaded> {
    Ok(Box::pin(crate::platform::lock::prepare(model)))
}

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_unlock(model: AppModel, passcode: String) -> Result<Work<(), NotOpened>, NotLoaded> {
    Ok(Box::pin(crate::platform::lock::unlock(model, passcode)))
}

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_wipe_forgotten(model: AppModel) -> Result<Work<(), ()>, NotLoaded> {
    Ok(Box::pin(async move {
        crate::platform::lock::wipe_forgotten(model).await;
        Ok(())
    }))
}

/// The lock screen's start: the crypto worker, and a wipe if the phone has
/// been away too long. The error is in words.
pub async fn prepare_unlock(model: AppModel) -> Result<(), String> {
    match engine_prepare_unlock(model).await {
        Ok(work) => work.await,
        Err(NotLoaded) => Err(NOT_LOADED.to_owned()),
    }
}

/// Tries a passcode (see `platform::lock::unlock`).
pub async fn unlock(model: AppModel, passcode: String) -> Result<(), NotOpened> {
    match engine_unlock(model, passcode).await {
        Ok(work) => work.await,
        Err(NotLoaded) => Err(NotOpened::Say(NOT_LOADED.to_owned())),
    }
}

/// Wipes a locked phone whose passcode is forgotten.
pub async fn wipe_forgotten(model: AppModel) {
    if let Ok(work) = engine_wipe_forgotten(model).await {
        let _ = work.await;
    }
}

/// Whether this phone can run Huddle's encryption: the crypto worker starts
/// and answers (the welcome page's check). The error is in words.
pub async fn check_encryption() -> Result<(), String> {
    match engine_check_encryption().await {
        Ok(work) => work.await,
        Err(NotLoaded) => Err(NOT_LOADED.to_owned()),
    }
}

/// Runs and starts the phone: the crypto worker, the connection and the
/// outbox. What went wrong is shown as a notice, in words.
pub async fn start_phone(model: AppModel, phone: &'static AppPhone, crypto: Option<WorkerCrypto>) {
    match engine_start(model, phone, crypto).await {
        Ok(work) => {
            let _ = work.await;
        }
        Err(NotLoaded) => model.notice.set(Some(NOT_LOADED.to_owned())),
    }
}

/// Registers this phone with a first-run or invite link (see
/// `registration::register`); what went wrong is in words.
pub async fn register(
    kind: LinkKind,
    secret: String,
    org_name: String,
    display_name: String,
) -> Result<(IdbCache, Enrolment, WorkerCrypto), String> {
    match engine_register(kind, secret, org_name, display_name).await {
        Ok(work) => work.await,
        Err(NotLoaded) => Err(NOT_LOADED.to_owned()),
    }
}

/// Every screen but the first ones (see `screen`).
#[wasm_split(
    screens,
    wasm_split_path = ::leptos::wasm_split,
    fallible,
    preload(preload_screens)
)]
fn split_screen(route: Route) -> Result<AnyView, NotLoaded> {
    Ok(match route {
        Route::Conversation(group) => view! { <pages::ConversationPage group=group /> }.into_any(),
        Route::Members(group) => view! { <pages::MembersPage group=group /> }.into_any(),
        Route::NewGroup => view! { <pages::NewGroupPage /> }.into_any(),
        Route::NewDirect => view! { <pages::NewDirectPage /> }.into_any(),
        Route::Invite => view! { <pages::InvitePage /> }.into_any(),
        Route::People => view! { <pages::PeoplePage /> }.into_any(),
        Route::Person(user) => view! { <pages::PersonPage user=user /> }.into_any(),
        Route::Audit => view! { <pages::AuditPage /> }.into_any(),
        _ => view! {
            <pages::ConversationsPage pinned=above_the_list() />
        }
        .into_any(),
    })
}

/// How to put Huddle on the home screen: under the conversation list, a
/// moment after it, so that the list itself waits for nothing.
#[wasm_split(screens, wasm_split_path = ::leptos::wasm_split, fallible)]
fn split_install_help() -> Result<AnyView, NotLoaded> {
    Ok(view! { <crate::components::InstallHelp /> }.into_any())
}

/// The install help, once the screens' module is here (nothing if it
/// cannot be fetched: it is help, not the app).
pub fn install_help() -> AnyView {
    Suspend::new(async move {
        split_install_help()
            .await
            .unwrap_or_else(|NotLoaded| ().into_any())
    })
    .into_any()
}

/// Urgent broadcasts pinned above the conversation list. Acknowledging
/// one runs the session, so this is in the screens' module, not the page
/// module; the session pins nothing before its engine (also fetched) runs.
/// Called only from the page module (see `App`'s list).
#[wasm_split(screens, wasm_split_path = ::leptos::wasm_split, fallible)]
fn split_pinned_broadcasts() -> Result<AnyView, NotLoaded> {
    Ok(above_the_list())
}

/// What the screens' module puts above the conversation list: urgent
/// broadcasts, and for administrators the membership reviews due.
fn above_the_list() -> AnyView {
    view! {
        <crate::components::PinnedBroadcasts />
        <crate::components::ReviewsDue />
    }
    .into_any()
}

/// The pinned broadcasts, once the screens' module is here.
pub fn pinned_broadcasts() -> AnyView {
    Suspend::new(async move {
        split_pinned_broadcasts()
            .await
            .unwrap_or_else(|NotLoaded| ().into_any())
    })
    .into_any()
}

/// The screen of a phone the relay signed out.
#[wasm_split(screens, wasm_split_path = ::leptos::wasm_split, fallible)]
fn split_signed_out(why: SignOut) -> Result<AnyView, NotLoaded> {
    Ok(view! { <pages::SignedOutPage why=why /> }.into_any())
}

/// Shows the signed-out screen, or a message with a retry if it cannot be
/// fetched.
pub fn signed_out_screen(model: AppModel, why: SignOut) -> AnyView {
    Suspend::new(async move {
        split_signed_out(why)
            .await
            .unwrap_or_else(|NotLoaded| not_loaded(model))
    })
    .into_any()
}

/// Choosing a passcode, after joining.
#[wasm_split(screens, wasm_split_path = ::leptos::wasm_split, fallible)]
fn split_choose_passcode() -> Result<AnyView, NotLoaded> {
    Ok(view! { <pages::ChoosePasscodePage /> }.into_any())
}

/// Shows the passcode screen, or a message with a retry if it cannot be
/// fetched.
pub fn choose_passcode_screen(model: AppModel) -> AnyView {
    Suspend::new(async move {
        split_choose_passcode()
            .await
            .unwrap_or_else(|NotLoaded| not_loaded(model))
    })
    .into_any()
}

/// The question put to a phone the relay did not recognise.
#[wasm_split(screens, wasm_split_path = ::leptos::wasm_split, fallible)]
fn split_not_recognised(unsent: usize) -> Result<AnyView, NotLoaded> {
    Ok(view! { <pages::NotRecognisedPage unsent=unsent /> }.into_any())
}

/// Shows the question to a phone the relay did not recognise, or a message
/// with a retry if it cannot be fetched.
pub fn not_recognised_screen(model: AppModel, unsent: usize) -> AnyView {
    Suspend::new(async move {
        split_not_recognised(unsent)
            .await
            .unwrap_or_else(|NotLoaded| not_loaded(model))
    })
    .into_any()
}

/// Fetches the screens' module in the background, once the first screen is
/// up, so that the first tap on a conversation does not wait for it. A
/// failure here costs nothing: the screen fetches it again when opened.
pub fn prefetch_screens() {
    leptos::task::spawn_local(async {
        let _ = preload_screens().await;
    });
}

/// Shows a screen from the split `screens` module: nothing while the module
/// is fetched (from the phone's cache this takes milliseconds), then the
/// screen, or a message with a retry if it cannot be fetched. The first
/// screens (welcome, join form, conversation list) are not shown this way.
pub fn screen(model: AppModel, route: Route) -> AnyView {
    Suspend::new(async move {
        split_screen(route)
            .await
            .unwrap_or_else(|NotLoaded| not_loaded(model))
    })
    .into_any()
}

fn not_loaded(model: AppModel) -> AnyView {
    view! {
        <main class="page" id="main">
            <h1 class="page__title">"This screen could not be opened"</h1>
            <p class="notice notice--error" role="alert">{NOT_LOADED}</p>
            <button class="button" type="button"
                on:click=move |_| model.route.set(model.route.get_untracked())>"Try again"</button>
        </main>
    }
    .into_any()
}
