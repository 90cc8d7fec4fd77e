//! The phone's camera, for reading a colleague's safety-number code: the browser's own barcode reader where it has one, a QR decoder in the app elsewhere.
//!
//! Frames never leave the page: each is read from the video into a canvas,
//! decoded here, and dropped.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    CanvasRenderingContext2d, HtmlCanvasElement, HtmlVideoElement, MediaStream,
    MediaStreamConstraints, MediaStreamTrack,
};

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
const MAX_SIDE: u32 = 640;

/// The camera, streaming into a video element until stopped.
pub struct Camera {
    stream: MediaStream,
    detector: Option<JsValue>,
}

impl Camera {
    /// Asks for the back camera and shows it in `video`.
    pub async fn open(video: &HtmlVideoElement) -> Result<Camera, CameraError> {
        let media = web_sys::window()
            .and_then(|w| w.navigator().media_devices().ok())
            .ok_or(CameraError::NoCamera)?;
        let constraints = MediaStreamConstraints::new();
        let facing = Object::new();
        let _ = Reflect::set(&facing, &"facingMode".into(), &"environment".into());
        constraints.set_video(&facing);
        constraints.set_audio(&JsValue::FALSE);
        let asked = media
            .get_user_media_with_constraints(&constraints)
            .map_err(|_| CameraError::NoCamera)?;
        let stream: MediaStream = JsFuture::from(asked)
            .await
            .map_err(|error| {
                let name = Reflect::get(&error, &"name".into())
                    .ok()
                    .and_then(|n| n.as_string());
                match name.as_deref() {
                    Some("NotAllowedError") | Some("SecurityError") => CameraError::NotAllowed,
                    _ => CameraError::NoCamera,
                }
            })?
            .dyn_into()
            .map_err(|_| CameraError::NoCamera)?;
        video.set_src_object(Some(&stream));
        if let Ok(playing) = video.play() {
            let _ = JsFuture::from(playing).await;
        }
        Ok(Camera {
            stream,
            detector: barcode_detector(),
        })
    }

    /// Reads a QR code from the frame on screen now, if there is one.
    pub async fn read(
        &self,
        video: &HtmlVideoElement,
        canvas: &HtmlCanvasElement,
    ) -> Option<String> {
        if let Some(detector) = &self.detector {
            return detect(detector, video).await;
        }
        let (width, height, luma) = grey_frame(video, canvas)?;
        decode_qr(width, height, &luma)
    }

    /// Turns the camera off (its light goes out).
    pub fn stop(&self) {
        for track in self.stream.get_tracks().iter() {
            if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
                track.stop();
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
    let window = web_sys::window()?;
    let constructor: Function = Reflect::get(&window, &"BarcodeDetector".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let options = Object::new();
    let _ = Reflect::set(&options, &"formats".into(), &Array::of1(&"qr_code".into()));
    Reflect::construct(&constructor, &Array::of1(&options)).ok()
}

async fn detect(detector: &JsValue, video: &HtmlVideoElement) -> Option<String> {
    let detect: Function = Reflect::get(detector, &"detect".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let found: Promise = detect.call1(detector, video).ok()?.dyn_into().ok()?;
    let codes: Array = JsFuture::from(found).await.ok()?.dyn_into().ok()?;
    codes
        .iter()
        .find_map(|code| Reflect::get(&code, &"rawValue".into()).ok()?.as_string())
}

/// The frame on screen as grey levels, at most [`MAX_SIDE`] on its longer side.
fn grey_frame(video: &HtmlVideoElement, canvas: &HtmlCanvasElement) -> Option<(u32, u32, Vec<u8>)> {
    let (source_width, source_height) = (video.video_width(), video.video_height());
    if source_width == 0 || source_height == 0 {
        return None;
    }
    let scale = f64::from(MAX_SIDE) / f64::from(source_width.max(source_height));
    let scale = scale.min(1.0);
    let width = ((f64::from(source_width) * scale) as u32).max(1);
    let height = ((f64::from(source_height) * scale) as u32).max(1);
    canvas.set_width(width);
    canvas.set_height(height);
    let context: CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    context
        .draw_image_with_html_video_element_and_dw_and_dh(
            video,
            0.0,
            0.0,
            f64::from(width),
            f64::from(height),
        )
        .ok()?;
    let rgba = context
        .get_image_data(0.0, 0.0, f64::from(width), f64::from(height))
        .ok()?
        .data();
    let luma = rgba
        .chunks_exact(4)
        .map(|p| {
            ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
        })
        .collect();
    Some((width, height, luma))
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
