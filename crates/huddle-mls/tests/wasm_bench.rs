//! The MLS benchmark in a dedicated Web Worker in headless Chromium, as the crypto worker runs it (run by `scripts/bench`).
#![cfg(target_arch = "wasm32")]

use huddle_mls::bench::{json, run, table, BenchPlan};
use wasm_bindgen::JsCast;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn performance_now() -> f64 {
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .expect("performance exists in workers");
    let now: js_sys::Function = js_sys::Reflect::get(&performance, &"now".into())
        .expect("performance.now exists")
        .unchecked_into();
    now.call0(&performance)
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0)
}

#[wasm_bindgen_test::wasm_bindgen_test]
async fn mls_benchmark_in_a_worker() {
    let rows = run(BenchPlan::FULL, &performance_now).await;
    wasm_bindgen_test::console_log!(
        "{}",
        table(
            "MLS 0x0007, wasm in a dedicated worker (release build, headless Chromium)",
            &rows
        )
    );
    // `scripts/bench` picks this line out of the runner's output.
    wasm_bindgen_test::console_log!("HUDDLE-BENCH-JSON {}", json("wasm-worker", &rows));
}
