//! Browser test: the page's cache (the session's `Cache` on IndexedDB) in headless Chromium: raw records, sealed records, one write across stores, and expiry by one range delete.
#![cfg(target_arch = "wasm32")]

use huddle::platform::cache::IdbCache;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::sync::GroupPosition;
use huddle_session::{Cache, CacheError, CacheWrite, Enrolment, MessageBody, MessageRecord};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_raw_record_round_trips_and_survives_reopening() {
    let name = "huddle-test-roundtrip";
    IdbCache::delete_database(name).await.expect("start clean");
    let cache = IdbCache::open_named(name).await.expect("open");
    assert_eq!(cache.get_meta("device").await.expect("get"), None);
    let record: Vec<u8> = (0..=255u8).collect();
    cache.put_meta("device", &record).await.expect("put");
    assert_eq!(
        cache.get_meta("device").await.expect("get"),
        Some(record.clone())
    );
    cache.close();
    // A second connection (as after a reload) reads the same bytes.
    let reopened = IdbCache::open_named(name).await.expect("reopen");
    assert_eq!(
        reopened.get_meta("device").await.expect("get"),
        Some(record)
    );
    reopened.close();
    IdbCache::delete_database(name).await.expect("clean up");
}

#[wasm_bindgen_test]
async fn a_locked_cache_refuses_records_with_a_typed_error() {
    let name = "huddle-test-locked";
    IdbCache::delete_database(name).await.expect("start clean");
    let cache = IdbCache::open_named(name).await.expect("open");
    // Nothing there to open: no key needed to say so.
    assert_eq!(cache.enrolment().await, Ok(None));
    assert_eq!(
        cache
            .write(vec![CacheWrite::Directory(Default::default())])
            .await,
        Err(CacheError::Unavailable)
    );
    cache.close();
    IdbCache::delete_database(name).await.expect("clean up");
}

fn message(group: GroupId, n: u8, sent_at: u64, expires_at: u64) -> MessageRecord {
    MessageRecord {
        group,
        client_msg: ClientMessageId::from_bytes([n; 16]),
        sender: UserId::from_bytes([1; 16]),
        sender_device: DeviceId::from_bytes([2; 16]),
        sent_at: UnixMillis(sent_at),
        expires_at: UnixMillis(expires_at),
        body: MessageBody::Text(format!("message {n}")),
    }
}

fn texts(messages: &[MessageRecord]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m.body.text().unwrap_or("").to_owned())
        .collect()
}

#[wasm_bindgen_test]
async fn records_are_sealed_and_expiry_is_one_range_delete() {
    let name = "huddle-test-sealed";
    IdbCache::delete_database(name).await.expect("start clean");
    // A phone that has not joined: no enrolment, found without a key.
    let fresh = IdbCache::open_named(name).await.expect("open");
    assert!(!fresh.has_enrolment().await.expect("check"));
    fresh.close();

    let cache = IdbCache::open_named(name)
        .await
        .expect("open")
        .unlock()
        .await
        .expect("key");
    let enrolment = Enrolment {
        org: OrgId::from_bytes([3; 16]),
        org_name: "Rosewood House".into(),
        user: UserId::from_bytes([1; 16]),
        device: DeviceId::from_bytes([2; 16]),
        display_name: "Mia".into(),
        administrator: true,
        key_packages_published: false,
    };
    let ward = GroupId::from_bytes([7; 16]);
    let other = GroupId::from_bytes([8; 16]);
    // One write across stores: the enrolment, messages and a position.
    cache
        .write(vec![
            CacheWrite::Enrolment(enrolment.clone()),
            CacheWrite::Message(message(ward, 1, 10, 1_000)),
            CacheWrite::Message(message(ward, 2, 20, 2_000)),
            CacheWrite::Message(message(ward, 3, 30, 3_000)),
            CacheWrite::Message(message(other, 4, 15, 1_500)),
            CacheWrite::Cursor(GroupPosition {
                group: ward,
                seq: 3,
                epoch: 1,
            }),
        ])
        .await
        .expect("write");
    assert_eq!(cache.enrolment().await, Ok(Some(enrolment.clone())));
    // As the app starts: open, check for an enrolment, then load the key.
    let reopened = IdbCache::open_named(name).await.expect("reopen");
    assert!(reopened.has_enrolment().await.expect("check"));
    let reopened = reopened.unlock().await.expect("key");
    assert_eq!(reopened.enrolment().await, Ok(Some(enrolment.clone())));
    assert_eq!(reopened.cursors().await.map(|c| c.len()), Ok(1));
    reopened.close();

    let latest = cache.latest_messages(ward, 2).await.expect("latest");
    assert_eq!(
        texts(&latest),
        ["message 3", "message 2"],
        "newest first, only this group"
    );
    assert_eq!(cache.message_count(other).await, Ok(1));

    // A browser without `getAllRecords` walks a cursor and reads the same.
    let prototype = js_sys::Reflect::get(&js_sys::global(), &"IDBIndex".into())
        .and_then(|class| js_sys::Reflect::get(&class, &"prototype".into()))
        .expect("IDBIndex.prototype");
    let get_all_records =
        js_sys::Reflect::get(&prototype, &"getAllRecords".into()).expect("read getAllRecords");
    assert!(
        get_all_records.is_function(),
        "this Chromium has getAllRecords, so both ways are tested"
    );
    js_sys::Reflect::delete_property(&prototype.clone().into(), &"getAllRecords".into())
        .expect("hide getAllRecords");
    let walked = cache.latest_messages(ward, 2).await;
    js_sys::Reflect::set(&prototype, &"getAllRecords".into(), &get_all_records)
        .expect("restore getAllRecords");
    assert_eq!(walked.expect("latest by cursor"), latest);

    // Everything that expired by 2,000 goes, in every group, at once.
    cache.expire(UnixMillis(2_000)).await.expect("sweep");
    assert_eq!(
        texts(&cache.latest_messages(ward, 10).await.expect("latest")),
        ["message 3"]
    );
    assert_eq!(cache.message_count(other).await, Ok(0));
    cache.close();

    // Nothing is readable without the key: the raw records are ciphertext.
    let raw = rexie::Rexie::builder(name).build().await.expect("open raw");
    let tx = raw
        .transaction(&["records", "messages"], rexie::TransactionMode::ReadOnly)
        .expect("transaction");
    let mut bytes = Vec::new();
    for store in ["records", "messages"] {
        for (_, value) in tx
            .store(store)
            .unwrap()
            .scan(None, None, None, None)
            .await
            .unwrap()
        {
            let value = js_sys::Reflect::get(&value, &"r".into())
                .ok()
                .filter(|v| !v.is_undefined())
                .unwrap_or(value);
            bytes.extend(js_sys::Uint8Array::new(&value).to_vec());
        }
    }
    tx.done().await.expect("done");
    raw.close();
    assert!(!bytes.is_empty());
    for clear in [&b"Rosewood"[..], b"message 3"] {
        assert!(
            !bytes.windows(clear.len()).any(|w| w == clear),
            "no clear text at rest"
        );
    }
    IdbCache::delete_database(name).await.expect("clean up");
}

#[wasm_bindgen_test]
async fn once_a_passcode_wraps_its_key_the_cache_opens_only_with_that_key() {
    let name = format!("test-cache-passcode-{}", js_sys::Date::now() as u64);
    let cache = IdbCache::open_named(&name)
        .await
        .unwrap()
        .unlock()
        .await
        .unwrap();
    let enrolment = Enrolment {
        org: OrgId::from_bytes([3; 16]),
        org_name: "Rosewood House".into(),
        user: UserId::from_bytes([1; 16]),
        device: DeviceId::from_bytes([2; 16]),
        display_name: "Mia".into(),
        administrator: true,
        key_packages_published: false,
    };
    cache
        .write(vec![CacheWrite::Enrolment(enrolment.clone())])
        .await
        .unwrap();
    let key = cache.data_key().unwrap();
    assert!(cache.keeps_data_key().await.unwrap());
    cache.forget_kept_key().await.unwrap();
    assert!(!cache.keeps_data_key().await.unwrap());
    cache.close();

    // Reopened: no new key is made in place of the wrapped one.
    let reopened = IdbCache::open_named(&name).await.unwrap();
    assert!(reopened.has_enrolment().await.unwrap());
    assert!(matches!(
        reopened.unlock().await.err(),
        Some(CacheError::Unavailable)
    ));
    // With the key the passcode unwraps, everything reads.
    let reopened = IdbCache::open_named(&name)
        .await
        .unwrap()
        .unlock_with(&key)
        .unwrap();
    assert_eq!(reopened.enrolment().await.unwrap(), Some(enrolment));
    assert!(
        !reopened.keeps_data_key().await.unwrap(),
        "and none was made"
    );
    reopened.close();
    IdbCache::delete_database(&name).await.unwrap();
}
