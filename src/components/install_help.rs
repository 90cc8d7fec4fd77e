//! How to put Huddle on the home screen: the browser's own prompt on Android, the steps on an iPhone.

use crate::platform::browser;
use leptos::prelude::*;

#[component]
pub fn InstallHelp() -> impl IntoView {
    let dismissed = RwSignal::new(browser::is_installed());
    let apple = browser::is_apple_mobile();
    view! {
        <Show when=move || !dismissed.get()>
            // Under the conversation list, in the page's own column.
            <div class="page page--aside">
            <section class="card install" aria-labelledby="install-title">
                <h2 id="install-title" class="card__title">"Put Huddle on your home screen"</h2>
                {if apple {
                    view! {
                        <ol class="install__steps">
                            <li>"Tap the Share button (the square with an arrow) at the bottom of Safari."</li>
                            <li>"Scroll down and tap " <strong>"Add to Home Screen"</strong> "."</li>
                            <li>"Tap " <strong>"Add"</strong> ". Open Huddle from its icon from now on."</li>
                        </ol>
                    }
                        .into_any()
                } else {
                    view! {
                        <ol class="install__steps">
                            <li>"Open your browser's menu (⋮ at the top right)."</li>
                            <li>"Tap " <strong>"Install app"</strong> " or " <strong>"Add to Home screen"</strong> "."</li>
                            <li>"Open Huddle from its icon from now on: it works without a connection."</li>
                        </ol>
                    }
                        .into_any()
                }}
                <button class="button button--quiet" type="button" on:click=move |_| dismissed.set(true)>
                    "Done"
                </button>
            </section>
            </div>
        </Show>
    }
}
