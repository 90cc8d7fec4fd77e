//! Waiting for a plain IndexedDB request, for the calls rexie does not make.

use crate::IdbError;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// Resolves with the request's result once it succeeds, or fails.
pub async fn request_result(request: &web_sys::IdbRequest) -> Result<JsValue, IdbError> {
    let (sender, receiver) = futures::channel::oneshot::channel::<bool>();
    let sender = Rc::new(RefCell::new(Some(sender)));
    let settle = |succeeded: bool| {
        let sender = sender.clone();
        Closure::<dyn FnMut()>::new(move || {
            if let Some(sender) = sender.borrow_mut().take() {
                let _ = sender.send(succeeded);
            }
        })
    };
    let (on_success, on_error) = (settle(true), settle(false));
    request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
    request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let succeeded = receiver.await.unwrap_or(false);
    request.set_onsuccess(None);
    request.set_onerror(None);
    if succeeded {
        request.result().map_err(|_| IdbError::Transaction)
    } else {
        Err(IdbError::Transaction)
    }
}
