//! Who is who, on a real relay on SQLite and PostgreSQL: devices publish their own certificate chains, colleagues read them with the attestations about a person, and nothing is kept under the wrong name.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use futures::SinkExt;
use huddle_core::attestation::{Attestation, AttestationStatement, KeyDigest, Method};
use huddle_core::certificate::{Certificate, Chain, Statement, Subject};
use huddle_core::identity::DeviceIdentity;
use huddle_core::ids::{OrgId, UserId};
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{ClientFrame, Role, ServerFrame, MAX_IDENTITY_USERS};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, SigningKey};
use support::device::{now, TestDevice};
use support::ws::{next, Socket};
use support::Engine;
use tokio_tungstenite::tungstenite::Message;

async fn ask(socket: &mut Socket, frame: ClientFrame) -> ServerFrame {
    socket
        .send(Message::Binary(frame.encode().into()))
        .await
        .expect("the relay is up");
    next(socket).await
}

fn der(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let signature: DerSignature = key.sign(message);
    signature.as_bytes().to_vec()
}

/// A chain in which the organisation key certifies `device` directly.
fn chain_for(org: OrgId, org_key: &SigningKey, device: &TestDevice, key: &[u8]) -> Chain {
    let statement = Statement {
        org,
        user: device.user,
        display_name: "Test person".into(),
        role: Role::Staff,
        subject: Subject::Device(device.device),
        public_key: key.to_vec(),
        issued_at: now(),
        expires_at: None,
    };
    let signature = der(org_key, &statement.to_be_signed());
    Chain(vec![Certificate {
        statement,
        signature,
    }])
}

fn identity(org: OrgId, device: &TestDevice) -> DeviceIdentity {
    DeviceIdentity {
        org,
        user: device.user,
        device: device.device,
    }
}

fn attestation(org: OrgId, org_key: &SigningKey, by: &TestDevice, of: &TestDevice) -> Vec<u8> {
    attestation_of_key(org, org_key, by, of, &of.public_key())
}

fn attestation_of_key(
    org: OrgId,
    org_key: &SigningKey,
    by: &TestDevice,
    of: &TestDevice,
    key: &[u8],
) -> Vec<u8> {
    let statement = AttestationStatement {
        attester: identity(org, by),
        subject: identity(org, of),
        subject_key: KeyDigest::of(key),
        method: Method::ScannedCode,
        verified_at: now(),
    };
    let signature = der(&by.key, &statement.to_be_signed());
    Attestation {
        statement,
        attester_chain: chain_for(org, org_key, by, &by.public_key()),
        signature,
    }
    .to_bytes()
}

async fn identities_of(socket: &mut Socket, users: Vec<UserId>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    match ask(socket, ClientFrame::Identities { request: 9, users }).await {
        ServerFrame::Identities {
            request: 9,
            devices,
            attestations,
        } => (devices.into_iter().map(|d| d.chain).collect(), attestations),
        other => panic!("expected identities, got {other:?}"),
    }
}

fn done(answer: &ServerFrame) -> bool {
    matches!(answer, ServerFrame::Done { .. })
}

fn refused(answer: &ServerFrame) -> bool {
    matches!(answer, ServerFrame::Refused { .. })
}

#[tokio::test]
async fn devices_publish_their_own_chains_and_attestations_and_nobody_elses() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let Some(url) = support::database_url(engine, dir.path()).await else {
            continue;
        };
        let relay = support::start(&support::config(dir.path(), dir.path(), Some(url))).await;
        let org = relay
            .store
            .org_id([0; 16])
            .await
            .expect("the organisation id");
        let org_key = SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
        let (manager, ben, cara) = (TestDevice::new(1), TestDevice::new(2), TestDevice::new(3));
        manager.register(&relay.store, Role::Administrator).await;
        ben.register(&relay.store, Role::Staff).await;
        cara.register(&relay.store, Role::Staff).await;
        let mut ben_socket = ben.connect(&relay).await;
        let mut cara_socket = cara.connect(&relay).await;

        // Ben's own chain is kept; one naming Cara, or certifying another
        // key than the one Ben signs in with, is refused and changes nothing.
        let ben_chain = chain_for(org, &org_key, &ben, &ben.public_key()).to_credential_bytes();
        let as_cara = chain_for(org, &org_key, &cara, &ben.public_key()).to_credential_bytes();
        let other_key = chain_for(org, &org_key, &ben, &cara.public_key()).to_credential_bytes();
        for (chain, keep) in [
            (as_cara, false),
            (other_key, false),
            (b"not a chain".to_vec(), false),
            (ben_chain.clone(), true),
        ] {
            let answer = ask(
                &mut ben_socket,
                ClientFrame::PublishCertificate { request: 1, chain },
            )
            .await;
            assert_eq!(done(&answer), keep, "{engine:?}: {answer:?}");
            assert_eq!(refused(&answer), !keep, "{engine:?}: {answer:?}");
        }
        let (chains, attestations) =
            identities_of(&mut cara_socket, vec![ben.user, cara.user]).await;
        assert_eq!(chains, vec![ben_chain.clone()], "{engine:?}");
        assert!(attestations.is_empty(), "{engine:?}");

        // Cara checks Ben in person; she cannot attest in Ben's name, about
        // herself, or about a device the relay does not know.
        let cara_of_ben = attestation(org, &org_key, &cara, &ben);
        let ben_of_cara_sent_by_cara = attestation(org, &org_key, &ben, &cara);
        let stranger = TestDevice::new(9);
        // Cara's attestation carried under a chain for another key than the
        // one she signs in with.
        let mut other_chain =
            Attestation::from_bytes(&attestation(org, &org_key, &cara, &ben)).expect("readable");
        other_chain.attester_chain = chain_for(org, &org_key, &cara, &ben.public_key());
        for (bytes, keep) in [
            (
                attestation_of_key(org, &org_key, &cara, &ben, &cara.public_key()),
                false,
            ),
            (other_chain.to_bytes(), false),
            (ben_of_cara_sent_by_cara, false),
            (attestation(org, &org_key, &cara, &cara), false),
            (attestation(org, &org_key, &cara, &stranger), false),
            (vec![0xff; 64], false),
            (cara_of_ben.clone(), true),
            // Saying it again replaces the first, it does not add a second.
            (cara_of_ben.clone(), true),
        ] {
            let answer = ask(
                &mut cara_socket,
                ClientFrame::Attest {
                    request: 2,
                    attestation: bytes,
                },
            )
            .await;
            assert_eq!(done(&answer), keep, "{engine:?}: {answer:?}");
        }
        let (_, attestations) = identities_of(&mut ben_socket, vec![ben.user]).await;
        assert_eq!(attestations, vec![cara_of_ben], "{engine:?}");
        let (_, about_cara) = identities_of(&mut ben_socket, vec![cara.user]).await;
        assert!(about_cara.is_empty(), "{engine:?}");

        // Ben vouches for Cara, then loses his phone.
        let answer = ask(
            &mut ben_socket,
            ClientFrame::Attest {
                request: 6,
                attestation: attestation(org, &org_key, &ben, &cara),
            },
        )
        .await;
        assert!(done(&answer), "{engine:?}: {answer:?}");
        let (_, about_cara) = identities_of(&mut cara_socket, vec![cara.user]).await;
        assert_eq!(about_cara.len(), 1, "{engine:?}");

        // Too many people at once is refused; a revoked phone's chain is
        // no longer handed out.
        let answer = ask(
            &mut cara_socket,
            ClientFrame::Identities {
                request: 3,
                users: vec![ben.user; MAX_IDENTITY_USERS + 1],
            },
        )
        .await;
        assert!(refused(&answer), "{engine:?}: {answer:?}");
        relay
            .store
            .revoke_device(manager.user, ben.device, UnixMillis(now().0 + 1))
            .await
            .expect("the store answers")
            .expect("Ben's phone is revoked");
        let (chains, attestations) = identities_of(&mut cara_socket, vec![ben.user]).await;
        assert!(chains.is_empty(), "{engine:?}");
        assert!(
            attestations.is_empty(),
            "{engine:?}: nothing about a revoked phone"
        );
        // Ben's word about Cara stops being handed out with his phone
        // revoked; the manager's still is.
        let mut manager_socket = manager.connect(&relay).await;
        let manager_of_cara = attestation(org, &org_key, &manager, &cara);
        let answer = ask(
            &mut manager_socket,
            ClientFrame::Attest {
                request: 5,
                attestation: manager_of_cara.clone(),
            },
        )
        .await;
        assert!(done(&answer), "{engine:?}: {answer:?}");
        let (_, about_cara) = identities_of(&mut cara_socket, vec![cara.user]).await;
        assert_eq!(about_cara, vec![manager_of_cara], "{engine:?}");
        relay
            .shutdown(std::time::Duration::from_secs(1))
            .await
            .expect("the relay stops");
    }
}
