//! Membership that ends and is reviewed, on SQLite and PostgreSQL with real sockets: agency staff invited until a time are signed out by the relay when it passes, with nobody's app open for it, their colleagues told to remove them from every group; administrators alone set or move an end, never for an administrator or in the past; and each group's review falls due an interval after it was made or last reviewed.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use huddle_core::ids::{GroupId, UserId};
use huddle_core::retention::GroupKind;
use huddle_core::wire::{AccessEnd, ClientFrame, ErrorCode, ReviewDue, Role, ServerFrame};
use huddle_relay::store::people::LinkRefusal;
use std::time::Duration;
use support::device::{create, now, text, TestDevice};
use support::ws::{next, send, Socket};
use support::Engine;

async fn relay_on(engine: Engine) -> Option<(huddle_relay::RunningRelay, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = support::database_url(engine, dir.path()).await?;
    let config = support::config(dir.path(), dir.path(), Some(url));
    Some((support::start(&config).await, dir))
}

/// Sends a frame and returns its answer, passing over entries delivered
/// and revoked members named meanwhile.
async fn ask(socket: &mut Socket, frame: ClientFrame) -> ServerFrame {
    send(socket, frame).await;
    loop {
        match next(socket).await {
            ServerFrame::Deliver(_)
            | ServerFrame::DeliverCommit { .. }
            | ServerFrame::Welcome { .. }
            | ServerFrame::RevokedMembers { .. } => {}
            other => return other,
        }
    }
}

async fn access_ends(socket: &mut Socket, request: u32) -> Vec<AccessEnd> {
    match ask(socket, ClientFrame::AccessEnds { request }).await {
        ServerFrame::AccessEnds { request: r, people } if r == request => people,
        other => panic!("the ends of access: {other:?}"),
    }
}

fn refused(frame: &ServerFrame, request: u32) -> bool {
    matches!(frame, ServerFrame::Refused { request: r, .. } if *r == request)
}

#[tokio::test]
async fn an_agency_worker_is_signed_out_at_her_end_and_her_groups_are_told() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_on(engine).await else {
            continue;
        };
        let (manager, agency, carer) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
        manager.register(&relay.store, Role::Administrator).await;
        agency.register(&relay.store, Role::Staff).await;
        carer.register(&relay.store, Role::Staff).await;

        // A group of the three; nobody's phone has anything to do with the
        // end of access but the agency worker's own connection and a
        // colleague's, listening.
        let group = GroupId::from_bytes([0x70; 16]);
        let mut admin = manager.connect(&relay).await;
        let mut agency_socket = agency.connect(&relay).await;
        let mut carer_socket = carer.connect(&relay).await;
        for socket in [&mut agency_socket, &mut carer_socket] {
            send(socket, ClientFrame::Sync { cursors: vec![] }).await;
            assert_eq!(next(socket).await, ServerFrame::Synced);
        }
        let made = ask(
            &mut admin,
            ClientFrame::Submit(create(
                1,
                group,
                GroupKind::Operational,
                vec![agency.device, carer.device],
            )),
        )
        .await;
        assert!(
            matches!(made, ServerFrame::Accepted { seq: 1, .. }),
            "{made:?}"
        );

        // Her end, a few seconds ahead. Staff cannot set one; nor can it be
        // in the past, a year away, or an administrator's.
        let ends_at = now().saturating_add_millis(2_500);
        let by_staff = ask(
            &mut carer_socket,
            ClientFrame::SetAccessEnds {
                request: 1,
                user: agency.user,
                ends_at: Some(ends_at),
            },
        )
        .await;
        assert!(refused(&by_staff, 1), "{by_staff:?}");
        for (request, user, at) in [
            (2, agency.user, now().saturating_sub_millis(1)),
            (
                3,
                agency.user,
                now().saturating_add_millis(400 * 86_400_000),
            ),
            (4, manager.user, ends_at),
            (5, UserId::from_bytes([0x99; 16]), ends_at),
        ] {
            let answer = ask(
                &mut admin,
                ClientFrame::SetAccessEnds {
                    request,
                    user,
                    ends_at: Some(at),
                },
            )
            .await;
            assert!(refused(&answer, request), "{request}: {answer:?}");
        }
        assert_eq!(access_ends(&mut admin, 6).await, vec![]);
        let set = ask(
            &mut admin,
            ClientFrame::SetAccessEnds {
                request: 7,
                user: agency.user,
                ends_at: Some(ends_at),
            },
        )
        .await;
        assert_eq!(set, ServerFrame::Done { request: 7 });
        assert_eq!(
            access_ends(&mut admin, 8).await,
            vec![AccessEnd {
                user: agency.user,
                ends_at,
                invited: false,
            }]
        );

        // Until then she works as anyone does.
        let before = ask(&mut agency_socket, ClientFrame::Submit(text(2, group, 1))).await;
        assert!(matches!(before, ServerFrame::Accepted { .. }), "{before:?}");

        // At her end the relay closes her connection and tells her group.
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match next(&mut agency_socket).await {
                    ServerFrame::Error {
                        code: ErrorCode::Revoked,
                        ..
                    } => return,
                    ServerFrame::Deliver(_) => {}
                    other => panic!("her connection after her end: {other:?}"),
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "her connection ends within the sweep");
        assert!(now() >= ends_at, "not before her end");
        let told = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let ServerFrame::RevokedMembers { groups } = next(&mut carer_socket).await {
                    return groups;
                }
            }
        })
        .await
        .expect("her colleagues are told");
        assert_eq!(told.len(), 1);
        assert_eq!(
            (told[0].group, told[0].devices.clone()),
            (group, vec![agency.device])
        );

        // She cannot sign in again, so nothing sent after her end reaches
        // her; the directory and the list of ends no longer have her.
        let after = ask(&mut carer_socket, ClientFrame::Submit(text(3, group, 1))).await;
        assert!(matches!(after, ServerFrame::Accepted { .. }), "{after:?}");
        let (_, answer) = support::ws::sign_in(&relay, agency.device, &agency.key).await;
        assert!(
            matches!(
                answer,
                ServerFrame::Error {
                    code: ErrorCode::Revoked,
                    ..
                }
            ),
            "{answer:?}"
        );
        assert_eq!(access_ends(&mut admin, 9).await, vec![]);
        let ServerFrame::People { people, .. } =
            ask(&mut admin, ClientFrame::Directory { request: 10 }).await
        else {
            panic!("the directory")
        };
        assert!(people.iter().all(|p| p.user != agency.user));

        // The audit log says so, under no person's name, without a reason.
        let ServerFrame::Audit { entries, .. } = ask(
            &mut admin,
            ClientFrame::ReadAudit {
                request: 11,
                before: None,
                limit: 10,
            },
        )
        .await
        else {
            panic!("the audit log")
        };
        let ended = entries
            .iter()
            .find(|e| e.action == "access ended")
            .expect("an audit line");
        assert_eq!(ended.actor, None);
        assert_eq!(
            ended.subject,
            format!(
                "person {}, 1 devices, at the end of access set for her",
                agency.user
            )
        );
        let changed = entries
            .iter()
            .find(|e| e.action == "end of access changed")
            .expect("an audit line for the change");
        assert_eq!(changed.actor, Some(manager.user));
        assert!(changed.subject.ends_with(" UTC"), "{}", changed.subject);
        relay.shutdown(Duration::from_secs(1)).await.expect("stops");
    }
}

#[tokio::test]
async fn an_invite_until_a_date_carries_it_and_lapses_with_it() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some((relay, _dir)) = relay_on(engine).await else {
            continue;
        };
        let manager = TestDevice::new(1);
        manager.register(&relay.store, Role::Administrator).await;
        let mut admin = manager.connect(&relay).await;
        let ama = UserId::from_bytes([0x0a; 16]);
        let ends_at = now().saturating_add_millis(3 * 86_400_000);

        // Never for an administrator, nor ended already.
        for (request, role, at) in [
            (1, Role::Administrator, ends_at),
            (2, Role::Staff, now().saturating_sub_millis(60_000)),
        ] {
            let answer = ask(
                &mut admin,
                ClientFrame::CreateInviteEnding {
                    request,
                    user: ama,
                    display_name: "Ama".into(),
                    role,
                    valid_for_secs: 7 * 86_400,
                    access_ends_at: at,
                },
            )
            .await;
            assert!(refused(&answer, request), "{answer:?}");
        }

        // The link lasts no longer than the access it grants.
        let made = ask(
            &mut admin,
            ClientFrame::CreateInviteEnding {
                request: 3,
                user: ama,
                display_name: "Ama".into(),
                role: Role::Staff,
                valid_for_secs: 7 * 86_400,
                access_ends_at: ends_at,
            },
        )
        .await;
        let ServerFrame::InviteCreated {
            secret, expires_at, ..
        } = made
        else {
            panic!("the invite: {made:?}")
        };
        assert_eq!(expires_at, ends_at);
        assert_eq!(
            access_ends(&mut admin, 4).await,
            vec![AccessEnd {
                user: ama,
                ends_at,
                invited: true,
            }]
        );
        assert_eq!(
            ask(
                &mut admin,
                ClientFrame::AttachInviteCertificate {
                    request: 5,
                    user: ama,
                    certificate: b"a chain".to_vec(),
                },
            )
            .await,
            ServerFrame::Done { request: 5 }
        );

        // An administrator moves the end to an hour from now; used after it,
        // the invite is expired; used before it, she joins with that end.
        let sooner = now().saturating_add_millis(3_600_000);
        assert_eq!(
            ask(
                &mut admin,
                ClientFrame::SetAccessEnds {
                    request: 6,
                    user: ama,
                    ends_at: Some(sooner),
                },
            )
            .await,
            ServerFrame::Done { request: 6 }
        );
        let phone = TestDevice::new(2);
        let late = relay
            .store
            .redeem_invite(
                &secret.0,
                phone.device,
                &phone.public_key(),
                "",
                sooner.saturating_add_millis(1),
            )
            .await
            .expect("the store answers");
        assert_eq!(late.map(|joined| joined.user), Err(LinkRefusal::Expired));
        let joined = relay
            .store
            .redeem_invite(&secret.0, phone.device, &phone.public_key(), "", now())
            .await
            .expect("the store answers")
            .expect("she joins in time");
        assert_eq!(joined.user, ama);
        assert_eq!(
            access_ends(&mut admin, 7).await,
            vec![AccessEnd {
                user: ama,
                ends_at: sooner,
                invited: false,
            }]
        );

        // Lifted, she stays; nobody is signed out by a sweep.
        assert_eq!(
            ask(
                &mut admin,
                ClientFrame::SetAccessEnds {
                    request: 8,
                    user: ama,
                    ends_at: None,
                },
            )
            .await,
            ServerFrame::Done { request: 8 }
        );
        assert_eq!(access_ends(&mut admin, 9).await, vec![]);
        let swept = relay
            .store
            .end_access_due(sooner.saturating_add_millis(1))
            .await
            .expect("the sweep runs");
        assert_eq!(swept, vec![]);
        relay.shutdown(Duration::from_secs(1)).await.expect("stops");
    }
}

#[tokio::test]
async fn a_groups_review_falls_due_and_an_administrator_in_it_records_one() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let dir = tempfile::tempdir().expect("temp dir");
        let Some(url) = support::database_url(engine, dir.path()).await else {
            continue;
        };
        let mut config = support::config(dir.path(), dir.path(), Some(url));
        config.membership_review_days = 30;
        let every = 30 * 86_400_000;
        let relay = support::start(&config).await;
        let (manager, other_manager, carer) =
            (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
        manager.register(&relay.store, Role::Administrator).await;
        other_manager
            .register(&relay.store, Role::Administrator)
            .await;
        carer.register(&relay.store, Role::Staff).await;
        let mut admin = manager.connect(&relay).await;
        let mut other_admin = other_manager.connect(&relay).await;
        let mut staff = carer.connect(&relay).await;
        send(&mut staff, ClientFrame::Sync { cursors: vec![] }).await;
        assert_eq!(next(&mut staff).await, ServerFrame::Synced);

        // A team group and a one-to-one conversation; only the group is
        // reviewed, first due an interval after it was made.
        let (rota, chat) = (
            GroupId::from_bytes([0x71; 16]),
            GroupId::from_bytes([0x72; 16]),
        );
        let made_at = now();
        for (n, group, kind) in [
            (1, rota, GroupKind::Operational),
            (2, chat, GroupKind::Direct),
        ] {
            let made = ask(
                &mut admin,
                ClientFrame::Submit(create(n, group, kind, vec![carer.device])),
            )
            .await;
            assert!(matches!(made, ServerFrame::Accepted { .. }), "{made:?}");
        }
        let ServerFrame::ReviewsDue { request: 1, groups } =
            ask(&mut admin, ClientFrame::ReviewsDue { request: 1 }).await
        else {
            panic!("the reviews")
        };
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!((groups[0].group, groups[0].reviewed_at), (rota, None));
        let first_due = groups[0].due_at;
        assert!(
            first_due >= made_at.saturating_add_millis(every)
                && first_due <= now().saturating_add_millis(every),
            "{first_due:?}"
        );

        // Staff cannot ask or record; nor can an administrator who is not
        // in the group, or for a one-to-one conversation.
        assert!(refused(
            &ask(&mut staff, ClientFrame::ReviewsDue { request: 2 }).await,
            2
        ));
        for (who, request, group) in [
            ("staff", 3, rota),
            ("an administrator not in it", 4, rota),
            ("an administrator", 5, chat),
            ("an administrator", 6, GroupId::from_bytes([0x73; 16])),
        ] {
            let socket = match request {
                3 => &mut staff,
                4 => &mut other_admin,
                _ => &mut admin,
            };
            let answer = ask(
                socket,
                ClientFrame::MembersReviewed {
                    request,
                    group,
                    kept: 1,
                    removed: 0,
                },
            )
            .await;
            assert!(refused(&answer, request), "{who}, {request}: {answer:?}");
        }
        let ServerFrame::ReviewsDue { groups, .. } =
            ask(&mut other_admin, ClientFrame::ReviewsDue { request: 7 }).await
        else {
            panic!("the other administrator's reviews")
        };
        assert_eq!(groups, vec![], "she is in no group");

        // Recorded, the next review is due an interval from then.
        let reviewed_at = now();
        assert_eq!(
            ask(
                &mut admin,
                ClientFrame::MembersReviewed {
                    request: 8,
                    group: rota,
                    kept: 1,
                    removed: 2,
                },
            )
            .await,
            ServerFrame::Done { request: 8 }
        );
        let ServerFrame::ReviewsDue { groups, .. } =
            ask(&mut admin, ClientFrame::ReviewsDue { request: 9 }).await
        else {
            panic!("the reviews")
        };
        let [ReviewDue {
            group,
            due_at,
            reviewed_at: Some(last),
        }] = groups[..]
        else {
            panic!("one group, reviewed: {groups:?}")
        };
        assert_eq!(group, rota);
        assert!(last >= reviewed_at && due_at == last.saturating_add_millis(every));
        let ServerFrame::Audit { entries, .. } = ask(
            &mut admin,
            ClientFrame::ReadAudit {
                request: 10,
                before: None,
                limit: 5,
            },
        )
        .await
        else {
            panic!("the audit log")
        };
        assert_eq!(entries[0].action, "membership reviewed");
        assert_eq!(entries[0].actor, Some(manager.user));
        assert_eq!(
            entries[0].subject,
            format!("group {rota}: 1 kept, 2 removed")
        );
        relay.shutdown(Duration::from_secs(1)).await.expect("stops");
    }
}
