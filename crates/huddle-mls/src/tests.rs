//! Round trips through OpenMLS with ciphersuite 0x0007, natively and in a browser.

use crate::{DeviceSigner, HuddleProvider, CIPHERSUITE};
use openmls::prelude::*;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::OpenMlsProvider;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

struct Member {
    provider: HuddleProvider,
    signer: DeviceSigner,
    credential: CredentialWithKey,
}

fn member(name: &str) -> Member {
    let signer = DeviceSigner::generate().expect("key generation");
    let credential = CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.public_key().to_vec().into(),
    };
    Member {
        provider: HuddleProvider::<openmls_memory_storage::MemoryStorage>::default(),
        signer,
        credential,
    }
}

fn capabilities() -> Capabilities {
    Capabilities::new(None, Some(&[CIPHERSUITE]), None, None, None)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn only_0x0007_is_supported() {
    let provider = HuddleProvider::<openmls_memory_storage::MemoryStorage>::default();
    assert!(provider.crypto().supports(CIPHERSUITE).is_ok());
    assert_eq!(
        provider.crypto().supported_ciphersuites(),
        vec![CIPHERSUITE]
    );
    for weaker in [
        Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
        Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
        Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
    ] {
        assert!(provider.crypto().supports(weaker).is_err(), "{weaker:?}");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn two_members_exchange_messages_both_ways() {
    let alice = member("alice");
    let bob = member("bob");

    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .capabilities(capabilities())
        .use_ratchet_tree_extension(true)
        .build();

    let bob_key_package = KeyPackage::builder()
        .leaf_node_capabilities(capabilities())
        .build(
            CIPHERSUITE,
            &bob.provider,
            &bob.signer,
            bob.credential.clone(),
        )
        .expect("bob's key package");

    let mut alice_group = MlsGroup::new(
        &alice.provider,
        &alice.signer,
        &config,
        alice.credential.clone(),
    )
    .expect("alice creates the group");
    assert_eq!(alice_group.ciphersuite(), CIPHERSUITE);

    let (_commit, welcome, _info) = alice_group
        .add_members(
            &alice.provider,
            &alice.signer,
            &[bob_key_package.key_package().clone()],
        )
        .expect("alice adds bob");
    alice_group
        .merge_pending_commit(&alice.provider)
        .expect("alice merges her commit");

    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::from(welcome).extract() else {
        panic!("expected a welcome message");
    };
    let mut bob_group =
        StagedWelcome::new_from_welcome(&bob.provider, config.join_config(), welcome, None)
            .expect("bob stages the welcome")
            .into_group(&bob.provider)
            .expect("bob joins");
    assert_eq!(bob_group.epoch(), alice_group.epoch());

    let send = |group: &mut MlsGroup, from: &Member, text: &[u8]| -> ProtocolMessage {
        let out = group
            .create_message(&from.provider, &from.signer, text)
            .expect("seal");
        MlsMessageIn::from(out)
            .try_into_protocol_message()
            .expect("a protocol message")
    };
    let open = |group: &mut MlsGroup, to: &Member, message: ProtocolMessage| -> Vec<u8> {
        match group
            .process_message(&to.provider, message)
            .expect("open")
            .into_content()
        {
            ProcessedMessageContent::ApplicationMessage(m) => m.into_bytes(),
            other => panic!("expected an application message, got {other:?}"),
        }
    };

    let to_bob = send(
        &mut alice_group,
        &alice,
        b"Handover at 8, room 4 needs a check",
    );
    assert_eq!(
        open(&mut bob_group, &bob, to_bob),
        b"Handover at 8, room 4 needs a check"
    );
    let to_alice = send(&mut bob_group, &bob, b"On my way");
    assert_eq!(open(&mut alice_group, &alice, to_alice), b"On my way");
}
