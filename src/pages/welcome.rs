//! The first screen on a phone that is not set up yet: what Huddle is, how to join, and whether this phone is ready.

use crate::components::CheckList;
use crate::on_demand;
use crate::platform;
use crate::state::device_checks::{CheckKind, CheckState, DeviceCheck, DeviceChecks};
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn WelcomePage() -> impl IntoView {
    let checks = RwSignal::new(DeviceChecks::default());
    let set = move |kind: CheckKind, state: CheckState| checks.update(|c| c.set(kind, state));

    // Each check runs on its own, so that a slow one does not hold up the others.
    spawn_local(async move {
        let state = match platform::service_worker::register().await {
            Ok(()) => CheckState::Ready,
            Err(e) => CheckState::Failed(crate::state::words::offline_start(&e).into()),
        };
        set(CheckKind::OfflineStart, state);
    });
    spawn_local(async move {
        let state = match on_demand::check_encryption().await {
            Ok(()) => CheckState::Ready,
            Err(e) => CheckState::Failed(e),
        };
        set(CheckKind::Encryption, state);
    });
    spawn_local(async move {
        let state = match platform::cache::IdbCache::open().await {
            Ok(cache) => {
                cache.close();
                CheckState::Ready
            }
            Err(e) => CheckState::Failed(crate::state::words::cache_error(&e).into()),
        };
        set(CheckKind::Storage, state);
    });

    let check_list: Signal<Vec<DeviceCheck>> =
        Signal::derive(move || checks.with(|c| c.checks().to_vec()));

    view! {
        <main class="page" id="main">
            <h1 class="page__title">"Secure messaging for your care team"</h1>
            <p class="page__lead">
                "This phone is not set up for Huddle yet. To join your team, open the invite link "
                "your manager sent you, or scan the invite code on their screen."
            </p>
            <CheckList title="This phone" checks=check_list />
        </main>
    }
}
