//! Browser test: one write across stores commits whole or not at all, and a sealed record opens only where it was stored.
#![cfg(target_arch = "wasm32")]

use huddle_idb::{IdbError, SealedDb, SealedStore, StoreSpec, Write};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const HISTORY: &[&[StoreSpec]] = &[&[
    StoreSpec::plain("keys"),
    StoreSpec::plain("notes"),
    StoreSpec::plain("other"),
]];
const NOTES: SealedStore<String> = SealedStore::new("notes");
const OTHER: SealedStore<String> = SealedStore::new("other");

async fn fresh(name: &str) -> SealedDb {
    SealedDb::delete_database(name).await.expect("start clean");
    SealedDb::open(name, HISTORY)
        .await
        .expect("open")
        .unlock("keys")
        .await
        .expect("unlock")
}

#[wasm_bindgen_test]
async fn a_write_that_fails_part_way_writes_nothing() {
    let db = fresh("huddle-idb-atomic").await;
    let first = NOTES.put(&db, "a", &"kept?".to_owned()).expect("seal");
    // NaN is not a valid IndexedDB key: the second put throws.
    let invalid = Write::Put {
        store: "other",
        key: JsValue::from_f64(f64::NAN),
        value: JsValue::from_str("x"),
    };
    assert_eq!(
        db.write(vec![first, invalid]).await,
        Err(IdbError::Transaction)
    );
    assert_eq!(
        NOTES.get(&db, "a").await,
        Ok(None),
        "the first put was undone"
    );
    // A good write across two stores lands whole.
    let writes = vec![
        NOTES.put(&db, "a", &"one".to_owned()).expect("seal"),
        OTHER.put(&db, "b", &"two".to_owned()).expect("seal"),
    ];
    assert_eq!(db.write(writes).await, Ok(()));
    assert_eq!(NOTES.get(&db, "a").await, Ok(Some("one".to_owned())));
    assert_eq!(OTHER.get(&db, "b").await, Ok(Some("two".to_owned())));
    db.close();
    SealedDb::delete_database("huddle-idb-atomic")
        .await
        .expect("clean up");
}

#[wasm_bindgen_test]
async fn a_sealed_record_opens_only_under_its_own_store_and_id() {
    let db = fresh("huddle-idb-bound").await;
    let sealed = db.seal("notes", "a", &"secret".to_owned()).expect("seal");
    // Stored under another id, or another store, it does not open.
    db.write(vec![
        Write::Put {
            store: "notes",
            key: JsValue::from_str("b"),
            value: sealed.clone(),
        },
        Write::Put {
            store: "other",
            key: JsValue::from_str("a"),
            value: sealed,
        },
    ])
    .await
    .expect("write");
    assert_eq!(NOTES.get(&db, "b").await, Err(IdbError::Damaged));
    assert_eq!(OTHER.get(&db, "a").await, Err(IdbError::Damaged));
    // Without the key nothing opens at all.
    db.close();
    let locked = SealedDb::open("huddle-idb-bound", HISTORY)
        .await
        .expect("open");
    assert_eq!(NOTES.get(&locked, "b").await, Err(IdbError::Locked));
    assert!(locked.contains("notes", "b").await.expect("raw presence"));
    locked.close();
    SealedDb::delete_database("huddle-idb-bound")
        .await
        .expect("clean up");
}
