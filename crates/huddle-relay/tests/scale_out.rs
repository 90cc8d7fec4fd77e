//! Two relay processes sharing one PostgreSQL serve one organisation: a message sent through one reaches a device connected to the other.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use support::ws::{accepted_with_own_copy, next, send, sign_in, Socket};

use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs};
use huddle_core::wire::{
    ClientFrame, GroupCursor, GroupSpec, MembershipChange, Payload, ServerFrame, Submission,
};
use p384::ecdsa::SigningKey;
use std::time::Duration;

async fn connect(relay: &huddle_relay::RunningRelay, device: DeviceId, key: &SigningKey) -> Socket {
    let (socket, answer) = sign_in(relay, device, key).await;
    assert!(matches!(answer, ServerFrame::Ready { .. }));
    socket
}

#[tokio::test]
async fn messages_cross_between_two_relays_on_one_postgresql() {
    let Some(url) = support::fresh_postgres_database().await else {
        return;
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let relay_a = support::start(&support::config(
        dir_a.path(),
        dir_a.path(),
        Some(url.clone()),
    ))
    .await;
    let relay_b = support::start(&support::config(dir_b.path(), dir_b.path(), Some(url))).await;

    let group = GroupId::from_bytes([5; 16]);
    let (alice, bob) = (DeviceId::from_bytes([1; 16]), DeviceId::from_bytes([2; 16]));
    let keys: Vec<SigningKey> = (0..2)
        .map(|_| SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng))
        .collect();
    for (device, key, user) in [(alice, &keys[0], 1u8), (bob, &keys[1], 2)] {
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        relay_a
            .store
            .put_user(
                UserId::from_bytes([user; 16]),
                "Test person",
                huddle_core::wire::Role::Staff,
                huddle_relay::socket::now(),
            )
            .await
            .unwrap();
        relay_a
            .store
            .put_device(
                device,
                UserId::from_bytes([user; 16]),
                &public,
                huddle_relay::socket::now(),
            )
            .await
            .unwrap();
    }
    let mut on_a = connect(&relay_a, alice, &keys[0]).await;
    let mut on_b = connect(&relay_b, bob, &keys[1]).await;
    send(&mut on_b, ClientFrame::Sync { cursors: vec![] }).await;
    assert_eq!(next(&mut on_b).await, ServerFrame::Synced);

    let create = Submission {
        client_msg: ClientMessageId::from_bytes([1; 16]),
        group,
        epoch: 0,
        expires_at: None,
        payload: Payload::Commit {
            commit: b"commit".to_vec(),
            welcome: Some(b"welcome".to_vec()),
            change: MembershipChange {
                create: Some(GroupSpec {
                    kind: GroupKind::Social,
                    retention: RetentionSecs::days(14),
                }),
                add: vec![bob],
                remove: vec![],
            },
        },
    };
    send(&mut on_a, ClientFrame::Submit(create)).await;
    let (accepted, _) = accepted_with_own_copy(&mut on_a).await;
    assert!(matches!(accepted, ServerFrame::Accepted { seq: 1, .. }));
    // The welcome crosses to relay B.
    assert!(matches!(
        next(&mut on_b).await,
        ServerFrame::Welcome { seq: 1, .. }
    ));

    // Bob joined; he tells relay B where he is, then messages cross both ways.
    send(
        &mut on_b,
        ClientFrame::Sync {
            cursors: vec![GroupCursor { group, seq: 1 }],
        },
    )
    .await;
    assert_eq!(next(&mut on_b).await, ServerFrame::Synced);
    for n in 2..=4u8 {
        let text = Submission {
            client_msg: ClientMessageId::from_bytes([n; 16]),
            group,
            epoch: 1,
            expires_at: Some(huddle_relay::socket::now().saturating_add_millis(60_000)),
            payload: Payload::Application {
                ciphertext: vec![n],
            },
        };
        send(&mut on_a, ClientFrame::Submit(text)).await;
        match next(&mut on_b).await {
            ServerFrame::Deliver(entry) => {
                assert_eq!((entry.seq, entry.payload), (u64::from(n), vec![n]))
            }
            other => panic!("{other:?}"),
        }
    }
    let reply = Submission {
        client_msg: ClientMessageId::from_bytes([9; 16]),
        group,
        epoch: 1,
        expires_at: Some(huddle_relay::socket::now().saturating_add_millis(60_000)),
        payload: Payload::Application {
            ciphertext: b"from b".to_vec(),
        },
    };
    send(&mut on_b, ClientFrame::Submit(reply)).await;
    loop {
        match next(&mut on_a).await {
            ServerFrame::Deliver(entry) if entry.sender == bob => {
                assert_eq!(entry.payload, b"from b");
                break;
            }
            _ => continue, // Alice's own acknowledgements and entries
        }
    }
    relay_a.shutdown(Duration::from_secs(1)).await.unwrap();
    relay_b.shutdown(Duration::from_secs(1)).await.unwrap();
}
