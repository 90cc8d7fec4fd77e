//! The device WebSocket against a real relay on 127.0.0.1, on SQLite and PostgreSQL: authentication, sync, live delivery, resends, epochs and bad input.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use futures::{SinkExt, StreamExt};
use huddle_core::ids::GroupId;
use huddle_core::retention::{GroupKind, RetentionSecs};
use huddle_core::wire::Role;
use huddle_core::wire::{
    auth_transcript, ClientFrame, ErrorCode, GroupCursor, GroupSpec, MembershipChange, Payload,
    PhonePolicy, Rejection, ServerFrame, Submission, MAX_FRAME_BYTES,
};
use huddle_relay::mls_framing::framed_commit;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::Signature;
use std::time::Duration;
use support::device::{msg, now, TestDevice};
use support::ws::{accepted_with_own_copy, close_code, next, raw_socket, send};
use support::Engine;
use tokio_tungstenite::tungstenite::Message;

const WARD: GroupId = GroupId::from_bytes([7; 16]);

fn text(n: u32, epoch: u64) -> Submission {
    support::device::text(n, WARD, epoch)
}

async fn with_relay<F, Fut>(test: F)
where
    F: Fn(huddle_relay::RunningRelay) -> Fut,
    Fut: std::future::Future<Output = huddle_relay::RunningRelay>,
{
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let dir = tempfile::tempdir().expect("temp dir");
        let Some(url) = support::database_url(engine, dir.path()).await else {
            continue;
        };
        let relay = support::start(&support::config(dir.path(), dir.path(), Some(url))).await;
        let relay = test(relay).await;
        relay
            .shutdown(Duration::from_secs(1))
            .await
            .expect("shutdown");
    }
}

#[tokio::test]
async fn a_group_is_created_joined_and_talks_live_and_from_the_backlog() {
    with_relay(|relay| async move {
        let (admin, bob) = (TestDevice::new(1), TestDevice::new(2));
        admin.register(&relay.store, Role::Staff).await;
        bob.register(&relay.store, Role::Staff).await;
        let mut admin_socket = admin.connect(&relay).await;
        let mut bob_socket = bob.connect(&relay).await;
        send(&mut bob_socket, ClientFrame::Sync { cursors: vec![] }).await;
        assert_eq!(next(&mut bob_socket).await, ServerFrame::Synced);

        // The admin creates the group and adds Bob in one commit.
        let create = Submission {
            client_msg: msg(1),
            group: WARD,
            epoch: 0,
            expires_at: None,
            payload: Payload::Commit {
                commit: framed_commit(WARD, 0, b"commit"),
                welcome: Some(b"welcome for bob".to_vec()),
                change: MembershipChange {
                    create: Some(GroupSpec { kind: GroupKind::Operational, retention: RetentionSecs::days(7) }),
                    add: vec![bob.device],
                    remove: vec![],
                },
            },
        };
        send(&mut admin_socket, ClientFrame::Submit(create)).await;
        let (accepted, own) = accepted_with_own_copy(&mut admin_socket).await;
        assert_eq!(accepted, ServerFrame::Accepted { client_msg: msg(1), group: WARD, seq: 1 });
        assert!(own.seq == 1 && own.sender == admin.device);
        match next(&mut bob_socket).await {
            ServerFrame::Welcome { group, seq, welcome, spec } => {
                assert_eq!((group, seq, welcome.as_slice()), (WARD, 1, &b"welcome for bob"[..]));
                assert_eq!(spec.kind, GroupKind::Operational);
            }
            other => panic!("{other:?}"),
        }

        // Live: the admin's message reaches Bob.
        send(&mut admin_socket, ClientFrame::Submit(text(2, 1))).await;
        // Every member gets the log, the sender too: it keeps her cursor whole.
        let (accepted, own) = accepted_with_own_copy(&mut admin_socket).await;
        assert!(matches!(accepted, ServerFrame::Accepted { seq: 2, .. }) && own.seq == 2);
        assert!(matches!(next(&mut bob_socket).await, ServerFrame::Deliver(e) if e.seq == 2 && e.payload == b"ciphertext 2"));
        // A resend is acknowledged again, with the same number, and not delivered twice.
        send(&mut admin_socket, ClientFrame::Submit(text(2, 1))).await;
        assert!(matches!(next(&mut admin_socket).await, ServerFrame::Accepted { seq: 2, .. }));
        // A commit for a past epoch is refused, naming the current one.
        let stale = Submission { payload: Payload::Commit { commit: framed_commit(WARD, 0, &[1]), welcome: None, change: MembershipChange::default() }, ..text(3, 0) };
        send(&mut admin_socket, ClientFrame::Submit(stale)).await;
        assert!(matches!(next(&mut admin_socket).await, ServerFrame::Rejected { reason: Rejection::StaleEpoch { current_epoch: 1 }, .. }));
        // Junk submitted as a commit is refused by the relay before it is
        // stored (no member could open it), and the sender is flagged.
        for junk in [b"commit".to_vec(), framed_commit(GroupId::from_bytes([9; 16]), 1, &[1]), framed_commit(WARD, 7, &[1])] {
            let junk = Submission { payload: Payload::Commit { commit: junk, welcome: None, change: MembershipChange::default() }, ..text(3, 1) };
            send(&mut admin_socket, ClientFrame::Submit(junk)).await;
            assert!(matches!(next(&mut admin_socket).await, ServerFrame::Rejected { reason: Rejection::InvalidCommit(_), .. }));
        }
        let audit = relay.store.read_audit(None, 50).await.unwrap();
        let flagged: Vec<&str> = audit.iter().filter(|e| e.action == "junk commit refused").map(|e| e.subject.as_str()).collect();
        assert_eq!(flagged.len(), 1, "one line per connection, not one per junk frame: {flagged:?}");
        assert!(flagged[0].contains(&admin.device.to_string()));
        // Ping proves nothing else was queued for Bob (no duplicate).
        send(&mut bob_socket, ClientFrame::Ping { nonce: 9 }).await;
        assert_eq!(next(&mut bob_socket).await, ServerFrame::Pong { nonce: 9 });

        // Bob goes away; messages wait; he comes back and syncs from his cursor.
        drop(bob_socket);
        for n in 4..=6 {
            send(&mut admin_socket, ClientFrame::Submit(text(n, 1))).await;
            accepted_with_own_copy(&mut admin_socket).await;
        }
        let mut bob_socket = bob.connect(&relay).await;
        send(&mut bob_socket, ClientFrame::Sync { cursors: vec![GroupCursor { group: WARD, seq: 2 }] }).await;
        let mut seqs = Vec::new();
        loop {
            match next(&mut bob_socket).await {
                ServerFrame::Deliver(entry) => seqs.push(entry.seq),
                ServerFrame::Synced => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seqs, vec![3, 4, 5]);

        // A phone sends and loses its connection at once (bad Wi-Fi): what
        // the relay stores still reaches everyone online, live. The phone's
        // side ends right after its frames (a half-close: dropping a socket
        // with answers unread would reset it, and could take unread frames
        // with it on the relay's side).
        for n in 7..=9 {
            send(&mut admin_socket, ClientFrame::Submit(text(n, 1))).await;
        }
        if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = admin_socket.get_mut() {
            tokio::io::AsyncWriteExt::shutdown(tcp).await.expect("half-close");
        }
        let mut live = Vec::new();
        while live.len() < 3 {
            match next(&mut bob_socket).await {
                ServerFrame::Deliver(entry) => live.push(entry.seq),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(live, vec![6, 7, 8]);
        relay
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_refusal_and_the_relay_carries_on() {
    with_relay(|relay| async move {
        let (alice, mallory) = (TestDevice::new(1), TestDevice::new(2));
        alice.register(&relay.store, Role::Staff).await;

        // An unknown device, and a registered device with a wrong signature.
        let mut socket = raw_socket(&relay).await;
        let ServerFrame::Challenge { .. } = next(&mut socket).await else {
            panic!()
        };
        send(
            &mut socket,
            ClientFrame::Authenticate {
                device: mallory.device,
                signature: vec![1, 2],
            },
        )
        .await;
        assert!(matches!(
            next(&mut socket).await,
            ServerFrame::Error {
                code: ErrorCode::AuthenticationFailed,
                ..
            }
        ));
        assert_eq!(close_code(&mut socket).await, Some(1008));
        let mut socket = raw_socket(&relay).await;
        let ServerFrame::Challenge { nonce, .. } = next(&mut socket).await else {
            panic!()
        };
        let forged: Signature = mallory.key.sign(&auth_transcript(&nonce, alice.device));
        send(
            &mut socket,
            ClientFrame::Authenticate {
                device: alice.device,
                signature: forged.to_der().as_bytes().to_vec(),
            },
        )
        .await;
        assert!(matches!(
            next(&mut socket).await,
            ServerFrame::Error {
                code: ErrorCode::AuthenticationFailed,
                ..
            }
        ));

        // Anything before authenticating is refused.
        let mut socket = raw_socket(&relay).await;
        let _challenge = next(&mut socket).await;
        send(&mut socket, ClientFrame::Ping { nonce: 1 }).await;
        assert!(matches!(
            next(&mut socket).await,
            ServerFrame::Error {
                code: ErrorCode::NotAuthenticated,
                ..
            }
        ));
        assert_eq!(close_code(&mut socket).await, Some(1008));

        // Malformed frames get an error frame and the connection carries on.
        let mut socket = alice.connect(&relay).await;
        socket
            .send(Message::Binary(vec![1, 0xff, 0xff].into()))
            .await
            .unwrap();
        assert!(matches!(
            next(&mut socket).await,
            ServerFrame::Error {
                code: ErrorCode::Malformed,
                ..
            }
        ));
        socket
            .send(Message::Binary(vec![9, 0].into()))
            .await
            .unwrap();
        assert!(matches!(
            next(&mut socket).await,
            ServerFrame::Error {
                code: ErrorCode::UnsupportedVersion,
                ..
            }
        ));
        socket.send(Message::Text("hello".into())).await.unwrap();
        assert!(matches!(
            next(&mut socket).await,
            ServerFrame::Error {
                code: ErrorCode::Malformed,
                ..
            }
        ));
        send(&mut socket, ClientFrame::Ping { nonce: 2 }).await;
        assert_eq!(next(&mut socket).await, ServerFrame::Pong { nonce: 2 });

        // A frame over the limit closes the connection with 1009 ...
        socket
            .send(Message::Binary(vec![0u8; MAX_FRAME_BYTES + 1].into()))
            .await
            .unwrap();
        assert_eq!(close_code(&mut socket).await, Some(1009));
        // ... and everyone else is still served.
        let mut again = alice.connect(&relay).await;
        send(&mut again, ClientFrame::Ping { nonce: 3 }).await;
        assert_eq!(next(&mut again).await, ServerFrame::Pong { nonce: 3 });

        // A page from another site may not connect.
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{}/api/ws", relay.local_addr),
            )
            .unwrap();
        request
            .headers_mut()
            .insert("origin", "https://evil.example".parse().unwrap());
        assert!(tokio_tungstenite::connect_async(request).await.is_err());
        relay
    })
    .await;
}

#[tokio::test]
async fn a_device_over_its_rate_limit_is_told_when_to_retry_and_others_are_unaffected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = support::config(dir.path(), dir.path(), None);
    config.frames_per_second = 1;
    config.frame_burst = 3;
    let relay = support::start(&config).await;
    let (noisy, quiet) = (TestDevice::new(1), TestDevice::new(2));
    noisy.register(&relay.store, Role::Staff).await;
    quiet.register(&relay.store, Role::Staff).await;
    let mut noisy_socket = noisy.connect(&relay).await;
    for nonce in 0..3 {
        send(&mut noisy_socket, ClientFrame::Ping { nonce }).await;
        assert_eq!(next(&mut noisy_socket).await, ServerFrame::Pong { nonce });
    }
    send(&mut noisy_socket, ClientFrame::Ping { nonce: 3 }).await;
    assert!(matches!(
        next(&mut noisy_socket).await,
        ServerFrame::Error {
            code: ErrorCode::RateLimited,
            ..
        }
    ));
    send(&mut noisy_socket, ClientFrame::Submit(text(1, 0))).await;
    match next(&mut noisy_socket).await {
        ServerFrame::Rejected {
            reason: Rejection::RateLimited { retry_after_ms },
            ..
        } => {
            assert!((1..=1000).contains(&retry_after_ms));
        }
        other => panic!("{other:?}"),
    }
    // Another device has its own allowance.
    let mut quiet_socket = quiet.connect(&relay).await;
    send(&mut quiet_socket, ClientFrame::Ping { nonce: 9 }).await;
    assert_eq!(
        next(&mut quiet_socket).await,
        ServerFrame::Pong { nonce: 9 }
    );
    // After a pause the noisy device is served again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut noisy_socket, ClientFrame::Ping { nonce: 4 }).await;
    assert_eq!(
        next(&mut noisy_socket).await,
        ServerFrame::Pong { nonce: 4 }
    );
    relay.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn expired_entries_are_announced_as_skipped_in_a_backlog() {
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = support::start(&support::config(dir.path(), dir.path(), None)).await;
    let (admin, bob) = (TestDevice::new(1), TestDevice::new(2));
    admin.register(&relay.store, Role::Staff).await;
    bob.register(&relay.store, Role::Staff).await;
    let mut admin_socket = admin.connect(&relay).await;
    let create = Submission {
        client_msg: msg(1),
        group: WARD,
        epoch: 0,
        expires_at: None,
        payload: Payload::Commit {
            commit: framed_commit(WARD, 0, b"commit"),
            welcome: Some(b"welcome".to_vec()),
            change: MembershipChange {
                create: Some(GroupSpec {
                    kind: GroupKind::Social,
                    retention: RetentionSecs::days(14),
                }),
                add: vec![bob.device],
                remove: vec![],
            },
        },
    };
    send(&mut admin_socket, ClientFrame::Submit(create)).await;
    assert!(matches!(
        next(&mut admin_socket).await,
        ServerFrame::Accepted { .. }
    ));
    // Seq 2 expires almost at once; seq 3 lives; seq 4 expires too.
    let soon = Submission {
        expires_at: Some(now().saturating_add_millis(300)),
        ..text(2, 1)
    };
    let late = Submission {
        expires_at: Some(now().saturating_add_millis(300)),
        ..text(4, 1)
    };
    for submission in [soon, text(3, 1), late] {
        send(&mut admin_socket, ClientFrame::Submit(submission)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut bob_socket = bob.connect(&relay).await;
    send(
        &mut bob_socket,
        ClientFrame::Sync {
            cursors: vec![GroupCursor {
                group: WARD,
                seq: 1,
            }],
        },
    )
    .await;
    assert_eq!(
        next(&mut bob_socket).await,
        ServerFrame::Skipped {
            group: WARD,
            up_to: 2
        }
    );
    assert!(matches!(next(&mut bob_socket).await, ServerFrame::Deliver(e) if e.seq == 3));
    assert_eq!(
        next(&mut bob_socket).await,
        ServerFrame::Skipped {
            group: WARD,
            up_to: 4
        }
    );
    assert_eq!(next(&mut bob_socket).await, ServerFrame::Synced);
    relay.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_device_that_stops_reading_does_not_slow_the_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = support::config(dir.path(), dir.path(), None);
    config.frames_per_second = 0;
    let relay = support::start(&config).await;
    let (admin, fast, stalled) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
    for phone in [&admin, &fast, &stalled] {
        phone.register(&relay.store, Role::Staff).await;
    }
    let mut admin_socket = admin.connect(&relay).await;
    let create = Submission {
        client_msg: msg(1),
        group: WARD,
        epoch: 0,
        expires_at: None,
        payload: Payload::Commit {
            commit: framed_commit(WARD, 0, b"commit"),
            welcome: Some(b"welcome".to_vec()),
            change: MembershipChange {
                create: Some(GroupSpec {
                    kind: GroupKind::Operational,
                    retention: RetentionSecs::days(7),
                }),
                add: vec![fast.device, stalled.device],
                remove: vec![],
            },
        },
    };
    send(&mut admin_socket, ClientFrame::Submit(create)).await;
    assert!(matches!(
        next(&mut admin_socket).await,
        ServerFrame::Accepted { .. }
    ));
    let mut fast_socket = fast.connect(&relay).await;
    let mut stalled_socket = stalled.connect(&relay).await;
    for socket in [&mut fast_socket, &mut stalled_socket] {
        send(
            socket,
            ClientFrame::Sync {
                cursors: vec![GroupCursor {
                    group: WARD,
                    seq: 1,
                }],
            },
        )
        .await;
        // The creating commit is fanned out after its `Accepted`, so a phone
        // that connects at once may still get its welcome live.
        let mut frame = next(socket).await;
        if matches!(
            frame,
            ServerFrame::Welcome {
                group: WARD,
                seq: 1,
                ..
            }
        ) {
            frame = next(socket).await;
        }
        assert_eq!(frame, ServerFrame::Synced);
    }
    // The stalled phone stops reading. 3,000 messages of 8 KiB (24 MB)
    // overflow its socket buffers and its queue in the relay.
    // The writer keeps at most `AHEAD` messages in flight beyond what the
    // reading phone has had: the test is that the stalled phone does not
    // slow the reading one, not how fast one phone can read on a loaded
    // machine (unpaced, a busy CI runner let the reader itself fall a whole
    // live queue behind).
    const COUNT: u32 = 3_000;
    const AHEAD: u32 = 256;
    let (progress, mut read_so_far) = tokio::sync::watch::channel(0u32);
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < COUNT {
            if let ServerFrame::Deliver(_) | ServerFrame::DeliverCommit { .. } =
                next(&mut fast_socket).await
            {
                received += 1;
                progress.send_replace(received);
            }
        }
        received
    });
    let (mut sink, mut acks) = admin_socket.split();
    let writer = tokio::spawn(async move {
        for n in 0..COUNT {
            read_so_far
                .wait_for(|read| read + AHEAD > n)
                .await
                .expect("the reader is still running");
            let mut submission = text(10 + n, 1);
            submission.payload = Payload::Application {
                ciphertext: vec![n as u8; 8 * 1024],
            };
            sink.send(Message::Binary(
                ClientFrame::Submit(submission).encode().into(),
            ))
            .await
            .unwrap();
        }
        sink
    });
    let drain = tokio::spawn(async move { while acks.next().await.is_some() {} });
    let received = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("the reading phone got everything while the other did not read")
        .unwrap();
    assert_eq!(received, COUNT);
    // The writer ends holding the sink; dropping it closes the admin's socket.
    drop(writer.await.unwrap());
    drain.abort();
    // The relay let the stalled phone go; it will catch up from its cursor.
    assert_eq!(close_code(&mut stalled_socket).await, Some(1013));
    relay.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn each_phone_is_told_at_sign_in_how_long_it_may_stay_away() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(url) = support::database_url(Engine::Sqlite, dir.path()).await else {
        return;
    };
    let mut config = support::config(dir.path(), dir.path(), Some(url));
    config.max_offline_days = 3;
    config.lock_after_idle_secs = 45;
    config.lock_after_hidden_secs = 5;
    config.offline_unlock_hours = 2;
    let relay = support::start(&config).await;
    let phone = TestDevice::new(1);
    phone.register(&relay.store, Role::Staff).await;
    let (_socket, ready) =
        support::ws::sign_in_at(relay.local_addr, phone.device, &phone.key).await;
    assert!(
        matches!(
            ready,
            ServerFrame::Ready {
                policy: PhonePolicy {
                    max_offline_secs: 259_200,
                    lock_after_idle_secs: 45,
                    lock_after_hidden_secs: 5,
                    offline_unlock_secs: 7_200,
                    broadcast_reminder_secs: 600,
                    broadcast_alert_secs: 1_800,
                },
                ..
            }
        ),
        "{ready:?}"
    );
    relay
        .shutdown(Duration::from_secs(1))
        .await
        .expect("shutdown");
}

/// The frames a socket receives until `wanted` matches one (which it returns).
async fn until(
    socket: &mut support::ws::Socket,
    wanted: impl Fn(&ServerFrame) -> bool,
) -> ServerFrame {
    loop {
        let frame = next(socket).await;
        if wanted(&frame) {
            return frame;
        }
    }
}

#[tokio::test]
async fn a_revoked_member_is_named_live_and_at_sign_in_to_those_who_may_remove_it() {
    with_relay(|relay| async move {
        let (admin, carol, dan) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
        admin.register(&relay.store, Role::Administrator).await;
        carol.register(&relay.store, Role::Staff).await;
        dan.register(&relay.store, Role::Staff).await;
        let mut admin_socket = admin.connect(&relay).await;
        let mut carol_socket = carol.connect(&relay).await;
        let mut dan_socket = dan.connect(&relay).await;
        // A clinical group (only administrators change who is in it) and an
        // operational one (anyone may).
        let team = GroupId::from_bytes([8; 16]);
        for (n, group, kind) in [
            (1, WARD, GroupKind::Clinical),
            (2, team, GroupKind::Operational),
        ] {
            let create = Submission {
                client_msg: msg(n),
                group,
                epoch: 0,
                expires_at: None,
                payload: Payload::Commit {
                    commit: framed_commit(group, 0, b"commit"),
                    welcome: Some(b"welcome".to_vec()),
                    change: MembershipChange {
                        create: Some(GroupSpec {
                            kind,
                            retention: RetentionSecs::DAY,
                        }),
                        add: vec![carol.device, dan.device],
                        remove: vec![],
                    },
                },
            };
            send(&mut admin_socket, ClientFrame::Submit(create)).await;
            accepted_with_own_copy(&mut admin_socket).await;
            until(&mut carol_socket, |f| {
                matches!(f, ServerFrame::Welcome { .. })
            })
            .await;
            until(&mut dan_socket, |f| {
                matches!(f, ServerFrame::Welcome { .. })
            })
            .await;
        }

        // Dan's phone is revoked: the administrator's phone is told at once
        // of both groups, Carol's of the one she may change.
        send(
            &mut admin_socket,
            ClientFrame::RevokeDevice {
                request: 1,
                device: dan.device,
            },
        )
        .await;
        let named = |groups: &[GroupId]| {
            let mut groups: Vec<_> = groups
                .iter()
                .map(|group| huddle_core::wire::RevokedInGroup {
                    group: *group,
                    devices: vec![dan.device],
                })
                .collect();
            groups.sort_by_key(|g| g.group);
            ServerFrame::RevokedMembers { groups }
        };
        let told = |f: &ServerFrame| matches!(f, ServerFrame::RevokedMembers { .. });
        assert_eq!(until(&mut admin_socket, told).await, named(&[WARD, team]));
        assert_eq!(until(&mut carol_socket, told).await, named(&[team]));
        assert!(matches!(
            until(&mut dan_socket, |f| matches!(f, ServerFrame::Error { .. })).await,
            ServerFrame::Error {
                code: ErrorCode::Revoked,
                ..
            }
        ));

        // A phone that was away hears it when it signs in.
        drop(carol_socket);
        let mut carol_socket = carol.connect(&relay).await;
        assert_eq!(next(&mut carol_socket).await, named(&[team]));
        drop(admin_socket);
        let mut admin_socket = admin.connect(&relay).await;
        assert_eq!(next(&mut admin_socket).await, named(&[WARD, team]));

        // Carol takes him out of the operational group; in the clinical one
        // she still may not, and the administrator does.
        let remove = |n: u32, group: GroupId| Submission {
            client_msg: msg(n),
            group,
            epoch: 1,
            expires_at: None,
            payload: Payload::Commit {
                commit: framed_commit(group, 1, &[n as u8]),
                welcome: None,
                change: MembershipChange {
                    remove: vec![dan.device],
                    ..MembershipChange::default()
                },
            },
        };
        send(&mut carol_socket, ClientFrame::Submit(remove(3, WARD))).await;
        assert!(matches!(
            next(&mut carol_socket).await,
            ServerFrame::Rejected {
                reason: Rejection::NotPermitted,
                ..
            }
        ));
        send(&mut carol_socket, ClientFrame::Submit(remove(4, team))).await;
        let (accepted, _) = accepted_with_own_copy(&mut carol_socket).await;
        assert!(matches!(accepted, ServerFrame::Accepted { seq: 2, .. }));
        send(&mut admin_socket, ClientFrame::Submit(remove(5, WARD))).await;
        let (accepted, _) = accepted_with_own_copy(&mut admin_socket).await;
        assert!(matches!(accepted, ServerFrame::Accepted { seq: 2, .. }));

        // Removed everywhere: nobody is told of Dan again.
        for phone in [&admin, &carol] {
            let mut socket = phone.connect(&relay).await;
            send(&mut socket, ClientFrame::Ping { nonce: 5 }).await;
            assert_eq!(next(&mut socket).await, ServerFrame::Pong { nonce: 5 });
        }
        relay
    })
    .await;
}

#[tokio::test]
async fn a_person_signs_out_her_own_phones_and_nobody_elses() {
    with_relay(|relay| async move {
        let (sam, lee) = (TestDevice::new(2), TestDevice::new(3));
        sam.register(&relay.store, Role::Staff).await;
        lee.register(&relay.store, Role::Staff).await;
        // Sam's second phone.
        let spare = TestDevice {
            device: huddle_core::ids::DeviceId::from_bytes([4; 16]),
            ..TestDevice::new(2)
        };
        relay
            .store
            .put_device(spare.device, sam.user, &spare.public_key(), now())
            .await
            .expect("register the second phone");
        let mut sam_socket = sam.connect(&relay).await;
        let mut spare_socket = spare.connect(&relay).await;
        let mut lee_socket = lee.connect(&relay).await;

        // Staff cannot sign out a colleague's phone.
        send(
            &mut sam_socket,
            ClientFrame::RevokeDevice {
                request: 1,
                device: lee.device,
            },
        )
        .await;
        assert!(
            matches!(next(&mut sam_socket).await, ServerFrame::Refused { request: 1, reason } if reason.contains("only your own")),
        );
        send(&mut lee_socket, ClientFrame::Ping { nonce: 1 }).await;
        assert_eq!(next(&mut lee_socket).await, ServerFrame::Pong { nonce: 1 });

        // Her other phone, from this one: it is cut off at once.
        send(
            &mut sam_socket,
            ClientFrame::RevokeDevice {
                request: 2,
                device: spare.device,
            },
        )
        .await;
        assert_eq!(next(&mut sam_socket).await, ServerFrame::Done { request: 2 });
        assert!(matches!(
            next(&mut spare_socket).await,
            ServerFrame::Error {
                code: ErrorCode::Revoked,
                ..
            }
        ));

        // This phone, before she hands it on: told it is done, then signed out.
        send(
            &mut sam_socket,
            ClientFrame::RevokeDevice {
                request: 3,
                device: sam.device,
            },
        )
        .await;
        assert_eq!(next(&mut sam_socket).await, ServerFrame::Done { request: 3 });
        assert!(matches!(
            next(&mut sam_socket).await,
            ServerFrame::Error {
                code: ErrorCode::Revoked,
                ..
            }
        ));
        let audit = relay.store.read_audit(None, 50).await.unwrap();
        let revoked = audit
            .iter()
            .filter(|e| e.action == "device revoked")
            .count();
        assert_eq!(revoked, 2);
        relay
    })
    .await;
}

/// The relay's list of signed-out phones as `socket`'s person sees it,
/// asked again until `done` holds (a phone is noted as wiped just after it
/// is told, on its own connection's task) or two seconds pass.
async fn signed_out_phones_until(
    socket: &mut support::ws::Socket,
    done: impl Fn(&[huddle_core::wire::SignedOutPhone]) -> bool,
) -> Vec<huddle_core::wire::SignedOutPhone> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    for request in 100.. {
        send(socket, ClientFrame::SignedOutPhones { request }).await;
        let ServerFrame::SignedOutPhones { phones, .. } = next(socket).await else {
            panic!("the signed-out phones")
        };
        if done(&phones) || tokio::time::Instant::now() > deadline {
            return phones;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn an_administrator_sees_which_signed_out_phones_have_wiped_themselves() {
    with_relay(|relay| async move {
        let (admin, sam, kim, lee) = (
            TestDevice::new(1),
            TestDevice::new(2),
            TestDevice::new(3),
            TestDevice::new(4),
        );
        admin.register(&relay.store, Role::Administrator).await;
        for staff in [&sam, &kim, &lee] {
            staff.register(&relay.store, Role::Staff).await;
        }
        let lee_spare = TestDevice {
            device: huddle_core::ids::DeviceId::from_bytes([5; 16]),
            ..TestDevice::new(4)
        };
        relay
            .store
            .put_device(lee_spare.device, lee.user, &lee_spare.public_key(), now())
            .await
            .expect("register the second phone");
        let mut admin_socket = admin.connect(&relay).await;
        let mut sam_socket = sam.connect(&relay).await;
        let mut lee_socket = lee.connect(&relay).await;

        // Sam's phone is online when it is signed out: it is told at once.
        send(
            &mut admin_socket,
            ClientFrame::RevokeDevice {
                request: 1,
                device: sam.device,
            },
        )
        .await;
        assert_eq!(
            next(&mut admin_socket).await,
            ServerFrame::Done { request: 1 }
        );
        assert!(matches!(
            next(&mut sam_socket).await,
            ServerFrame::Error {
                code: ErrorCode::Revoked,
                ..
            }
        ));
        // Apart in time, so that the order is theirs, not the ids'.
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Kim's is off: nobody has told it yet.
        send(
            &mut admin_socket,
            ClientFrame::RevokeUser {
                request: 2,
                user: kim.user,
            },
        )
        .await;
        assert_eq!(
            next(&mut admin_socket).await,
            ServerFrame::Done { request: 2 }
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Lee signs out his spare phone, which is off too.
        send(
            &mut lee_socket,
            ClientFrame::RevokeDevice {
                request: 3,
                device: lee_spare.device,
            },
        )
        .await;
        assert_eq!(
            next(&mut lee_socket).await,
            ServerFrame::Done { request: 3 }
        );

        let phones = signed_out_phones_until(&mut admin_socket, |phones| {
            phones
                .iter()
                .any(|p| p.device == sam.device && p.wiped_at.is_some())
        })
        .await;
        let listed: Vec<_> = phones
            .iter()
            .map(|p| (p.device, p.user, p.wiped_at.is_some()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (lee_spare.device, lee.user, false),
                (kim.device, kim.user, false),
                (sam.device, sam.user, true),
            ],
            "newest first, only Sam's told"
        );
        assert!(phones.iter().all(|p| p.display_name == "Test person"));

        // Someone without Kim's key who tries her phone's id is turned away
        // too, and that is no sign that her phone has wiped itself.
        let impostor = TestDevice::new(9);
        let (_, answer) = support::ws::sign_in(&relay, kim.device, &impostor.key).await;
        assert!(matches!(
            answer,
            ServerFrame::Error {
                code: ErrorCode::Revoked,
                ..
            }
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let kim_now = relay
            .store
            .signed_out_phones(None, huddle_core::retention::UnixMillis(0))
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.device == kim.device)
            .expect("Kim's phone is listed");
        assert_eq!(kim_now.wiped_at, None, "a stranger's try proves nothing");
        // Kim's phone comes back: told, and so wiped.
        let (_, answer) = support::ws::sign_in(&relay, kim.device, &kim.key).await;
        assert!(matches!(
            answer,
            ServerFrame::Error {
                code: ErrorCode::Revoked,
                ..
            }
        ));
        let phones = signed_out_phones_until(&mut admin_socket, |phones| {
            phones
                .iter()
                .any(|p| p.device == kim.device && p.wiped_at.is_some())
        })
        .await;
        let kim_phone = phones
            .iter()
            .find(|p| p.device == kim.device)
            .expect("Kim's phone is listed");
        let kim_wiped = kim_phone
            .wiped_at
            .expect("Kim's phone is noted as wiped once it was told");
        assert!(kim_wiped >= kim_phone.signed_out_at);
        // It was not the impostor's try that counted: only two are wiped.
        assert_eq!(phones.iter().filter(|p| p.wiped_at.is_some()).count(), 2);

        // Staff see only their own signed-out phones.
        let mine = signed_out_phones_until(&mut lee_socket, |_| true).await;
        let mine: Vec<_> = mine.iter().map(|p| p.device).collect();
        assert_eq!(mine, vec![lee_spare.device]);

        // The audit log says it too, under the phone's owner.
        let audit = relay.store.read_audit(None, 50).await.unwrap();
        let wiped: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "signed-out phone wiped")
            .map(|e| e.actor)
            .collect();
        assert_eq!(wiped, vec![Some(kim.user), Some(sam.user)]);
        relay
    })
    .await;
}

#[tokio::test]
async fn a_restart_reaches_every_member_with_its_welcome_live_and_after_a_reconnect() {
    use huddle_core::wire::{restart_epoch, wire_epoch};
    with_relay(|relay| async move {
        let (admin, bob) = (TestDevice::new(1), TestDevice::new(2));
        admin.register(&relay.store, Role::Administrator).await;
        bob.register(&relay.store, Role::Staff).await;
        let mut admin_socket = admin.connect(&relay).await;
        let mut bob_socket = bob.connect(&relay).await;
        send(&mut bob_socket, ClientFrame::Sync { cursors: vec![] }).await;
        assert_eq!(next(&mut bob_socket).await, ServerFrame::Synced);
        let spec = GroupSpec { kind: GroupKind::Clinical, retention: RetentionSecs::DAY };
        let commit = |n, epoch, add: Vec<_>, create| Submission {
            client_msg: msg(n),
            group: WARD,
            epoch,
            expires_at: None,
            payload: Payload::Commit {
                commit: framed_commit(WARD, epoch, b"commit"),
                welcome: Some(format!("welcome {n}").into_bytes()),
                change: MembershipChange { create, add, remove: vec![] },
            },
        };
        send(&mut admin_socket, ClientFrame::Submit(commit(1, 0, vec![bob.device], Some(spec)))).await;
        accepted_with_own_copy(&mut admin_socket).await;
        assert!(matches!(next(&mut bob_socket).await, ServerFrame::Welcome { seq: 1, .. }));
        // Bob restarts the group (his phone stopped): the relay checks the
        // framing against the new chain, the admin hears the entry and gets
        // the welcome, live.
        send(&mut bob_socket, ClientFrame::Submit(commit(2, restart_epoch(1), vec![admin.device], Some(spec)))).await;
        let (accepted, own) = accepted_with_own_copy(&mut bob_socket).await;
        assert!(matches!(accepted, ServerFrame::Accepted { seq: 2, .. }));
        assert_eq!(own.epoch, restart_epoch(1));
        match next(&mut admin_socket).await {
            ServerFrame::DeliverCommit { entry, declared } => {
                assert_eq!((entry.seq, entry.sender), (2, bob.device));
                assert!(declared.is_restart(entry.epoch));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(next(&mut admin_socket).await, ServerFrame::Welcome { seq: 2, ref welcome, .. } if welcome == b"welcome 2"));
        // A restart framed for the old chain is refused before it is stored.
        let misframed = Submission {
            payload: Payload::Commit {
                commit: framed_commit(WARD, 0, b"old chain"),
                welcome: None,
                change: MembershipChange { create: Some(spec), add: vec![admin.device], remove: vec![] },
            },
            ..commit(3, restart_epoch(2), vec![], None)
        };
        send(&mut bob_socket, ClientFrame::Submit(misframed)).await;
        assert!(matches!(next(&mut bob_socket).await, ServerFrame::Rejected { reason: Rejection::InvalidCommit(_), .. }));
        // The admin's phone reconnects from before the restart (it had not
        // joined it): the welcome is sent again, then the backlog with it.
        drop(admin_socket);
        let mut admin_socket = admin.connect(&relay).await;
        send(&mut admin_socket, ClientFrame::Sync { cursors: vec![GroupCursor { group: WARD, seq: 1 }] }).await;
        assert!(matches!(next(&mut admin_socket).await, ServerFrame::Welcome { seq: 2, .. }));
        assert!(matches!(next(&mut admin_socket).await, ServerFrame::DeliverCommit { ref entry, .. } if entry.seq == 2));
        assert_eq!(next(&mut admin_socket).await, ServerFrame::Synced);
        // Once past it, the welcome is used and not sent again.
        send(&mut admin_socket, ClientFrame::Submit(text(4, wire_epoch(1, 1)))).await;
        accepted_with_own_copy(&mut admin_socket).await;
        drop(admin_socket);
        let mut admin_socket = admin.connect(&relay).await;
        send(&mut admin_socket, ClientFrame::Sync { cursors: vec![GroupCursor { group: WARD, seq: 3 }] }).await;
        assert_eq!(next(&mut admin_socket).await, ServerFrame::Synced);
        assert_eq!(relay.store.welcomes_for(admin.device).await.unwrap().len(), 0);
        relay
    })
    .await;
}

#[tokio::test]
async fn a_phone_publishes_only_key_packages_signed_with_its_own_key() {
    use huddle_relay::mls_framing::framed_key_package;
    with_relay(|relay| async move {
        let (ben, cara) = (TestDevice::new(2), TestDevice::new(3));
        ben.register(&relay.store, Role::Staff).await;
        cara.register(&relay.store, Role::Staff).await;
        let mut cara_socket = cara.connect(&relay).await;
        let publish = |key: Vec<u8>, request| ClientFrame::PublishKeyPackages {
            request,
            key_packages: vec![framed_key_package(&key, b"rest")],
            last_resort: None,
        };
        // Cara's modified app passes off a key package of Ben's phone as
        // hers (to be added to groups as Cara while Ben's keys are used):
        // refused, and the audit log is told, once per connection.
        for request in [1, 2] {
            send(&mut cara_socket, publish(ben.public_key(), request)).await;
            assert!(matches!(
                next(&mut cara_socket).await,
                ServerFrame::Error { code: ErrorCode::Malformed, .. }
            ));
        }
        send(&mut cara_socket, ClientFrame::ClaimKeyPackages { request: 3, users: vec![cara.user] }).await;
        assert!(matches!(next(&mut cara_socket).await, ServerFrame::KeyPackages { ref key_packages, .. } if key_packages.is_empty()));
        let audit = relay.store.read_audit(None, 20).await.unwrap();
        let flagged: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "key package of another phone refused")
            .collect();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].actor, Some(cara.user));
        // Her own is stored, and handed out.
        send(&mut cara_socket, publish(cara.public_key(), 4)).await;
        assert_eq!(next(&mut cara_socket).await, ServerFrame::KeyPackagesPublished { request: 4 });
        send(&mut cara_socket, ClientFrame::ClaimKeyPackages { request: 5, users: vec![cara.user] }).await;
        assert!(matches!(next(&mut cara_socket).await, ServerFrame::KeyPackages { ref key_packages, .. } if key_packages.len() == 1));
        relay
    })
    .await;
}
