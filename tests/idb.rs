//! Browser test: records round-trip through IndexedDB (rexie) in headless Chromium.
#![cfg(target_arch = "wasm32")]

use huddle::platform::idb::{IdbDatabase, META_STORE};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_record_round_trips_and_survives_reopening() {
    let name = "huddle-test-roundtrip";
    IdbDatabase::delete_database(name)
        .await
        .expect("start clean");

    let db = IdbDatabase::open(name).await.expect("open");
    assert_eq!(db.get(META_STORE, "device").await.expect("get"), None);

    let record: Vec<u8> = (0..=255u8).collect();
    db.put(META_STORE, "device", &record).await.expect("put");
    assert_eq!(
        db.get(META_STORE, "device").await.expect("get"),
        Some(record.clone())
    );
    db.close();

    // A second connection (as after a reload) reads the same bytes.
    let reopened = IdbDatabase::open(name).await.expect("reopen");
    assert_eq!(
        reopened.get(META_STORE, "device").await.expect("get"),
        Some(record)
    );

    reopened.delete(META_STORE, "device").await.expect("delete");
    assert_eq!(reopened.get(META_STORE, "device").await.expect("get"), None);
    reopened
        .delete(META_STORE, "missing")
        .await
        .expect("deleting a missing record is fine");
    reopened.close();
    IdbDatabase::delete_database(name).await.expect("clean up");
}

#[wasm_bindgen_test]
async fn a_missing_store_is_a_typed_error_not_a_panic() {
    let name = "huddle-test-missing-store";
    let db = IdbDatabase::open(name).await.expect("open");
    assert!(db.get("no-such-store", "k").await.is_err());
    assert!(db.put("no-such-store", "k", b"v").await.is_err());
    db.close();
    IdbDatabase::delete_database(name).await.expect("clean up");
}
