//! People on a real relay, on SQLite and PostgreSQL: the first-run setup link, invites (used, expired, withdrawn), roles, revocation that ends connections at once, and the audit log.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use futures::SinkExt;
use huddle_core::hex::encode as hex;
use huddle_core::ids::DeviceId;
use huddle_core::wire::registration_transcript;
use huddle_core::wire::{ClientFrame, ErrorCode, Role, ServerFrame};
use huddle_relay::registration::Registered;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use std::time::Duration;
use support::ws::{next, sign_in, Socket};
use support::Engine;
use tokio_tungstenite::tungstenite::Message;

struct Phone {
    device: DeviceId,
    key: SigningKey,
}

impl Phone {
    fn new(n: u8) -> Phone {
        Phone {
            device: DeviceId::from_bytes([n; 16]),
            key: SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng),
        }
    }

    fn body(&self, secret: &[u8], org_name: &str, display_name: &str) -> serde_json::Value {
        let proof: Signature = self.key.sign(&registration_transcript(secret, self.device));
        serde_json::json!({
            "secret": hex(secret),
            "org_name": org_name,
            "display_name": display_name,
            "device": self.device,
            "public_key": hex(self.key.verifying_key().to_encoded_point(false).as_bytes()),
            "signature": hex(proof.to_der().as_bytes()),
        })
    }

    async fn post(
        &self,
        relay: &huddle_relay::RunningRelay,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("http://{}/api/{path}", relay.local_addr))
            .json(&body)
            .send()
            .await
            .expect("the relay answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    async fn connect(&self, relay: &huddle_relay::RunningRelay) -> (Socket, ServerFrame) {
        sign_in(relay, self.device, &self.key).await
    }
}

async fn ask(socket: &mut Socket, frame: ClientFrame) -> ServerFrame {
    socket
        .send(Message::Binary(frame.encode().into()))
        .await
        .unwrap();
    next(socket).await
}

#[tokio::test]
async fn setup_invite_join_revoke_and_audit() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let Some(url) = support::database_url(engine, dir.path()).await else {
            continue;
        };
        let relay = support::start(&support::config(dir.path(), dir.path(), Some(url))).await;
        let secret = relay.setup_secret.expect("a first run prints a setup link");
        let (manager, sam, stranger) = (Phone::new(1), Phone::new(2), Phone::new(3));

        // A wrong secret, or a proof signed by another key, changes nothing.
        let (status, _) = manager
            .post(&relay, "setup", manager.body(&[7; 32], "Oak House", "Dee"))
            .await;
        assert_eq!(status, 404);
        let mut forged = manager.body(&secret, "Oak House", "Dee");
        forged["public_key"] = stranger.body(&secret, "", "")["public_key"].clone();
        let (status, error) = manager.post(&relay, "setup", forged).await;
        assert_eq!((status, error["error"].as_str()), (400, Some("bad_proof")));

        // The manager sets up the home and becomes its administrator.
        let (status, body) = manager
            .post(
                &relay,
                "setup",
                manager.body(&secret, "Oak House", "Dee Manager"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let registered: Registered = serde_json::from_value(body).unwrap();
        assert!(registered.administrator);
        let (status, error) = stranger
            .post(&relay, "setup", stranger.body(&secret, "Take over", "X"))
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (409, Some("already_set_up"))
        );

        // She invites Sam as staff.
        let (mut admin, ready) = manager.connect(&relay).await;
        assert!(matches!(ready, ServerFrame::Ready { .. }));
        let invite = ClientFrame::CreateInvite {
            request: 1,
            display_name: "Sam Carter".into(),
            role: Role::Staff,
            valid_for_secs: 86_400,
        };
        let ServerFrame::InviteCreated {
            secret: invite_secret_link,
            user: sam_user,
            ..
        } = ask(&mut admin, invite).await
        else {
            panic!("invite")
        };
        let invite_secret = invite_secret_link.0;
        // Until the manager's phone has attached the invite's certificate,
        // the invite is refused and stays unused.
        let (status, error) = sam
            .post(&relay, "join", sam.body(&invite_secret, "", ""))
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (409, Some("invite_not_certified"))
        );
        // The relay keeps whatever bytes the administrator's phone made (it
        // cannot check them; the joining phone does), within a size limit.
        let certificate = b"the chain from the organisation key to the invite".to_vec();
        assert!(matches!(
            ask(
                &mut admin,
                ClientFrame::AttachInviteCertificate {
                    request: 10,
                    user: sam_user,
                    certificate: vec![0; huddle_core::wire::MAX_INVITE_CERTIFICATE_BYTES + 1],
                }
            )
            .await,
            ServerFrame::Refused { request: 10, .. }
        ));
        assert_eq!(
            ask(
                &mut admin,
                ClientFrame::AttachInviteCertificate {
                    request: 11,
                    user: sam_user,
                    certificate: certificate.clone(),
                }
            )
            .await,
            ServerFrame::Done { request: 11 }
        );
        let (status, body) = sam
            .post(&relay, "join", sam.body(&invite_secret, "", ""))
            .await;
        assert_eq!(status, 200, "{body}");
        let joined: Registered = serde_json::from_value(body).unwrap();
        assert_eq!(
            joined.invite_certificate.as_deref(),
            Some(huddle_core::hex::encode(&certificate).as_str()),
            "the certificate is handed to the person who joins"
        );
        // An empty name keeps the one on the invite; the answer names the home.
        assert_eq!(
            (
                joined.user,
                joined.display_name.as_str(),
                joined.administrator,
                joined.org_name.as_str()
            ),
            (sam_user, "Sam Carter", false, "Oak House")
        );
        // Used once only.
        let (status, error) = stranger
            .post(&relay, "join", stranger.body(&invite_secret, "", ""))
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (410, Some("invite_used"))
        );

        // A withdrawn invite is refused with its reason.
        let invite = ClientFrame::CreateInvite {
            request: 2,
            display_name: "Pat".into(),
            role: Role::Staff,
            valid_for_secs: 600,
        };
        let ServerFrame::InviteCreated {
            secret: pat_secret_link,
            user: pat,
            ..
        } = ask(&mut admin, invite).await
        else {
            panic!()
        };
        let pat_secret = pat_secret_link.0;
        assert_eq!(
            ask(
                &mut admin,
                ClientFrame::RevokeInvite {
                    request: 3,
                    user: pat
                }
            )
            .await,
            ServerFrame::Done { request: 3 }
        );
        let (status, error) = stranger
            .post(&relay, "join", stranger.body(&pat_secret, "", ""))
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (410, Some("invite_revoked"))
        );
        // An expired invite too (checked at the store, with a later clock).
        let invite = ClientFrame::CreateInvite {
            request: 4,
            display_name: "Lee".into(),
            role: Role::Staff,
            valid_for_secs: 60,
        };
        let ServerFrame::InviteCreated {
            secret: lee_secret_link,
            user: lee_user,
            expires_at,
            ..
        } = ask(&mut admin, invite).await
        else {
            panic!()
        };
        let lee_secret = lee_secret_link.0;
        let ServerFrame::Done { .. } = ask(
            &mut admin,
            ClientFrame::AttachInviteCertificate {
                request: 12,
                user: lee_user,
                certificate: certificate.clone(),
            },
        )
        .await
        else {
            panic!("certificate attached")
        };
        let late = relay
            .store
            .redeem_invite(
                &lee_secret,
                stranger.device,
                &[4; 97],
                "",
                expires_at.saturating_add_millis(1),
            )
            .await
            .unwrap();
        assert_eq!(late, Err(huddle_relay::store::people::LinkRefusal::Expired));
        // In time, the name the person picks replaces the one on the invite.
        let in_time = relay
            .store
            .redeem_invite(
                &lee_secret,
                stranger.device,
                &[4; 97],
                "  Lee J  ",
                expires_at.saturating_sub_millis(1),
            )
            .await
            .unwrap()
            .expect("the invite works");
        assert_eq!(in_time.display_name, "Lee J");

        // Staff cannot administer, but can read the directory.
        let (mut sam_socket, ready) = sam.connect(&relay).await;
        assert!(matches!(ready, ServerFrame::Ready { user, .. } if user == sam_user));
        let refused = ask(
            &mut sam_socket,
            ClientFrame::CreateInvite {
                request: 5,
                display_name: "X".into(),
                role: Role::Administrator,
                valid_for_secs: 600,
            },
        )
        .await;
        assert!(matches!(refused, ServerFrame::Refused { request: 5, .. }));
        let refused = ask(
            &mut sam_socket,
            ClientFrame::AttachInviteCertificate {
                request: 13,
                user: lee_user,
                certificate: b"a staff member's chain".to_vec(),
            },
        )
        .await;
        assert!(matches!(refused, ServerFrame::Refused { request: 13, .. }));

        // A phone may name the person it invites, but not as someone who
        // exists: the relay refuses an id that is taken.
        let refused = ask(
            &mut admin,
            ClientFrame::CreateInviteFor {
                request: 14,
                user: sam_user,
                display_name: "Sam Carter".into(),
                role: Role::Administrator,
                valid_for_secs: 600,
            },
        )
        .await;
        assert!(matches!(refused, ServerFrame::Refused { request: 14, .. }));
        let chosen = huddle_core::ids::UserId::from_bytes([0x5c; 16]);
        let made = ask(
            &mut admin,
            ClientFrame::CreateInviteFor {
                request: 15,
                user: chosen,
                display_name: "Kim".into(),
                role: Role::Staff,
                valid_for_secs: 600,
            },
        )
        .await;
        assert!(
            matches!(made, ServerFrame::InviteCreated { request: 15, user, .. } if user == chosen)
        );
        let again = ask(
            &mut admin,
            ClientFrame::CreateInviteFor {
                request: 16,
                user: chosen,
                display_name: "Kim".into(),
                role: Role::Staff,
                valid_for_secs: 600,
            },
        )
        .await;
        assert!(matches!(again, ServerFrame::Refused { request: 16, .. }));
        let ServerFrame::People { people, .. } =
            ask(&mut sam_socket, ClientFrame::Directory { request: 6 }).await
        else {
            panic!()
        };
        let names: Vec<&str> = people.iter().map(|p| p.display_name.as_str()).collect();
        assert_eq!(names, vec!["Dee Manager", "Lee J", "Sam Carter"]);

        // Sam sees his own phones, with when each last signed in (just now),
        // and nobody else's; his manager sees anyone's.
        let ServerFrame::Devices { devices, .. } = ask(
            &mut sam_socket,
            ClientFrame::Devices {
                request: 17,
                user: sam_user,
            },
        )
        .await
        else {
            panic!("Sam's phones")
        };
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].device, sam.device);
        let seen = devices[0].last_seen.expect("seen at sign-in");
        assert!(seen >= devices[0].added_at);
        assert!(
            huddle_relay::clock::now().0.abs_diff(seen.0) < 60_000,
            "{engine:?}: {seen:?}"
        );
        let refused = ask(
            &mut sam_socket,
            ClientFrame::Devices {
                request: 18,
                user: registered.user,
            },
        )
        .await;
        assert!(
            matches!(&refused, ServerFrame::Refused { request: 18, reason } if reason.contains("only your own phones")),
            "{refused:?}"
        );
        let answer = ask(
            &mut admin,
            ClientFrame::Devices {
                request: 19,
                user: sam_user,
            },
        )
        .await;
        assert!(
            matches!(&answer, ServerFrame::Devices { request: 19, devices } if devices.len() == 1),
            "{answer:?}"
        );

        // Revoking Sam's device ends his connection at once and refuses it afterwards.
        assert_eq!(
            ask(
                &mut admin,
                ClientFrame::RevokeDevice {
                    request: 7,
                    device: sam.device
                }
            )
            .await,
            ServerFrame::Done { request: 7 }
        );
        assert!(matches!(
            next(&mut sam_socket).await,
            ServerFrame::Error {
                code: ErrorCode::Revoked,
                ..
            }
        ));
        let (_, refused) = sam.connect(&relay).await;
        assert!(matches!(
            refused,
            ServerFrame::Error {
                code: ErrorCode::Revoked,
                ..
            }
        ));

        // The audit log tells the story, without secrets. (The phone's wipe
        // is noted just after it was told, on its own connection's task.)
        let mut entries = Vec::new();
        for request in 80..120 {
            let ServerFrame::Audit { entries: read, .. } = ask(
                &mut admin,
                ClientFrame::ReadAudit {
                    request,
                    before: None,
                    limit: 50,
                },
            )
            .await
            else {
                panic!()
            };
            entries = read;
            if entries
                .first()
                .is_some_and(|e| e.action == "signed-out phone wiped")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let actions: Vec<&str> = entries.iter().rev().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            vec![
                "organisation set up",
                "invite created",
                "joined",
                "invite created",
                "invite withdrawn",
                "invite created",
                "joined",
                "invite created",
                "device revoked",
                "signed-out phone wiped"
            ]
        );
        for entry in &entries {
            for secret in [&secret[..], &invite_secret[..], &pat_secret[..]] {
                assert!(
                    !entry.subject.contains(&hex(secret)),
                    "a secret in the audit log"
                );
            }
        }
        relay.shutdown(Duration::from_secs(1)).await.unwrap();
    }
}
