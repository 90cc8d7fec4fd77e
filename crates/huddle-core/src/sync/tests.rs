//! Tests for the sync engine, driven by events alone: no socket, no clock, no browser.

use super::*;
use crate::wire::{EntryKind, ErrorCode, MembershipChange};

const ME: DeviceId = DeviceId::from_bytes([1; 16]);
const ALICE: DeviceId = DeviceId::from_bytes([2; 16]);
const WARD: GroupId = GroupId::from_bytes([10; 16]);
const SOCIAL: GroupId = GroupId::from_bytes([11; 16]);

fn at(ms: u64) -> UnixMillis {
    UnixMillis(ms)
}

fn msg_id(n: u8) -> ClientMessageId {
    ClientMessageId::from_bytes([n; 16])
}

fn text(n: u8, group: GroupId, epoch: u64) -> Submission {
    Submission {
        client_msg: msg_id(n),
        group,
        epoch,
        expires_at: Some(at(1_000_000)),
        payload: Payload::Application {
            ciphertext: vec![n],
        },
    }
}

fn commit(n: u8, group: GroupId, epoch: u64) -> Submission {
    Submission {
        client_msg: msg_id(n),
        group,
        epoch,
        expires_at: None,
        payload: Payload::Commit {
            commit: vec![n],
            welcome: None,
            change: MembershipChange::default(),
        },
    }
}

fn entry(
    group: GroupId,
    seq: u64,
    epoch: u64,
    sender: DeviceId,
    n: u8,
    kind: EntryKind,
) -> LogEntry {
    LogEntry {
        group,
        seq,
        epoch,
        sender,
        client_msg: msg_id(n),
        kind,
        expires_at: None,
        payload: vec![n],
    }
}

fn engine_with(positions: Vec<GroupPosition>, outbox: Vec<OutboxItem>) -> SyncEngine {
    SyncEngine::new(ME, SyncConfig::default(), positions, outbox)
}

fn sent_ids(commands: &[Command]) -> Vec<ClientMessageId> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Send(ClientFrame::Submit(s)) => Some(s.client_msg),
            _ => None,
        })
        .collect()
}

/// Connects, authenticates and catches up; returns the commands of the last step.
fn go_live(engine: &mut SyncEngine, now: u64) -> Vec<Command> {
    let connect = engine.handle(Event::Wake { now: at(now) });
    // (Messages written before the worker was ready are sealed meanwhile.)
    assert_eq!(connect.first(), Some(&Command::Connect));
    assert!(engine.handle(Event::Opened { now: at(now) }).is_empty());
    let sign = engine.handle(Event::Received {
        now: at(now),
        frame: ServerFrame::Challenge {
            nonce: [9; 32],
            relay_time: at(now),
        },
    });
    assert_eq!(
        sign,
        vec![Command::SignChallenge {
            transcript: auth_transcript(&[9; 32], ME)
        }]
    );
    let auth = engine.handle(Event::ChallengeSigned { signature: vec![7] });
    assert!(matches!(
        auth[..],
        [Command::Send(ClientFrame::Authenticate { .. })]
    ));
    let sync = engine.handle(Event::Received {
        now: at(now),
        frame: ServerFrame::Ready {
            org: crate::ids::OrgId::from_bytes([0; 16]),
            user: crate::ids::UserId::from_bytes([0; 16]),
            device: ME,
            policy: crate::wire::PhonePolicy::default(),
        },
    });
    assert!(matches!(
        sync[..],
        [Command::Send(ClientFrame::Sync { .. })]
    ));
    assert_eq!(engine.connection(), ConnectionState::CatchingUp);
    let live = engine.handle(Event::Received {
        now: at(now),
        frame: ServerFrame::Synced,
    });
    assert_eq!(engine.connection(), ConnectionState::Live);
    live
}

fn accept(engine: &mut SyncEngine, n: u8, group: GroupId, seq: u64) -> Vec<Command> {
    engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Accepted {
            client_msg: msg_id(n),
            group,
            seq,
        },
    })
}

#[test]
fn messages_written_offline_are_sent_in_order_once_live() {
    let mut engine = engine_with(vec![], vec![]);
    for n in 1..=3 {
        let commands = engine.handle(Event::Enqueue {
            now: at(0),
            item: OutboxItem::new(text(n, WARD, 0)),
        });
        // Nothing can be sent yet; the first starts connecting.
        assert!(sent_ids(&commands).is_empty());
        assert_eq!(commands.contains(&Command::Connect), n == 1);
    }
    assert_eq!(engine.waiting_count(), 3);
    // The first connection attempt fails; the messages wait.
    engine.handle(Event::Closed {
        now: at(0),
        jitter: 0.0,
    });
    assert_eq!(engine.waiting_count(), 3);
    let live = go_live(&mut engine, 10_000);
    assert_eq!(sent_ids(&live), vec![msg_id(1), msg_id(2), msg_id(3)]);
    for n in 1..=3 {
        accept(&mut engine, n, WARD, u64::from(n));
    }
    assert_eq!(engine.waiting_count(), 0);
    assert!(engine
        .outbox()
        .iter()
        .all(|item| matches!(item.state, OutboxState::Sent { .. })));
}

#[test]
fn a_lost_connection_resends_unanswered_items_with_the_same_ids() {
    let mut engine = engine_with(vec![], vec![]);
    go_live(&mut engine, 0);
    let first = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(text(1, WARD, 0)),
    });
    assert_eq!(sent_ids(&first), vec![msg_id(1)]);
    engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(text(2, WARD, 0)),
    });
    accept(&mut engine, 1, WARD, 1);
    // The relay restarts before answering the second.
    engine.handle(Event::Closed {
        now: at(5),
        jitter: 0.5,
    });
    assert_eq!(engine.waiting_count(), 1);
    let resumed = go_live(&mut engine, 10_000);
    assert_eq!(
        sent_ids(&resumed),
        vec![msg_id(2)],
        "only the unanswered one, same id"
    );
    // The relay answers the resend; a duplicate answer changes nothing.
    accept(&mut engine, 2, WARD, 2);
    assert!(accept(&mut engine, 2, WARD, 2).is_empty());
    let attempts: Vec<u32> = engine.outbox().iter().map(|i| i.attempts).collect();
    assert_eq!(attempts, vec![1, 2]);
}

#[test]
fn restored_sending_items_are_queued_again() {
    let mut sending = OutboxItem::new(text(1, WARD, 0));
    sending.state = OutboxState::Sending;
    let mut engine = engine_with(vec![], vec![sending]);
    assert_eq!(engine.outbox()[0].state, OutboxState::Queued);
    assert_eq!(sent_ids(&go_live(&mut engine, 0)), vec![msg_id(1)]);
}

#[test]
fn the_window_limits_unanswered_sends() {
    let mut engine = SyncEngine::new(
        ME,
        SyncConfig {
            max_in_flight: 2,
            ..SyncConfig::default()
        },
        vec![],
        (1..=5).map(|n| OutboxItem::new(text(n, WARD, 0))),
    );
    assert_eq!(
        sent_ids(&go_live(&mut engine, 0)),
        vec![msg_id(1), msg_id(2)]
    );
    assert_eq!(sent_ids(&accept(&mut engine, 1, WARD, 1)), vec![msg_id(3)]);
    assert_eq!(sent_ids(&accept(&mut engine, 2, WARD, 2)), vec![msg_id(4)]);
}

#[test]
fn reconnect_backoff_grows_is_capped_and_jittered() {
    let engine = engine_with(vec![], vec![]);
    let config = SyncConfig::default();
    assert_eq!(
        engine.backoff_millis(1, 0.0),
        config.backoff_base_millis / 2
    );
    assert_eq!(engine.backoff_millis(1, 1.0), config.backoff_base_millis);
    assert_eq!(
        engine.backoff_millis(2, 1.0),
        config.backoff_base_millis * 2
    );
    assert_eq!(
        engine.backoff_millis(3, 1.0),
        config.backoff_base_millis * 4
    );
    for failures in 10..40 {
        let delay = engine.backoff_millis(failures, 0.999);
        assert!(delay <= config.backoff_max_millis);
        assert!(delay >= config.backoff_max_millis / 2);
    }
    // Bad randomness cannot produce a bad delay.
    assert_eq!(
        engine.backoff_millis(1, f64::NAN),
        engine.backoff_millis(1, 0.5)
    );
    assert_eq!(engine.backoff_millis(1, 7.0), engine.backoff_millis(1, 1.0));
}

#[test]
fn failures_schedule_reconnects_and_success_resets_them() {
    let mut engine = engine_with(vec![], vec![]);
    assert_eq!(
        engine.handle(Event::Wake { now: at(0) }),
        vec![Command::Connect]
    );
    let first = engine.handle(Event::Closed {
        now: at(0),
        jitter: 1.0,
    });
    assert_eq!(first, vec![Command::WakeAt(at(500))]);
    // Too early: the timer is asked for again, nothing else.
    assert_eq!(
        engine.handle(Event::Timer { now: at(100) }),
        vec![Command::WakeAt(at(500))]
    );
    assert_eq!(
        engine.handle(Event::Timer { now: at(500) }),
        vec![Command::Connect]
    );
    assert_eq!(
        engine.handle(Event::Closed {
            now: at(500),
            jitter: 1.0
        }),
        vec![Command::WakeAt(at(1_500))]
    );
    // Coming online or to the foreground connects at once.
    assert_eq!(
        engine.handle(Event::Wake { now: at(600) }),
        vec![Command::Connect]
    );
    engine.handle(Event::Closed {
        now: at(600),
        jitter: 1.0,
    });
    go_live(&mut engine, 5_000);
    assert_eq!(
        engine.handle(Event::Closed {
            now: at(6_000),
            jitter: 1.0
        }),
        vec![Command::WakeAt(at(6_500))],
        "back to the first delay after a success"
    );
}

#[test]
fn the_log_is_processed_in_order_once_and_gaps_resync() {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 4,
            epoch: 2,
        }],
        vec![],
    );
    go_live(&mut engine, 0);
    let deliver = |engine: &mut SyncEngine, seq| {
        engine.handle(Event::Received {
            now: at(0),
            frame: ServerFrame::Deliver(entry(
                WARD,
                seq,
                2,
                ALICE,
                seq as u8,
                EntryKind::Application,
            )),
        })
    };
    assert!(deliver(&mut engine, 4).is_empty(), "already processed");
    assert!(matches!(
        deliver(&mut engine, 5)[..],
        [Command::Process(..)]
    ));
    assert!(deliver(&mut engine, 5).is_empty(), "duplicate");
    let gap = deliver(&mut engine, 7);
    assert_eq!(
        gap,
        vec![
            Command::Notice(Notice::Resyncing { group: WARD }),
            Command::Send(ClientFrame::Sync {
                cursors: vec![GroupCursor {
                    group: WARD,
                    seq: 4
                }]
            })
        ]
    );
    // The worker finishes 5; the cursor moves, is saved and acknowledged.
    let processed = engine.handle(Event::Processed {
        group: WARD,
        seq: 5,
        epoch: 2,
    });
    assert_eq!(
        processed,
        vec![
            Command::SaveCursor(GroupPosition {
                group: WARD,
                seq: 5,
                epoch: 2
            }),
            Command::Send(ClientFrame::Ack {
                group: WARD,
                seq: 5
            }),
        ]
    );
    assert!(matches!(
        deliver(&mut engine, 6)[..],
        [Command::Process(..)]
    ));
}

#[test]
fn a_commit_that_lost_its_epoch_is_made_again_after_catching_up_and_lands() {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 10,
            epoch: 3,
        }],
        vec![],
    );
    go_live(&mut engine, 0);
    let sent = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(commit(1, WARD, 3)),
    });
    assert_eq!(sent_ids(&sent), vec![msg_id(1)]);
    // A message written meanwhile waits behind the unanswered commit.
    let held = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(text(2, WARD, 3)),
    });
    assert!(sent_ids(&held).is_empty());
    // Someone else's commit for epoch 3 won.
    let rejected = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Rejected {
            client_msg: msg_id(1),
            group: WARD,
            reason: Rejection::StaleEpoch { current_epoch: 4 },
        },
    });
    assert!(
        sent_ids(&rejected).is_empty(),
        "nothing goes before catching up"
    );
    assert!(!rejected.iter().any(|c| matches!(c, Command::Seal { .. })));
    // The winning commit arrives and is processed: now at epoch 4.
    let winner = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Deliver(entry(WARD, 11, 3, ALICE, 99, EntryKind::Commit)),
    });
    assert!(matches!(winner[..], [Command::Process(..)]));
    let caught_up = engine.handle(Event::Processed {
        group: WARD,
        seq: 11,
        epoch: 4,
    });
    let reseals: Vec<_> = caught_up
        .iter()
        .filter(|c| matches!(c, Command::Seal { .. }))
        .collect();
    assert_eq!(
        reseals,
        vec![&Command::Seal {
            client_msg: msg_id(1),
            group: WARD,
            epoch: 4
        }]
    );
    // The commit is made again on epoch 4 and sent first; the message waits for it.
    let resent = engine.handle(Event::Sealed {
        now: at(0),
        client_msg: msg_id(1),
        epoch: 4,
        payload: Payload::Commit {
            commit: vec![42],
            welcome: None,
            change: MembershipChange::default(),
        },
    });
    assert_eq!(sent_ids(&resent), vec![msg_id(1)]);
    let landed = accept(&mut engine, 1, WARD, 12);
    assert!(
        sent_ids(&landed).is_empty(),
        "the message waits until the commit is merged"
    );
    // Our own commit comes back in the log: merged, not opened; epoch 5.
    let own = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Deliver(entry(WARD, 12, 4, ME, 1, EntryKind::Commit)),
    });
    assert!(own.contains(&Command::MergeOwnCommit {
        group: WARD,
        client_msg: msg_id(1)
    }));
    assert!(!own.iter().any(|c| matches!(c, Command::Process(..))));
    assert_eq!(
        engine.position(WARD),
        Some(GroupPosition {
            group: WARD,
            seq: 12,
            epoch: 5
        })
    );
    // The message made in epoch 3 is made again in epoch 5 before it goes.
    assert!(own.contains(&Command::Seal {
        client_msg: msg_id(2),
        group: WARD,
        epoch: 5
    }));
    let resealed = engine.handle(Event::Sealed {
        now: at(0),
        client_msg: msg_id(2),
        epoch: 5,
        payload: Payload::Application {
            ciphertext: vec![2, 5],
        },
    });
    assert_eq!(sent_ids(&resealed), vec![msg_id(2)]);
}

#[test]
fn own_entries_seen_before_the_answer_count_as_accepted() {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 0,
            epoch: 1,
        }],
        vec![],
    );
    go_live(&mut engine, 0);
    engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(commit(1, WARD, 1)),
    });
    engine.handle(Event::Closed {
        now: at(0),
        jitter: 0.0,
    });
    engine.handle(Event::Wake { now: at(1) });
    engine.handle(Event::Opened { now: at(1) });
    // The backlog holds our commit: the relay stored it before the connection dropped.
    let backlog = engine.handle(Event::Received {
        now: at(1),
        frame: ServerFrame::Deliver(entry(WARD, 1, 1, ME, 1, EntryKind::Commit)),
    });
    assert!(backlog.contains(&Command::MergeOwnCommit {
        group: WARD,
        client_msg: msg_id(1)
    }));
    assert_eq!(engine.outbox()[0].state, OutboxState::Sent { seq: 1 });
    assert_eq!(engine.position(WARD).map(|p| p.epoch), Some(2));
}

#[test]
fn permanent_refusals_fail_until_retried_and_rate_limits_pause() {
    let mut engine = engine_with(vec![], vec![]);
    go_live(&mut engine, 0);
    engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(text(1, WARD, 0)),
    });
    let refused = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Rejected {
            client_msg: msg_id(1),
            group: WARD,
            reason: Rejection::NotAMember,
        },
    });
    assert!(matches!(
        &refused[..],
        [Command::SaveOutboxItem(OutboxItem {
            state: OutboxState::Failed {
                reason: Failure::Refused(Rejection::NotAMember)
            },
            ..
        })]
    ));
    assert_eq!(engine.waiting_count(), 0);
    let retried = engine.handle(Event::Retry {
        now: at(1),
        client_msg: msg_id(1),
    });
    assert_eq!(sent_ids(&retried), vec![msg_id(1)]);

    let limited = engine.handle(Event::Received {
        now: at(100),
        frame: ServerFrame::Rejected {
            client_msg: msg_id(1),
            group: WARD,
            reason: Rejection::RateLimited {
                retry_after_ms: 1_000,
            },
        },
    });
    assert_eq!(limited, vec![Command::WakeAt(at(1_100))]);
    assert!(sent_ids(&engine.handle(Event::Timer { now: at(500) })).is_empty());
    assert_eq!(
        sent_ids(&engine.handle(Event::Timer { now: at(1_100) })),
        vec![msg_id(1)]
    );
}

#[test]
fn one_group_waiting_does_not_hold_up_another() {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 3,
            epoch: 2,
        }],
        vec![],
    );
    // Made in an epoch the group has left: made again at once, offline.
    let queued = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(text(1, WARD, 1)),
    });
    assert!(queued.contains(&Command::Seal {
        client_msg: msg_id(1),
        group: WARD,
        epoch: 2
    }));
    engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(text(2, SOCIAL, 0)),
    });
    engine.handle(Event::Closed {
        now: at(0),
        jitter: 0.0,
    });
    let live = go_live(&mut engine, 1_000);
    assert_eq!(sent_ids(&live), vec![msg_id(2)], "the other group goes");
    assert_eq!(sent_ids(&sealed(&mut engine, 1, 2)), vec![msg_id(1)]);
}

#[test]
fn welcomes_join_once_and_fetch_what_followed() {
    let mut engine = engine_with(vec![], vec![]);
    go_live(&mut engine, 0);
    let spec = GroupSpec {
        kind: crate::GroupKind::Social,
        retention: crate::RetentionSecs::days(14),
    };
    let welcome = ServerFrame::Welcome {
        group: SOCIAL,
        seq: 7,
        spec,
        welcome: vec![1],
    };
    let join = engine.handle(Event::Received {
        now: at(0),
        frame: welcome.clone(),
    });
    assert!(matches!(join[..], [Command::Join { seq: 7, .. }]));
    let joined = engine.handle(Event::Joined {
        group: SOCIAL,
        seq: 7,
        epoch: 3,
    });
    assert_eq!(
        joined,
        vec![
            Command::SaveCursor(GroupPosition {
                group: SOCIAL,
                seq: 7,
                epoch: 3
            }),
            Command::Send(ClientFrame::Sync {
                cursors: vec![GroupCursor {
                    group: SOCIAL,
                    seq: 7
                }]
            }),
        ]
    );
    assert!(engine
        .handle(Event::Received {
            now: at(0),
            frame: welcome
        })
        .is_empty());
}

#[test]
fn a_revoked_device_is_told_and_disconnects() {
    let mut engine = engine_with(vec![], vec![]);
    go_live(&mut engine, 0);
    let revoked = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Error {
            code: ErrorCode::Revoked,
            message: "This device was removed by an administrator.".into(),
        },
    });
    assert_eq!(revoked.last(), Some(&Command::Disconnect));
    assert!(matches!(
        revoked[0],
        Command::Notice(Notice::SignedOut { .. })
    ));
}

#[test]
fn frames_out_of_turn_are_ignored() {
    let mut engine = engine_with(vec![], vec![]);
    // A challenge or a signature before the socket is open does nothing.
    assert!(engine
        .handle(Event::Received {
            now: at(0),
            frame: ServerFrame::Challenge {
                nonce: [0; 32],
                relay_time: at(0)
            }
        })
        .is_empty());
    assert!(engine
        .handle(Event::ChallengeSigned { signature: vec![] })
        .is_empty());
    // Answers to unknown messages do nothing.
    assert!(accept(&mut engine, 77, WARD, 1).is_empty());
    assert_eq!(
        engine.connection(),
        ConnectionState::Offline { retry_at: None }
    );
}

#[test]
fn deleted_ranges_are_skipped_without_a_resync() {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 4,
            epoch: 2,
        }],
        vec![],
    );
    go_live(&mut engine, 0);
    // Entries 5 and 6 expired on the relay; it says so, then sends 7.
    let skipped = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Skipped {
            group: WARD,
            up_to: 6,
        },
    });
    assert_eq!(
        skipped,
        vec![
            Command::SaveCursor(GroupPosition {
                group: WARD,
                seq: 6,
                epoch: 2
            }),
            Command::Send(ClientFrame::Ack {
                group: WARD,
                seq: 6
            }),
        ]
    );
    let seven = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Deliver(entry(WARD, 7, 2, ALICE, 7, EntryKind::Application)),
    });
    assert!(
        matches!(seven[..], [Command::Process(..)]),
        "no gap, no resync: {seven:?}"
    );
    // A skip announced while an entry is still with the worker waits for it.
    let eight = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Skipped {
            group: WARD,
            up_to: 9,
        },
    });
    assert!(eight.is_empty(), "7 is not processed yet");
    let processed = engine.handle(Event::Processed {
        group: WARD,
        seq: 7,
        epoch: 2,
    });
    assert_eq!(
        processed[0],
        Command::SaveCursor(GroupPosition {
            group: WARD,
            seq: 9,
            epoch: 2
        })
    );
    let ten = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Deliver(entry(WARD, 10, 2, ALICE, 10, EntryKind::Application)),
    });
    assert!(matches!(ten[..], [Command::Process(..)]));
    // An old or repeated skip changes nothing.
    assert!(engine
        .handle(Event::Received {
            now: at(0),
            frame: ServerFrame::Skipped {
                group: WARD,
                up_to: 8
            }
        })
        .is_empty());
}

#[test]
fn an_accepted_commit_is_remembered_until_its_entry_is_merged() {
    let group = GroupId::from_bytes([3; 16]);
    let mut engine = engine_with(vec![], vec![]);
    go_live(&mut engine, 0);
    engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(commit(1, group, 0)),
    });
    engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(text(2, group, 1)),
    });
    accept(&mut engine, 1, group, 1);
    engine.forget_sent();
    assert_eq!(engine.outbox().len(), 2, "the commit is kept until merged");
    // The log reaches our commit: it is recognised as ours and merged, not
    // handed to the worker to open.
    let commands = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Deliver(entry(group, 1, 0, ME, 1, EntryKind::Commit)),
    });
    assert!(commands.contains(&Command::MergeOwnCommit {
        group,
        client_msg: msg_id(1)
    }));
    assert!(!commands.iter().any(|c| matches!(c, Command::Process(..))));
    engine.forget_sent();
    assert_eq!(engine.outbox().len(), 1, "merged, the commit is forgotten");
}

/// A message in the ward that expires at `expires` milliseconds.
fn expiring(n: u8, expires: u64) -> Submission {
    Submission {
        expires_at: Some(at(expires)),
        ..text(n, WARD, 0)
    }
}

#[test]
fn messages_that_expire_while_waiting_are_withdrawn_not_sent() {
    // Written offline: one that expires at 5 s, one much later, and a
    // membership change, which never expires.
    let mut engine = engine_with(
        vec![],
        vec![
            OutboxItem::new(expiring(1, 5_000)),
            OutboxItem::new(expiring(2, 900_000)),
            OutboxItem::new(commit(3, SOCIAL, 0)),
        ],
    );
    assert!(engine.withdraw_expired(at(4_999)).is_empty());
    assert_eq!(engine.withdraw_expired(at(5_000)), vec![msg_id(1)]);
    assert_eq!(engine.waiting_count(), 2);
    // Back online, only what is still wanted goes out.
    let live = go_live(&mut engine, 10_000);
    assert_eq!(sent_ids(&live), vec![msg_id(2), msg_id(3)]);
    // Once stored, a message is the relay's to expire, not withdrawn again.
    accept(&mut engine, 2, WARD, 1);
    assert!(engine.withdraw_expired(at(2_000_000)).is_empty());
}

#[test]
fn a_message_already_expired_when_the_connection_returns_is_not_sent_before_the_sweep() {
    let mut engine = engine_with(
        vec![],
        vec![
            OutboxItem::new(expiring(1, 5_000)),
            OutboxItem::new(expiring(2, 900_000)),
        ],
    );
    // No sweep has run yet when the connection comes up at 10 s.
    let live = go_live(&mut engine, 10_000);
    assert_eq!(sent_ids(&live), vec![msg_id(2)]);
    assert_eq!(engine.withdraw_expired(at(10_000)), vec![msg_id(1)]);
}

/// What the engine asked to be encrypted, in order.
fn seal_requests(commands: &[Command]) -> Vec<ClientMessageId> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Seal { client_msg, .. } => Some(*client_msg),
            _ => None,
        })
        .collect()
}

fn sealed(engine: &mut SyncEngine, n: u8, epoch: u64) -> Vec<Command> {
    engine.handle(Event::Sealed {
        now: at(0),
        client_msg: msg_id(n),
        epoch,
        payload: Payload::Application {
            ciphertext: vec![n],
        },
    })
}

#[test]
fn messages_written_before_encryption_is_ready_are_sealed_in_turn_even_offline() {
    // Written while the crypto worker was starting: saved unsealed.
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 4,
            epoch: 2,
        }],
        vec![
            OutboxItem::unsealed(msg_id(1), WARD, at(1_000_000)),
            OutboxItem::unsealed(msg_id(2), WARD, at(1_000_000)),
            OutboxItem::unsealed(msg_id(3), SOCIAL, at(1_000_000)),
        ],
    );
    // Offline, the first of each group is sealed; the second waits its turn.
    let first = engine.handle(Event::Timer { now: at(0) });
    assert_eq!(seal_requests(&first), vec![msg_id(1), msg_id(3)]);
    assert!(first.contains(&Command::Seal {
        client_msg: msg_id(1),
        group: WARD,
        epoch: 2
    }));
    assert!(sent_ids(&first).is_empty(), "offline: nothing is sent");
    let second = sealed(&mut engine, 1, 2);
    assert!(
        matches!(&second[0], Command::SaveOutboxItem(item) if item.id() == msg_id(1) && item.made.is_some())
    );
    assert_eq!(seal_requests(&second), vec![msg_id(2)]);
    sealed(&mut engine, 2, 2);
    sealed(&mut engine, 3, 0);
    engine.handle(Event::Closed {
        now: at(0),
        jitter: 0.0,
    });
    let live = go_live(&mut engine, 1_000);
    assert_eq!(sent_ids(&live), vec![msg_id(1), msg_id(2), msg_id(3)]);
}

#[test]
fn nothing_after_our_commit_is_sealed_until_the_commit_is_merged() {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 1,
            epoch: 1,
        }],
        vec![],
    );
    go_live(&mut engine, 0);
    let sent = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(commit(1, WARD, 1)),
    });
    assert_eq!(sent_ids(&sent), vec![msg_id(1)]);
    let waiting = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::unsealed(msg_id(2), WARD, at(1_000_000)),
    });
    assert!(
        seal_requests(&waiting).is_empty(),
        "the worker's commit is pending"
    );
    accept(&mut engine, 1, WARD, 2);
    let merged = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Deliver(entry(WARD, 2, 1, ME, 1, EntryKind::Commit)),
    });
    assert!(merged.contains(&Command::Seal {
        client_msg: msg_id(2),
        group: WARD,
        epoch: 2
    }));
    assert_eq!(sent_ids(&sealed(&mut engine, 2, 2)), vec![msg_id(2)]);
}

#[test]
fn a_message_that_cannot_be_encrypted_fails_until_tried_again() {
    let mut engine = engine_with(
        vec![],
        vec![
            OutboxItem::unsealed(msg_id(1), WARD, at(1_000_000)),
            OutboxItem::unsealed(msg_id(2), WARD, at(1_000_000)),
        ],
    );
    assert_eq!(
        seal_requests(&engine.handle(Event::Timer { now: at(0) })),
        vec![msg_id(1)]
    );
    let failed = engine.handle(Event::NotSealed {
        now: at(0),
        client_msg: msg_id(1),
    });
    assert!(failed.contains(&Command::SaveOutboxItem(OutboxItem {
        state: OutboxState::Failed {
            reason: Failure::NotEncrypted
        },
        ..OutboxItem::unsealed(msg_id(1), WARD, at(1_000_000))
    })));
    // The next one is not held up by a failure.
    assert_eq!(seal_requests(&failed), vec![msg_id(2)]);
    let retried = engine.handle(Event::Retry {
        now: at(1),
        client_msg: msg_id(1),
    });
    assert_eq!(seal_requests(&retried), vec![msg_id(1)]);
}

fn delivered(engine: &mut SyncEngine, entry: LogEntry) -> Vec<Command> {
    engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::delivery(entry, Some(MembershipChange::default())),
    })
}

fn processes(commands: &[Command]) -> Vec<u64> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Process(entry, _) => Some(entry.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_commit_that_cannot_be_opened_stops_its_group_and_nothing_written_is_lost() {
    let positions = vec![
        GroupPosition {
            group: WARD,
            seq: 4,
            epoch: 2,
        },
        GroupPosition {
            group: SOCIAL,
            seq: 1,
            epoch: 1,
        },
    ];
    let mut engine = engine_with(positions.clone(), vec![]);
    go_live(&mut engine, 0);
    let junk = entry(WARD, 5, 2, ALICE, 50, EntryKind::Commit);
    assert_eq!(processes(&delivered(&mut engine, junk.clone())), vec![5]);
    let stopped = engine.handle(Event::Unopenable {
        group: WARD,
        seq: 5,
    });
    assert!(stopped.contains(&Command::Notice(Notice::NeedsRepair {
        group: WARD,
        seq: 5
    })));
    assert!(
        !stopped.iter().any(|c| matches!(
            c,
            Command::SaveCursor(_) | Command::Send(ClientFrame::Ack { .. })
        )),
        "the position is not moved past a commit that was not opened"
    );
    assert_eq!(engine.stopped_at(WARD), Some(5));
    assert_eq!(
        engine.position(WARD).map(|p| (p.seq, p.epoch)),
        Some((4, 2))
    );
    // What follows it was made in epochs this phone never reached.
    let after = entry(WARD, 6, 3, ALICE, 51, EntryKind::Application);
    assert!(processes(&delivered(&mut engine, after)).is_empty());
    // Told once.
    assert!(engine
        .handle(Event::Unopenable {
            group: WARD,
            seq: 5
        })
        .iter()
        .all(|c| !matches!(c, Command::Notice(_))));

    // Written in the stopped group: kept, not made, not sent. Another
    // group goes on as usual.
    let held = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::unsealed(msg_id(1), WARD, at(1_000_000)),
    });
    assert!(seal_requests(&held).is_empty() && sent_ids(&held).is_empty());
    let other = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::unsealed(msg_id(2), SOCIAL, at(1_000_000)),
    });
    assert_eq!(seal_requests(&other), vec![msg_id(2)]);
    assert_eq!(sent_ids(&sealed(&mut engine, 2, 1)), vec![msg_id(2)]);
    assert_eq!(engine.waiting_count(), 2);

    // After a restart the phone reads from where it stood: the commit
    // comes again, and the group stops at it again.
    let mut restarted = engine_with(positions, engine.outbox().to_vec());
    go_live(&mut restarted, 0);
    assert_eq!(processes(&delivered(&mut restarted, junk)), vec![5]);

    // Joined afresh (repaired): the group goes on, and what waited is made
    // in the new epoch.
    let joined = engine.handle(Event::Joined {
        group: WARD,
        seq: 9,
        epoch: 1,
    });
    assert_eq!(engine.stopped_at(WARD), None);
    assert!(joined.contains(&Command::Seal {
        client_msg: msg_id(1),
        group: WARD,
        epoch: 1
    }));
}

#[test]
fn keys_behind_the_log_stop_the_group_instead_of_sealing_for_ever() {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 4,
            epoch: 3,
        }],
        vec![OutboxItem::unsealed(msg_id(1), WARD, at(1_000_000))],
    );
    let first = engine.handle(Event::Timer { now: at(0) });
    assert_eq!(seal_requests(&first), vec![msg_id(1)]);
    // The worker is still in epoch 2 (a commit it never merged).
    let behind = sealed(&mut engine, 1, 2);
    assert!(behind.contains(&Command::Notice(Notice::NeedsRepair {
        group: WARD,
        seq: 0
    })));
    assert!(seal_requests(&behind).is_empty() && sent_ids(&behind).is_empty());
    assert!(seal_requests(&engine.handle(Event::Timer { now: at(60_000) })).is_empty());
    assert_eq!(engine.waiting_count(), 1, "kept, to be sent once repaired");
}

/// A live engine whose ward stands at entry 4, in epoch 2.
fn live_in_epoch_two() -> SyncEngine {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 4,
            epoch: 2,
        }],
        vec![],
    );
    go_live(&mut engine, 0);
    engine
}

#[test]
fn an_entry_from_an_epoch_never_reached_stops_the_group_instead_of_being_skipped() {
    let mut engine = live_in_epoch_two();
    // The relay withheld the commit of epoch 2 (or announced it deleted):
    // the next entry is a message of epoch 3.
    let ahead = delivered(
        &mut engine,
        entry(WARD, 5, 3, ALICE, 51, EntryKind::Application),
    );
    assert!(processes(&ahead).is_empty());
    assert!(ahead.contains(&Command::Notice(Notice::NeedsRepair {
        group: WARD,
        seq: 5
    })));
    assert_eq!(engine.stopped_at(WARD), Some(5));
    assert_eq!(engine.position(WARD).map(|p| p.seq), Some(4));
    // Messages of the epoch it is in still open.
    let mut fine = live_in_epoch_two();
    let next = delivered(
        &mut fine,
        entry(WARD, 5, 2, ALICE, 52, EntryKind::Application),
    );
    assert_eq!(processes(&next), vec![5]);
}

#[test]
fn a_commit_refused_for_good_is_dropped_from_the_worker_and_what_waited_goes_on() {
    let mut engine = engine_with(
        vec![GroupPosition {
            group: WARD,
            seq: 5,
            epoch: 3,
        }],
        vec![],
    );
    go_live(&mut engine, 0);
    engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(commit(1, WARD, 3)),
    });
    let held = engine.handle(Event::Enqueue {
        now: at(0),
        item: OutboxItem::new(text(2, WARD, 3)),
    });
    assert!(sent_ids(&held).is_empty(), "waits behind the commit");
    let refused = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Rejected {
            client_msg: msg_id(1),
            group: WARD,
            reason: Rejection::NotPermitted,
        },
    });
    assert!(
        refused.contains(&Command::DiscardOwnCommit { group: WARD }),
        "{refused:?}"
    );
    assert_eq!(sent_ids(&refused), vec![msg_id(2)], "the message goes on");
    // A refused message is not a commit: nothing to drop.
    let message_refused = engine.handle(Event::Received {
        now: at(0),
        frame: ServerFrame::Rejected {
            client_msg: msg_id(2),
            group: WARD,
            reason: Rejection::NotAMember,
        },
    });
    assert!(!message_refused
        .iter()
        .any(|c| matches!(c, Command::DiscardOwnCommit { .. })));
}

/// The log entry of a restart of the ward into `chain` by `sender`, adding
/// `add`, at `seq`.
fn restart_entry(seq: u64, chain: u32, sender: DeviceId, n: u8, add: Vec<DeviceId>) -> ServerFrame {
    ServerFrame::delivery(
        entry(
            WARD,
            seq,
            crate::wire::restart_epoch(chain),
            sender,
            n,
            EntryKind::Commit,
        ),
        Some(MembershipChange {
            create: Some(GroupSpec {
                kind: crate::retention::GroupKind::Clinical,
                retention: crate::retention::RetentionSecs::DAY,
            }),
            add,
            remove: vec![],
        }),
    )
}

/// This phone's restart of the ward into chain 1 (item 9), adding `add`.
fn made_restart(add: Vec<DeviceId>) -> Submission {
    let mut made = commit(9, WARD, crate::wire::restart_epoch(1));
    if let Payload::Commit { change, .. } = &mut made.payload {
        change.create = Some(GroupSpec {
            kind: crate::retention::GroupKind::Clinical,
            retention: crate::retention::RetentionSecs::DAY,
        });
        change.add = add;
    }
    made
}

fn welcome_at(seq: u64) -> ServerFrame {
    ServerFrame::Welcome {
        group: WARD,
        seq,
        spec: GroupSpec {
            kind: crate::retention::GroupKind::Clinical,
            retention: crate::retention::RetentionSecs::DAY,
        },
        welcome: vec![0x3e],
    }
}

fn received(engine: &mut SyncEngine, now: u64, frame: ServerFrame) -> Vec<Command> {
    engine.handle(Event::Received {
        now: at(now),
        frame,
    })
}

/// A live engine whose ward stopped at a junk commit at entry 5.
fn stopped_at_five() -> SyncEngine {
    let mut engine = live_in_epoch_two();
    delivered(&mut engine, entry(WARD, 5, 2, ALICE, 50, EntryKind::Commit));
    engine.handle(Event::Unopenable {
        group: WARD,
        seq: 5,
    });
    engine
}

#[test]
fn a_stopped_group_is_restarted_by_this_phone_after_a_few_seconds_and_goes_on() {
    use crate::wire::wire_epoch;
    let mut engine = stopped_at_five();
    let due = engine.restart_due(WARD).expect("a restart is due");
    assert!(due.0 >= RESTART_AFTER_MILLIS && due.0 <= RESTART_AFTER_MILLIS + RESTART_SPREAD_MILLIS);
    // A message written meanwhile waits.
    engine.handle(Event::Enqueue {
        now: at(1),
        item: OutboxItem::unsealed(msg_id(1), WARD, at(1_000_000)),
    });
    let early = engine.handle(Event::Timer { now: at(due.0 - 1) });
    assert!(!early.iter().any(|c| matches!(c, Command::Restart { .. })));
    let restart = engine.handle(Event::Timer { now: due });
    assert!(restart.contains(&Command::Restart {
        group: WARD,
        chain: 1
    }));
    // Once asked, not asked again while it is being made.
    assert!(!engine
        .handle(Event::Timer { now: at(due.0 + 1) })
        .iter()
        .any(|c| matches!(c, Command::Restart { .. })));
    // The made restart goes out although the group is stopped.
    let made = made_restart(vec![ALICE]);
    let sent = engine.handle(Event::Enqueue {
        now: due,
        item: OutboxItem::new(made),
    });
    assert_eq!(sent_ids(&sent), vec![msg_id(9)]);
    accept(&mut engine, 9, WARD, 7);
    // Its entry: merged, the group goes on from it in chain 1, and what
    // waited is made in the new chain.
    let merged = received(&mut engine, due.0, restart_entry(7, 1, ME, 9, vec![ALICE]));
    assert!(merged.contains(&Command::MergeOwnCommit {
        group: WARD,
        client_msg: msg_id(9)
    }));
    assert!(merged.contains(&Command::Notice(Notice::Repaired { group: WARD })));
    assert_eq!(engine.stopped_at(WARD), None);
    assert_eq!(
        engine.position(WARD).map(|p| (p.seq, p.epoch)),
        Some((7, wire_epoch(1, 1)))
    );
    assert!(merged.contains(&Command::Seal {
        client_msg: msg_id(1),
        group: WARD,
        epoch: wire_epoch(1, 1)
    }));
}

#[test]
fn another_members_restart_is_joined_with_its_welcome_in_log_order() {
    // Live: the entry comes before the welcome.
    let mut engine = stopped_at_five();
    let entry_first = received(&mut engine, 10, restart_entry(7, 1, ALICE, 70, vec![ME]));
    assert!(!entry_first.iter().any(|c| matches!(c, Command::Rejoin(_))));
    // Nothing after the restart is read before it is joined, and this
    // phone does not restart the group itself meanwhile.
    let after = delivered(
        &mut engine,
        entry(
            WARD,
            8,
            crate::wire::wire_epoch(1, 1),
            ALICE,
            71,
            EntryKind::Application,
        ),
    );
    assert!(processes(&after).is_empty());
    assert!(!engine
        .handle(Event::Timer { now: at(30_000) })
        .iter()
        .any(|c| matches!(c, Command::Restart { .. })));
    let welcomed = received(&mut engine, 10, welcome_at(7));
    assert!(welcomed.iter().any(|c| matches!(
        c,
        Command::Rejoin(Rejoin {
            group: WARD,
            seq: 7,
            sender: ALICE,
            ..
        })
    )));
    let joined = engine.handle(Event::Joined {
        group: WARD,
        seq: 7,
        epoch: crate::wire::wire_epoch(1, 1),
    });
    assert!(joined.contains(&Command::Send(ClientFrame::Sync {
        cursors: vec![GroupCursor {
            group: WARD,
            seq: 7
        }]
    })));
    assert!(joined.contains(&Command::Notice(Notice::Repaired { group: WARD })));
    // The message after the restart now opens.
    assert_eq!(
        processes(&delivered(
            &mut engine,
            entry(
                WARD,
                8,
                crate::wire::wire_epoch(1, 1),
                ALICE,
                71,
                EntryKind::Application
            )
        )),
        vec![8]
    );

    // From a backlog: the welcome comes first, and a phone that was not
    // stopped (only offline) joins at the entry, after what came before.
    let mut healthy = live_in_epoch_two();
    assert!(received(&mut healthy, 0, welcome_at(7)).is_empty());
    assert_eq!(
        processes(&delivered(
            &mut healthy,
            entry(WARD, 5, 2, ALICE, 52, EntryKind::Application)
        )),
        vec![5]
    );
    assert_eq!(
        processes(&delivered(
            &mut healthy,
            entry(WARD, 6, 2, ALICE, 53, EntryKind::Application)
        )),
        vec![6]
    );
    let rejoin = received(&mut healthy, 0, restart_entry(7, 1, ALICE, 70, vec![ME]));
    assert!(rejoin
        .iter()
        .any(|c| matches!(c, Command::Rejoin(Rejoin { seq: 7, .. }))));
    assert_eq!(
        healthy.stopped_at(WARD),
        None,
        "no flash of 'needs repairing'"
    );
}

#[test]
fn a_restart_that_leaves_this_phone_out_or_is_refused_stops_the_group_and_it_restarts_later() {
    use crate::wire::RESTART_EVERY_MILLIS;
    // Left out: stopped at once, and restarted by this phone a minute on.
    let mut engine = live_in_epoch_two();
    let left_out = received(&mut engine, 1_000, restart_entry(5, 1, ALICE, 70, vec![]));
    assert!(left_out.contains(&Command::Notice(Notice::NeedsRepair {
        group: WARD,
        seq: 5
    })));
    assert_eq!(
        engine.restart_due(WARD),
        Some(at(1_000 + RESTART_EVERY_MILLIS + MY_SPREAD))
    );
    let restart = engine.handle(Event::Timer {
        now: at(1_000 + RESTART_EVERY_MILLIS + MY_SPREAD),
    });
    // The relay is in chain 1 now: this phone's restart starts chain 2.
    assert!(restart.contains(&Command::Restart {
        group: WARD,
        chain: 2
    }));

    // Refused by the worker (other members than it held): the group stays
    // stopped and this phone restarts it itself.
    let mut engine = stopped_at_five();
    received(&mut engine, 0, welcome_at(7));
    received(&mut engine, 0, restart_entry(7, 1, ALICE, 70, vec![ME]));
    engine.handle(Event::Unopenable {
        group: WARD,
        seq: 7,
    });
    assert_eq!(engine.stopped_at(WARD), Some(5));
    let due = engine.restart_due(WARD).expect("due");
    assert!(engine
        .handle(Event::Timer { now: due })
        .contains(&Command::Restart {
            group: WARD,
            chain: 2
        }));

    // This phone's restart refused by the relay (another came first, or
    // within the minute): dropped from the worker and the outbox, and made
    // afresh a minute later if still stopped.
    let mut engine = stopped_at_five();
    let due = engine.restart_due(WARD).unwrap();
    engine.handle(Event::Timer { now: due });
    let made = made_restart(vec![]);
    engine.handle(Event::Enqueue {
        now: due,
        item: OutboxItem::new(made),
    });
    let refused = received(
        &mut engine,
        due.0,
        ServerFrame::Rejected {
            client_msg: msg_id(9),
            group: WARD,
            reason: Rejection::RepairedRecently,
        },
    );
    assert!(refused.contains(&Command::DiscardOwnRestart { group: WARD }));
    assert!(
        !refused.contains(&Command::DiscardOwnCommit { group: WARD }),
        "nothing else of the group"
    );
    assert!(refused.contains(&Command::DropOutboxItem(msg_id(9))));
    assert!(engine.outbox().is_empty());
    assert_eq!(
        engine.restart_due(WARD),
        Some(at(due.0 + RESTART_EVERY_MILLIS + MY_SPREAD))
    );
    // A restart that failed to be made is tried again a minute on too.
    let mut engine = stopped_at_five();
    engine.handle(Event::RestartFailed {
        now: at(5),
        group: WARD,
    });
    assert_eq!(
        engine.restart_due(WARD),
        Some(at(5 + RESTART_EVERY_MILLIS + MY_SPREAD))
    );
}

/// This test device's share of the restart spread (its id's first byte is 1).
const MY_SPREAD: u64 = RESTART_SPREAD_MILLIS / 256;

#[test]
fn a_restart_whose_welcome_never_comes_is_given_up_after_a_minute() {
    use crate::wire::RESTART_EVERY_MILLIS;
    let mut engine = live_in_epoch_two();
    // The relay delivers another member's restart and withholds its welcome.
    let entry_only = received(&mut engine, 1_000, restart_entry(5, 1, ALICE, 70, vec![ME]));
    assert!(entry_only.contains(&Command::Notice(Notice::NeedsRepair {
        group: WARD,
        seq: 5
    })));
    assert!(!engine
        .handle(Event::Timer { now: at(30_000) })
        .iter()
        .any(|c| matches!(c, Command::Restart { .. })));
    let given_up = engine.handle(Event::Timer {
        now: at(1_000 + RESTART_EVERY_MILLIS),
    });
    assert!(given_up.contains(&Command::Restart {
        group: WARD,
        chain: 2
    }));
}

#[test]
fn a_restart_of_ours_made_needless_by_another_members_is_dropped() {
    let mut engine = stopped_at_five();
    let due = engine.restart_due(WARD).unwrap();
    engine.handle(Event::Timer { now: due });
    let made = made_restart(vec![]);
    // Made, but the connection dropped before it went out.
    engine.handle(Event::Closed {
        now: due,
        jitter: 0.5,
    });
    engine.handle(Event::Enqueue {
        now: due,
        item: OutboxItem::new(made),
    });
    assert_eq!(engine.outbox().len(), 1);
    // Alice's restart is joined meanwhile: ours is dropped, never sent.
    let joined = engine.handle(Event::Joined {
        group: WARD,
        seq: 7,
        epoch: crate::wire::wire_epoch(1, 1),
    });
    assert!(joined.contains(&Command::DropOutboxItem(msg_id(9))));
    assert!(engine.outbox().is_empty());
}
