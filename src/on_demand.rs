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
use crate::platform::client;
use crate::platform::crypto_worker::CryptoWorkerClient;
use crate::platform::idb::IdbDatabase;
use crate::platform::registration::{self, LinkKind};
use crate::state::records::Session;
use crate::state::route::Route;
use leptos::prelude::*;
use leptos::wasm_split::{wasm_split, SplitLoaderError};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

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
type Work<T> = Pin<Box<dyn Future<Output = Result<T, String>>>>;

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_start(
    model: AppModel,
    db: Rc<IdbDatabase>,
    session: Session,
    worker: Option<CryptoWorkerClient>,
) -> Result<Work<()>, NotLoaded> {
    Ok(Box::pin(client::start(model, db, session, worker)))
}

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_register(
    kind: LinkKind,
    secret: String,
    org_name: String,
    display_name: String,
) -> Result<Work<(IdbDatabase, Session, CryptoWorkerClient)>, NotLoaded> {
    Ok(Box::pin(async move {
        registration::register(kind, &secret, &org_name, &display_name).await
    }))
}

#[wasm_split(engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn engine_check_encryption() -> Result<Work<()>, NotLoaded> {
    Ok(Box::pin(async {
        let worker = CryptoWorkerClient::spawn().map_err(|e| e.to_string())?;
        worker.ping().await.map(|_| ()).map_err(|e| e.to_string())
    }))
}

/// Runs work from a split module, or says that the module could not be fetched.
async fn finish<T>(loaded: Result<Work<T>, NotLoaded>) -> Result<T, String> {
    match loaded {
        Ok(work) => work.await,
        Err(NotLoaded) => Err(NOT_LOADED.to_owned()),
    }
}

/// Whether this phone can run Huddle's encryption: the crypto worker starts
/// and answers (the welcome page's check).
pub async fn check_encryption() -> Result<(), String> {
    finish(engine_check_encryption().await).await
}

/// Starts the sync engine: the crypto worker, the connection and the outbox.
pub async fn start_engine(
    model: AppModel,
    db: Rc<IdbDatabase>,
    session: Session,
    worker: Option<CryptoWorkerClient>,
) -> Result<(), String> {
    finish(engine_start(model, db, session, worker).await).await
}

/// Registers this phone with a first-run or invite link (see
/// `registration::register`).
pub async fn register(
    kind: LinkKind,
    secret: String,
    org_name: String,
    display_name: String,
) -> Result<(IdbDatabase, Session, CryptoWorkerClient), String> {
    finish(engine_register(kind, secret, org_name, display_name).await).await
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
        _ => view! { <pages::ConversationsPage /> }.into_any(),
    })
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
