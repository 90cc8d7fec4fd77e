//! Durability: a device sends 2,000 messages while the relay process is killed with SIGKILL and restarted several times; every acknowledged message reaches the other member exactly once, in order.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use futures::{SinkExt, StreamExt};
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::retention::GroupKind;
use huddle_core::wire::Role;
use huddle_core::wire::{
    auth_transcript, ClientFrame, GroupCursor, Payload, ServerFrame, Submission,
};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::device::{create, msg, TestDevice};
use support::Engine;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const MESSAGES: u32 = 2_000;
const KILLS: u32 = 5;
const WINDOW: usize = 64;
const GROUP: GroupId = GroupId::from_bytes([0x44; 16]);
/// Marks every payload, so that the logs can be searched for it.
const MARKER: &str = "PAYLOAD-MARKER-";

struct RelayProcess {
    child: Child,
    args: Vec<String>,
    log: std::path::PathBuf,
}

impl RelayProcess {
    fn start(addr: &str, dir: &Path, url: &str) -> RelayProcess {
        let log = dir.join("relay.log");
        let args = vec![
            "--listen".into(),
            addr.into(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--app-dir".into(),
            dir.display().to_string(),
            "--database-url".into(),
            url.into(),
            // One device sending 2,000 messages as fast as it can is a load
            // test, not a phone: no per-device limit.
            "--frames-per-second".into(),
            "0".into(),
        ];
        let child = spawn(&args, &log);
        RelayProcess { child, args, log }
    }

    fn kill_and_restart(&mut self) {
        // SIGKILL: no shutdown, no flush; only what was committed survives.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.args, &self.log);
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[String], log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let err = out.try_clone().expect("log file");
    Command::new(env!("CARGO_BIN_EXE_huddle-relay"))
        .args(args)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start the relay")
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").to_string()
}

async fn connect(addr: &str, device: DeviceId, key: &SigningKey) -> Option<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws"))
        .await
        .ok()?;
    let ServerFrame::Challenge { nonce, .. } = next(&mut socket).await? else {
        return None;
    };
    let signature: Signature = key.sign(&auth_transcript(&nonce, device));
    let frame = ClientFrame::Authenticate {
        device,
        signature: signature.to_der().as_bytes().to_vec(),
    };
    socket
        .send(Message::Binary(frame.encode().into()))
        .await
        .ok()?;
    matches!(next(&mut socket).await?, ServerFrame::Ready { .. }).then_some(socket)
}

async fn next(socket: &mut Socket) -> Option<ServerFrame> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .ok()??
            .ok()?;
        match message {
            Message::Binary(bytes) => return ServerFrame::decode(&bytes).ok(),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

fn submission(n: u32) -> Submission {
    Submission {
        client_msg: msg(n),
        group: GROUP,
        epoch: 1,
        expires_at: Some(huddle_relay::clock::now().saturating_add_millis(3_600_000)),
        payload: Payload::Application {
            ciphertext: format!("{MARKER}{n}").into_bytes(),
        },
    }
}

/// Sends every message until each is acknowledged, reconnecting and
/// resending the unanswered ones (same ids) whenever the relay goes away.
async fn send_all(addr: &str, device: DeviceId, key: &SigningKey) -> (BTreeMap<u32, u64>, u32) {
    let mut acked: BTreeMap<u32, u64> = BTreeMap::new();
    let mut connections = 0;
    while acked.len() < MESSAGES as usize {
        let Some(mut socket) = connect(addr, device, key).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        connections += 1;
        let mut next_to_send = 0u32;
        let mut in_flight = 0usize;
        loop {
            while in_flight < WINDOW && next_to_send < MESSAGES {
                if !acked.contains_key(&next_to_send) {
                    let frame = ClientFrame::Submit(submission(next_to_send));
                    if socket
                        .send(Message::Binary(frame.encode().into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    in_flight += 1;
                }
                next_to_send += 1;
            }
            if in_flight == 0 {
                break;
            }
            match next(&mut socket).await {
                Some(ServerFrame::Accepted {
                    client_msg, seq, ..
                }) => {
                    let n = u32::from_be_bytes(client_msg.as_bytes()[..4].try_into().unwrap());
                    if let Some(previous) = acked.insert(n, seq) {
                        assert_eq!(previous, seq, "a resend was stored twice");
                    }
                    in_flight -= 1;
                }
                Some(ServerFrame::Deliver(_) | ServerFrame::DeliverCommit { .. }) => {}
                Some(other) => panic!("unexpected {other:?}"),
                None => break, // killed: reconnect and resend what is unanswered
            }
        }
    }
    (acked, connections)
}

async fn durability(engine: Engine) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(url) = support::database_url(engine, dir.path()).await else {
        return;
    };
    let (alice, bob) = (TestDevice::new(1), TestDevice::new(2));
    {
        let store = huddle_relay::Store::connect(&url).await.expect("database");
        alice.register(&store, Role::Staff).await;
        bob.register(&store, Role::Staff).await;
        store.close().await;
    }
    let addr = free_address();
    let mut relay = RelayProcess::start(&addr, dir.path(), &url);

    // Alice creates the group with Bob in it.
    let mut socket = loop {
        if let Some(socket) = connect(&addr, alice.device, &alice.key).await {
            break socket;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let create = create(u32::MAX, GROUP, GroupKind::Operational, vec![bob.device]);
    socket
        .send(Message::Binary(ClientFrame::Submit(create).encode().into()))
        .await
        .unwrap();
    let answer = next(&mut socket).await;
    assert!(
        matches!(answer, Some(ServerFrame::Accepted { seq: 1, .. })),
        "the group was not created: {answer:?}"
    );
    drop(socket);

    // Send while the relay is killed and restarted.
    let sender = {
        let addr = addr.clone();
        let (device, key) = (alice.device, alice.key.clone());
        tokio::spawn(async move { send_all(&addr, device, &key).await })
    };
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(400)).await;
        relay.kill_and_restart();
    }
    let (acked, connections) = tokio::time::timeout(Duration::from_secs(300), sender)
        .await
        .expect("all sent in time")
        .unwrap();
    assert_eq!(acked.len(), MESSAGES as usize);
    assert!(
        connections >= 2,
        "the relay was killed while messages were in flight"
    );
    eprintln!("{engine:?}: {MESSAGES} messages over {connections} connections");

    // Bob reads the whole log: every message once, in the order sent.
    let mut bob_socket = loop {
        if let Some(socket) = connect(&addr, bob.device, &bob.key).await {
            break socket;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sync = ClientFrame::Sync {
        cursors: vec![GroupCursor {
            group: GROUP,
            seq: 1,
        }],
    };
    bob_socket
        .send(Message::Binary(sync.encode().into()))
        .await
        .unwrap();
    let mut received = Vec::new();
    loop {
        match next(&mut bob_socket).await.expect("the backlog") {
            ServerFrame::Deliver(entry) => {
                let n = u32::from_be_bytes(entry.client_msg.as_bytes()[..4].try_into().unwrap());
                assert_eq!(entry.payload, format!("{MARKER}{n}").into_bytes());
                assert_eq!(
                    acked.get(&n),
                    Some(&entry.seq),
                    "delivered where it was acknowledged"
                );
                received.push(n);
            }
            ServerFrame::Synced => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        received,
        (0..MESSAGES).collect::<Vec<_>>(),
        "each exactly once, in order"
    );
    drop(relay);

    // The relay logged no payloads.
    let log = std::fs::read_to_string(dir.path().join("relay.log")).unwrap_or_default();
    assert!(log.contains("device connected"), "the log was written");
    assert!(
        !log.contains(MARKER),
        "a payload appeared in the relay's log"
    );
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill_on_sqlite() {
    durability(Engine::Sqlite).await;
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill_on_postgresql() {
    durability(Engine::Postgres).await;
}
