//! The MLS and at-rest benchmarks, shared by the native runner (`examples/mls_bench.rs`) and the wasm runner (`tests/wasm_bench.rs`, in a dedicated worker).
//!
//! Benchmarks print tables and write figures to files; they are never
//! timed tests. The clock is passed in, so the same code measures natively
//! (`Instant`) and in a browser worker (`performance.now()`).

use crate::device::MlsDevice;
use crate::fast_checks;
use crate::fixtures::claimed;
use crate::identity::verify_device_signature;
use crate::identity::DeviceSigner;
use crate::profile::GroupProfile;
use crate::provider::SignatureCheck;
use crate::Incoming;
use huddle_core::at_rest::{open_record, seal_record, DataKey};
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, OrgId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_core::wire::{ClaimedKeyPackage, Role};
use openmls_traits::signatures::Signer;
use std::fmt::Write as _;

const NOW: UnixMillis = UnixMillis(1_795_000_000_000);
const GROUP: GroupId = GroupId::from_bytes([0xbe; 16]);

/// One measured figure.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    pub operation: String,
    /// Group size, message count or bytes, as the operation says.
    pub size: u64,
    pub millis: f64,
    /// The budget, where the issue names one (same unit as `millis`).
    pub budget_millis: Option<f64>,
}

/// Which sizes to measure: a quick run for checks, the full one for reports.
#[derive(Clone, Copy, Debug)]
pub struct BenchPlan {
    pub group_sizes: &'static [u32],
    pub message_iterations: u32,
    pub backlog: u32,
}

impl BenchPlan {
    pub const FULL: BenchPlan = BenchPlan {
        group_sizes: &[10, 100, 200, 1000],
        message_iterations: 200,
        backlog: 500,
    };
    pub const QUICK: BenchPlan = BenchPlan {
        group_sizes: &[10],
        message_iterations: 5,
        backlog: 10,
    };
}

fn identity(n: u32) -> DeviceIdentity {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    DeviceIdentity {
        org: OrgId::from_bytes([1; 16]),
        user: UserId::from_bytes(bytes),
        device: DeviceId::from_bytes(bytes),
    }
}

/// The organisation's founder, who certifies everyone else in the
/// benchmarks (through real invites, so that every chain is the usual
/// three links: organisation, administrator, invite).
fn founder() -> MlsDevice {
    crate::fixtures::found(identity(u32::MAX)).expect("founder")
}

fn device(founder: &mut MlsDevice, n: u32) -> MlsDevice {
    let role = if n == 0 {
        Role::Administrator
    } else {
        Role::Staff
    };
    crate::fixtures::enrol(founder, identity(n), role).expect("benchmark device")
}

fn profile() -> GroupProfile {
    GroupProfile::new(GroupKind::Operational, RetentionSecs::days(7), "Benchmark").expect("profile")
}

fn msg(n: u32) -> ClientMessageId {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    ClientMessageId::from_bytes(bytes)
}

/// A group of `size` members, of which only the creator holds state: the
/// others' key packages are made by throwaway devices.
fn group_of(founder: &mut MlsDevice, size: u32) -> MlsDevice {
    let mut admin = device(founder, 0);
    admin.create_group(GROUP, &profile()).expect("create");
    if size > 1 {
        let key_packages: Vec<ClaimedKeyPackage> = (1..size)
            .map(|n| {
                let mut member = device(founder, n);
                let kp = member.key_packages(1).expect("kp").remove(0);
                claimed(&member, kp)
            })
            .collect();
        admin.add_members(GROUP, &key_packages).expect("add");
        admin.merge_pending_commit(GROUP, NOW).expect("merge");
    }
    admin
}

/// Runs every benchmark; `now` returns milliseconds from any fixed origin.
/// Async because a join checks its signatures with WebCrypto first, as the
/// crypto worker does; natively that step is a no-op.
pub async fn run(plan: BenchPlan, now: &dyn Fn() -> f64) -> Vec<BenchRow> {
    let mut rows = Vec::new();
    let mut row = |operation: &str, size: u64, millis: f64, budget: Option<f64>| {
        rows.push(BenchRow {
            operation: operation.to_owned(),
            size,
            millis,
            budget_millis: budget,
        })
    };

    // The primitives every MLS operation is made of.
    let signer = DeviceSigner::generate().expect("signer");
    let iterations = plan.message_iterations.max(1);
    let start = now();
    let mut signature = Vec::new();
    for _ in 0..iterations {
        signature = signer.sign(b"benchmark payload").expect("sign");
    }
    row(
        "P-384 ECDSA sign",
        1,
        (now() - start) / f64::from(iterations),
        None,
    );
    let start = now();
    for _ in 0..iterations {
        // Not through a provider: it would remember the signature.
        assert!(verify_device_signature(
            signer.public_key(),
            b"benchmark payload",
            &signature
        ));
    }
    row(
        "P-384 ECDSA verify",
        1,
        (now() - start) / f64::from(iterations),
        None,
    );
    // The same, as many at once through WebCrypto (in a browser; natively
    // nothing is confirmed and the row reads zero).
    let checks: Vec<SignatureCheck> = (0..iterations)
        .map(|n| {
            let message = format!("benchmark payload {n}").into_bytes();
            SignatureCheck {
                public_key: signer.public_key().to_vec(),
                signature: signer.sign(&message).expect("sign"),
                message,
            }
        })
        .collect();
    let start = now();
    let confirmed = fast_checks::confirmed(checks).await.len();
    let elapsed = now() - start;
    row(
        "P-384 ECDSA verify, WebCrypto, many at once (per signature)",
        confirmed as u64,
        if confirmed == 0 {
            0.0
        } else {
            elapsed / confirmed as f64
        },
        None,
    );

    // Seal and open a 1 KiB message in a group of two.
    let mut founder = founder();
    let mut alice = device(&mut founder, 1);
    let mut bob = device(&mut founder, 2);
    let alice_device = alice.identity().device;
    alice.create_group(GROUP, &profile()).expect("create");
    let kp = bob.key_packages(1).expect("kp").remove(0);
    let commit = alice.add_members(GROUP, &[claimed(&bob, kp)]).expect("add");
    alice.merge_pending_commit(GROUP, NOW).expect("merge");
    bob.join(commit.welcome.as_deref().expect("welcome"))
        .expect("join");
    let payload = vec![b'x'; 1024];
    let expires = NOW.saturating_add_millis(3_600_000);
    let mut sealed = Vec::with_capacity(iterations as usize);
    let start = now();
    for n in 0..iterations {
        sealed.push(
            alice
                .seal(GROUP, msg(n), expires, &payload)
                .expect("seal")
                .ciphertext,
        );
    }
    row(
        "seal 1 KiB message",
        1024,
        (now() - start) / f64::from(iterations),
        Some(5.0),
    );
    let start = now();
    for message in &sealed {
        match fast_checks::open(&mut bob, GROUP, message, alice_device, None, NOW)
            .await
            .expect("open")
        {
            Incoming::Message { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    row(
        "open 1 KiB message",
        1024,
        (now() - start) / f64::from(iterations),
        Some(5.0),
    );

    // Catching up on a backlog: messages opened per second (as ms per message).
    let backlog: Vec<Vec<u8>> = (0..plan.backlog)
        .map(|n| {
            alice
                .seal(GROUP, msg(100_000 + n), expires, b"short shift update")
                .expect("seal")
                .ciphertext
        })
        .collect();
    let start = now();
    for message in &backlog {
        fast_checks::open(&mut bob, GROUP, message, alice_device, None, NOW)
            .await
            .expect("open backlog");
    }
    let per_message = (now() - start) / f64::from(plan.backlog.max(1));
    row(
        "backlog: open one of many (ms per message)",
        u64::from(plan.backlog),
        per_message,
        Some(10.0),
    );

    // Adding one member to groups of each size, and that member joining.
    for &size in plan.group_sizes {
        let mut admin = group_of(&mut founder, size);
        let mut newcomer = device(&mut founder, 900_000 + size);
        let kp = newcomer.key_packages(1).expect("kp").remove(0);
        let kp = claimed(&newcomer, kp);
        let start = now();
        let commit = admin.add_members(GROUP, &[kp]).expect("add one");
        let add = now() - start;
        admin.merge_pending_commit(GROUP, NOW).expect("merge");
        let welcome = commit.welcome.expect("welcome");
        let start = now();
        fast_checks::join(&mut newcomer, &welcome)
            .await
            .expect("join");
        let join = now() - start;
        let budgets = if size == 200 {
            (Some(1000.0), Some(1500.0))
        } else {
            (None, None)
        };
        row(
            "add one member (commit + welcome)",
            u64::from(size),
            add,
            budgets.0,
        );
        row("join by welcome", u64::from(size), join, budgets.1);
        if size == 200 {
            // For comparison: every signature checked in wasm, one by one.
            let mut other = device(&mut founder, 950_000 + size);
            let kp = other.key_packages(1).expect("kp").remove(0);
            let kp = claimed(&other, kp);
            let commit = admin.add_members(GROUP, &[kp]).expect("add another");
            admin.merge_pending_commit(GROUP, NOW).expect("merge");
            let welcome = commit.welcome.expect("welcome");
            let start = now();
            other.join(&welcome).expect("join");
            row(
                "join by welcome, without WebCrypto",
                u64::from(size) + 1,
                now() - start,
                None,
            );
        }
        row(
            "welcome size (bytes, not ms)",
            u64::from(size),
            welcome.len() as f64,
            None,
        );
    }

    // The at-rest layer alone: encrypt and decrypt one 1 KiB record.
    let key = DataKey::from_bytes([7; 32]);
    let record = vec![0x5a; 1024];
    let rounds = iterations * 50;
    let start = now();
    for n in 0..rounds {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&n.to_be_bytes());
        let sealed = seal_record(&key, nonce, "messages", b"id", &record);
        let opened = open_record(&key, "messages", b"id", &sealed).expect("open record");
        debug_assert_eq!(opened.len(), record.len());
    }
    row(
        "at rest: encrypt + decrypt 1 KiB record",
        1024,
        (now() - start) / f64::from(rounds),
        Some(0.2),
    );
    rows
}

/// The figures as a plain-text table.
pub fn table(title: &str, rows: &[BenchRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "{:<46} {:>7} {:>12} {:>10}",
        "operation", "size", "ms", "budget"
    );
    for r in rows {
        let budget = r.budget_millis.map_or("".to_owned(), |b| format!("{b}"));
        let _ = writeln!(
            out,
            "{:<46} {:>7} {:>12.3} {:>10}",
            r.operation, r.size, r.millis, budget
        );
    }
    out
}

/// The figures as JSON (written by hand to keep serde_json out of the crate).
pub fn json(environment: &str, rows: &[BenchRow]) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"operation\":\"{}\",\"size\":{},\"millis\":{:.4},\"budget_millis\":{}}}",
                escape(&r.operation),
                r.size,
                r.millis,
                r.budget_millis.map_or("null".to_owned(), |b| b.to_string())
            )
        })
        .collect();
    format!(
        "{{\"environment\":\"{}\",\"rows\":[{}]}}",
        escape(environment),
        items.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick plan runs every path once, so the benchmark cannot rot.
    #[test]
    fn the_benchmark_runs_and_reports_every_operation() {
        let start = std::time::Instant::now();
        let rows = futures::executor::block_on(run(BenchPlan::QUICK, &|| {
            start.elapsed().as_secs_f64() * 1000.0
        }));
        assert_eq!(rows.len(), 3 + 3 + 3 + 1);
        assert!(rows.iter().all(|r| r.millis >= 0.0));
        let text = table("quick", &rows);
        assert!(text.contains("join by welcome"));
        assert!(json("native", &rows).starts_with("{\"environment\":\"native\""));
    }
}
