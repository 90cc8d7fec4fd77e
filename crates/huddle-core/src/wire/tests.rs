//! Tests for the wire frames: round trips, bad input, and frozen bytes that later versions must still read.

use super::*;

fn hex(bytes: &[u8]) -> String {
    crate::hex::encode(bytes)
}

/// A test vector written with spaces between bytes.
fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    crate::hex::decode(&text).expect("test vector is hex")
}

fn group() -> GroupId {
    GroupId::from_bytes([0x11; 16])
}
fn device() -> DeviceId {
    DeviceId::from_bytes([0x22; 16])
}
fn message() -> ClientMessageId {
    ClientMessageId::from_bytes([0x33; 16])
}

fn sample_client_frames() -> Vec<ClientFrame> {
    vec![
        ClientFrame::Authenticate {
            device: device(),
            signature: vec![1, 2, 3],
        },
        ClientFrame::Sync {
            cursors: vec![GroupCursor {
                group: group(),
                seq: 300,
            }],
        },
        ClientFrame::Submit(Submission {
            client_msg: message(),
            group: group(),
            epoch: 7,
            expires_at: Some(UnixMillis(1_795_000_000_000)),
            payload: Payload::Application {
                ciphertext: vec![0xaa, 0xbb],
            },
        }),
        ClientFrame::Submit(Submission {
            client_msg: message(),
            group: group(),
            epoch: 0,
            expires_at: None,
            payload: Payload::Commit {
                commit: vec![0xcc],
                welcome: Some(vec![0xdd]),
                change: MembershipChange {
                    create: Some(GroupSpec {
                        kind: GroupKind::Clinical,
                        retention: RetentionSecs::DAY,
                    }),
                    add: vec![device()],
                    remove: vec![],
                },
            },
        }),
        ClientFrame::Ack {
            group: group(),
            seq: 301,
        },
        ClientFrame::PublishKeyPackages {
            request: 9,
            key_packages: vec![vec![1], vec![2]],
            last_resort: Some(vec![3]),
        },
        ClientFrame::ClaimKeyPackages {
            request: 10,
            users: vec![UserId::from_bytes([0x44; 16])],
        },
        ClientFrame::Ping { nonce: 5 },
        ClientFrame::CreateInvite {
            request: 11,
            display_name: "Sam Carter".into(),
            role: Role::Staff,
            valid_for_secs: 86_400,
        },
        ClientFrame::RevokeInvite {
            request: 12,
            user: UserId::from_bytes([0x66; 16]),
        },
        ClientFrame::RevokeDevice {
            request: 13,
            device: device(),
        },
        ClientFrame::RevokeUser {
            request: 14,
            user: UserId::from_bytes([0x44; 16]),
        },
        ClientFrame::Directory { request: 15 },
        ClientFrame::ReadAudit {
            request: 16,
            before: Some(40),
            limit: 20,
        },
        ClientFrame::SetPasscodeLock {
            request: 30,
            lock_key: vec![4; 97],
            secrets: LockSecrets {
                verifier: vec![1; 48],
                share: vec![2; 32],
            },
        },
        ClientFrame::CreateInviteEnding {
            request: 31,
            user: UserId::from_bytes([0x66; 16]),
            display_name: "Ama (agency)".into(),
            role: Role::Staff,
            valid_for_secs: 3600,
            access_ends_at: UnixMillis(1_795_000_000_000),
        },
        ClientFrame::SetAccessEnds {
            request: 32,
            user: UserId::from_bytes([0x66; 16]),
            ends_at: None,
        },
        ClientFrame::AccessEnds { request: 33 },
        ClientFrame::ReviewsDue { request: 35 },
        ClientFrame::MembersReviewed {
            request: 36,
            group: group(),
            kept: 4,
            removed: 1,
        },
        ClientFrame::Submit(Submission {
            client_msg: message(),
            group: group(),
            epoch: 7,
            expires_at: Some(UnixMillis(1_795_000_000_000)),
            payload: Payload::Removing {
                ciphertext: vec![0xaa, 0xbb],
                removes: ClientMessageId::from_bytes([0x44; 16]),
            },
        }),
    ]
}

fn sample_server_frames() -> Vec<ServerFrame> {
    vec![
        ServerFrame::Challenge {
            nonce: [7; 32],
            relay_time: UnixMillis(1),
        },
        ServerFrame::Ready {
            org: OrgId::from_bytes([0x55; 16]),
            user: UserId::from_bytes([0x44; 16]),
            device: device(),
            policy: PhonePolicy {
                max_offline_secs: 3 * 24 * 60 * 60,
                lock_after_idle_secs: 60,
                lock_after_hidden_secs: 10,
                offline_unlock_secs: 3600,
                broadcast_reminder_secs: 600,
                broadcast_alert_secs: 1800,
            },
        },
        ServerFrame::Accepted {
            client_msg: message(),
            group: group(),
            seq: 12,
        },
        ServerFrame::Rejected {
            client_msg: message(),
            group: group(),
            reason: Rejection::StaleEpoch { current_epoch: 8 },
        },
        ServerFrame::Deliver(LogEntry {
            group: group(),
            seq: 13,
            epoch: 8,
            sender: device(),
            client_msg: message(),
            kind: EntryKind::Application,
            expires_at: Some(UnixMillis(2)),
            payload: vec![0xee],
        }),
        ServerFrame::Welcome {
            group: group(),
            seq: 1,
            spec: GroupSpec {
                kind: GroupKind::Social,
                retention: RetentionSecs::days(14),
            },
            welcome: vec![0xff],
        },
        ServerFrame::Synced,
        ServerFrame::KeyPackagesPublished { request: 9 },
        ServerFrame::KeyPackages {
            request: 10,
            key_packages: vec![ClaimedKeyPackage {
                user: UserId::from_bytes([0x44; 16]),
                device: device(),
                key_package: vec![1, 2],
            }],
        },
        ServerFrame::Pong { nonce: 5 },
        ServerFrame::Error {
            code: ErrorCode::Malformed,
            message: "bad".into(),
        },
        ServerFrame::InviteCreated {
            request: 11,
            user: UserId::from_bytes([0x66; 16]),
            secret: LinkSecret([9; 32]),
            expires_at: UnixMillis(5),
        },
        ServerFrame::Done { request: 13 },
        ServerFrame::Refused {
            request: 14,
            reason: "only administrators".into(),
        },
        ServerFrame::People {
            request: 15,
            people: vec![Person {
                user: UserId::from_bytes([0x44; 16]),
                display_name: "Sam".into(),
                role: Role::Administrator,
                devices: vec![device()],
            }],
        },
        ServerFrame::Skipped {
            group: group(),
            up_to: 12,
        },
        ServerFrame::Audit {
            request: 16,
            entries: vec![AuditEntry {
                id: 39,
                at: UnixMillis(7),
                actor: None,
                action: "joined".into(),
                subject: "Sam".into(),
            }],
        },
        ServerFrame::RevokedMembers {
            groups: vec![RevokedInGroup {
                group: group(),
                devices: vec![device()],
            }],
        },
        ServerFrame::AccessEnds {
            request: 34,
            people: vec![AccessEnd {
                user: UserId::from_bytes([0x66; 16]),
                ends_at: UnixMillis(1_795_000_000_000),
                invited: true,
            }],
        },
        ServerFrame::ReviewsDue {
            request: 37,
            groups: vec![ReviewDue {
                group: group(),
                due_at: UnixMillis(1_795_000_000_000),
                reviewed_at: None,
            }],
        },
    ]
}

#[test]
fn every_frame_round_trips() {
    for frame in sample_client_frames() {
        assert_eq!(ClientFrame::decode(&frame.encode()), Ok(frame));
    }
    for frame in sample_server_frames() {
        assert_eq!(ServerFrame::decode(&frame.encode()), Ok(frame));
    }
}

/// Frozen: version 1 bytes of a few frames. If these fail, the wire format
/// changed and old clients or relays would misread new ones.
#[test]
fn frozen_frames_v1() {
    let submit = &sample_client_frames()[2];
    let submit_hex = "01023333333333333333333333333333333311111111111111111111111111111111070180bcd9f29e340002aabb";
    assert_eq!(hex(&submit.encode()), submit_hex);
    assert_eq!(ClientFrame::decode(&unhex(submit_hex)).as_ref(), Ok(submit));

    let commit = &sample_client_frames()[3];
    let commit_hex = "0102333333333333333333333333333333331111111111111111111111111111111100000101cc0101dd010080a305012222222222222222222222222222222200";
    assert_eq!(hex(&commit.encode()), commit_hex);
    assert_eq!(ClientFrame::decode(&unhex(commit_hex)).as_ref(), Ok(commit));

    let removing = sample_client_frames().pop().unwrap();
    let removing_hex = format!(
        "{}{}",
        "01023333333333333333333333333333333311111111111111111111111111111111070180bcd9f29e340202aabb",
        "44".repeat(16)
    );
    assert_eq!(hex(&removing.encode()), removing_hex);
    assert_eq!(ClientFrame::decode(&unhex(&removing_hex)), Ok(removing));

    let deliver = &sample_server_frames()[4];
    let deliver_hex = "0104111111111111111111111111111111110d08222222222222222222222222222222223333333333333333333333333333333300010201ee";
    assert_eq!(hex(&deliver.encode()), deliver_hex);
    assert_eq!(
        ServerFrame::decode(&unhex(deliver_hex)).as_ref(),
        Ok(deliver)
    );

    let rejected = &sample_server_frames()[3];
    let rejected_hex = "010333333333333333333333333333333333111111111111111111111111111111110008";
    assert_eq!(hex(&rejected.encode()), rejected_hex);
    assert_eq!(
        ServerFrame::decode(&unhex(rejected_hex)).as_ref(),
        Ok(rejected)
    );
}

/// Frozen: the frames for membership that ends and is reviewed, appended
/// after the rest (client kinds 22 to 26, server kinds 22 and 23).
#[test]
fn frozen_membership_frames_v1() {
    let vectors: [(&str, bool); 4] = [
        (
            "01161f666666666666666666666666666666660c416d6120286167656e63792900901c80bcd9f29e34",
            true,
        ),
        ("011a24111111111111111111111111111111110401", true),
        (
            "011622016666666666666666666666666666666680bcd9f29e3401",
            false,
        ),
        (
            "011725011111111111111111111111111111111180bcd9f29e3400",
            false,
        ),
    ];
    let clients: Vec<ClientFrame> = sample_client_frames()
        .into_iter()
        .filter(|f| {
            matches!(
                f,
                ClientFrame::CreateInviteEnding { .. } | ClientFrame::MembersReviewed { .. }
            )
        })
        .collect();
    let servers: Vec<ServerFrame> = sample_server_frames()
        .into_iter()
        .filter(|f| {
            matches!(
                f,
                ServerFrame::AccessEnds { .. } | ServerFrame::ReviewsDue { .. }
            )
        })
        .collect();
    let (mut c, mut s) = (clients.iter(), servers.iter());
    for (vector, client) in vectors {
        if client {
            let frame = c.next().expect("a client frame");
            assert_eq!(hex(&frame.encode()), vector);
            assert_eq!(ClientFrame::decode(&unhex(vector)).as_ref(), Ok(frame));
        } else {
            let frame = s.next().expect("a server frame");
            assert_eq!(hex(&frame.encode()), vector);
            assert_eq!(ServerFrame::decode(&unhex(vector)).as_ref(), Ok(frame));
        }
    }
}

#[test]
fn bad_frames_get_typed_errors() {
    assert_eq!(ClientFrame::decode(&[]), Err(WireError::Malformed));
    assert_eq!(
        ClientFrame::decode(&[0x02, 0x07]),
        Err(WireError::UnsupportedVersion(2))
    );
    assert_eq!(
        ClientFrame::decode(&[0x01, 0x7f]),
        Err(WireError::Malformed),
        "unknown frame kind"
    );
    assert!(matches!(
        ServerFrame::decode(&vec![1u8; MAX_FRAME_BYTES + 1]),
        Err(WireError::TooLarge { .. })
    ));
    let mut trailing = ClientFrame::Ping { nonce: 1 }.encode();
    trailing.push(0);
    assert_eq!(ClientFrame::decode(&trailing), Err(WireError::Malformed));
    // A length prefix that claims more bytes than there are.
    assert_eq!(
        ClientFrame::decode(&unhex("01 00 11 11 11 ff ff ff 0f")),
        Err(WireError::Malformed)
    );
}

#[test]
fn no_truncation_or_bit_flip_panics() {
    for frame in sample_client_frames() {
        let bytes = frame.encode();
        for len in 0..bytes.len() {
            assert!(ClientFrame::decode(&bytes[..len]).is_err());
        }
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[index] ^= 1 << bit;
                let _ = ClientFrame::decode(&bad);
                let _ = ServerFrame::decode(&bad);
            }
        }
    }
}

#[test]
fn only_stale_epoch_and_rate_limits_are_retryable() {
    assert!(Rejection::StaleEpoch { current_epoch: 1 }.is_retryable());
    assert!(Rejection::RateLimited { retry_after_ms: 10 }.is_retryable());
    assert!(!Rejection::NotPermitted.is_retryable());
    assert!(!Rejection::Expired.is_retryable());
}

#[test]
fn the_auth_transcript_binds_nonce_and_device() {
    let a = auth_transcript(&[1; 32], device());
    assert_ne!(a, auth_transcript(&[2; 32], device()));
    assert_ne!(a, auth_transcript(&[1; 32], DeviceId::from_bytes([0; 16])));
    assert!(a.starts_with(b"huddle relay authentication v1"));
}

#[test]
fn a_passcode_lock_frame_never_prints_its_share_or_verifier() {
    let frame = ClientFrame::SetPasscodeLock {
        request: 1,
        lock_key: vec![4; 97],
        secrets: LockSecrets {
            verifier: vec![0xab; 48],
            share: vec![0xcd; 32],
        },
    };
    let printed = format!("{frame:?}");
    assert!(printed.contains("LockSecrets(***)"), "{printed}");
    assert!(
        !printed.contains("171") && !printed.contains("205"),
        "{printed}"
    );
}

#[test]
fn an_invite_frame_never_prints_its_secret() {
    let frame = ServerFrame::InviteCreated {
        request: 1,
        user: UserId::from_bytes([0x66; 16]),
        secret: LinkSecret([0xab; 32]),
        expires_at: UnixMillis(5),
    };
    let printed = format!("{frame:?}");
    assert!(!printed.contains("171"), "{printed}"); // 0xab as a decimal byte
    assert!(!printed.to_ascii_lowercase().contains("abab"), "{printed}");
    assert!(printed.contains("LinkSecret(***)"), "{printed}");
}
