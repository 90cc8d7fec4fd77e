//! The relay load generator: idle memory per connected device, one-to-one latency under load, group fan-out and sustained durable sends; prints a table and writes `reports/relay-load-ENGINE.json` (run by `scripts/bench`).
//!
//! It starts the relay binary as its own process (so that its memory is
//! measured alone), registers devices straight into the database, and
//! drives real WebSocket clients on 127.0.0.1. Both share this machine's
//! cores, so the figures include the generator's own cost.

use futures::{SinkExt, StreamExt};
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs};
use huddle_core::wire::{
    auth_transcript, ClientFrame, GroupSpec, MembershipChange, Payload, Role, ServerFrame,
    Submission,
};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};
use tokio_tungstenite::tungstenite::Message;

type Sink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

struct Options {
    connections: usize,
    rate: u32,
    seconds: u64,
    database_url: Option<String>,
    relay_bin: String,
}

fn options() -> Options {
    let mut options = Options {
        connections: 10_000,
        rate: 1_000,
        seconds: 10,
        database_url: None,
        relay_bin: std::env::var("HUDDLE_RELAY_BIN")
            .unwrap_or_else(|_| "target/relay/huddle-relay".into()),
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        match pair[0].as_str() {
            "--connections" => options.connections = pair[1].parse().unwrap_or(options.connections),
            "--rate" => options.rate = pair[1].parse().unwrap_or(options.rate),
            "--seconds" => options.seconds = pair[1].parse().unwrap_or(options.seconds),
            "--database-url" => options.database_url = Some(pair[1].clone()),
            _ => {}
        }
    }
    options
}

fn device_id(n: usize) -> DeviceId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    DeviceId::from_bytes(bytes)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Each received `Deliver` is reported with the device that got it.
type Deliveries = mpsc::UnboundedSender<(usize, u64, Instant)>;

struct Client {
    sink: Arc<Mutex<Sink>>,
}

async fn connect(
    addr: &str,
    n: usize,
    key: &SigningKey,
    deliveries: Deliveries,
    accepted: mpsc::UnboundedSender<u64>,
) -> Option<Client> {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws"))
        .await
        .ok()?;
    let (mut sink, mut stream) = socket.split();
    let read = |message: Message| match message {
        Message::Binary(bytes) => ServerFrame::decode(&bytes).ok(),
        _ => None,
    };
    let Some(ServerFrame::Challenge { nonce, .. }) = read(stream.next().await?.ok()?) else {
        return None;
    };
    let signature: Signature = key.sign(&auth_transcript(&nonce, device_id(n)));
    let auth = ClientFrame::Authenticate {
        device: device_id(n),
        signature: signature.to_der().as_bytes().to_vec(),
    };
    sink.send(Message::Binary(auth.encode().into()))
        .await
        .ok()?;
    let Some(ServerFrame::Ready { .. }) = read(stream.next().await?.ok()?) else {
        return None;
    };
    sink.send(Message::Binary(
        ClientFrame::Sync { cursors: vec![] }.encode().into(),
    ))
    .await
    .ok()?;
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            match read(message) {
                Some(ServerFrame::Deliver(entry)) => {
                    let sent_at = u64::from_be_bytes(
                        entry
                            .payload
                            .get(..8)
                            .and_then(|b| b.try_into().ok())
                            .unwrap_or([0; 8]),
                    );
                    let _ = deliveries.send((n, sent_at, Instant::now()));
                }
                Some(ServerFrame::Accepted { seq, .. }) => {
                    let _ = accepted.send(seq);
                }
                _ => {}
            }
        }
    });
    Some(Client {
        sink: Arc::new(Mutex::new(sink)),
    })
}

async fn submit(client: &Client, submission: Submission) {
    let frame = ClientFrame::Submit(submission);
    let _ = client
        .sink
        .lock()
        .await
        .send(Message::Binary(frame.encode().into()))
        .await;
}

fn create(group: GroupId, n: u64, members: Vec<DeviceId>) -> Submission {
    Submission {
        client_msg: ClientMessageId::from_bytes(*group.as_bytes()),
        group,
        epoch: 0,
        expires_at: None,
        payload: Payload::Commit {
            commit: n.to_be_bytes().to_vec(),
            welcome: Some(vec![0; 64]),
            change: MembershipChange {
                create: Some(GroupSpec {
                    kind: GroupKind::Operational,
                    retention: RetentionSecs::days(7),
                }),
                add: members,
                remove: vec![],
            },
        },
    }
}

fn message(group: GroupId, counter: u64, origin: Instant) -> Submission {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&counter.to_be_bytes());
    id[8..].copy_from_slice(&group.as_bytes()[..8]);
    // The payload carries the send time (micros since `origin`), as
    // ciphertext would carry nothing the relay can read.
    let mut payload = (origin.elapsed().as_micros() as u64).to_be_bytes().to_vec();
    payload.resize(256, 0xab);
    Submission {
        client_msg: ClientMessageId::from_bytes(id),
        group,
        epoch: 1,
        expires_at: Some(huddle_relay::clock::now().saturating_add_millis(3_600_000)),
        payload: Payload::Application {
            ciphertext: payload,
        },
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options();
    let dir = tempfile::tempdir()?;
    let engine = if options.database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let url = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("huddle.db").display()));
    let n = options.connections.max(1_001);

    println!("registering {n} devices ({engine})");
    let keys: Vec<SigningKey> = (0..n)
        .map(|_| SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng))
        .collect();
    {
        let store = huddle_relay::Store::connect(&url).await?;
        let now = huddle_relay::clock::now();
        for (i, key) in keys.iter().enumerate() {
            let user = UserId::from_bytes(*device_id(i).as_bytes());
            store.put_user(user, "Load", Role::Staff, now).await?;
            store
                .put_device(
                    device_id(i),
                    user,
                    key.verifying_key().to_encoded_point(false).as_bytes(),
                    now,
                )
                .await?;
        }
        store.close().await;
    }

    let addr = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string();
    let mut relay = std::process::Command::new(&options.relay_bin)
        .args([
            "--listen",
            &addr,
            "--database-url",
            &url,
            "--frames-per-second",
            "0",
        ])
        .args([
            "--data-dir",
            &dir.path().display().to_string(),
            "--app-dir",
            &dir.path().display().to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let pid = relay.id();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid);

    let (deliveries, mut delivered) = mpsc::unbounded_channel();
    let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
    let origin = Instant::now();
    let mut clients = Vec::with_capacity(options.connections);
    println!("connecting {} devices", options.connections);
    for (i, key) in keys.iter().enumerate().take(options.connections) {
        match connect(&addr, i, key, deliveries.clone(), accepted_tx.clone()).await {
            Some(client) => clients.push(client),
            None => anyhow::bail!("device {i} could not connect"),
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(pid);
    let per_connection_kib = (rss_after.saturating_sub(rss_before)) as f64 / clients.len() as f64;

    let mut rows: Vec<(String, String)> = Vec::new();
    rows.push(("connected devices".into(), clients.len().to_string()));
    rows.push((
        "relay memory, idle (MiB)".into(),
        format!("{:.1}", rss_after as f64 / 1024.0),
    ));
    rows.push((
        "idle memory per connected device (KiB)".into(),
        format!("{per_connection_kib:.1}"),
    ));

    // One-to-one: pairs (2k, 2k+1) of the first 200 devices, at the rate, for the duration.
    let pairs = 100usize.min(clients.len() / 2);
    let pair_group = |p: usize| {
        GroupId::from_bytes({
            let mut b = [0x11u8; 16];
            b[..8].copy_from_slice(&(p as u64).to_be_bytes());
            b
        })
    };
    for p in 0..pairs {
        submit(
            &clients[2 * p],
            create(pair_group(p), p as u64, vec![device_id(2 * p + 1)]),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    while delivered.try_recv().is_ok() {}
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.rate.max(1)));
    let total = u64::from(options.rate) * options.seconds;
    let started = Instant::now();
    for i in 0..total {
        let p = (i as usize) % pairs;
        submit(&clients[2 * p], message(pair_group(p), i, origin)).await;
        let due = started + interval * (i as u32 + 1);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.len() < (total as usize) * 2 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), delivered.recv()).await {
            Ok(Some((device, sent_micros, at))) => {
                if device % 2 == 1 {
                    latencies.push(
                        at.duration_since(origin)
                            .as_micros()
                            .saturating_sub(sent_micros as u128) as f64
                            / 1000.0,
                    );
                }
            }
            _ => {
                if latencies.len() >= total as usize {
                    break;
                }
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    rows.push((
        format!("one-to-one at {} msg/s: delivered", options.rate),
        format!("{} of {total}", latencies.len()),
    ));
    rows.push((
        "one-to-one latency p50 (ms)".into(),
        format!("{:.2}", percentile(&latencies, 0.5)),
    ));
    rows.push((
        "one-to-one latency p99 (ms)".into(),
        format!("{:.2}", percentile(&latencies, 0.99)),
    ));

    // Fan-out to groups of 100 and 1,000 members.
    for size in [100usize, 1000] {
        if clients.len() < size + 1 {
            continue;
        }
        let group = GroupId::from_bytes([size as u8 ^ 0x5a; 16]);
        let members: Vec<DeviceId> = (1..size).map(device_id).collect();
        submit(&clients[0], create(group, 9_000 + size as u64, members)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        while delivered.try_recv().is_ok() {}
        let messages = 20u64;
        let started = Instant::now();
        for i in 0..messages {
            submit(&clients[0], message(group, 1_000_000 + i, origin)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let expected = (messages as usize) * size;
        let mut fan_latencies = Vec::with_capacity(expected);
        let deadline = Instant::now() + Duration::from_secs(30);
        while fan_latencies.len() < expected && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(500), delivered.recv()).await {
                Ok(Some((_, sent_micros, at))) => fan_latencies.push(
                    at.duration_since(origin)
                        .as_micros()
                        .saturating_sub(sent_micros as u128) as f64
                        / 1000.0,
                ),
                _ => break,
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        fan_latencies.sort_by(|a, b| a.total_cmp(b));
        rows.push((
            format!("fan-out to {size}: deliveries"),
            format!("{} of {expected}", fan_latencies.len()),
        ));
        rows.push((
            format!("fan-out to {size}: deliveries per second"),
            format!("{:.0}", fan_latencies.len() as f64 / elapsed),
        ));
        rows.push((
            format!("fan-out to {size}: latency p99 (ms)"),
            format!("{:.2}", percentile(&fan_latencies, 0.99)),
        ));
    }

    // Sustained durable sends: one device, 64 in flight, as fast as the relay acknowledges.
    while accepted.try_recv().is_ok() {}
    let group = pair_group(0);
    let window = 64u64;
    let count = 5_000u64;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut acked = 0u64;
    while acked < count {
        while sent < count && sent - acked < window {
            submit(&clients[0], message(group, 5_000_000 + sent, origin)).await;
            sent += 1;
        }
        match tokio::time::timeout(Duration::from_secs(10), accepted.recv()).await {
            Ok(Some(_)) => acked += 1,
            _ => break,
        }
    }
    rows.push((
        "sustained durable sends per second (one device, 64 in flight)".into(),
        format!("{:.0}", acked as f64 / started.elapsed().as_secs_f64()),
    ));

    let _ = relay.kill();
    let _ = relay.wait();

    println!("\nRelay load, {engine}, relay and generator on this machine");
    for (name, value) in &rows {
        println!("{name:<62} {value:>14}");
    }
    let json: Vec<String> = rows
        .iter()
        .map(|(k, v)| format!("{:?}:{:?}", k, v))
        .collect();
    let out_dir = std::env::var("HUDDLE_REPORTS_DIR").unwrap_or_else(|_| "reports".into());
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(
        format!("{out_dir}/relay-load-{engine}.json"),
        format!("{{{}}}", json.join(",")),
    )?;
    println!("figures written to {out_dir}/relay-load-{engine}.json");
    Ok(())
}
