//! The relay load generator: idle memory per connected device, memory per frame in flight, one-to-one latency quiet and under fifty abusive connections, a soak of mixed traffic, group fan-out and sustained durable sends; prints a table and writes `reports/relay-load-ENGINE.json` (run by `scripts/bench`).
//!
//! It starts the relay binary as its own process (so that its memory is
//! measured alone), with its default limits, registers devices straight
//! into the database, and drives real WebSocket clients on 127.0.0.1. Both
//! share this machine's cores, so the figures include the generator's own
//! cost.

mod abuse;
mod client;
mod relay;

use client::{connect, create, latency_ms, message, pair_group, percentile, Client};
use huddle_core::ids::{DeviceId, GroupId};
use p384::ecdsa::SigningKey;
use relay::{device_id, RelayProcess};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

struct Options {
    connections: usize,
    rate: u32,
    seconds: u64,
    abusers: usize,
    abuse_frames_per_second: u32,
    abuse_kinds: Vec<abuse::Kind>,
    soak_seconds: u64,
    database_url: Option<String>,
    relay_bin: String,
}

fn options() -> Options {
    let mut options = Options {
        connections: 10_000,
        rate: 1_000,
        seconds: 10,
        abusers: 50,
        abuse_frames_per_second: 200,
        abuse_kinds: abuse::Kind::ALL.to_vec(),
        soak_seconds: 0,
        database_url: None,
        relay_bin: std::env::var("HUDDLE_RELAY_BIN")
            .unwrap_or_else(|_| "target/relay/huddle-relay".into()),
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = &pair[1];
        match pair[0].as_str() {
            "--connections" => options.connections = value.parse().unwrap_or(options.connections),
            "--rate" => options.rate = value.parse().unwrap_or(options.rate),
            "--seconds" => options.seconds = value.parse().unwrap_or(options.seconds),
            "--abusers" => options.abusers = value.parse().unwrap_or(options.abusers),
            "--abuse-frames-per-second" => {
                options.abuse_frames_per_second =
                    value.parse().unwrap_or(options.abuse_frames_per_second)
            }
            "--abuse-kinds" => {
                let kinds: Vec<_> = value.split(',').filter_map(abuse::Kind::parse).collect();
                if !kinds.is_empty() {
                    options.abuse_kinds = kinds;
                }
            }
            "--soak-seconds" => options.soak_seconds = value.parse().unwrap_or(0),
            "--database-url" => options.database_url = Some(value.clone()),
            _ => {}
        }
    }
    options
}

/// The table being built.
#[derive(Default)]
struct Report(Vec<(String, String)>);

impl Report {
    fn row(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        println!("  {name}: {value}");
        self.0.push((name, value));
    }
}

/// One-to-one traffic: the first `pairs` pairs, `rate` messages a second
/// in all for `seconds`, numbered from `first`, expiring after `lifetime`.
#[derive(Clone, Copy)]
struct Traffic {
    pairs: usize,
    rate: u32,
    seconds: u64,
    first: u64,
    origin: Instant,
    lifetime: Duration,
}

/// Sends `traffic`; the latencies of the messages that arrived (sorted),
/// and how many were sent.
async fn one_to_one(
    clients: &[Client],
    delivered: &mut mpsc::UnboundedReceiver<(usize, u64, Instant)>,
    traffic: &Traffic,
) -> (Vec<f64>, u64) {
    let Traffic {
        pairs,
        rate,
        seconds,
        first,
        origin,
        lifetime,
    } = *traffic;
    while delivered.try_recv().is_ok() {}
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = u64::from(rate) * seconds;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for i in 0..total {
        let p = (i as usize) % pairs;
        clients[2 * p]
            .submit(message(pair_group(p), first + i, origin, lifetime))
            .await;
        let due = started + interval * (i as u32 + 1);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        while let Ok((device, sent, at)) = delivered.try_recv() {
            if device % 2 == 1 {
                latencies.push(latency_ms(origin, sent, at));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.len() < total as usize && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), delivered.recv()).await {
            Ok(Some((device, sent, at))) if device % 2 == 1 => {
                latencies.push(latency_ms(origin, sent, at));
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, total)
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
    let legit = options.connections.max(1_001);
    let total_devices = legit + options.abusers;

    println!("registering {total_devices} devices ({engine})");
    let keys: Vec<SigningKey> = (0..total_devices)
        .map(|_| SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng))
        .collect();
    relay::register(&url, &keys).await?;

    // The relay with its default limits: what a care home runs.
    let relay = RelayProcess::start(&options.relay_bin, &url, dir.path(), &[]).await?;
    let addr = relay.addr.clone();
    let rss_before = relay.rss_kib();
    let mut report = Report::default();

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
    let rss_idle = relay.rss_kib();
    report.row("connected devices", clients.len().to_string());
    report.row(
        "relay memory, idle (MiB)",
        format!("{:.1}", rss_idle as f64 / 1024.0),
    );
    report.row(
        "idle memory per connected device (KiB)",
        format!(
            "{:.1}",
            rss_idle.saturating_sub(rss_before) as f64 / clients.len() as f64
        ),
    );

    // Memory per frame in flight: sixteen strangers each send half of a
    // frame as large as allowed and stall; sixteen more claim 16 MiB.
    for (label, claimed, sent) in [
        (
            "a 2 MiB frame half sent",
            2 * 1024 * 1024u64,
            1024 * 1024usize,
        ),
        (
            "a 16 MiB frame declared",
            16 * 1024 * 1024u64,
            64 * 1024usize,
        ),
    ] {
        let before = relay.rss_kib();
        let mut stalled = Vec::new();
        for _ in 0..16 {
            if let Some(mut stream) = abuse::hand_made_socket(&addr).await {
                let mut bytes = abuse::frame_header(claimed);
                bytes.resize(bytes.len() + sent, 0);
                let _ = stream.write_all(&bytes).await;
                stalled.push(stream);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let during = relay.rss_kib();
        report.row(
            format!("memory per connection with {label} (KiB)"),
            format!(
                "{:.0}",
                during.saturating_sub(before) as f64 / stalled.len().max(1) as f64
            ),
        );
        drop(stalled);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // One-to-one: pairs (2k, 2k+1) of the first 200 devices.
    let pairs = 100usize.min(clients.len() / 2);
    for p in 0..pairs {
        clients[2 * p]
            .submit(create(pair_group(p), p as u64, vec![device_id(2 * p + 1)]))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lifetime = Duration::from_secs(3_600);
    let traffic = Traffic {
        pairs,
        rate: options.rate,
        seconds: options.seconds,
        first: 0,
        origin,
        lifetime,
    };
    let (quiet, total) = one_to_one(&clients, &mut delivered, &traffic).await;
    let rate = options.rate;
    report.row(
        format!("one-to-one at {rate} msg/s: delivered"),
        format!("{} of {total}", quiet.len()),
    );
    report.row(
        "one-to-one latency p50 (ms)",
        format!("{:.2}", percentile(&quiet, 0.5)),
    );
    report.row(
        "one-to-one latency p99 (ms)",
        format!("{:.2}", percentile(&quiet, 0.99)),
    );

    // The same under fifty abusive connections.
    let counts = Arc::new(abuse::AbuseCounts::default());
    let abusers: Vec<_> = (0..options.abusers)
        .map(|index| {
            tokio::spawn(abuse::run(
                addr.clone(),
                options.abuse_kinds[index % options.abuse_kinds.len()],
                legit + index,
                keys[legit + index].clone(),
                options.abuse_frames_per_second,
                counts.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let abuse_started = Instant::now();
    let under_abuse = Traffic {
        first: 1_000_000,
        ..traffic
    };
    let (flooded, total) = one_to_one(&clients, &mut delivered, &under_abuse).await;
    let abuse_seconds = abuse_started.elapsed().as_secs_f64() + 2.0;
    let n = options.abusers;
    report.row(
        format!("under {n} abusive connections: one-to-one delivered"),
        format!("{} of {total}", flooded.len()),
    );
    report.row(
        format!("under {n} abusive connections: one-to-one p50 (ms)"),
        format!("{:.2}", percentile(&flooded, 0.5)),
    );
    report.row(
        format!("under {n} abusive connections: one-to-one p99 (ms)"),
        format!("{:.2}", percentile(&flooded, 0.99)),
    );
    let frames = counts.frames.load(std::sync::atomic::Ordering::Relaxed);
    let bytes = counts.bytes.load(std::sync::atomic::Ordering::Relaxed);
    report.row(
        "abusive frames per second sent",
        format!("{:.0}", frames as f64 / abuse_seconds),
    );
    report.row(
        "abusive MB per second sent",
        format!("{:.1}", bytes as f64 / abuse_seconds / 1e6),
    );
    report.row(
        "abusive connections cut off and reopened",
        counts
            .reconnects
            .load(std::sync::atomic::Ordering::Relaxed)
            .to_string(),
    );

    // The soak: an hour's mixed traffic compressed, messages expiring as
    // they go (so the sweeper works throughout), in 10 s windows that
    // alternate without and with the abusers: the machine's other work
    // (this generator included) falls on both alike, so the two p99s
    // compare the relay's answer to abuse and not the machine's mood.
    if options.soak_seconds > 0 {
        let windows = options.soak_seconds.div_ceil(10).max(2);
        let rss_start = relay.rss_kib();
        let (mut quiet, mut abused) = (Vec::new(), Vec::new());
        let (mut quiet_windows, mut abused_windows) = (Vec::new(), Vec::new());
        let (mut sent, mut got) = (0u64, 0usize);
        println!("soak: {windows} windows of 10 s, abusers in every other one");
        for window in 0..windows {
            let abusive = window % 2 == 1;
            counts
                .paused
                .store(!abusive, std::sync::atomic::Ordering::Relaxed);
            let soak = Traffic {
                seconds: 10,
                first: 10_000_000 + window * 100_000,
                lifetime: Duration::from_secs(30),
                ..traffic
            };
            let (latencies, total) = one_to_one(&clients, &mut delivered, &soak).await;
            let p99 = percentile(&latencies, 0.99);
            println!(
                "  window {window} ({}): {} of {total} delivered, p99 {p99:.2} ms, relay {:.1} MiB",
                if abusive { "abusers" } else { "quiet" },
                latencies.len(),
                relay.rss_kib() as f64 / 1024.0
            );
            sent += total;
            got += latencies.len();
            if abusive {
                abused.extend(latencies);
                abused_windows.push(p99);
            } else {
                quiet.extend(latencies);
                quiet_windows.push(p99);
            }
        }
        counts
            .paused
            .store(false, std::sync::atomic::Ordering::Relaxed);
        for list in [
            &mut quiet,
            &mut abused,
            &mut quiet_windows,
            &mut abused_windows,
        ] {
            list.sort_by(f64::total_cmp);
        }
        let rss_end = relay.rss_kib();
        let s = options.soak_seconds;
        report.row(
            format!("soak of {s} s: one-to-one delivered"),
            format!("{got} of {sent}"),
        );
        report.row(
            format!("soak of {s} s: one-to-one p99, quiet windows (ms)"),
            format!("{:.2}", percentile(&quiet, 0.99)),
        );
        report.row(
            format!("soak of {s} s: one-to-one p99, windows with {n} abusers (ms)"),
            format!("{:.2}", percentile(&abused, 0.99)),
        );
        report.row(
            format!("soak of {s} s: median window p99, quiet / with abusers (ms)"),
            format!(
                "{:.2} / {:.2}",
                percentile(&quiet_windows, 0.5),
                percentile(&abused_windows, 0.5)
            ),
        );
        report.row(
            format!("soak of {s} s: relay memory start / end (MiB)"),
            format!(
                "{:.1} / {:.1}",
                rss_start as f64 / 1024.0,
                rss_end as f64 / 1024.0
            ),
        );
    }
    abusers.iter().for_each(|task| task.abort());
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Fan-out to groups of 100 and 1,000 members, each made by its first
    // member (away from the pairs, so that each creator has its whole
    // allowance of frames).
    for (size, creator) in [(100usize, 1_000usize), (1_000, 2_000)] {
        if clients.len() < creator + size {
            continue;
        }
        let group = GroupId::from_bytes([size as u8 ^ 0x5a; 16]);
        let members: Vec<DeviceId> = (creator + 1..creator + size).map(device_id).collect();
        clients[creator]
            .submit(create(group, 9_000 + size as u64, members))
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        while delivered.try_recv().is_ok() {}
        let messages = 20u64;
        let started = Instant::now();
        for i in 0..messages {
            clients[creator]
                .submit(message(group, 20_000_000 + i, origin, lifetime))
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let expected = (messages as usize) * size;
        let mut fan_latencies = Vec::with_capacity(expected);
        let deadline = Instant::now() + Duration::from_secs(30);
        while fan_latencies.len() < expected && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(500), delivered.recv()).await {
                Ok(Some((_, sent, at))) => fan_latencies.push(latency_ms(origin, sent, at)),
                _ => break,
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        fan_latencies.sort_by(f64::total_cmp);
        report.row(
            format!("fan-out to {size}: deliveries"),
            format!("{} of {expected}", fan_latencies.len()),
        );
        report.row(
            format!("fan-out to {size}: deliveries per second"),
            format!("{:.0}", fan_latencies.len() as f64 / elapsed),
        );
        report.row(
            format!("fan-out to {size}: latency p99 (ms)"),
            format!("{:.2}", percentile(&fan_latencies, 0.99)),
        );
    }
    drop(clients);
    drop(relay);

    // Sustained durable sends: one device, 64 in flight, as fast as the
    // relay acknowledges, on a relay without a frame limit (the limit is
    // what a device could send otherwise).
    let relay = RelayProcess::start(
        &options.relay_bin,
        &url,
        dir.path(),
        &["--frames-per-second", "0"],
    )
    .await?;
    while accepted.try_recv().is_ok() {}
    let sender = connect(
        &relay.addr,
        0,
        &keys[0],
        deliveries.clone(),
        accepted_tx.clone(),
    )
    .await
    .ok_or_else(|| anyhow::anyhow!("device 0 could not reconnect"))?;
    let group = pair_group(0);
    let (window, count) = (64u64, 5_000u64);
    let started = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    while acked < count {
        while sent < count && sent - acked < window {
            sender
                .submit(message(group, 50_000_000 + sent, origin, lifetime))
                .await;
            sent += 1;
        }
        match tokio::time::timeout(Duration::from_secs(10), accepted.recv()).await {
            Ok(Some(_)) => acked += 1,
            _ => break,
        }
    }
    report.row(
        "sustained durable sends per second (one device, 64 in flight)",
        format!("{:.0}", acked as f64 / started.elapsed().as_secs_f64()),
    );
    drop(relay);

    println!("\nRelay load, {engine}, relay and generator on this machine");
    for (name, value) in &report.0 {
        println!("{name:<70} {value:>14}");
    }
    let json: Vec<String> = report
        .0
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
