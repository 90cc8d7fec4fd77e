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

mod sealed_store {
    use huddle::platform::idb::IdbDatabase;
    use huddle::state::records::{Delivery, MessageRecord, Session};
    use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
    use huddle_core::retention::UnixMillis;
    use wasm_bindgen_test::*;

    fn message(group: GroupId, n: u8, sent_at: u64, expires_at: u64) -> MessageRecord {
        MessageRecord {
            group,
            client_msg: ClientMessageId::from_bytes([n; 16]),
            sender: UserId::from_bytes([1; 16]),
            sender_device: DeviceId::from_bytes([2; 16]),
            sent_at: UnixMillis(sent_at),
            expires_at: UnixMillis(expires_at),
            text: format!("message {n}"),
            delivery: Delivery::Received,
        }
    }

    #[wasm_bindgen_test]
    async fn records_are_sealed_and_expiry_is_one_range_delete() {
        let name = "huddle-test-sealed";
        IdbDatabase::delete_database(name)
            .await
            .expect("start clean");
        // A phone that has not joined: no session, found without a key.
        let fresh = IdbDatabase::open(name).await.expect("open");
        assert!(!fresh.has_session().await.expect("check"));
        fresh.close();

        let db = IdbDatabase::open_sealed(name).await.expect("open");
        let session = Session {
            org: OrgId::from_bytes([3; 16]),
            org_name: "Rosewood House".into(),
            user: UserId::from_bytes([1; 16]),
            device: DeviceId::from_bytes([2; 16]),
            display_name: "Mia".into(),
            administrator: true,
            key_packages_published: false,
        };
        db.save_session(&session).await.expect("save session");
        assert_eq!(db.session().await.expect("read"), Some(session.clone()));
        // As the app starts: open, check for a session, then load the key.
        let reopened = IdbDatabase::open(name).await.expect("reopen");
        assert!(reopened.has_session().await.expect("check"));
        let reopened = reopened.with_key().await.expect("key");
        assert_eq!(
            reopened.session().await.expect("read"),
            Some(session.clone())
        );
        reopened.close();

        let ward = GroupId::from_bytes([7; 16]);
        let other = GroupId::from_bytes([8; 16]);
        db.save_messages(&[
            message(ward, 1, 10, 1_000),
            message(ward, 2, 20, 2_000),
            message(ward, 3, 30, 3_000),
            message(other, 4, 15, 1_500),
        ])
        .await
        .expect("save");
        let latest = db.latest_messages(ward, 2).await.expect("latest");
        let texts: Vec<&str> = latest.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            ["message 3", "message 2"],
            "newest first, only this group"
        );
        assert_eq!(db.message_count(other).await.expect("count"), 1);

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
        let walked = db.latest_messages(ward, 2).await;
        js_sys::Reflect::set(&prototype, &"getAllRecords".into(), &get_all_records)
            .expect("restore getAllRecords");
        assert_eq!(walked.expect("latest by cursor"), latest);

        // Everything that expired by 2,000 goes, in every group, at once.
        db.delete_expired(UnixMillis(2_000)).await.expect("sweep");
        let left = db.latest_messages(ward, 10).await.expect("latest");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].text, "message 3");
        assert_eq!(db.message_count(other).await.expect("count"), 0);
        db.close();

        // Reopened (as after a restart), the data key unwraps again.
        let reopened = IdbDatabase::open_sealed(name).await.expect("reopen");
        assert_eq!(reopened.session().await.expect("read"), Some(session));
        // Nothing is readable without the key: the raw value is ciphertext.
        let raw = reopened.get("records", "session").await.expect("raw");
        let raw = raw.expect("present");
        assert!(
            !raw.windows(8).any(|w| w == b"Rosewood"),
            "no clear text at rest"
        );
        reopened.close();
        IdbDatabase::delete_database(name).await.expect("clean up");
    }
}
