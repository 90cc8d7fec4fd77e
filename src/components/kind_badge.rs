//! The label and colour that keep clinical, operational, social, broadcast and one-to-one conversations apart.

use crate::state::conversations::{kind_class, kind_label};
use huddle_core::retention::GroupKind;
use leptos::prelude::*;

#[component]
pub fn KindBadge(kind: GroupKind) -> impl IntoView {
    view! { <span class=format!("kind {}", kind_class(kind))>{kind_label(kind)}</span> }
}
