//! The badge beside a person's name that says they were verified in person (or that their phone changed since), wherever the name appears.

use crate::model::AppModel;
use crate::state::verification::{badge, verification_of};
use huddle_core::ids::UserId;
use leptos::prelude::*;

#[component]
pub fn VerifiedMark(user: UserId) -> impl IntoView {
    let model = expect_context::<AppModel>();
    move || {
        let verification = model.directory.with(|directory| {
            model
                .identities
                .with(|identities| verification_of(user, directory, identities))
        });
        badge(&verification).map(|(words, class)| {
            view! { <span class=class data-testid="verified-mark">{words}</span> }
        })
    }
}
