//! A test device: its id, its person and its P-384 key, registered with a relay's store; and the submissions tests send.

use super::ws::{sign_in_at, Socket};
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_core::wire::{GroupSpec, MembershipChange, Payload, Role, ServerFrame, Submission};
use p384::ecdsa::SigningKey;

pub fn now() -> UnixMillis {
    huddle_relay::clock::now()
}

/// A client message id numbered `n`.
pub fn msg(n: u32) -> ClientMessageId {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    ClientMessageId::from_bytes(bytes)
}

/// An application message numbered `n`, made in `epoch`, valid for an hour.
pub fn text(n: u32, group: GroupId, epoch: u64) -> Submission {
    Submission {
        client_msg: msg(n),
        group,
        epoch,
        expires_at: Some(now().saturating_add_millis(3_600_000)),
        payload: Payload::Application {
            ciphertext: format!("ciphertext {n}").into_bytes(),
        },
    }
}

/// The first commit of a group, adding `add` (each gets a welcome).
pub fn create(n: u32, group: GroupId, kind: GroupKind, add: Vec<DeviceId>) -> Submission {
    Submission {
        client_msg: msg(n),
        group,
        epoch: 0,
        expires_at: None,
        payload: Payload::Commit {
            commit: huddle_relay::mls_framing::framed_commit(group, 0, b"commit"),
            welcome: (!add.is_empty()).then(|| b"welcome".to_vec()),
            change: MembershipChange {
                create: Some(GroupSpec {
                    kind,
                    retention: kind.retention_policy().default.max(RetentionSecs::DAY),
                }),
                add,
                remove: vec![],
            },
        },
    }
}

/// A device of a person, with its key.
pub struct TestDevice {
    pub device: DeviceId,
    pub user: UserId,
    pub key: SigningKey,
}

impl TestDevice {
    /// Device `n` of person `n`.
    pub fn new(n: u8) -> TestDevice {
        TestDevice {
            device: DeviceId::from_bytes([n; 16]),
            user: UserId::from_bytes([n; 16]),
            key: SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng),
        }
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// Registers the person (with `role`) and the device.
    pub async fn register(&self, store: &huddle_relay::Store, role: Role) {
        store
            .put_user(self.user, "Test person", role, now())
            .await
            .expect("register the person");
        store
            .put_device(self.device, self.user, &self.public_key(), now())
            .await
            .expect("register the device");
    }

    /// Signs in to the relay at `addr`; fails the test unless it is let in.
    pub async fn connect_at(&self, addr: std::net::SocketAddr) -> Socket {
        let (socket, answer) = sign_in_at(addr, self.device, &self.key).await;
        assert!(
            matches!(answer, ServerFrame::Ready { device, .. } if device == self.device),
            "{answer:?}"
        );
        socket
    }

    pub async fn connect(&self, relay: &huddle_relay::RunningRelay) -> Socket {
        self.connect_at(relay.local_addr).await
    }
}
