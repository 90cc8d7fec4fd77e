//! Removals on SQLite and PostgreSQL with real sockets: a message recorded in the care record or deleted for everyone leaves the relay's database in the same write as the mark, later backlogs skip it, and only its author (or, in a clinical group, any member) may remove it, at most twenty an hour.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use huddle_core::ids::{ClientMessageId, GroupId};
use huddle_core::retention::GroupKind;
use huddle_core::wire::{
    ClientFrame, GroupCursor, Payload, Rejection, Role, ServerFrame, Submission,
};
use std::time::Duration;
use support::device::{create, msg, now, text, TestDevice};
use support::ws::{next, send, Socket};
use support::Engine;

async fn relay_on(engine: Engine) -> Option<(huddle_relay::RunningRelay, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = support::database_url(engine, dir.path()).await?;
    let config = support::config(dir.path(), dir.path(), Some(url));
    Some((support::start(&config).await, dir))
}

/// A mark numbered `n` that removes the message `removes`.
fn removing(n: u32, group: GroupId, epoch: u64, removes: ClientMessageId) -> Submission {
    let mut submission = text(n, group, epoch);
    submission.payload = Payload::Removing {
        ciphertext: format!("sealed mark {n}").into_bytes(),
        removes,
    };
    submission
}

/// Submits and returns the relay's answer to it (its `Accepted` or
/// `Rejected`), passing over entries delivered meanwhile.
async fn answer(socket: &mut Socket, submission: Submission) -> ServerFrame {
    let client_msg = submission.client_msg;
    send(socket, ClientFrame::Submit(submission)).await;
    loop {
        match next(socket).await {
            frame @ (ServerFrame::Accepted { client_msg: c, .. }
            | ServerFrame::Rejected { client_msg: c, .. })
                if c == client_msg =>
            {
                return frame
            }
            ServerFrame::Deliver(_) | ServerFrame::DeliverCommit { .. } => {}
            other => panic!("waiting for an answer: {other:?}"),
        }
    }
}

/// Makes `group` of `kind` with the others as members, each past its
/// welcome; returns the sockets, the maker's first.
async fn group_of(
    relay: &huddle_relay::RunningRelay,
    group: GroupId,
    kind: GroupKind,
    maker: &TestDevice,
    others: &[&TestDevice],
) -> Vec<Socket> {
    let mut sockets = vec![maker.connect(relay).await];
    for device in others {
        let mut socket = device.connect(relay).await;
        send(&mut socket, ClientFrame::Sync { cursors: vec![] }).await;
        assert_eq!(next(&mut socket).await, ServerFrame::Synced);
        sockets.push(socket);
    }
    let add = others.iter().map(|d| d.device).collect();
    let made = answer(&mut sockets[0], create(1, group, kind, add)).await;
    assert!(
        matches!(made, ServerFrame::Accepted { seq: 1, .. }),
        "{made:?}"
    );
    for socket in &mut sockets[1..] {
        assert!(matches!(
            next(socket).await,
            ServerFrame::Welcome { seq: 1, .. }
        ));
    }
    sockets
}

/// What the relay stores for entry `seq` of `group`: its payload's length.
async fn stored_bytes(store: &huddle_relay::Store, group: GroupId, seq: u64) -> Option<i64> {
    sqlx::query_scalar("SELECT length(payload) FROM log WHERE group_id = $1 AND seq = $2")
        .bind(&group.as_bytes()[..])
        .bind(i64::try_from(seq).expect("small"))
        .fetch_optional(store.pool())
        .await
        .expect("read the log")
}

/// What a device that has been away is sent for `group` after `seq`.
async fn catch_up(socket: &mut Socket, group: GroupId, seq: u64) -> Vec<ServerFrame> {
    send(
        socket,
        ClientFrame::Sync {
            cursors: vec![GroupCursor { group, seq }],
        },
    )
    .await;
    let mut frames = Vec::new();
    loop {
        match next(socket).await {
            ServerFrame::Synced => return frames,
            frame => frames.push(frame),
        }
    }
}

/// Why the relay refused a submission, if it did.
fn refusal(frame: &ServerFrame) -> Option<Rejection> {
    match frame {
        ServerFrame::Rejected { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

fn delivered_ids(frames: &[ServerFrame]) -> Vec<ClientMessageId> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerFrame::Deliver(entry) => Some(entry.client_msg),
            _ => None,
        })
        .collect()
}

async fn removal_audit(store: &huddle_relay::Store) -> Vec<String> {
    sqlx::query_scalar("SELECT subject FROM audit WHERE action = 'message removed' ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("read the audit log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_message_leaves_the_database_with_its_mark_and_later_backlogs_skip_it() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_on(engine).await else {
            continue;
        };
        let (mia, ben, cara) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
        mia.register(&relay.store, Role::Administrator).await;
        ben.register(&relay.store, Role::Staff).await;
        cara.register(&relay.store, Role::Staff).await;
        let handover = GroupId::from_bytes([0x31; 16]);
        let mut sockets =
            group_of(&relay, handover, GroupKind::Clinical, &mia, &[&ben, &cara]).await;
        let mut cara_socket = sockets.pop().expect("cara");
        let mut ben_socket = sockets.pop().expect("ben");
        drop(sockets);
        drop(cara_socket);

        // Ben writes two messages; Cara is away.
        for n in [10, 11] {
            let stored = answer(&mut ben_socket, text(n, handover, 1)).await;
            assert!(matches!(stored, ServerFrame::Accepted { .. }), "{stored:?}");
        }
        assert!(stored_bytes(&relay.store, handover, 2)
            .await
            .is_some_and(|n| n > 0));

        // A member who is not its author marks message 10 as recorded in
        // the care record: a clinical group allows it.
        let marked = answer(&mut ben_socket, removing(20, handover, 1, msg(10))).await;
        assert!(
            matches!(marked, ServerFrame::Accepted { seq: 4, .. }),
            "{marked:?}"
        );
        assert_eq!(
            stored_bytes(&relay.store, handover, 2).await.unwrap_or(0),
            0,
            "{engine:?}: the ciphertext is gone with the mark's own write"
        );
        assert_eq!(
            removal_audit(&relay.store).await,
            vec![format!("group {handover}: entry 2 (its author's own)")]
        );
        // Ben's phone never heard its message was stored (the acceptance
        // was lost) and sends it again: answered as a resend, not stored
        // afresh.
        let resent = answer(&mut ben_socket, text(10, handover, 1)).await;
        assert!(
            matches!(resent, ServerFrame::Accepted { seq: 2, .. }),
            "{engine:?}: {resent:?}"
        );
        assert_eq!(stored_bytes(&relay.store, handover, 2).await, Some(0));
        assert_eq!(stored_bytes(&relay.store, handover, 5).await, None);
        // The empty row stays until the message would have expired (not
        // swept at once), so that any later resend is recognised too.
        let kept_until: i64 =
            sqlx::query_scalar("SELECT expires_at FROM log WHERE group_id = $1 AND seq = 2")
                .bind(&handover.as_bytes()[..])
                .fetch_one(relay.store.pool())
                .await
                .expect("the emptied row");
        assert!(kept_until > i64::try_from(now().0).expect("a time") + 3_000_000);

        // Cara comes back: she is told entry 2 is gone and receives 11 and
        // the mark, never 10.
        cara_socket = cara.connect(&relay).await;
        let frames = catch_up(&mut cara_socket, handover, 1).await;
        assert_eq!(delivered_ids(&frames), vec![msg(11), msg(20)], "{engine:?}");
        assert!(frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Skipped { up_to: 2, .. })));

        // Removing what is gone already is refused, and changes nothing.
        let again = answer(&mut cara_socket, removing(30, handover, 1, msg(10))).await;
        assert_eq!(refusal(&again), Some(Rejection::Expired), "{again:?}");
        // Cara (not its author) may remove Ben's other message here: the
        // group is clinical.
        let recorded = answer(&mut cara_socket, removing(31, handover, 1, msg(11))).await;
        assert!(
            matches!(recorded, ServerFrame::Accepted { .. }),
            "{recorded:?}"
        );
        assert_eq!(
            stored_bytes(&relay.store, handover, 3).await.unwrap_or(0),
            0
        );
        assert_eq!(
            removal_audit(&relay.store).await.last().map(String::as_str),
            Some(format!("group {handover}: entry 3 (another member's)").as_str())
        );
        relay.shutdown(Duration::from_secs(1)).await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_clinical_groups_only_the_author_removes_and_nobody_more_than_twenty_an_hour() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_on(engine).await else {
            continue;
        };
        let (mia, ben) = (TestDevice::new(1), TestDevice::new(2));
        mia.register(&relay.store, Role::Administrator).await;
        ben.register(&relay.store, Role::Staff).await;
        let rota = GroupId::from_bytes([0x32; 16]);
        let mut sockets = group_of(&relay, rota, GroupKind::Operational, &mia, &[&ben]).await;
        let mut ben_socket = sockets.pop().expect("ben");
        let mut mia_socket = sockets.pop().expect("mia");

        let stored = answer(&mut ben_socket, text(10, rota, 1)).await;
        assert!(matches!(stored, ServerFrame::Accepted { seq: 2, .. }));
        // Not even an administrator removes another's message here.
        let refused = answer(&mut mia_socket, removing(40, rota, 1, msg(10))).await;
        assert_eq!(
            refusal(&refused),
            Some(Rejection::NotPermitted),
            "{engine:?}: {refused:?}"
        );
        assert!(stored_bytes(&relay.store, rota, 2)
            .await
            .is_some_and(|n| n > 0));
        assert!(removal_audit(&relay.store).await.is_empty());

        // Ben deletes his own, nineteen more, and is stopped at the 21st.
        let deleted = answer(&mut ben_socket, removing(41, rota, 1, msg(10))).await;
        assert!(
            matches!(deleted, ServerFrame::Accepted { .. }),
            "{deleted:?}"
        );
        assert_eq!(stored_bytes(&relay.store, rota, 2).await.unwrap_or(0), 0);
        for n in 0..20u32 {
            let stored = answer(&mut ben_socket, text(100 + n, rota, 1)).await;
            assert!(matches!(stored, ServerFrame::Accepted { .. }));
            let removal = answer(&mut ben_socket, removing(200 + n, rota, 1, msg(100 + n))).await;
            if n < 19 {
                assert!(
                    matches!(removal, ServerFrame::Accepted { .. }),
                    "{n}: {removal:?}"
                );
            } else {
                assert!(
                    matches!(
                        removal,
                        ServerFrame::Rejected {
                            reason: Rejection::RateLimited { retry_after_ms },
                            ..
                        } if retry_after_ms > 3_000_000
                    ),
                    "{engine:?}: {removal:?}"
                );
            }
        }
        assert_eq!(removal_audit(&relay.store).await.len(), 20);
        relay.shutdown(Duration::from_secs(1)).await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_in_a_broadcast_group_remove_nothing() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_on(engine).await else {
            continue;
        };
        let (mia, ben) = (TestDevice::new(1), TestDevice::new(2));
        mia.register(&relay.store, Role::Administrator).await;
        ben.register(&relay.store, Role::Staff).await;
        let alerts = GroupId::from_bytes([0x33; 16]);
        let mut sockets =
            group_of(&relay, alerts, GroupKind::EmergencyBroadcast, &mia, &[&ben]).await;
        let mut ben_socket = sockets.pop().expect("ben");
        let mut mia_socket = sockets.pop().expect("mia");
        let broadcast = answer(&mut mia_socket, text(10, alerts, 1)).await;
        assert!(matches!(broadcast, ServerFrame::Accepted { .. }));
        let refused = answer(&mut ben_socket, removing(11, alerts, 1, msg(10))).await;
        assert_eq!(
            refusal(&refused),
            Some(Rejection::NotPermitted),
            "{refused:?}"
        );
        // Its author, an administrator, deletes her broadcast.
        let deleted = answer(&mut mia_socket, removing(12, alerts, 1, msg(10))).await;
        assert!(
            matches!(deleted, ServerFrame::Accepted { .. }),
            "{deleted:?}"
        );
        relay.shutdown(Duration::from_secs(1)).await.expect("stop");
    }
}
