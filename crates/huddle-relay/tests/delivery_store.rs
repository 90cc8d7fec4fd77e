//! The delivery service's storage on SQLite and PostgreSQL: ordering, one commit per epoch, resends stored once, membership windows and expiry.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use huddle_core::broadcast::REPLY_CIPHERTEXT_BYTES;
use huddle_core::ids::{ClientMessageId, DeviceId, GroupId, UserId};
use huddle_core::retention::{GroupKind, RetentionSecs, UnixMillis};
use huddle_core::wire::{
    GroupSpec, MembershipChange, Payload, Rejection, Role, Submission, MAX_APPLICATION_BYTES,
};
use huddle_relay::mls_framing::{framed_application, framed_commit};
use huddle_relay::store::group_commit::Appender;
use huddle_relay::Store;
use support::device::msg;
use support::Engine;

const NOW: UnixMillis = UnixMillis(1_795_000_000_000);
const WARD: GroupId = GroupId::from_bytes([7; 16]);
const ADMIN: DeviceId = DeviceId::from_bytes([1; 16]);
const BOB: DeviceId = DeviceId::from_bytes([2; 16]);
const CAROL: DeviceId = DeviceId::from_bytes([3; 16]);

fn commit(n: u32, epoch: u64, change: MembershipChange) -> Submission {
    Submission {
        client_msg: msg(n),
        group: WARD,
        epoch,
        expires_at: None,
        payload: Payload::Commit {
            commit: vec![0xc0, n as u8],
            welcome: (!change.add.is_empty()).then(|| vec![0x3e, n as u8]),
            change,
        },
    }
}

fn text(n: u32, epoch: u64, expires_at: UnixMillis) -> Submission {
    Submission {
        client_msg: msg(n),
        group: WARD,
        epoch,
        expires_at: Some(expires_at),
        payload: Payload::Application {
            ciphertext: vec![0xa0, n as u8],
        },
    }
}

fn create(n: u32, kind: GroupKind, retention: RetentionSecs, add: Vec<DeviceId>) -> Submission {
    commit(
        n,
        0,
        MembershipChange {
            create: Some(GroupSpec { kind, retention }),
            add,
            remove: vec![],
        },
    )
}

/// The operational group every test starts from: the admin creates it with
/// Bob and Carol.
fn ward_with_everyone() -> Submission {
    create(
        1,
        GroupKind::Operational,
        RetentionSecs::days(7),
        vec![BOB, CAROL],
    )
}

/// Group-commit writers for `store`, and the ward created through them.
async fn writers_with_the_ward(store: &Store) -> (Appender, Vec<tokio::task::JoinHandle<()>>) {
    let (appender, writers) = Appender::start(store, std::sync::Arc::new(()));
    appender
        .append(ADMIN, ward_with_everyone(), NOW)
        .await
        .unwrap()
        .unwrap();
    (appender, writers)
}

async fn open(engine: Engine, dir: &std::path::Path) -> Option<Store> {
    let url = support::database_url(engine, dir).await?;
    let store = Store::connect(&url).await.expect("connect");
    for (device, user, role) in [
        (ADMIN, 1u8, Role::Administrator),
        (BOB, 2, Role::Administrator),
        (CAROL, 3, Role::Staff),
    ] {
        let user = UserId::from_bytes([user; 16]);
        store
            .put_user(user, "Test person", role, NOW)
            .await
            .expect("person");
        store
            .put_device(device, user, &[1; 97], NOW)
            .await
            .expect("device");
    }
    Some(store)
}

async fn for_each_engine<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(store) = open(engine, dir.path()).await {
            test(store.clone()).await;
            store.close().await;
        }
    }
}

#[tokio::test]
async fn the_log_orders_entries_and_accepts_one_commit_per_epoch() {
    for_each_engine(|store| async move {
        let created = store
            .append(
                ADMIN,
                &create(1, GroupKind::Clinical, RetentionSecs::DAY, vec![BOB]),
                NOW,
            )
            .await
            .unwrap()
            .expect("created");
        assert_eq!(
            (created.entry.seq, created.entry.epoch, created.fresh),
            (1, 0, true)
        );
        assert_eq!(created.added, vec![BOB]);
        assert_eq!(created.welcome, Some(vec![0x3e, 1]));
        assert_eq!(created.recipients, vec![ADMIN]);
        let welcomes = store.welcomes_for(BOB).await.unwrap();
        assert_eq!(welcomes.len(), 1);
        assert_eq!(welcomes[0].seq, 1);
        assert_eq!(welcomes[0].spec.kind, GroupKind::Clinical);

        // Two commits for epoch 1: the first wins, the second is told the epoch.
        let first = store
            .append(BOB, &commit(2, 1, MembershipChange::default()), NOW)
            .await
            .unwrap();
        assert_eq!(first.map(|a| a.entry.seq), Ok(2));
        let second = store
            .append(ADMIN, &commit(3, 1, MembershipChange::default()), NOW)
            .await
            .unwrap();
        assert_eq!(second, Err(Rejection::StaleEpoch { current_epoch: 2 }));
        // Application messages must be in the current epoch too.
        let stale = store
            .append(ADMIN, &text(4, 1, NOW.saturating_add_millis(1000)), NOW)
            .await
            .unwrap();
        assert_eq!(stale, Err(Rejection::StaleEpoch { current_epoch: 2 }));
        let fine = store
            .append(ADMIN, &text(5, 2, NOW.saturating_add_millis(1000)), NOW)
            .await
            .unwrap();
        assert_eq!(fine.map(|a| a.entry.seq), Ok(3));

        // A resend is acknowledged with the same sequence number and stored once.
        let again = store
            .append(ADMIN, &text(5, 2, NOW.saturating_add_millis(1000)), NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.entry.seq, again.fresh), (3, false));
        let backlog = store.backlog(WARD, BOB, 0, 100, NOW).await.unwrap();
        let seqs: Vec<u64> = backlog.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            vec![2, 3],
            "Bob reads what followed the commit that added him"
        );
        assert_eq!(
            store.backlog(WARD, ADMIN, 0, 100, NOW).await.unwrap().len(),
            3
        );
        // Each commit comes back with the change it declared, for members
        // to compare with what it does; messages come without one.
        assert_eq!(created.declared.map(|d| d.add.clone()), Some(vec![BOB]));
        let delivered = store
            .backlog_with_declarations(WARD, ADMIN, 0, 100, NOW)
            .await
            .unwrap();
        let declared: Vec<Option<Vec<DeviceId>>> = delivered
            .iter()
            .map(|(_, declared)| declared.as_ref().map(|d| d.add.clone()))
            .collect();
        assert_eq!(declared, vec![Some(vec![BOB]), Some(vec![]), None]);
        let again = store.appended_at(WARD, 1).await.unwrap().unwrap();
        assert_eq!(again.declared.map(|d| d.add.clone()), Some(vec![BOB]));
    })
    .await;
}

#[tokio::test]
async fn outsiders_unknown_groups_and_bad_retention_are_refused() {
    for_each_engine(|store| async move {
        assert_eq!(
            store.append(ADMIN, &text(1, 0, NOW), NOW).await.unwrap(),
            Err(Rejection::UnknownGroup)
        );
        assert_eq!(
            store
                .append(
                    ADMIN,
                    &create(2, GroupKind::Clinical, RetentionSecs::days(90), vec![]),
                    NOW
                )
                .await
                .unwrap(),
            Err(Rejection::InvalidRetention)
        );
        store
            .append(
                ADMIN,
                &create(3, GroupKind::Social, RetentionSecs::days(14), vec![BOB]),
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .append(CAROL, &text(4, 1, NOW.saturating_add_millis(1000)), NOW)
                .await
                .unwrap(),
            Err(Rejection::NotAMember)
        );
        assert_eq!(
            store
                .append(BOB, &text(5, 1, UnixMillis(NOW.0 - 3_600_000)), NOW)
                .await
                .unwrap(),
            Err(Rejection::Expired)
        );
        let too_big = Submission {
            payload: Payload::Application {
                ciphertext: vec![0; huddle_core::wire::MAX_APPLICATION_BYTES + 1],
            },
            ..text(6, 1, NOW.saturating_add_millis(1000))
        };
        assert!(matches!(
            store.append(BOB, &too_big, NOW).await.unwrap(),
            Err(Rejection::TooLarge { .. })
        ));
        // A sender claiming a year is held to the group's retention.
        let greedy = store
            .append(BOB, &text(7, 1, UnixMillis(NOW.0 + 365 * 86_400_000)), NOW)
            .await
            .unwrap()
            .unwrap();
        assert!(greedy.entry.expires_at.unwrap().0 <= NOW.0 + 14 * 86_400_000 + 5 * 60_000);
    })
    .await;
}

#[tokio::test]
async fn a_removed_device_reads_up_to_its_removal_and_nothing_after() {
    for_each_engine(|store| async move {
        store
            .append(ADMIN, &ward_with_everyone(), NOW)
            .await
            .unwrap()
            .unwrap();
        let later = NOW.saturating_add_millis(60_000);
        store
            .append(ADMIN, &text(2, 1, later), NOW)
            .await
            .unwrap()
            .unwrap();
        let removal = MembershipChange {
            create: None,
            add: vec![],
            remove: vec![CAROL],
        };
        store
            .append(ADMIN, &commit(3, 1, removal), NOW)
            .await
            .unwrap()
            .unwrap();
        store
            .append(ADMIN, &text(4, 2, later), NOW)
            .await
            .unwrap()
            .unwrap();
        // The audit log has who changed the membership, and nothing else.
        let audit = store.read_audit(None, 10).await.unwrap();
        let actions: Vec<&str> = audit.iter().rev().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            vec!["group created", "members added", "members removed"]
        );
        assert!(audit[0].subject.contains(&CAROL.to_string()));
        assert_eq!(audit[0].actor, Some(UserId::from_bytes([1; 16])));
        let carol: Vec<u64> = store
            .backlog(WARD, CAROL, 0, 100, NOW)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(carol, vec![2, 3], "up to and including her removal");
        assert_eq!(store.recipients(WARD, 4).await.unwrap(), vec![ADMIN, BOB]);
        assert_eq!(
            store.append(CAROL, &text(5, 2, later), NOW).await.unwrap(),
            Err(Rejection::NotAMember)
        );
    })
    .await;
}

#[tokio::test]
async fn expired_messages_are_swept_and_never_served() {
    for_each_engine(|store| async move {
        store
            .append(
                ADMIN,
                &create(1, GroupKind::Clinical, RetentionSecs::minutes(5), vec![BOB]),
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        store
            .append(ADMIN, &text(2, 1, NOW.saturating_add_millis(1_000)), NOW)
            .await
            .unwrap()
            .unwrap();
        store
            .append(ADMIN, &text(3, 1, NOW.saturating_add_millis(60_000)), NOW)
            .await
            .unwrap()
            .unwrap();
        let after_first = NOW.saturating_add_millis(2_000);
        // Not yet swept, but already not served.
        let served: Vec<u64> = store
            .backlog(WARD, BOB, 0, 100, after_first)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(served, vec![3]);
        assert_eq!(store.sweep_expired(after_first).await.unwrap(), 1);
        assert_eq!(store.sweep_expired(after_first).await.unwrap(), 0);
        assert_eq!(
            store
                .sweep_expired(NOW.saturating_add_millis(61_000))
                .await
                .unwrap(),
            1
        );
        // The commit is kept: members still need it to follow the group.
        assert_eq!(
            store
                .backlog(WARD, ADMIN, 0, 100, NOW.saturating_add_millis(61_000))
                .await
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn racing_commits_for_one_epoch_leave_exactly_one_winner() {
    for_each_engine(|store| async move {
        store
            .append(ADMIN, &ward_with_everyone(), NOW)
            .await
            .unwrap()
            .unwrap();
        let mut tasks = Vec::new();
        for (n, device) in [(10u32, ADMIN), (11, BOB), (12, CAROL)] {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .append(device, &commit(n, 1, MembershipChange::default()), NOW)
                    .await
            }));
        }
        let mut accepted = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Ok(_) => accepted += 1,
                Err(Rejection::StaleEpoch { current_epoch }) => assert_eq!(current_epoch, 2),
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(accepted, 1);
    })
    .await;
}

#[tokio::test]
async fn writes_committed_together_keep_their_own_outcomes_and_order() {
    for_each_engine(|store| async move {
        let (appender, writers) = writers_with_the_ward(&store).await;
        let later = NOW.saturating_add_millis(60_000);
        // Handed over all at once, so the writer commits them in batches:
        // good messages, stale ones, an oversized one, a resend of a message
        // in the same batch, and an outsider's.
        let mut writes = Vec::new();
        for n in 0..300u32 {
            let sender = [ADMIN, BOB, CAROL][n as usize % 3];
            let mut submission = text(100 + n, 1, later);
            match n % 10 {
                3 => submission.epoch = 0,
                5 => {
                    submission.payload = Payload::Application {
                        ciphertext: vec![0; MAX_APPLICATION_BYTES + 1],
                    }
                }
                // The same message id as the write before it, from the same
                // device: a resend.
                8 => submission.client_msg = msg(100 + n - 1),
                _ => {}
            }
            let sender = if n % 10 == 8 {
                [ADMIN, BOB, CAROL][(n as usize - 1) % 3]
            } else {
                sender
            };
            writes.push((sender, submission));
        }
        writes.push((DeviceId::from_bytes([9; 16]), text(999, 1, later)));
        let outcomes = futures::future::join_all(
            writes
                .iter()
                .map(|(sender, submission)| appender.append(*sender, submission.clone(), NOW)),
        )
        .await;

        // The order in which the writes reach the writer is up to the
        // runtime; each outcome must hold whatever that order was.
        let mut accepted = Vec::new();
        for (n, outcome) in outcomes.iter().enumerate().take(300) {
            match (n % 10, outcome.as_ref().expect("no database error")) {
                (3, Err(Rejection::StaleEpoch { current_epoch })) => assert_eq!(*current_epoch, 1),
                (5, Err(Rejection::TooLarge { .. })) => {}
                (8, Ok(resent)) => {
                    // One of the pair was stored, the other answered with
                    // the same place.
                    let original = outcomes[n - 1].as_ref().unwrap().as_ref().unwrap();
                    assert_eq!(resent.entry.seq, original.entry.seq);
                    assert!(resent.fresh != original.fresh, "a resend is stored once");
                    let fresh = if resent.fresh { resent } else { original };
                    accepted.push((fresh.entry.seq, fresh.entry.client_msg));
                }
                (7, Ok(_)) => {}
                (3 | 5 | 8, other) => panic!("write {n}: {other:?}"),
                (_, Ok(appended)) => {
                    assert!(
                        appended.fresh,
                        "write {n} was not fresh: {:?}",
                        appended.entry
                    );
                    accepted.push((appended.entry.seq, appended.entry.client_msg));
                }
                (_, Err(reason)) => panic!("write {n} refused: {reason:?}"),
            }
        }
        assert!(matches!(outcomes[300], Ok(Err(Rejection::NotAMember))));

        // Every accepted message has its own place, with no gaps, and the
        // log holds exactly those.
        accepted.sort();
        assert_eq!(accepted.len(), 210);
        let seqs: Vec<u64> = accepted.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (2..2 + 210).collect::<Vec<u64>>());
        let log = store.backlog(WARD, BOB, 1, 1000, NOW).await.unwrap();
        let stored: Vec<(u64, ClientMessageId)> = log
            .iter()
            .map(|entry| (entry.seq, entry.client_msg))
            .collect();
        assert_eq!(stored, accepted);

        // Acknowledgements ride along with the next commit: once every
        // member has passed the group's first commit, it can be deleted.
        for device in [ADMIN, BOB, CAROL] {
            appender.acknowledge(device, WARD, 50).await;
        }
        appender
            .append(ADMIN, text(2000, 1, later), NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.sweep_handshakes(NOW).await.unwrap(), 1);
        writers.iter().for_each(|writer| writer.abort());
    })
    .await;
}

#[tokio::test]
async fn claims_and_batched_appends_at_once_all_succeed() {
    // Claiming key packages reads, then writes. On SQLite a transaction that
    // upgrades from reading to writing while another commits fails at once
    // unless it takes the write lock first.
    for_each_engine(|store| async move {
        let (appender, writers) = writers_with_the_ward(&store).await;
        let packages: Vec<Vec<u8>> = (0..40u8).map(|n| vec![0x4b, n]).collect();
        store
            .publish_key_packages(CAROL, &packages, Some(&[0x4c]))
            .await
            .unwrap();
        let later = NOW.saturating_add_millis(60_000);
        let appends = (0..200u32).map(|n| appender.append(ADMIN, text(100 + n, 1, later), NOW));
        let carol = [UserId::from_bytes([3; 16])];
        let claims = (0..40).map(|_| store.claim_key_packages(&carol));
        let (appended, claimed) = futures::future::join(
            futures::future::join_all(appends),
            futures::future::join_all(claims),
        )
        .await;
        assert!(appended.iter().all(|outcome| matches!(outcome, Ok(Ok(_)))));
        let mut single_use: Vec<Vec<u8>> = claimed
            .into_iter()
            .map(|claim| claim.expect("every claim succeeds").remove(0).key_package)
            .collect();
        single_use.sort();
        assert_eq!(
            single_use, packages,
            "each single-use package handed out once"
        );
        writers.iter().for_each(|writer| writer.abort());
    })
    .await;
}

/// `count` devices nobody has, numbered apart by `batch`.
fn devices(batch: u8, count: u32) -> Vec<DeviceId> {
    (0..count)
        .map(|n| {
            let mut id = [0x99; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            id[4] = batch;
            DeviceId::from_bytes(id)
        })
        .collect()
}

#[tokio::test]
async fn commits_adding_thousands_hold_up_neither_other_groups_messages_nor_their_own_groups_order()
{
    for_each_engine(|store| async move {
        let (appender, writers) = writers_with_the_ward(&store).await;
        // The ward's creation (a costly write) is answered a moment before
        // its writer counts it out; until then the ward's next writes
        // follow it through the costly lane, behind whatever is queued there.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let later = NOW.saturating_add_millis(60_000);
        // A member hands over two dozen commits, each making a group of a
        // thousand devices (honest work, or a modified app's)...
        const COSTLY: usize = 24;
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for n in 0..COSTLY {
            let submission = Submission {
                group: GroupId::from_bytes([0x40 + n as u8; 16]),
                ..create(
                    100 + n as u32,
                    GroupKind::Operational,
                    RetentionSecs::days(7),
                    devices(n as u8, 1_000),
                )
            };
            let pending = appender.enqueue(BOB, submission, NOW).await;
            let finished = finished.clone();
            tokio::spawn(async move {
                let outcome = pending.outcome().await;
                assert!(matches!(outcome, Ok(Ok(_))), "{outcome:?}");
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        // ...and a colleague's message to the ward, right behind them, is
        // stored without waiting for those still queued. (Counted from its
        // hand-over: on a busy machine the writers may get through some
        // before the message is handed over at all.)
        tokio::task::yield_now().await;
        let handed_over = finished.load(std::sync::atomic::Ordering::SeqCst);
        let message = appender.enqueue(CAROL, text(2, 1, later), NOW).await;
        assert!(matches!(message.outcome().await, Ok(Ok(_))));
        tokio::task::yield_now().await;
        let waited = finished.load(std::sync::atomic::Ordering::SeqCst) - handed_over;
        assert!(
            waited <= 3,
            "the message waited for {waited} of the {} costly commits still queued",
            COSTLY - handed_over
        );

        // In one group, each write is stored in the order it was handed
        // over, whichever lane it took: a group made with a thousand devices
        // and a message right behind it...
        let group = GroupId::from_bytes([0x60; 16]);
        let created = Submission {
            group,
            ..create(
                200,
                GroupKind::Operational,
                RetentionSecs::days(7),
                devices(0x60, 1_000),
            )
        };
        let created = appender.enqueue(BOB, created, NOW).await;
        let said = Submission {
            group,
            ..text(201, 1, later)
        };
        let said = appender.enqueue(BOB, said, NOW).await;
        // ...then a message, and a commit adding a thousand more right
        // behind it.
        let hello = Submission {
            group,
            ..text(202, 1, later)
        };
        let hello = appender.enqueue(BOB, hello, NOW).await;
        let adding = Submission {
            group,
            ..commit(
                203,
                1,
                MembershipChange {
                    create: None,
                    add: devices(0x61, 1_000),
                    remove: vec![],
                },
            )
        };
        let adding = appender.enqueue(BOB, adding, NOW).await;
        let mut stored = Vec::new();
        for pending in [created, said, hello, adding] {
            let appended = pending.outcome().await.unwrap().expect("stored");
            stored.push((appended.entry.client_msg, appended.entry.seq));
        }
        assert_eq!(
            stored,
            vec![(msg(200), 1), (msg(201), 2), (msg(202), 3), (msg(203), 4)]
        );
        writers.iter().for_each(|writer| writer.abort());
    })
    .await;
}

#[tokio::test]
async fn only_administrators_change_clinical_groups_and_broadcast() {
    for_each_engine(|store| async move {
        // Carol is staff: she cannot create a clinical group or an emergency broadcast.
        assert_eq!(
            store
                .append(
                    CAROL,
                    &create(1, GroupKind::Clinical, RetentionSecs::DAY, vec![]),
                    NOW
                )
                .await
                .unwrap(),
            Err(Rejection::NotPermitted)
        );
        // She can create an operational one.
        let team = Submission {
            group: GroupId::from_bytes([9; 16]),
            ..create(
                2,
                GroupKind::Operational,
                RetentionSecs::days(7),
                vec![ADMIN],
            )
        };
        assert!(store.append(CAROL, &team, NOW).await.unwrap().is_ok());
        // In a clinical group she may talk but not change the membership.
        store
            .append(
                ADMIN,
                &create(3, GroupKind::Clinical, RetentionSecs::DAY, vec![CAROL]),
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        assert!(store
            .append(CAROL, &text(4, 1, NOW.saturating_add_millis(1000)), NOW)
            .await
            .unwrap()
            .is_ok());
        let removing_the_admin = MembershipChange {
            remove: vec![ADMIN],
            ..MembershipChange::default()
        };
        assert_eq!(
            store
                .append(CAROL, &commit(5, 1, removing_the_admin), NOW)
                .await
                .unwrap(),
            Err(Rejection::NotPermitted)
        );
        // Renewing her own keys changes nobody: allowed.
        assert!(store
            .append(CAROL, &commit(11, 1, MembershipChange::default()), NOW)
            .await
            .unwrap()
            .is_ok());
        // In an emergency broadcast only administrators send.
        let alert = GroupId::from_bytes([10; 16]);
        let broadcast = Submission {
            group: alert,
            ..create(
                6,
                GroupKind::EmergencyBroadcast,
                RetentionSecs::days(3),
                vec![CAROL],
            )
        };
        store.append(ADMIN, &broadcast, NOW).await.unwrap().unwrap();
        let from_carol = Submission {
            group: alert,
            ..text(7, 1, NOW.saturating_add_millis(1000))
        };
        assert_eq!(
            store.append(CAROL, &from_carol, NOW).await.unwrap(),
            Err(Rejection::NotPermitted)
        );
        // She may reply (acknowledge): an application message of the one
        // size every reply is padded to, and no other size.
        let reply_of = |n: u32, ciphertext_len: usize| Submission {
            group: alert,
            payload: Payload::Application {
                ciphertext: framed_application(alert, 1, ciphertext_len),
            },
            ..text(n, 1, NOW.saturating_add_millis(1000))
        };
        for wrong in [REPLY_CIPHERTEXT_BYTES - 64, REPLY_CIPHERTEXT_BYTES + 64] {
            assert_eq!(
                store.append(CAROL, &reply_of(9, wrong), NOW).await.unwrap(),
                Err(Rejection::NotPermitted),
                "{wrong} bytes"
            );
        }
        let mut framed_as_commit = reply_of(9, REPLY_CIPHERTEXT_BYTES);
        framed_as_commit.payload = Payload::Application {
            ciphertext: framed_commit(alert, 1, &[0xc1; REPLY_CIPHERTEXT_BYTES]),
        };
        assert_eq!(
            store.append(CAROL, &framed_as_commit, NOW).await.unwrap(),
            Err(Rejection::NotPermitted)
        );
        assert!(store
            .append(CAROL, &reply_of(9, REPLY_CIPHERTEXT_BYTES), NOW)
            .await
            .unwrap()
            .is_ok());
        // At most a day's replies: a modified app cannot bury the
        // broadcasts under its own.
        let limit = u32::try_from(huddle_relay::store::log::REPLIES_PER_DAY).unwrap();
        for n in 1..limit {
            let reply = reply_of(1_000 + n, REPLY_CIPHERTEXT_BYTES);
            assert!(store.append(CAROL, &reply, NOW).await.unwrap().is_ok());
        }
        let one_too_many = reply_of(2_000, REPLY_CIPHERTEXT_BYTES);
        assert!(matches!(
            store.append(CAROL, &one_too_many, NOW).await.unwrap(),
            Err(Rejection::RateLimited { .. })
        ));
        let tomorrow = NOW.saturating_add_millis(24 * 60 * 60 * 1000 + 1);
        let mut next_day = reply_of(2_001, REPLY_CIPHERTEXT_BYTES);
        next_day.expires_at = Some(tomorrow.saturating_add_millis(1000));
        assert!(store
            .append(CAROL, &next_day, tomorrow)
            .await
            .unwrap()
            .is_ok());
        let from_admin = Submission {
            group: alert,
            ..text(8, 1, NOW.saturating_add_millis(1000))
        };
        assert!(store.append(ADMIN, &from_admin, NOW).await.unwrap().is_ok());
    })
    .await;
}

#[tokio::test]
async fn handshakes_are_kept_until_every_member_has_passed_them() {
    for_each_engine(|store| async move {
        store
            .append(
                ADMIN,
                &create(1, GroupKind::Operational, RetentionSecs::days(7), vec![BOB]),
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        store
            .append(ADMIN, &commit(2, 1, MembershipChange::default()), NOW)
            .await
            .unwrap()
            .unwrap();
        // Nobody has acknowledged anything: the admin created the group
        // (from 0) and Bob joined at 1, so nothing is passed by everyone.
        assert_eq!(store.sweep_handshakes(NOW).await.unwrap(), 0);
        // The admin passes both; Bob is past 1 by joining after it: 1 goes, 2 stays.
        store.acknowledge(ADMIN, WARD, 2).await.unwrap();
        assert_eq!(store.sweep_handshakes(NOW).await.unwrap(), 1);
        assert_eq!(
            store.backlog(WARD, BOB, 1, 100, NOW).await.unwrap().len(),
            1
        );
        store.acknowledge(BOB, WARD, 2).await.unwrap();
        store.acknowledge(BOB, WARD, 1).await.unwrap(); // never moves back
        assert_eq!(store.sweep_handshakes(NOW).await.unwrap(), 1);
        assert!(store
            .backlog(WARD, BOB, 1, 100, NOW)
            .await
            .unwrap()
            .is_empty());
        // The epoch rule still holds without the rows: the group remembers its epoch.
        assert_eq!(
            store
                .append(BOB, &commit(3, 1, MembershipChange::default()), NOW)
                .await
                .unwrap(),
            Err(Rejection::StaleEpoch { current_epoch: 2 })
        );
        // After the cap, a commit goes even if a member never came back.
        store
            .append(BOB, &commit(4, 2, MembershipChange::default()), NOW)
            .await
            .unwrap()
            .unwrap();
        let much_later =
            NOW.saturating_add_millis(huddle_relay::store::log::HANDSHAKE_RETENTION_MILLIS + 1);
        assert_eq!(store.sweep_handshakes(much_later).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_members_refusal_is_audited_only_for_a_real_entry_of_her_group() {
    use huddle_core::wire::Refusal;
    for_each_engine(|store| async move {
        store
            .append(
                ADMIN,
                &create(1, GroupKind::Operational, RetentionSecs::days(7), vec![BOB]),
                NOW,
            )
            .await
            .unwrap()
            .expect("created");
        let sent = store
            .append(ADMIN, &text(2, 1, NOW.saturating_add_millis(60_000)), NOW)
            .await
            .unwrap()
            .expect("sent");
        let seq = sent.entry.seq;
        // Bob's phone refused it: recorded, with who reported and why.
        assert!(store
            .report_refused(BOB, WARD, seq, ADMIN, Refusal::WrongSender, NOW)
            .await
            .unwrap());
        // Reports about entries that do not exist, with another sender, or
        // from someone outside the group are dropped.
        for (reporter, seq, sender) in [(BOB, 99, ADMIN), (BOB, seq, CAROL), (CAROL, seq, ADMIN)] {
            assert!(!store
                .report_refused(reporter, WARD, seq, sender, Refusal::Certificate, NOW)
                .await
                .unwrap());
        }
        let audit = store.read_audit(None, 50).await.unwrap();
        let refusals: Vec<&str> = audit
            .iter()
            .filter(|e| e.action == "refused by a member")
            .map(|e| e.subject.as_str())
            .collect();
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(refusals[0].contains("signed by another device than the relay named"));
        assert_eq!(
            audit
                .iter()
                .find(|e| e.action == "refused by a member")
                .and_then(|e| e.actor),
            Some(UserId::from_bytes([2; 16]))
        );
    })
    .await;
}

#[tokio::test]
async fn revoked_devices_are_named_to_those_who_may_remove_them() {
    for_each_engine(|store| async move {
        // A clinical group (only administrators change who is in it) and
        // an operational one (anyone may).
        store
            .append(
                ADMIN,
                &create(1, GroupKind::Clinical, RetentionSecs::DAY, vec![BOB, CAROL]),
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        let team = GroupId::from_bytes([9; 16]);
        store
            .append(
                ADMIN,
                &Submission {
                    group: team,
                    ..create(
                        2,
                        GroupKind::Operational,
                        RetentionSecs::days(7),
                        vec![BOB, CAROL],
                    )
                },
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        assert!(store.revoked_members(CAROL).await.unwrap().is_empty());

        // Bob's phone is revoked: the administrator is told of both groups,
        // Carol (staff) only of the one she may change.
        store
            .revoke_device(UserId::from_bytes([1; 16]), BOB, NOW)
            .await
            .unwrap()
            .unwrap();
        let named = |groups: &[GroupId]| -> Vec<huddle_core::wire::RevokedInGroup> {
            let mut groups: Vec<_> = groups
                .iter()
                .map(|group| huddle_core::wire::RevokedInGroup {
                    group: *group,
                    devices: vec![BOB],
                })
                .collect();
            groups.sort_by_key(|g| g.group);
            groups
        };
        assert_eq!(
            store.revoked_members(ADMIN).await.unwrap(),
            named(&[WARD, team])
        );
        assert_eq!(store.revoked_members(CAROL).await.unwrap(), named(&[team]));
        assert_eq!(
            store.fellow_members(&[BOB]).await.unwrap(),
            vec![ADMIN, CAROL]
        );
        // She still may not change the clinical group, even to remove him.
        let removing = |n: u32| {
            commit(
                n,
                1,
                MembershipChange {
                    remove: vec![BOB],
                    ..MembershipChange::default()
                },
            )
        };
        assert_eq!(
            store.append(CAROL, &removing(3), NOW).await.unwrap(),
            Err(Rejection::NotPermitted)
        );
        assert!(store
            .append(ADMIN, &removing(4), NOW)
            .await
            .unwrap()
            .is_ok());
        assert_eq!(store.revoked_members(ADMIN).await.unwrap(), named(&[team]));
        assert!(store
            .append(
                CAROL,
                &Submission {
                    group: team,
                    ..removing(5)
                },
                NOW
            )
            .await
            .unwrap()
            .is_ok());
        assert!(store.revoked_members(ADMIN).await.unwrap().is_empty());
        assert!(store.revoked_members(CAROL).await.unwrap().is_empty());
        assert!(store.fellow_members(&[BOB]).await.unwrap().is_empty());
    })
    .await;
}

/// A restart of `WARD`'s encryption into `chain` by a member, naming the
/// other devices it adds.
fn restart(n: u32, chain: u32, spec: GroupSpec, add: Vec<DeviceId>) -> Submission {
    commit(
        n,
        huddle_core::wire::restart_epoch(chain),
        MembershipChange {
            create: Some(spec),
            add,
            remove: vec![],
        },
    )
}

#[tokio::test]
async fn a_restart_needs_the_next_chain_the_same_group_active_devices_and_a_minutes_wait() {
    use huddle_core::wire::{restart_epoch, wire_epoch};
    for_each_engine(|store| async move {
        let spec = GroupSpec {
            kind: GroupKind::Clinical,
            retention: RetentionSecs::DAY,
        };
        store
            .append(
                ADMIN,
                &create(1, spec.kind, spec.retention, vec![BOB, CAROL]),
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        let later = NOW.saturating_add_millis(3_600_000);
        store
            .append(BOB, &text(2, 1, later), NOW)
            .await
            .unwrap()
            .unwrap();
        // A junk commit (the relay cannot tell): the group moves to epoch 2.
        store
            .append(CAROL, &commit(3, 1, MembershipChange::default()), NOW)
            .await
            .unwrap()
            .unwrap();

        // What the relay refuses: the wrong chain, another type, the sender
        // among those added, a removal, a stranger.
        let refused = |n, chain, spec: GroupSpec, add: Vec<DeviceId>| restart(n, chain, spec, add);
        assert_eq!(
            store
                .append(BOB, &refused(4, 2, spec, vec![ADMIN, CAROL]), NOW)
                .await
                .unwrap(),
            Err(Rejection::StaleEpoch { current_epoch: 2 })
        );
        let social = GroupSpec {
            kind: GroupKind::Social,
            retention: RetentionSecs::DAY,
        };
        assert!(matches!(
            store
                .append(BOB, &refused(5, 1, social, vec![ADMIN, CAROL]), NOW)
                .await
                .unwrap(),
            Err(Rejection::InvalidCommit(_))
        ));
        assert!(matches!(
            store
                .append(BOB, &refused(6, 1, spec, vec![ADMIN, BOB, CAROL]), NOW)
                .await
                .unwrap(),
            Err(Rejection::InvalidCommit(_))
        ));
        let stranger = DeviceId::from_bytes([9; 16]);
        assert!(matches!(
            store
                .append(BOB, &refused(7, 1, spec, vec![ADMIN, stranger]), NOW)
                .await
                .unwrap(),
            Err(Rejection::InvalidCommit(_))
        ));
        let mut removing = refused(8, 1, spec, vec![ADMIN]);
        if let Payload::Commit { change, .. } = &mut removing.payload {
            change.remove = vec![CAROL];
        }
        assert!(matches!(
            store.append(BOB, &removing, NOW).await.unwrap(),
            Err(Rejection::InvalidCommit(_))
        ));

        // Bob, who is staff, restarts the clinical group: accepted, in the
        // first epoch of chain 1; everyone who was in it hears of it, and
        // those he added get its welcome.
        let restarted = store
            .append(BOB, &restart(9, 1, spec, vec![ADMIN, CAROL]), NOW)
            .await
            .unwrap()
            .expect("a restart by a member");
        assert_eq!(restarted.entry.epoch, restart_epoch(1));
        assert_eq!(restarted.added, vec![ADMIN, CAROL]);
        let mut recipients = restarted.recipients.clone();
        recipients.sort();
        assert_eq!(recipients, vec![ADMIN, BOB, CAROL]);
        assert_eq!(
            restarted.declared.as_ref().and_then(|c| c.create),
            Some(spec)
        );
        let seq = restarted.entry.seq;
        assert!(store
            .welcomes_for(CAROL)
            .await
            .unwrap()
            .iter()
            .any(|w| w.seq == seq));
        // Anything made in the old chain is stale; the new chain goes on.
        assert_eq!(
            store.append(ADMIN, &text(10, 2, later), NOW).await.unwrap(),
            Err(Rejection::StaleEpoch {
                current_epoch: wire_epoch(1, 1)
            })
        );
        store
            .append(ADMIN, &text(11, wire_epoch(1, 1), later), NOW)
            .await
            .unwrap()
            .expect("a message in the new chain");
        // Carol, who continues, still reads what came before the restart.
        let carol: Vec<u64> = store
            .backlog(WARD, CAROL, 0, 100, NOW)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(carol, vec![2, 3, seq, seq + 1]);

        // A second restart waits a minute after the first.
        assert_eq!(
            store
                .append(CAROL, &restart(12, 2, spec, vec![ADMIN, BOB]), NOW)
                .await
                .unwrap(),
            Err(Rejection::RepairedRecently)
        );
        // A restart that adds members carries their welcome.
        let minute_on = NOW.saturating_add_millis(61_000);
        let mut no_welcome = restart(16, 2, spec, vec![BOB, CAROL]);
        if let Payload::Commit { welcome, .. } = &mut no_welcome.payload {
            *welcome = None;
        }
        assert!(matches!(
            store.append(ADMIN, &no_welcome, minute_on).await.unwrap(),
            Err(Rejection::InvalidCommit(_))
        ));
        // A restart cannot take the group away from a member still signed
        // in: the admin's restart without Carol leaves her routed (her
        // phone, left out, restarts it again).
        let without_carol = store
            .append(ADMIN, &restart(13, 2, spec, vec![BOB]), minute_on)
            .await
            .unwrap()
            .expect("a later restart");
        assert_eq!(without_carol.entry.epoch, restart_epoch(2));
        let mut still = store
            .recipients(WARD, without_carol.entry.seq + 1)
            .await
            .unwrap();
        still.sort();
        assert_eq!(still, vec![ADMIN, BOB, CAROL]);
        // Once she is signed out, a restart without her stops her there:
        // she reads up to it and no further, and hears nothing after it.
        store
            .revoke_device(UserId::from_bytes([1; 16]), CAROL, minute_on)
            .await
            .unwrap()
            .expect("Carol signed out");
        let two_minutes_on = NOW.saturating_add_millis(122_000);
        let signed_out = store
            .append(BOB, &restart(17, 3, spec, vec![ADMIN]), two_minutes_on)
            .await
            .unwrap()
            .expect("a restart after she was signed out");
        store
            .append(BOB, &text(14, wire_epoch(3, 1), later), two_minutes_on)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.readable_end(WARD, CAROL).await.unwrap(),
            signed_out.entry.seq
        );
        let mut after = store
            .recipients(WARD, signed_out.entry.seq + 1)
            .await
            .unwrap();
        after.sort();
        assert_eq!(after, vec![ADMIN, BOB]);
        // The audit log says who repaired the group, and whom it left out.
        let audit = store.read_audit(None, 30).await.unwrap();
        let repairs: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "group repaired")
            .collect();
        assert_eq!(repairs.len(), 3);
        assert!(repairs[0].subject.contains(&format!("left out: {CAROL}")));
        assert_eq!(repairs[0].actor, Some(UserId::from_bytes([2; 16])));
        assert_eq!(repairs[1].actor, Some(UserId::from_bytes([1; 16])));
    })
    .await;
}
