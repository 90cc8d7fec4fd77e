//! Two relay processes sharing one PostgreSQL serve one organisation: a message sent through one reaches a device connected to the other, and a device revoked on one is cut off on the other.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use futures::StreamExt;
use huddle_core::ids::{ClientMessageId, GroupId};
use huddle_core::retention::GroupKind;
use huddle_core::wire::{
    ClientFrame, ErrorCode, GroupCursor, Payload, Role, ServerFrame, Submission,
};
use std::time::{Duration, Instant};
use support::device::{create, now, TestDevice};
use support::ws::{accepted_with_own_copy, next, send, until_accepted, Socket};
use tokio_tungstenite::tungstenite::Message;

/// Two relays on one fresh PostgreSQL database; `None` without PostgreSQL.
async fn two_relays() -> Option<(
    huddle_relay::RunningRelay,
    huddle_relay::RunningRelay,
    [tempfile::TempDir; 2],
)> {
    two_relays_limited(20).await
}

/// The same, with `frames_per_second` for each device (0: no limit).
async fn two_relays_limited(
    frames_per_second: u32,
) -> Option<(
    huddle_relay::RunningRelay,
    huddle_relay::RunningRelay,
    [tempfile::TempDir; 2],
)> {
    let url = support::fresh_postgres_database().await?;
    let dirs = [tempfile::tempdir().ok()?, tempfile::tempdir().ok()?];
    let mut relays = Vec::new();
    for dir in &dirs {
        let mut config = support::config(dir.path(), dir.path(), Some(url.clone()));
        config.frames_per_second = frames_per_second;
        relays.push(support::start(&config).await);
    }
    let relay_b = relays.pop()?;
    let relay_a = relays.pop()?;
    Some((relay_a, relay_b, dirs))
}

#[tokio::test]
async fn messages_cross_between_two_relays_on_one_postgresql() {
    let Some((relay_a, relay_b, _dirs)) = two_relays().await else {
        return;
    };
    let group = GroupId::from_bytes([5; 16]);
    let (alice, bob) = (TestDevice::new(1), TestDevice::new(2));
    alice.register(&relay_a.store, Role::Staff).await;
    bob.register(&relay_a.store, Role::Staff).await;
    let mut on_a = alice.connect(&relay_a).await;
    let mut on_b = bob.connect(&relay_b).await;
    send(&mut on_b, ClientFrame::Sync { cursors: vec![] }).await;
    assert_eq!(next(&mut on_b).await, ServerFrame::Synced);

    let create = create(1, group, GroupKind::Social, vec![bob.device]);
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
            expires_at: Some(now().saturating_add_millis(60_000)),
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
        expires_at: Some(now().saturating_add_millis(60_000)),
        payload: Payload::Application {
            ciphertext: b"from b".to_vec(),
        },
    };
    send(&mut on_b, ClientFrame::Submit(reply)).await;
    loop {
        match next(&mut on_a).await {
            ServerFrame::Deliver(entry) if entry.sender == bob.device => {
                assert_eq!(entry.payload, b"from b");
                break;
            }
            _ => continue, // Alice's own acknowledgements and entries
        }
    }
    relay_a.shutdown(Duration::from_secs(1)).await.unwrap();
    relay_b.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Reads until the relay closes the socket; how it ended, and when.
async fn until_closed(socket: &mut Socket) -> (Option<ErrorCode>, Option<u16>, Instant) {
    let mut error = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                if let Ok(ServerFrame::Error { code, .. }) = ServerFrame::decode(&bytes) {
                    error = Some(code);
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (error, frame.map(|f| f.code.into()), Instant::now())
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return (error, None, Instant::now()),
            Err(_) => panic!("the socket was not closed within 10 s"),
        }
    }
}

#[tokio::test]
async fn a_device_revoked_on_one_relay_is_cut_off_on_the_other_even_while_flooding() {
    // No frame limit, so that the flood is not cut off for its own sake.
    let Some((relay_a, relay_b, _dirs)) = two_relays_limited(0).await else {
        return;
    };
    let (admin, nurse, flooder) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
    admin.register(&relay_a.store, Role::Administrator).await;
    nurse.register(&relay_a.store, Role::Staff).await;
    flooder.register(&relay_a.store, Role::Staff).await;
    let mut admin_socket = admin.connect(&relay_a).await;

    // A quiet device on relay B.
    let mut quiet = nurse.connect(&relay_b).await;
    // A device on relay B that floods pings as fast as it can (and reads
    // what comes back, as a client does), so that a frame from it is always
    // waiting to be handled.
    let loud = flooder.connect(&relay_b).await;
    let (mut loud_sink, mut loud_stream) = loud.split();
    let flood = tokio::spawn(async move {
        use futures::SinkExt;
        let ping = ClientFrame::Ping { nonce: 1 }.encode();
        let mut sent = 0u64;
        while loud_sink
            .send(Message::Binary(ping.clone().into()))
            .await
            .is_ok()
        {
            sent += 1;
        }
        sent
    });
    let closed = tokio::spawn(async move {
        let mut answers = 0u64;
        loop {
            match loud_stream.next().await {
                Some(Ok(Message::Close(frame))) => {
                    return (frame.map(|f| u16::from(f.code)), Instant::now(), answers)
                }
                Some(Ok(_)) => answers += 1,
                Some(Err(_)) | None => return (None, Instant::now(), answers),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let revoked_at = Instant::now();
    send(
        &mut admin_socket,
        ClientFrame::RevokeDevice {
            request: 1,
            device: nurse.device,
        },
    )
    .await;
    assert_eq!(
        next(&mut admin_socket).await,
        ServerFrame::Done { request: 1 }
    );
    let (error, code, closed_at) = until_closed(&mut quiet).await;
    assert_eq!(error, Some(ErrorCode::Revoked));
    assert_eq!(code, Some(1008));
    let after = closed_at.duration_since(revoked_at);
    assert!(
        after < Duration::from_secs(1),
        "closed {after:?} after the revocation"
    );

    let revoked_at = Instant::now();
    send(
        &mut admin_socket,
        ClientFrame::RevokeDevice {
            request: 2,
            device: flooder.device,
        },
    )
    .await;
    assert_eq!(
        next(&mut admin_socket).await,
        ServerFrame::Done { request: 2 }
    );
    // The flooder's socket closes within a second, flood or no flood.
    let (code, closed_at, answers) = tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the flooding socket is closed")
        .expect("the reader ran");
    assert!(
        closed_at > revoked_at,
        "the flooder was closed before its revocation"
    );
    let after = closed_at.duration_since(revoked_at);
    assert!(
        after < Duration::from_secs(1),
        "closed {after:?} after the revocation"
    );
    assert_eq!(code, Some(1008));
    flood.abort();
    assert!(answers > 100, "the device was flooding ({answers} answers)");
    relay_a.shutdown(Duration::from_secs(1)).await.unwrap();
    relay_b.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_two_relays_sending_at_once_reach_a_third_live_and_in_order() {
    let Some((relay_a, relay_b, _dirs)) = two_relays_limited(0).await else {
        return;
    };
    let group = GroupId::from_bytes([6; 16]);
    let (alice, bob, carol) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
    for device in [&alice, &bob, &carol] {
        device.register(&relay_a.store, Role::Staff).await;
    }
    // Alice and Carol on relay A, Bob on relay B.
    let mut on_a = alice.connect(&relay_a).await;
    let mut bob_on_b = bob.connect(&relay_b).await;
    let mut carol_on_a = carol.connect(&relay_a).await;
    for socket in [&mut bob_on_b, &mut carol_on_a] {
        send(socket, ClientFrame::Sync { cursors: vec![] }).await;
        assert_eq!(next(socket).await, ServerFrame::Synced);
    }
    let create = create(1, group, GroupKind::Social, vec![bob.device, carol.device]);
    send(&mut on_a, ClientFrame::Submit(create)).await;
    accepted_with_own_copy(&mut on_a).await;
    for socket in [&mut bob_on_b, &mut carol_on_a] {
        assert!(matches!(
            next(socket).await,
            ServerFrame::Welcome { seq: 1, .. }
        ));
        send(
            socket,
            ClientFrame::Sync {
                cursors: vec![GroupCursor { group, seq: 1 }],
            },
        )
        .await;
        assert_eq!(next(socket).await, ServerFrame::Synced);
    }

    // Alice (through A) and Bob (through B) each send 200 at once: entries
    // stored by B reach Carol through the bus, Alice's straight from A, and
    // Carol must get them all in the order they were stored.
    const EACH: u8 = 200;
    let mut senders = Vec::new();
    for (socket, tag) in [(on_a, 0xa0u8), (bob_on_b, 0xb0)] {
        senders.push(tokio::spawn(async move {
            use futures::SinkExt;
            let (mut sink, mut stream) = socket.split();
            for n in 0..EACH {
                let text = Submission {
                    client_msg: ClientMessageId::from_bytes([
                        tag, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                    ]),
                    group,
                    epoch: 1,
                    expires_at: Some(now().saturating_add_millis(60_000)),
                    payload: Payload::Application {
                        ciphertext: vec![tag, n],
                    },
                };
                let frame = ClientFrame::Submit(text).encode();
                sink.send(Message::Binary(frame.into()))
                    .await
                    .expect("send");
            }
            until_accepted(&mut stream, usize::from(EACH)).await;
        }));
    }
    let mut seqs = Vec::new();
    while seqs.len() < 2 * usize::from(EACH) {
        match next(&mut carol_on_a).await {
            ServerFrame::Deliver(entry) => seqs.push(entry.seq),
            other => panic!("Carol got {other:?} after {} entries", seqs.len()),
        }
    }
    let expected: Vec<u64> = (2..2 + 2 * u64::from(EACH)).collect();
    assert_eq!(seqs, expected, "entries missing or out of order");
    for sender in senders {
        sender.await.expect("sender");
    }
    relay_a.shutdown(Duration::from_secs(1)).await.unwrap();
    relay_b.shutdown(Duration::from_secs(1)).await.unwrap();
}
