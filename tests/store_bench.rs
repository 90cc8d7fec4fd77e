//! Benchmark: the page's encrypted cache with 10,000 messages in one conversation, in headless Chromium (release build).
//!
//! Measures what opening a conversation costs before its first paint (read
//! and decrypt the newest page of messages, and turn them into views), what
//! the expiry sweep of 10,000 messages costs, and how long a wipe of a phone
//! holding 10,000 messages takes (every store emptied, the databases
//! deleted). Prints a table and one
//! `HUDDLE-BENCH-JSON` line that scripts/bench writes to reports/.
#![cfg(all(target_arch = "wasm32", feature = "bench"))]

use huddle::platform::cache::IdbCache;
use huddle::state::conversations::message_views;
use huddle::state::shifts::Viewer;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_session::{
    Cache, CacheWrite, Delivery, Directory, MessageBody, MessageRecord, ShownMessage,
    PAGE as FIRST_PAGE,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MESSAGES: u32 = 10_000;
const RUNS: usize = 5;

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The writes that cache 10,000 messages of `group`.
fn seed(group: GroupId, expires_at: u64) -> Vec<CacheWrite> {
    (0..MESSAGES)
        .map(|n| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            CacheWrite::Message(MessageRecord {
                group,
                client_msg: ClientMessageId::from_bytes(id),
                sender: UserId::from_bytes([(n % 7) as u8; 16]),
                sender_device: DeviceId::from_bytes([1; 16]),
                sent_at: UnixMillis(1_000 + u64::from(n)),
                expires_at: UnixMillis(expires_at + u64::from(n)),
                body: MessageBody::Text(format!(
                    "Handover note {n}: bay 3 is short of gloves, more due at six."
                )),
            })
        })
        .collect()
}

#[wasm_bindgen_test]
async fn ten_thousand_messages_open_and_expire() {
    let name = "huddle-bench-store";
    let group = GroupId::from_bytes([9; 16]);
    let me = UserId::from_bytes([0; 16]);
    let directory = Directory::default();
    let mut open_ms = Vec::new();
    let mut sweep_ms = Vec::new();
    let mut wipe_ms = Vec::new();
    for _ in 0..RUNS {
        IdbCache::delete_database(name).await.expect("clean");
        let db = IdbCache::open_named(name)
            .await
            .expect("open")
            .unlock()
            .await
            .expect("key");
        db.write(seed(group, 1_000_000)).await.expect("seed");

        let started = now_ms();
        let page = db.latest_messages(group, FIRST_PAGE).await.expect("read");
        let shown: Vec<ShownMessage> = page
            .into_iter()
            .rev()
            .map(|message| ShownMessage {
                message,
                delivery: Delivery::Received,
                shift: None,
            })
            .collect();
        let viewer = Viewer {
            me,
            administrator: false,
            this_year: 2026,
        };
        let views = message_views(&shown, &directory, viewer);
        open_ms.push(now_ms() - started);
        assert_eq!(views.len(), FIRST_PAGE as usize);

        let started = now_ms();
        db.expire(UnixMillis(u64::MAX / 2)).await.expect("sweep");
        sweep_ms.push(now_ms() - started);
        assert_eq!(db.message_count(group).await.expect("count"), 0);

        db.write(seed(group, 1_000_000)).await.expect("seed again");
        let started = now_ms();
        db.wipe().await.expect("wipe");
        IdbCache::delete_database_within(name)
            .await
            .expect("delete");
        wipe_ms.push(now_ms() - started);
        db.close();
    }
    IdbCache::delete_database(name).await.expect("clean");
    let (open, sweep, wipe) = (median(open_ms), median(sweep_ms), median(wipe_ms));
    let table = format!(
        "\n| with {MESSAGES} cached messages (median of {RUNS}) | ms | budget |\n\
         | --- | --- | --- |\n\
         | open a conversation: newest {FIRST_PAGE} read, decrypted, viewed | {open:.1} | 100 |\n\
         | expiry sweep of all {MESSAGES} (one key-range delete) | {sweep:.1} | 250 |\n\
         | wipe: every store emptied, the databases deleted | {wipe:.1} | 1000 |\n"
    );
    web_sys::console::log_1(&table.into());
    let json = format!(
        "HUDDLE-BENCH-JSON {{\"messages\":{MESSAGES},\"first_page\":{FIRST_PAGE},\"open_conversation_ms\":{open:.2},\"expiry_sweep_ms\":{sweep:.2},\"wipe_ms\":{wipe:.2}}}"
    );
    web_sys::console::log_1(&json.into());
}
