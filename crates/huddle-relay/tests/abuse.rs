//! The relay against hostile and careless clients, on SQLite and PostgreSQL with real sockets: a revoked device that floods, floods of key packages and adds, limits that reconnecting cannot reset, silent and dripping connections, dead peers, oversized frames, members sending at once, welcomes left behind, the last administrator, and caps on connections.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use futures::{SinkExt, StreamExt};
use huddle_core::ids::{DeviceId, GroupId, UserId};
use huddle_core::retention::GroupKind;
use huddle_core::wire::{ClientFrame, ErrorCode, GroupCursor, Rejection, Role, ServerFrame};
use std::time::{Duration, Instant};
use support::device::{create, msg, now, text, TestDevice};
use support::ws::{close_code, next, raw_socket, send, until_accepted, Socket};
use support::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const WARD: GroupId = GroupId::from_bytes([7; 16]);

/// A relay on `engine` with the test defaults changed by `adjust`; `None`
/// when PostgreSQL is not available.
async fn relay_with(
    engine: Engine,
    adjust: impl FnOnce(&mut huddle_relay::Config),
) -> Option<(huddle_relay::RunningRelay, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = support::database_url(engine, dir.path()).await?;
    let mut config = support::config(dir.path(), dir.path(), Some(url));
    adjust(&mut config);
    Some((support::start(&config).await, dir))
}

async fn stop(relay: huddle_relay::RunningRelay) {
    relay
        .shutdown(Duration::from_secs(1))
        .await
        .expect("shutdown");
}

/// Creates the ward with `members` (the creator included), each device
/// synced and past the welcome; returns the creator's socket after its
/// acceptance.
async fn ward_of(
    relay: &huddle_relay::RunningRelay,
    creator: &TestDevice,
    others: &[&TestDevice],
) -> (Socket, Vec<Socket>) {
    let mut creator_socket = creator.connect(relay).await;
    let mut sockets = Vec::new();
    for device in others {
        let mut socket = device.connect(relay).await;
        send(&mut socket, ClientFrame::Sync { cursors: vec![] }).await;
        assert_eq!(next(&mut socket).await, ServerFrame::Synced);
        sockets.push(socket);
    }
    let add = others.iter().map(|device| device.device).collect();
    send(
        &mut creator_socket,
        ClientFrame::Submit(create(1, WARD, GroupKind::Operational, add)),
    )
    .await;
    let mut accepted = false;
    while !accepted {
        match next(&mut creator_socket).await {
            ServerFrame::Accepted { seq: 1, .. } => accepted = true,
            ServerFrame::DeliverCommit { entry, .. } if entry.seq == 1 => {}
            other => panic!("creating the ward: {other:?}"),
        }
    }
    for socket in &mut sockets {
        assert!(matches!(
            next(socket).await,
            ServerFrame::Welcome { seq: 1, .. }
        ));
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
        assert_eq!(next(socket).await, ServerFrame::Synced);
    }
    (creator_socket, sockets)
}

/// How many log entries `device` has stored.
async fn stored_by(store: &huddle_relay::Store, device: DeviceId) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM log WHERE sender = $1")
        .bind(&device.as_bytes()[..])
        .fetch_one(store.pool())
        .await
        .expect("count")
}

// 1. A revoked device that keeps its socket busy is cut off at once, and
//    nothing it sends after the revocation is stored.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_is_cut_off_within_a_second_of_its_revocation() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        // No frame limit: the flood runs as fast as the socket takes it.
        let Some((relay, _dir)) = relay_with(engine, |c| c.frames_per_second = 0).await else {
            continue;
        };
        let (admin, flooder) = (TestDevice::new(1), TestDevice::new(2));
        admin.register(&relay.store, Role::Administrator).await;
        flooder.register(&relay.store, Role::Staff).await;
        let (mut admin_socket, mut sockets) = ward_of(&relay, &admin, &[&flooder]).await;
        let (mut sink, mut stream) = sockets.remove(0).split();

        let flooding = tokio::spawn(async move {
            for n in 10.. {
                let frame = ClientFrame::Submit(text(n, WARD, 1));
                if sink
                    .send(Message::Binary(frame.encode().into()))
                    .await
                    .is_err()
                {
                    return n;
                }
            }
            unreachable!()
        });
        // Let the flood get going, with accepted messages flowing.
        let mut accepted = 0;
        while accepted < 50 {
            if let Some(Ok(Message::Binary(bytes))) = stream.next().await {
                if let Ok(ServerFrame::Accepted { .. }) = ServerFrame::decode(&bytes) {
                    accepted += 1;
                }
            }
        }

        send(
            &mut admin_socket,
            ClientFrame::RevokeDevice {
                request: 1,
                device: flooder.device,
            },
        )
        .await;
        loop {
            match next(&mut admin_socket).await {
                ServerFrame::Done { request: 1 } => break,
                ServerFrame::Deliver(_) | ServerFrame::DeliverCommit { .. } => {}
                other => panic!("revoking: {other:?}"),
            }
        }
        let revoked_at = Instant::now();
        let stored_at_revocation = stored_by(&relay.store, flooder.device).await;

        // The flooder hears it is revoked, and its socket ends, within a second.
        let mut told = false;
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Binary(bytes) => {
                        if let Ok(ServerFrame::Error {
                            code: ErrorCode::Revoked,
                            ..
                        }) = ServerFrame::decode(&bytes)
                        {
                            told = true;
                        }
                    }
                    Message::Close(frame) => {
                        assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
                        break;
                    }
                    _ => {}
                }
            }
        })
        .await;
        let cut_off_after = revoked_at.elapsed();
        assert!(
            ended.is_ok() && told,
            "{engine:?}: the flooder was not told"
        );
        assert!(
            cut_off_after < Duration::from_secs(1),
            "{engine:?}: cut off {cut_off_after:?} after its revocation"
        );
        let sent = flooding.await.expect("the flood ends");
        assert!(sent > 100, "the flood was a flood ({sent} frames)");
        // Give anything still in the writers' queues time to be refused.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            stored_by(&relay.store, flooder.device).await,
            stored_at_revocation,
            "{engine:?}: messages sent after the revocation were stored"
        );
        stop(relay).await;
    }
}

// 2. Key packages and adds are bounded per frame, so that one member cannot
//    make every other writer wait.

/// `count` key packages of about `size` bytes, signed (as far as the relay
/// reads) with `key`, the publishing phone's own.
fn key_packages(key: &[u8], count: usize, size: usize) -> ClientFrame {
    let package = huddle_relay::mls_framing::framed_key_package(
        key,
        &vec![0x4b; size.saturating_sub(key.len() + 72)],
    );
    ClientFrame::PublishKeyPackages {
        request: 9,
        key_packages: vec![package; count],
        last_resort: None,
    }
}

async fn stored_key_packages(store: &huddle_relay::Store, device: DeviceId) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM key_packages WHERE device_id = $1")
        .bind(&device.as_bytes()[..])
        .fetch_one(store.pool())
        .await
        .expect("count")
}

/// Sends `count` messages from `from` to the ward, one every 10 ms, and
/// returns how long each took to reach `to`, in milliseconds.
async fn latencies(from: &mut Socket, to: &mut Socket, first: u32, count: u32) -> Vec<f64> {
    let mut sent_at = std::collections::HashMap::new();
    let mut measured = Vec::new();
    for n in first..first + count {
        sent_at.insert(msg(n), Instant::now());
        send(from, ClientFrame::Submit(text(n, WARD, 1))).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Read what has arrived so far without waiting.
        while let Ok(Some(Ok(Message::Binary(bytes)))) =
            tokio::time::timeout(Duration::from_millis(1), to.next()).await
        {
            if let Ok(ServerFrame::Deliver(entry)) = ServerFrame::decode(&bytes) {
                if let Some(at) = sent_at.get(&entry.client_msg) {
                    measured.push(at.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
    }
    while measured.len() < count as usize {
        match next(to).await {
            ServerFrame::Deliver(entry) => {
                if let Some(at) = sent_at.get(&entry.client_msg) {
                    measured.push(at.elapsed().as_secs_f64() * 1000.0);
                }
            }
            other => panic!("waiting for the ward's messages: {other:?}"),
        }
    }
    // The sender's acceptances, all of them: none failed to be stored.
    let mut accepted = 0;
    while accepted < count {
        match next(from).await {
            ServerFrame::Accepted { .. } => accepted += 1,
            ServerFrame::Deliver(_) | ServerFrame::DeliverCommit { .. } => {}
            other => panic!("a legitimate message was not accepted: {other:?}"),
        }
    }
    measured.sort_by(f64::total_cmp);
    measured
}

/// The `n`th frame of a flood of costly requests.
fn flood_frame(n: u32, key: &[u8]) -> Vec<u8> {
    match n % 4 {
        0 => key_packages(key, 100, 256).encode(),
        1 => {
            let add = (0..1_000u32)
                .map(|m| {
                    let mut bytes = [0xb0; 16];
                    bytes[..4].copy_from_slice(&n.to_be_bytes());
                    bytes[4..8].copy_from_slice(&m.to_be_bytes());
                    DeviceId::from_bytes(bytes)
                })
                .collect();
            let mut group = [0x90; 16];
            group[..4].copy_from_slice(&n.to_be_bytes());
            ClientFrame::Submit(create(
                n,
                GroupId::from_bytes(group),
                GroupKind::Social,
                add,
            ))
            .encode()
        }
        2 => ClientFrame::ClaimKeyPackages {
            request: n,
            users: vec![UserId::from_bytes([2; 16]); 100],
        }
        .encode(),
        _ => vec![0xff; 64],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_package_and_add_floods_are_bounded_and_others_keep_being_served() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_with(engine, |_| {}).await else {
            continue;
        };
        let (alice, bob, mallory) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
        for device in [&alice, &bob, &mallory] {
            device.register(&relay.store, Role::Staff).await;
        }
        let (mut alice_socket, mut sockets) = ward_of(&relay, &alice, &[&bob]).await;
        let mut bob_socket = sockets.remove(0);
        let mut mallory_socket = mallory.connect(&relay).await;

        // Over the limits: refused whole, nothing stored.
        let mallory_key = mallory.public_key();
        send(&mut mallory_socket, key_packages(&mallory_key, 101, 100)).await;
        assert!(matches!(
            next(&mut mallory_socket).await,
            ServerFrame::Error {
                code: ErrorCode::Malformed,
                ..
            }
        ));
        send(
            &mut mallory_socket,
            key_packages(&mallory_key, 1, 16 * 1024 + 100),
        )
        .await;
        assert!(matches!(
            next(&mut mallory_socket).await,
            ServerFrame::Error {
                code: ErrorCode::Malformed,
                ..
            }
        ));
        assert_eq!(stored_key_packages(&relay.store, mallory.device).await, 0);
        let many: Vec<DeviceId> = (0..1_001u32)
            .map(|n| {
                let mut bytes = [0xa0; 16];
                bytes[..4].copy_from_slice(&n.to_be_bytes());
                DeviceId::from_bytes(bytes)
            })
            .collect();
        let huge_add = create(2, GroupId::from_bytes([8; 16]), GroupKind::Social, many);
        send(&mut mallory_socket, ClientFrame::Submit(huge_add)).await;
        assert!(matches!(
            next(&mut mallory_socket).await,
            ServerFrame::Rejected {
                reason: Rejection::InvalidCommit(_),
                ..
            }
        ));
        let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members")
            .fetch_one(relay.store.pool())
            .await
            .expect("count");
        assert_eq!(members, 2, "the refused commit added nobody");

        let quiet = latencies(&mut alice_socket, &mut bob_socket, 100, 50).await;

        // Mallory floods at her limit, and comes back each time she is cut
        // off: full frames of key packages, groups of 1,000, claims of a
        // hundred people, garbage.
        drop(mallory_socket);
        let (addr, mallory_device) = (relay.local_addr, mallory.device);
        let flooding = tokio::spawn(async move {
            for round in 0u32.. {
                let socket = mallory.connect_at(addr).await;
                let (mut sink, mut stream) = socket.split();
                let draining = tokio::spawn(async move { while stream.next().await.is_some() {} });
                // A thousand frames a second: more than a phone's network
                // carries, without the flood itself starving this machine's
                // two cores (which would measure the test, not the relay).
                for n in round * 10_000.. {
                    if sink
                        .send(Message::Binary(flood_frame(n, &mallory_key).into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                draining.abort();
            }
        });
        let flooded = latencies(&mut alice_socket, &mut bob_socket, 200, 50).await;
        flooding.abort();

        let p99 = |sorted: &[f64]| sorted[(sorted.len() - 1) * 99 / 100];
        eprintln!(
            "{engine:?}: one-to-one p99 {:.1} ms quiet, {:.1} ms under a flood",
            p99(&quiet),
            p99(&flooded)
        );
        // Before the limits, the flood stalled every writer for seconds and
        // messages failed to be stored; now it is one device among others.
        // The bound tells a stall from a busy shared machine (the figure
        // itself is printed above and measured by the load benchmark): a
        // CI runner on two shared cores has shown 250 ms here.
        assert!(
            p99(&flooded) < 1_000.0,
            "{engine:?}: p99 {:.1} ms under a flood",
            p99(&flooded)
        );
        assert!(stored_key_packages(&relay.store, mallory_device).await <= 100);
        stop(relay).await;
    }
}

// 3. Limits count every frame, whatever it is, and reconnecting does not
//    reset them.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_count_every_frame_and_survive_reconnecting() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_with(engine, |c| {
            c.frames_per_second = 1;
            c.frame_burst = 20;
        })
        .await
        else {
            continue;
        };
        let noisy = TestDevice::new(4);
        noisy.register(&relay.store, Role::Staff).await;
        let mut socket = noisy.connect(&relay).await;

        // Garbage, text and pings: each costs a frame. Twenty are answered
        // (an error each), the twenty-first is told to wait, and the rest
        // get no answer at all.
        for n in 0..60 {
            let message = match n % 3 {
                0 => Message::Binary(vec![0xff; 8].into()),
                1 => Message::Text("hello".into()),
                _ => Message::Ping(vec![1].into()),
            };
            socket.send(message).await.expect("send");
        }
        send(&mut socket, ClientFrame::Ping { nonce: 7 }).await;
        let mut answers = Vec::new();
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(500), socket.next()).await
        {
            if let Message::Binary(bytes) = message {
                answers.push(ServerFrame::decode(&bytes).expect("a frame"));
            }
        }
        let errors = answers
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    ServerFrame::Error {
                        code: ErrorCode::Malformed,
                        ..
                    }
                )
            })
            .count();
        let told_to_wait = answers
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    ServerFrame::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(errors, 14, "{engine:?}: {answers:?}"); // 20 allowed, 6 of them pings
        assert_eq!(told_to_wait, 1, "{engine:?}: {answers:?}");
        assert!(!answers.contains(&ServerFrame::Pong { nonce: 7 }));

        // A new connection finds the same empty bucket.
        drop(socket);
        let mut socket = noisy.connect(&relay).await;
        send(&mut socket, ClientFrame::Ping { nonce: 8 }).await;
        assert!(
            matches!(
                next(&mut socket).await,
                ServerFrame::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            ),
            "{engine:?}: reconnecting refilled the bucket"
        );
        // Keeping on flooding ends the connection.
        for _ in 0..1_000 {
            if socket
                .send(Message::Binary(vec![0xff; 8].into()))
                .await
                .is_err()
            {
                break;
            }
        }
        assert_eq!(close_code(&mut socket).await, Some(1008), "{engine:?}");
        stop(relay).await;
    }
}

// 4. Idle, slow-header and slow-body connections are closed.

/// Reads until the peer closes; true if it did within `within`.
/// The answer to the submission `n`, skipping the sender's own copies.
async fn answer_to(socket: &mut Socket, n: u32) -> ServerFrame {
    loop {
        match next(socket).await {
            ServerFrame::Deliver(_)
            | ServerFrame::DeliverCommit { .. }
            | ServerFrame::Welcome { .. } => {}
            ServerFrame::Accepted { client_msg, .. } | ServerFrame::Rejected { client_msg, .. }
                if client_msg != msg(n) => {}
            answer => return answer,
        }
    }
}

// 3b. Rows of work are paid for in full, from an allowance of their own: a
//     group of a thousand at once leaves the device free to write in it, but
//     a second at once is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_council_wide_group_is_paid_for_without_silencing_its_maker() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_with(engine, |_| {}).await else {
            continue;
        };
        let admin = TestDevice::new(11);
        admin.register(&relay.store, Role::Administrator).await;
        let mut socket = admin.connect(&relay).await;
        let everyone = |first: u8| -> Vec<DeviceId> {
            (0..1_000u16)
                .map(|n| {
                    let mut bytes = [first; 16];
                    bytes[..2].copy_from_slice(&n.to_be_bytes());
                    DeviceId::from_bytes(bytes)
                })
                .collect()
        };
        let council = GroupId::from_bytes([0xc0; 16]);
        let big = create(1, council, GroupKind::Operational, everyone(0x51));
        send(&mut socket, ClientFrame::Submit(big)).await;
        assert!(
            matches!(
                answer_to(&mut socket, 1).await,
                ServerFrame::Accepted { seq: 1, .. }
            ),
            "{engine:?}: the group of a thousand"
        );
        // Messages in it go at once.
        for n in 2..12 {
            send(&mut socket, ClientFrame::Submit(text(n, council, 1))).await;
            assert!(
                matches!(
                    answer_to(&mut socket, n).await,
                    ServerFrame::Accepted { .. }
                ),
                "{engine:?}: message {n} after the big group"
            );
        }
        // A second group of a thousand straight away is work it has not
        // got the allowance for: refused, with a wait of about fifty seconds.
        let other = create(
            20,
            GroupId::from_bytes([0xc1; 16]),
            GroupKind::Operational,
            everyone(0x52),
        );
        send(&mut socket, ClientFrame::Submit(other)).await;
        match answer_to(&mut socket, 20).await {
            ServerFrame::Rejected {
                reason: Rejection::RateLimited { retry_after_ms },
                ..
            } => assert!(
                (40_000..=60_000).contains(&retry_after_ms),
                "{engine:?}: told to wait {retry_after_ms} ms"
            ),
            other => panic!("{engine:?}: a second group of a thousand: {other:?}"),
        }
        stop(relay).await;
    }
}

async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_dripping_connections_are_closed() {
    let Some((relay, _dir)) = relay_with(Engine::Sqlite, |c| {
        c.header_timeout_secs = 1;
        c.body_timeout_secs = 1;
    })
    .await
    else {
        return;
    };
    let addr = relay.local_addr;

    // Connected, and never a byte.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    assert!(
        closed_within(&mut silent, Duration::from_secs(4)).await,
        "a silent connection stayed open"
    );

    // Headers dripped a byte at a time, never finished.
    let mut dripping = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    let request = b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Slow: ";
    let mut closed = false;
    for byte in request.iter().chain(std::iter::repeat(&b'a')) {
        if dripping.write_all(&[*byte]).await.is_err() || started.elapsed() > Duration::from_secs(6)
        {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(200), dripping.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed && started.elapsed() < Duration::from_secs(4),
        "slow headers kept the connection open for {:?}",
        started.elapsed()
    );

    // A registration whose body never finishes is answered 408.
    let mut slow_body = TcpStream::connect(addr).await.expect("connect");
    slow_body
        .write_all(
            b"POST /api/join HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"secret\":",
        )
        .await
        .expect("write");
    let mut answer = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(4), slow_body.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a dripped body kept the connection open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A normal request still works.
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("get");
    assert!(health.status().is_success());
    stop(relay).await;
}

// 5. Pings find a dead peer.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_find_a_phone_that_stopped_answering() {
    let Some((relay, _dir)) = relay_with(Engine::Sqlite, |c| c.ping_secs = 2).await else {
        return;
    };
    let (quiet, gone) = (TestDevice::new(5), TestDevice::new(6));
    quiet.register(&relay.store, Role::Staff).await;
    gone.register(&relay.store, Role::Staff).await;
    let mut alive = quiet.connect(&relay).await;
    // A phone whose network vanished: its socket is never read again, so
    // it answers no ping.
    let mut dead = hand_made_device(relay.local_addr, &gone).await;

    // The live one reads (and so answers pings) for seven seconds.
    let mut pings = 0;
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        if let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(100), alive.next()).await
        {
            match message {
                Message::Ping(_) => pings += 1,
                Message::Close(frame) => panic!("a live phone was closed: {frame:?}"),
                _ => {}
            }
        }
    }
    assert!(pings >= 2, "the relay pinged a quiet phone ({pings})");
    send(&mut alive, ClientFrame::Ping { nonce: 3 }).await;
    assert_eq!(next(&mut alive).await, ServerFrame::Pong { nonce: 3 });

    // The silent one was let go (its pings and the close wait in its buffer).
    assert_eq!(read_close_code(&mut dead).await, Some(1001));
    stop(relay).await;
}

// 6. A frame over the limit is refused on its header, before it is read.

/// A WebSocket to the relay, by hand, so that a frame's header can claim
/// any length; returns the stream after the relay's challenge.
async fn hand_made_socket(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!(
                "GET /api/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .expect("the upgrade answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Reads the next whole server frame (server frames are not masked):
/// its opcode and payload; `None` when the connection ends or nothing
/// comes within five seconds.
async fn read_frame(stream: &mut TcpStream, data: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if data.len() >= 2 {
            let (opcode, short) = (data[0] & 0x0f, usize::from(data[1] & 0x7f));
            let (len, start) = match short {
                126 if data.len() >= 4 => (usize::from(u16::from_be_bytes([data[2], data[3]])), 4),
                127 if data.len() >= 10 => (
                    usize::try_from(u64::from_be_bytes(data[2..10].try_into().ok()?)).ok()?,
                    10,
                ),
                126 | 127 => (usize::MAX / 2, 0),
                n => (n, 2),
            };
            if data.len() >= start + len {
                let payload = data[start..start + len].to_vec();
                data.drain(..start + len);
                return Some((opcode, payload));
            }
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    None
}

/// Reads server frames until a close; its code. (Pings go unanswered.)
async fn read_close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut data = Vec::new();
    while let Some((opcode, payload)) = read_frame(stream, &mut data).await {
        if opcode == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
    None
}

/// Sends one masked binary frame.
async fn write_binary(stream: &mut TcpStream, payload: &[u8]) {
    let mask = [0x5a, 0xa5, 0x3c, 0xc3];
    let mut frame = vec![0x82];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.expect("write");
}

/// A device signed in over a hand-made WebSocket, which answers nothing
/// unless told to: a phone whose network is gone.
async fn hand_made_device(addr: std::net::SocketAddr, device: &TestDevice) -> TcpStream {
    use p384::ecdsa::signature::Signer;
    let mut stream = hand_made_socket(addr).await;
    let mut data = Vec::new();
    let (_, challenge) = read_frame(&mut stream, &mut data)
        .await
        .expect("a challenge");
    let Ok(ServerFrame::Challenge { nonce, .. }) = ServerFrame::decode(&challenge) else {
        panic!("expected a challenge");
    };
    let signature: p384::ecdsa::Signature = device
        .key
        .sign(&huddle_core::wire::auth_transcript(&nonce, device.device));
    let answer = ClientFrame::Authenticate {
        device: device.device,
        signature: signature.to_der().as_bytes().to_vec(),
    };
    write_binary(&mut stream, &answer.encode()).await;
    let (_, ready) = read_frame(&mut stream, &mut data).await.expect("an answer");
    assert!(matches!(
        ServerFrame::decode(&ready),
        Ok(ServerFrame::Ready { .. })
    ));
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_claiming_more_than_the_limit_are_refused_on_their_header() {
    let Some((relay, _dir)) = relay_with(Engine::Sqlite, |_| {}).await else {
        return;
    };
    let mut sockets = Vec::new();
    for _ in 0..16 {
        let mut stream = hand_made_socket(relay.local_addr).await;
        // A masked binary frame claiming 16 MiB, and only its first bytes.
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(16u64 * 1024 * 1024).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        header.extend_from_slice(&[0u8; 1024]);
        stream.write_all(&header).await.expect("write");
        sockets.push(stream);
    }
    for stream in &mut sockets {
        assert_eq!(read_close_code(stream).await, Some(1009));
    }
    stop(relay).await;
}

// 7. Two members sending at once: every entry arrives live, in order.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_sending_at_once_are_delivered_live_and_in_order() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_with(engine, |c| c.frames_per_second = 0).await else {
            continue;
        };
        let (alice, bob, carol) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
        for device in [&alice, &bob, &carol] {
            device.register(&relay.store, Role::Staff).await;
        }
        let (alice_socket, mut sockets) = ward_of(&relay, &alice, &[&bob, &carol]).await;
        let mut carol_socket = sockets.remove(1);
        let bob_socket = sockets.remove(0);

        const EACH: u32 = 300;
        let mut senders = Vec::new();
        for (socket, first) in [(alice_socket, 1_000u32), (bob_socket, 2_000)] {
            senders.push(tokio::spawn(async move {
                let (mut sink, mut stream) = socket.split();
                for n in first..first + EACH {
                    let frame = ClientFrame::Submit(text(n, WARD, 1));
                    sink.send(Message::Binary(frame.encode().into()))
                        .await
                        .expect("send");
                }
                // Wait for every acceptance so the socket stays open.
                until_accepted(&mut stream, EACH as usize).await;
            }));
        }
        let mut seqs = Vec::new();
        while seqs.len() < 2 * EACH as usize {
            match next(&mut carol_socket).await {
                ServerFrame::Deliver(entry) => seqs.push(entry.seq),
                other => panic!(
                    "{engine:?}: Carol got {other:?} after {} entries",
                    seqs.len()
                ),
            }
        }
        let expected: Vec<u64> = (2..2 + 2 * u64::from(EACH)).collect();
        assert_eq!(
            seqs, expected,
            "{engine:?}: entries missing or out of order"
        );
        for sender in senders {
            sender.await.expect("sender");
        }
        stop(relay).await;
    }
}

// 8. Welcomes go once they are used, passed, or too old.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcomes_are_stored_once_and_deleted_once_used_or_passed() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_with(engine, |_| {}).await else {
            continue;
        };
        let devices: Vec<TestDevice> = (1..=4).map(TestDevice::new).collect();
        for device in &devices {
            device.register(&relay.store, Role::Staff).await;
        }
        let [alice, bob, carol, dan] = &devices[..] else {
            unreachable!()
        };
        let mut alice_socket = alice.connect(&relay).await;
        let add = vec![bob.device, carol.device, dan.device];
        send(
            &mut alice_socket,
            ClientFrame::Submit(create(1, WARD, GroupKind::Operational, add)),
        )
        .await;
        loop {
            if let ServerFrame::Accepted { .. } = next(&mut alice_socket).await {
                break;
            }
        }
        // One stored welcome, three devices waiting for it.
        assert_eq!(relay.store.pending_welcomes().await.expect("count"), (3, 1));

        // Bob joins and says so by syncing with the group: his goes, and
        // the next sync does not send it again.
        let mut bob_socket = bob.connect(&relay).await;
        send(&mut bob_socket, ClientFrame::Sync { cursors: vec![] }).await;
        assert!(matches!(
            next(&mut bob_socket).await,
            ServerFrame::Welcome { .. }
        ));
        assert_eq!(next(&mut bob_socket).await, ServerFrame::Synced);
        let joined = ClientFrame::Sync {
            cursors: vec![GroupCursor {
                group: WARD,
                seq: 1,
            }],
        };
        send(&mut bob_socket, joined.clone()).await;
        assert_eq!(next(&mut bob_socket).await, ServerFrame::Synced);
        send(&mut bob_socket, joined).await;
        assert_eq!(next(&mut bob_socket).await, ServerFrame::Synced);
        assert_eq!(relay.store.pending_welcomes().await.expect("count"), (2, 1));

        // Carol acknowledges past the commit that added her: hers goes.
        let mut carol_socket = carol.connect(&relay).await;
        send(
            &mut carol_socket,
            ClientFrame::Ack {
                group: WARD,
                seq: 1,
            },
        )
        .await;
        send(&mut carol_socket, ClientFrame::Ping { nonce: 1 }).await;
        assert_eq!(
            next(&mut carol_socket).await,
            ServerFrame::Pong { nonce: 1 }
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while relay.store.pending_welcomes().await.expect("count") != (1, 1) {
            assert!(Instant::now() < deadline, "Carol's welcome stayed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Dan never comes back: his goes when it is too old, and the
        // stored welcome with it.
        let later = now().saturating_add_millis(31 * 24 * 3_600_000);
        relay.store.sweep_welcomes(later).await.expect("sweep");
        assert_eq!(relay.store.pending_welcomes().await.expect("count"), (0, 0));
        stop(relay).await;
    }
}

// 9. The last administrator stays.

async fn admin_request(socket: &mut Socket, frame: ClientFrame) -> ServerFrame {
    send(socket, frame).await;
    loop {
        match next(socket).await {
            ServerFrame::Deliver(_)
            | ServerFrame::DeliverCommit { .. }
            | ServerFrame::Welcome { .. } => {}
            answer => return answer,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_administrator_cannot_be_revoked() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_with(engine, |_| {}).await else {
            continue;
        };
        let (first, second) = (TestDevice::new(1), TestDevice::new(2));
        first.register(&relay.store, Role::Administrator).await;
        let mut first_socket = first.connect(&relay).await;
        let refused = |answer: &ServerFrame| matches!(answer, ServerFrame::Refused { reason, .. } if reason.contains("at least one administrator"));
        let own_device = ClientFrame::RevokeDevice {
            request: 1,
            device: first.device,
        };
        let own_person = ClientFrame::RevokeUser {
            request: 2,
            user: first.user,
        };
        let answer = admin_request(&mut first_socket, own_device.clone()).await;
        assert!(refused(&answer), "{engine:?}: {answer:?}");
        let answer = admin_request(&mut first_socket, own_person.clone()).await;
        assert!(refused(&answer), "{engine:?}: {answer:?}");
        assert!(
            !relay
                .store
                .device(first.device)
                .await
                .expect("read")
                .expect("known")
                .revoked
        );

        // With a second administrator, the first may go; then the second
        // is the last.
        second.register(&relay.store, Role::Administrator).await;
        let mut second_socket = second.connect(&relay).await;
        let answer = admin_request(&mut first_socket, own_person).await;
        assert_eq!(answer, ServerFrame::Done { request: 2 }, "{engine:?}");
        let answer = admin_request(
            &mut second_socket,
            ClientFrame::RevokeUser {
                request: 3,
                user: second.user,
            },
        )
        .await;
        assert!(refused(&answer), "{engine:?}: {answer:?}");
        stop(relay).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_administrators_revoking_each_other_at_once_leave_one() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_with(engine, |_| {}).await else {
            continue;
        };
        let (first, second) = (TestDevice::new(1), TestDevice::new(2));
        first.register(&relay.store, Role::Administrator).await;
        second.register(&relay.store, Role::Administrator).await;
        let (a, b) = tokio::join!(
            relay.store.revoke_user(first.user, second.user, now()),
            relay.store.revoke_user(second.user, first.user, now()),
        );
        let outcomes = [a.expect("database"), b.expect("database")];
        assert_eq!(
            outcomes.iter().filter(|outcome| outcome.is_ok()).count(),
            1,
            "{engine:?}: {outcomes:?}"
        );
        stop(relay).await;
    }
}

// 10. Caps on connections, with a clear signal when reached.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_caps_are_turned_away_clearly() {
    let Some((relay, _dir)) = relay_with(Engine::Sqlite, |c| {
        c.max_connections = 4;
        c.max_unauthenticated = 2;
    })
    .await
    else {
        return;
    };
    // Two sockets proving who they are (they never answer the challenge);
    // the third is told to try again later.
    let mut proving = vec![raw_socket(&relay).await, raw_socket(&relay).await];
    for socket in &mut proving {
        assert!(matches!(next(socket).await, ServerFrame::Challenge { .. }));
    }
    let mut third = raw_socket(&relay).await;
    assert_eq!(close_code(&mut third).await, Some(1013));
    drop(third);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Two more connections fill the relay; the next is closed at once.
    let _third = TcpStream::connect(relay.local_addr).await.expect("connect");
    let _fourth = TcpStream::connect(relay.local_addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(relay.local_addr).await.expect("connect");
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await;
    assert!(closed_within(&mut fifth, Duration::from_secs(1)).await);

    // Places free up as connections end.
    drop(proving);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = reqwest::get(format!("http://{}/healthz", relay.local_addr))
        .await
        .expect("get");
    assert!(health.status().is_success());
    stop(relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_network() {
    let Some((relay, _dir)) = relay_with(Engine::Sqlite, |c| c.registrations_per_minute = 3).await
    else {
        return;
    };
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/join", relay.local_addr);
    let body = serde_json::json!({
        "secret": "00", "device": DeviceId::from_bytes([1; 16]), "public_key": "00", "signature": "00"
    });
    for _ in 0..3 {
        let answer = client.post(&url).json(&body).send().await.expect("post");
        assert_eq!(
            answer.status(),
            400,
            "a bad registration is refused on its merits"
        );
    }
    let answer = client.post(&url).json(&body).send().await.expect("post");
    assert_eq!(answer.status(), 429);
    let retry_after: u64 = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let message: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(message["error"], "too_many_requests");
    stop(relay).await;
}
