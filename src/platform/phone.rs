//! The session on the browser: which types it runs on, loading it from the page's cache, and starting it with the crypto worker and the connection.

use super::browser;
use super::cache::IdbCache;
use super::crypto_worker::WorkerCrypto;
use super::runtime::{BrowserClock, BrowserRandomness, ConsoleLog, LocalTasks};
use super::socket::WsTransport;
use crate::model::{AppModel, ModelScreen};
use huddle_session::{Cache, Parts, Phone, Platform, SessionError};
use leptos::prelude::Update;

/// The browser, as the session's platform.
pub struct Browser;

impl Platform for Browser {
    type Cache = IdbCache;
    type Crypto = WorkerCrypto;
    type Transport = WsTransport;
    type Clock = BrowserClock;
    type Randomness = BrowserRandomness;
    type Screen = ModelScreen;
    type Tasks = LocalTasks;
    type Log = ConsoleLog;
}

/// The phone's session in this app.
pub type AppPhone = Phone<Browser>;

/// What opening the app found.
pub enum Opened {
    /// This phone has not joined: no data key was made or unwrapped, so
    /// that the first screen of a new phone does not wait for WebCrypto.
    NotJoined,
    /// A passcode locks it: nothing was read.
    Locked,
    /// It opened (no passcode yet: the person is asked to choose one).
    Phone(&'static AppPhone),
}

/// Loads the phone from its cache and paints the conversation list, unless
/// a passcode locks it: then nothing is read until it is unlocked.
pub async fn load(model: AppModel) -> Result<Opened, SessionError> {
    let cache = IdbCache::open().await?;
    if !cache.has_enrolment().await? {
        cache.close();
        return Ok(Opened::NotJoined);
    }
    if !cache.keeps_data_key().await? {
        cache.close();
        return Ok(Opened::Locked);
    }
    if worker_is_locked().await {
        // The crypto worker kept the lock but the page had not yet deleted
        // the key it kept beside its data when the app stopped: it is
        // wrapped in the lock already, so it goes now.
        cache.forget_kept_key().await?;
        cache.close();
        return Ok(Opened::Locked);
    }
    Ok(match load_from(model, cache.unlock().await?).await? {
        Some(phone) => Opened::Phone(phone),
        None => Opened::NotJoined,
    })
}

/// Loads the phone from a cache already open and unlocked (registration
/// has just saved this phone's enrolment in it).
pub async fn load_from(
    model: AppModel,
    cache: IdbCache,
) -> Result<Option<&'static AppPhone>, SessionError> {
    let parts = Parts {
        cache,
        clock: BrowserClock,
        randomness: BrowserRandomness,
        screen: ModelScreen(model),
        tasks: LocalTasks,
        log: ConsoleLog,
    };
    // The phone lives as long as the page (see `AppModel::set_phone`).
    let phone = Phone::load(parts)
        .await?
        .map(|phone| model.set_phone(phone));
    #[cfg(feature = "bench")]
    if let Some(phone) = phone {
        super::bench_hooks::loaded(phone);
    }
    Ok(phone)
}

/// Runs a loaded phone and starts it: the crypto worker (`crypto`, if
/// registration already spawned it) and the connection. It is woken when
/// the network comes back or the page is shown again; no reliance on
/// Background Sync.
pub async fn start(
    model: AppModel,
    phone: &'static AppPhone,
    crypto: Option<WorkerCrypto>,
) -> Result<(), SessionError> {
    phone.run();
    browser::on_online({
        move || {
            model.connection.update(|c| c.browser_online = true);
            phone.wake();
        }
    });
    browser::on_offline(move || model.connection.update(|c| c.browser_online = false));
    browser::on_visibility(move |hidden| phone.set_visible(!hidden));
    model
        .connection
        .update(|c| c.browser_online = browser::is_online());
    phone.set_visible(!browser::is_hidden());
    let crypto = match crypto {
        Some(crypto) => crypto,
        None => WorkerCrypto::spawn()?,
    };
    phone.start(crypto, WsTransport::default()).await
}

/// Whether the crypto worker's database holds a passcode lock (read raw:
/// the page does not know the worker's schema, and needs no key for this).
async fn worker_is_locked() -> bool {
    matches!(
        huddle_idb::peek_raw(huddle_core::crypto_worker::WORKER_DATABASE, "lock", "lock").await,
        Ok(Some(_))
    )
}
