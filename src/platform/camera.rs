//! The phone's camera, for reading a colleague's safety-number code: the browser's own barcode reader where it has one, a QR decoder in the app elsewhere.
//!
//! Frames never leave the page: each is read from the video into a canvas,
//! decoded here, and dropped.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

// The browser is reached through `Reflect` here rather than web-sys's typed
// bindings: each typed binding adds its own glue to the script every phone
// downloads before its first screen, and the camera is used rarely.

/// Why the camera could not be used, for the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraError {
    /// She (or the browser's settings) said no.
    NotAllowed,
    /// There is no camera, or the browser gives the app none.
    NoCamera,
}

impl CameraError {
    pub fn words(self) -> &'static str {
        match self {
            CameraError::NotAllowed => "Huddle may not use the camera. Allow the camera for Huddle in your browser's settings, or compare the numbers instead.",
            CameraError::NoCamera => "Huddle could not find a camera on this phone. Compare the numbers instead.",
        }
    }
}

/// The largest frame side the in-app decoder looks at: enough for a code
/// held at arm's length, small enough to decode in a few milliseconds.
const MAX_SIDE: f64 = 640.0;

fn get(target: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(target, &name.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn set(target: &JsValue, name: &str, value: &JsValue) {
    let _ = Reflect::set(target, &name.into(), value);
}

/// Calls `target.method(...args)`.
fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Option<JsValue> {
    let function: Function = get(target, method)?.dyn_into().ok()?;
    function.apply(target, &args.iter().collect::<Array>()).ok()
}

/// Waits for a promise (or takes a plain value as it is).
async fn wait(promise: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(Promise::resolve(&promise)).await
}

/// The camera, streaming into a video element until stopped.
pub struct Camera {
    stream: JsValue,
    detector: Option<JsValue>,
}

impl Camera {
    /// Asks for the back camera and shows it in `video`.
    pub async fn open(video: &JsValue) -> Result<Camera, CameraError> {
        let navigator = web_sys::window()
            .map(|w| JsValue::from(w.navigator()))
            .ok_or(CameraError::NoCamera)?;
        let media = get(&navigator, "mediaDevices").ok_or(CameraError::NoCamera)?;
        let constraints = Object::new();
        let facing = Object::new();
        set(&facing, "facingMode", &"environment".into());
        set(&constraints, "video", &facing);
        set(&constraints, "audio", &JsValue::FALSE);
        let asked =
            call(&media, "getUserMedia", &[constraints.into()]).ok_or(CameraError::NoCamera)?;
        let stream = wait(asked).await.map_err(|error| {
            match get(&error, "name").and_then(|n| n.as_string()).as_deref() {
                Some("NotAllowedError") | Some("SecurityError") => CameraError::NotAllowed,
                _ => CameraError::NoCamera,
            }
        })?;
        set(video, "srcObject", &stream);
        if let Some(playing) = call(video, "play", &[]) {
            let _ = wait(playing).await;
        }
        Ok(Camera {
            stream,
            detector: barcode_detector(),
        })
    }

    /// Reads a QR code from the frame on screen now, if there is one.
    pub async fn read(&self, video: &JsValue, canvas: &JsValue) -> Option<String> {
        if let Some(detector) = &self.detector {
            return detect(detector, video).await;
        }
        let (width, height, luma) = grey_frame(video, canvas)?;
        decode_qr(width, height, &luma)
    }

    /// Turns the camera off (its light goes out).
    pub fn stop(&self) {
        if let Some(tracks) = call(&self.stream, "getTracks", &[]) {
            for track in Array::from(&tracks).iter() {
                let _ = call(&track, "stop", &[]);
            }
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The browser's barcode reader for QR codes, where it has one.
fn barcode_detector() -> Option<JsValue> {
    let window = JsValue::from(web_sys::window()?);
    let constructor: Function = get(&window, "BarcodeDetector")?.dyn_into().ok()?;
    let options = Object::new();
    set(&options, "formats", &Array::of1(&"qr_code".into()));
    Reflect::construct(&constructor, &Array::of1(&options)).ok()
}

async fn detect(detector: &JsValue, video: &JsValue) -> Option<String> {
    let found = call(detector, "detect", std::slice::from_ref(video))?;
    let codes = Array::from(&wait(found).await.ok()?);
    codes
        .iter()
        .find_map(|code| get(&code, "rawValue")?.as_string())
}

/// The frame on screen as grey levels, at most [`MAX_SIDE`] on its longer side.
fn grey_frame(video: &JsValue, canvas: &JsValue) -> Option<(u32, u32, Vec<u8>)> {
    let source_width = get(video, "videoWidth")?.as_f64()?;
    let source_height = get(video, "videoHeight")?.as_f64()?;
    if source_width < 1.0 || source_height < 1.0 {
        return None;
    }
    let scale = (MAX_SIDE / source_width.max(source_height)).min(1.0);
    let width = (source_width * scale).floor().max(1.0);
    let height = (source_height * scale).floor().max(1.0);
    set(canvas, "width", &width.into());
    set(canvas, "height", &height.into());
    let context = call(canvas, "getContext", &["2d".into()])?;
    call(
        &context,
        "drawImage",
        &[
            video.clone(),
            0.0.into(),
            0.0.into(),
            width.into(),
            height.into(),
        ],
    )?;
    let image = call(
        &context,
        "getImageData",
        &[0.0.into(), 0.0.into(), width.into(), height.into()],
    )?;
    let rgba = Uint8Array::new(&get(&image, "data")?).to_vec();
    let luma = rgba
        .chunks_exact(4)
        .map(|p| {
            ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
        })
        .collect();
    Some((width as u32, height as u32, luma))
}

/// Decodes the first QR code found in a grey image.
pub fn decode_qr(width: u32, height: u32, luma: &[u8]) -> Option<String> {
    let (w, h) = (width as usize, height as usize);
    if luma.len() != w.checked_mul(h)? {
        return None;
    }
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma[y * w + x]);
    image
        .detect_grids()
        .into_iter()
        .find_map(|grid| grid.decode().ok().map(|(_, content)| content))
}
