//! A QR code drawn as SVG (no images, no scripts), for invites shown on the manager's screen.

use leptos::prelude::*;
use qrcodegen::{QrCode, QrCodeEcc};

/// The SVG path of the code's dark modules, and the code's size in modules.
fn qr_path(text: &str) -> Option<(String, i32)> {
    let code = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let size = code.size();
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if code.get_module(x, y) {
                path.push_str(&format!("M{x},{y}h1v1h-1z"));
            }
        }
    }
    Some((path, size))
}

#[component]
pub fn QrCodeView(text: String, label: String) -> impl IntoView {
    match qr_path(&text) {
        Some((path, size)) => {
            let border = 4;
            let view_box = format!(
                "{} {} {} {}",
                -border,
                -border,
                size + 2 * border,
                size + 2 * border
            );
            view! {
                <svg class="qr" viewBox=view_box role="img" aria-label=label shape-rendering="crispEdges">
                    <rect x=-border y=-border width=size + 2 * border height=size + 2 * border fill="#ffffff" />
                    <path d=path fill="#000000" />
                </svg>
            }
            .into_any()
        }
        None => {
            view! { <p>"This link is too long for a code; share the link instead."</p> }.into_any()
        }
    }
}
