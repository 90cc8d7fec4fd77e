//! The passcode lock on the page: unlocking through the crypto worker, locking by reloading the page (every key in the page and the worker goes with it), and the timers that lock after idleness or time hidden.

use super::browser;
use super::cache::IdbCache;
use super::crypto_worker::WorkerCrypto;
use super::phone;
use crate::model::{AppModel, LockView};
use crate::state::words;
use huddle_core::crypto_worker::{PasscodeText, UnlockOutcome, WorkerRequest, WorkerResponse};
use huddle_session::{Cache, Crypto, SessionError, SignOut};
use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// How often the idle and hidden timers are checked.
const CHECK_EVERY_MILLIS: i32 = 1_000;

thread_local! {
    /// The crypto worker the lock screen unlocks with, kept here (in the
    /// split `engine` module, like all the code that uses it) so that the
    /// page module carries none of it.
    static WORKER: RefCell<Option<WorkerCrypto>> = const { RefCell::new(None) };
}

/// Why an unlock did not open the phone.
pub enum NotOpened {
    /// In words for the person (a wrong passcode, no connection).
    Say(String),
    /// The phone was wiped (ten wrong passcodes, or it was signed out):
    /// the signed-out screen is showing.
    Wiped,
}

fn take_worker() -> Result<WorkerCrypto, SessionError> {
    match WORKER.with(|worker| worker.borrow_mut().take()) {
        Some(worker) => Ok(worker),
        None => Ok(WorkerCrypto::spawn()?),
    }
}

fn keep_worker(worker: WorkerCrypto) {
    WORKER.with(|slot| *slot.borrow_mut() = Some(worker));
}

/// Spawns the crypto worker for the lock screen and asks where the lock
/// stands. A phone that has not unlocked with the relay for longer than
/// the organisation allows is wiped here, before anything is typed.
pub async fn prepare(model: AppModel) -> Result<(), String> {
    let result = async {
        let crypto = take_worker()?;
        let status = crypto
            .request(WorkerRequest::LockStatus {
                now: browser::now(),
            })
            .await;
        match status {
            Ok(WorkerResponse::LockStatus(status)) if !status.locked => {
                Err(SessionError::Storage(huddle_session::CacheError::Damaged))
            }
            Ok(WorkerResponse::LockStatus(status)) if status.away_too_long => {
                wipe_with(model, crypto, SignOut::AwayTooLong).await;
                Ok(())
            }
            Ok(_) => {
                keep_worker(crypto);
                Ok(())
            }
            Err(e) => Err(SessionError::from(e)),
        }
    };
    result.await.map_err(|e| words::load_error(&e).to_owned())
}

/// Tries a passcode. On success the cache opens with the key the worker
/// gave, and the phone is loaded, painted and started with this worker.
pub async fn unlock(model: AppModel, passcode: String) -> Result<(), NotOpened> {
    let say = |e: SessionError| NotOpened::Say(words::load_error(&e).to_owned());
    let crypto = take_worker().map_err(say)?;
    browser::mark("huddle:unlock-start");
    let answer = crypto
        .request(WorkerRequest::Unlock {
            passcode: PasscodeText::new(passcode),
            now: browser::now(),
        })
        .await;
    let (page_key, policy) = match answer {
        Ok(WorkerResponse::Unlock(UnlockOutcome::Unlocked { page_key, policy })) => {
            (page_key, policy)
        }
        Ok(WorkerResponse::Unlock(UnlockOutcome::Wiped)) => {
            wipe_with(model, crypto, SignOut::WrongPasscodes).await;
            return Err(NotOpened::Wiped);
        }
        Ok(WorkerResponse::Unlock(UnlockOutcome::SignedOut)) => {
            wipe_with(model, crypto, SignOut::Revoked).await;
            return Err(NotOpened::Wiped);
        }
        Ok(WorkerResponse::Unlock(refused)) => {
            keep_worker(crypto);
            return Err(NotOpened::Say(words::unlock_refused(&refused)));
        }
        Ok(_) => {
            keep_worker(crypto);
            return Err(say(SessionError::UnexpectedAnswer));
        }
        Err(huddle_session::CryptoError::Refused(refusal))
            if refusal.kind == huddle_core::crypto_worker::WorkerErrorKind::Passcode =>
        {
            // Too short to be anyone's passcode: no guess was spent.
            keep_worker(crypto);
            return Err(NotOpened::Say(refusal.message));
        }
        Err(e) => {
            keep_worker(crypto);
            return Err(say(e.into()));
        }
    };
    browser::measure_since("huddle:unlock-keys", "huddle:unlock-start");
    let loaded = async {
        let cache = IdbCache::open().await?.unlock_with(&page_key)?;
        phone::load_from(model, cache).await
    };
    let phone = match loaded.await {
        Ok(Some(phone)) => phone,
        Ok(None) => {
            keep_worker(crypto);
            return Err(say(SessionError::Starting));
        }
        Err(e) => {
            keep_worker(crypto);
            return Err(say(e));
        }
    };
    drop(page_key);
    model.policy.set(policy);
    model.lock.set(LockView::Open);
    browser::mark_after_render("huddle:unlocked");
    leptos::task::spawn_local(async move {
        if let Err(error) = phone::start(model, phone, Some(crypto)).await {
            model.tell(&error);
        }
    });
    Ok(())
}

/// Wipes a locked phone because the person forgot her passcode.
pub async fn wipe_forgotten(model: AppModel) {
    match take_worker() {
        Ok(crypto) => wipe_with(model, crypto, SignOut::ForgottenPasscode).await,
        Err(_) => {
            if let Ok(cache) = IdbCache::open().await {
                let _ = cache.wipe().await;
            }
            model.signed_out.set(Some(SignOut::ForgottenPasscode));
        }
    }
}

/// Wipes a locked phone: both databases are emptied, the worker stops, and
/// the signed-out screen deletes the rest.
async fn wipe_with(model: AppModel, crypto: WorkerCrypto, why: SignOut) {
    // The worker's database and the page's, at once.
    let page = async {
        if let Ok(cache) = IdbCache::open().await {
            let _ = cache.wipe().await;
        }
    };
    let _ = futures::join!(crypto.request(WorkerRequest::Wipe), page);
    drop(crypto);
    model.lock.set(LockView::Open);
    model.enrolment.set(None);
    model.signed_out.set(Some(why));
}

/// Locks now: the lock screen replaces everything at once, then the page
/// reloads, so that every key, every message painted and the worker's
/// memory go with it (the reload finds the lock and shows only the lock
/// screen again).
pub fn lock_now(model: AppModel) {
    if model.lock.get_untracked() != LockView::Open {
        return;
    }
    browser::mark("huddle:lock-start");
    model.lock.set(LockView::Locked);
    browser::after(0, || {
        browser::measure_since("huddle:locked", "huddle:lock-start");
        browser::reload();
    });
}

/// When something happened, by both clocks: the monotonic one (which a
/// clock turned back cannot fool) and the wall clock (which goes on while
/// the phone sleeps, when the monotonic one stops on most phones).
#[derive(Clone, Copy)]
struct Moment {
    monotonic: u64,
    wall: u64,
}

impl Moment {
    fn now() -> Self {
        Moment {
            monotonic: browser::monotonic_millis(),
            wall: browser::now().0,
        }
    }

    /// Whether at least `millis` have passed since, by either clock.
    fn passed(self, millis: u64) -> bool {
        let now = Moment::now();
        now.monotonic.saturating_sub(self.monotonic) >= millis
            || now.wall.saturating_sub(self.wall) >= millis
    }
}

/// Watches for idleness and time hidden, and locks when the organisation's
/// limits pass (only while unlocked with a passcode set). Checked every
/// second, and at once when the app comes back into view or focus, before
/// anything is uncovered.
pub fn watch(model: AppModel) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let last_touch = Rc::new(Cell::new(Moment::now()));
    let hidden_since: Rc<Cell<Option<Moment>>> = Rc::new(Cell::new(None));
    for event in ["pointerdown", "keydown", "touchstart", "wheel", "input"] {
        let last_touch = last_touch.clone();
        let closure = Closure::<dyn Fn()>::new(move || last_touch.set(Moment::now()));
        let _ = window.add_event_listener_with_callback_and_bool(
            event,
            closure.as_ref().unchecked_ref(),
            true,
        );
        closure.forget(); // page-lifetime listener
    }
    let check = {
        let (last_touch, hidden_since) = (last_touch.clone(), hidden_since.clone());
        move || {
            if model.lock.get_untracked() != LockView::Open || model.phone().is_none() {
                return;
            }
            let policy = model.policy.get_untracked();
            let idle = policy.lock_after_idle_secs.saturating_mul(1000);
            let hidden = policy.lock_after_hidden_secs.saturating_mul(1000);
            let idle_too_long = idle > 0 && last_touch.get().passed(idle);
            let hidden_too_long = hidden_since.get().is_some_and(|since| since.passed(hidden));
            if idle_too_long || hidden_too_long {
                lock_now(model);
            }
        }
    };
    for back in ["focus", "pageshow"] {
        let check = check.clone();
        let closure = Closure::<dyn Fn()>::new(check);
        // Capturing, so that this runs before the cover is lifted.
        let _ = window.add_event_listener_with_callback_and_bool(
            back,
            closure.as_ref().unchecked_ref(),
            true,
        );
        closure.forget(); // page-lifetime listener
    }
    browser::on_visibility({
        let check = check.clone();
        move |hidden| {
            if hidden {
                hidden_since.set(Some(Moment::now()));
                check();
            } else {
                // Back in view: locked first if it was away too long.
                check();
                hidden_since.set(None);
                last_touch.set(Moment::now());
            }
        }
    });
    browser::every(CHECK_EVERY_MILLIS, check);
}
