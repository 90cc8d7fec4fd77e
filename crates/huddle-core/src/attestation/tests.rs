//! Tests for attestations: what makes one count, what breaks it, and the badge each person gets, with real P-384 signatures.

use super::*;
use crate::certificate::tests::{
    admin_chain, key, keys, p384_verify, public, staff_chain, Keys, ADMIN, ORG, STAFF,
};
use crate::ids::OrgId;
use p384::ecdsa::signature::Signer as _;
use p384::ecdsa::{DerSignature, SigningKey};

const ADMIN_DEVICE: DeviceId = DeviceId::from_bytes([20; 16]);
const STAFF_DEVICE: DeviceId = DeviceId::from_bytes([30; 16]);

fn admin_identity() -> DeviceIdentity {
    DeviceIdentity {
        org: ORG,
        user: ADMIN,
        device: ADMIN_DEVICE,
    }
}

fn staff_identity() -> DeviceIdentity {
    DeviceIdentity {
        org: ORG,
        user: STAFF,
        device: STAFF_DEVICE,
    }
}

fn signed(statement: AttestationStatement, chain: Chain, by: &SigningKey) -> Attestation {
    let signature: DerSignature = by.sign(&statement.to_be_signed());
    Attestation {
        statement,
        attester_chain: chain,
        signature: signature.as_bytes().to_vec(),
    }
}

/// The administrator's phone vouches for the staff phone's key.
fn admin_attests_staff(k: &Keys) -> Attestation {
    signed(
        AttestationStatement {
            attester: admin_identity(),
            subject: staff_identity(),
            subject_key: KeyDigest::of(&public(&k.staff_device)),
            method: Method::ScannedCode,
            verified_at: UnixMillis(2_000),
        },
        admin_chain(k),
        &k.admin_device,
    )
}

#[test]
fn an_attestation_from_a_certified_colleague_checks_out_and_carries_her_certified_name() {
    let k = keys();
    let checked = admin_attests_staff(&k)
        .check(&public(&k.org), &p384_verify)
        .expect("a good attestation");
    assert_eq!(checked.attester, admin_identity());
    assert_eq!(checked.attester_name, "Asha (manager)");
    assert_eq!(checked.subject, staff_identity());
    assert_eq!(checked.method, Method::ScannedCode);
}

#[test]
fn an_attestation_travels_as_bytes_and_refuses_anything_after_it_or_too_large() {
    let k = keys();
    let attestation = admin_attests_staff(&k);
    let bytes = attestation.to_bytes();
    assert_eq!(Attestation::from_bytes(&bytes), Ok(attestation));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        Attestation::from_bytes(&trailing),
        Err(CertificateError::Unreadable)
    );
    assert_eq!(
        Attestation::from_bytes(&vec![0u8; MAX_ATTESTATION_BYTES + 1]),
        Err(CertificateError::TooLarge)
    );
    assert_eq!(
        Attestation::from_bytes(&[0xff; 40]),
        Err(CertificateError::Unreadable)
    );
}

#[test]
fn an_attestation_signed_with_another_key_than_its_chain_certifies_is_refused() {
    let k = keys();
    let mut forged = admin_attests_staff(&k);
    // A colleague with a modified app borrows the manager's chain.
    let by_staff = signed(forged.statement.clone(), admin_chain(&k), &k.staff_device);
    forged.signature = by_staff.signature;
    assert_eq!(
        forged.check(&public(&k.org), &p384_verify),
        Err(CertificateError::Signature)
    );
}

#[test]
fn an_attestation_in_someone_elses_name_is_refused() {
    let k = keys();
    // The staff member signs with her own chain but claims to be the manager.
    let statement = AttestationStatement {
        attester: admin_identity(),
        subject: staff_identity(),
        subject_key: KeyDigest::of(&public(&k.staff_device)),
        method: Method::ComparedDigits,
        verified_at: UnixMillis(2_000),
    };
    let forged = signed(statement, staff_chain(&k), &k.staff_device);
    assert!(matches!(
        forged.check(&public(&k.org), &p384_verify),
        Err(CertificateError::WrongIdentity { .. })
    ));
}

#[test]
fn a_changed_subject_or_key_breaks_the_signature() {
    let k = keys();
    let mut moved = admin_attests_staff(&k);
    moved.statement.subject.device = DeviceId::from_bytes([31; 16]);
    assert_eq!(
        moved.check(&public(&k.org), &p384_verify),
        Err(CertificateError::Signature)
    );
    let mut rekeyed = admin_attests_staff(&k);
    rekeyed.statement.subject_key = KeyDigest::of(&public(&key(8)));
    assert_eq!(
        rekeyed.check(&public(&k.org), &p384_verify),
        Err(CertificateError::Signature)
    );
}

#[test]
fn an_attestation_from_another_organisation_or_about_one_is_refused() {
    let k = keys();
    assert_eq!(
        admin_attests_staff(&k).check(&public(&key(9)), &p384_verify),
        Err(CertificateError::Signature)
    );
    let mut statement = admin_attests_staff(&k).statement;
    statement.subject.org = OrgId::from_bytes([7; 16]);
    let elsewhere = signed(statement, admin_chain(&k), &k.admin_device);
    assert_eq!(
        elsewhere.check(&public(&k.org), &p384_verify),
        Err(CertificateError::OtherOrganisation)
    );
}

#[test]
fn a_device_chain_is_checked_against_the_device_the_relay_named() {
    let k = keys();
    let bytes = staff_chain(&k).to_credential_bytes();
    let device = check_device(&bytes, staff_identity(), &public(&k.org), &p384_verify)
        .expect("the staff phone's chain");
    assert_eq!(device.display_name, "Ben");
    assert_eq!(device.key, KeyDigest::of(&public(&k.staff_device)));
    assert_eq!(
        device.fingerprint,
        Fingerprint::of(&staff_identity(), &public(&k.staff_device))
    );
    assert!(matches!(
        check_device(&bytes, admin_identity(), &public(&k.org), &p384_verify),
        Err(CertificateError::WrongIdentity { .. })
    ));
}

fn person(user: UserId, devices: &[DeviceId]) -> Person {
    Person {
        user,
        display_name: String::new(),
        role: Role::Staff,
        devices: devices.to_vec(),
    }
}

fn known(k: &Keys, staff_key: &SigningKey) -> Identities {
    let staff_public = public(staff_key);
    let mut identities = Identities {
        devices: vec![CheckedDevice {
            identity: staff_identity(),
            display_name: "Ben".into(),
            role: Role::Staff,
            key: KeyDigest::of(&staff_public),
            fingerprint: Fingerprint::of(&staff_identity(), &staff_public),
        }],
        attestations: Vec::new(),
    };
    identities.attestations.push(
        admin_attests_staff(k)
            .check(&public(&k.org), &p384_verify)
            .expect("a good attestation"),
    );
    identities
}

#[test]
fn a_person_whose_every_phone_was_checked_is_verified_and_says_by_whom() {
    let k = keys();
    let people = vec![
        person(ADMIN, &[ADMIN_DEVICE]),
        person(STAFF, &[STAFF_DEVICE]),
    ];
    let verification = known(&k, &k.staff_device).verification_of(&people[1], &people);
    assert_eq!(
        verification,
        Verification::Verified {
            by: vec![Attester {
                user: ADMIN,
                name: "Asha (manager)".into(),
                at: UnixMillis(2_000),
            }]
        }
    );
    assert_eq!(
        Identities::default().verification_of(&people[1], &people),
        Verification::NotVerified
    );
}

#[test]
fn a_new_key_or_a_new_phone_lapses_the_verification() {
    let k = keys();
    let people = vec![
        person(ADMIN, &[ADMIN_DEVICE]),
        person(STAFF, &[STAFF_DEVICE]),
    ];
    // The same device id now shows another key.
    let rekeyed = known(&k, &key(12));
    assert_eq!(
        rekeyed.verification_of(&people[1], &people),
        Verification::Lapsed
    );
    // A second phone nobody has checked.
    let two_phones = vec![
        person(ADMIN, &[ADMIN_DEVICE]),
        person(STAFF, &[STAFF_DEVICE, DeviceId::from_bytes([32; 16])]),
    ];
    assert_eq!(
        known(&k, &k.staff_device).verification_of(&two_phones[1], &two_phones),
        Verification::Lapsed
    );
    // The checked phone was replaced by one nobody has checked.
    let replaced = vec![
        person(ADMIN, &[ADMIN_DEVICE]),
        person(STAFF, &[DeviceId::from_bytes([32; 16])]),
    ];
    assert_eq!(
        known(&k, &k.staff_device).verification_of(&replaced[1], &replaced),
        Verification::Lapsed
    );
}

#[test]
fn a_revoked_attesters_word_stops_counting() {
    let k = keys();
    // The manager's phone was lost and signed out: no longer listed.
    let people = vec![person(ADMIN, &[]), person(STAFF, &[STAFF_DEVICE])];
    assert_eq!(
        known(&k, &k.staff_device).verification_of(&people[1], &people),
        Verification::NotVerified
    );
}

#[test]
fn replacing_what_is_known_of_a_person_leaves_everyone_else() {
    let k = keys();
    let mut identities = known(&k, &k.staff_device);
    identities.replace(&[ADMIN], Identities::default());
    assert_eq!(identities, known(&k, &k.staff_device));
    identities.replace(&[STAFF], Identities::default());
    assert_eq!(identities, Identities::default());
}

#[test]
fn nobody_vouches_for_herself_not_even_for_another_phone_of_hers() {
    let k = keys();
    // Ben's phone attests a second phone of Ben's.
    let statement = AttestationStatement {
        attester: staff_identity(),
        subject: DeviceIdentity {
            device: DeviceId::from_bytes([31; 16]),
            ..staff_identity()
        },
        subject_key: KeyDigest::of(&public(&key(13))),
        method: Method::ScannedCode,
        verified_at: UnixMillis(2_000),
    };
    let own = signed(statement, staff_chain(&k), &k.staff_device);
    assert_eq!(
        own.check(&public(&k.org), &p384_verify),
        Err(CertificateError::NotAllowed)
    );
}

#[test]
fn a_phone_the_relay_leaves_out_of_the_directory_but_met_in_a_group_still_counts() {
    let k = keys();
    let people = vec![
        person(ADMIN, &[ADMIN_DEVICE]),
        person(STAFF, &[STAFF_DEVICE]),
    ];
    let mut identities = known(&k, &k.staff_device);
    // A second phone under Ben's name sits in one of this phone's groups;
    // the relay does not list it.
    let hidden = DeviceIdentity {
        device: DeviceId::from_bytes([33; 16]),
        ..staff_identity()
    };
    identities.devices.push(CheckedDevice {
        identity: hidden,
        display_name: "Ben".into(),
        role: Role::Staff,
        key: KeyDigest::of(&public(&key(14))),
        fingerprint: Fingerprint::of(&hidden, &public(&key(14))),
    });
    assert_eq!(
        identities.verification_of(&people[1], &people),
        Verification::Lapsed
    );
    assert_eq!(identities.devices_of(&people[1]).len(), 2);
}

#[test]
fn two_keys_for_one_phone_show_neither() {
    let k = keys();
    let people = vec![
        person(ADMIN, &[ADMIN_DEVICE]),
        person(STAFF, &[STAFF_DEVICE]),
    ];
    let mut identities = known(&k, &k.staff_device);
    let mut forged = identities.devices[0].clone();
    forged.key = KeyDigest::of(&public(&key(15)));
    identities.devices.push(forged);
    assert_eq!(identities.device(STAFF_DEVICE), None);
    assert_eq!(
        identities.verification_of(&people[1], &people),
        Verification::Lapsed
    );
}

#[test]
fn an_attester_whose_chain_shows_another_key_than_her_phone_has_does_not_count() {
    let k = keys();
    let people = vec![
        person(ADMIN, &[ADMIN_DEVICE]),
        person(STAFF, &[STAFF_DEVICE]),
    ];
    let mut identities = known(&k, &k.staff_device);
    // This phone knows the manager's phone by another key than the chain
    // in the attestation certifies.
    identities.devices.push(CheckedDevice {
        identity: admin_identity(),
        display_name: "Asha (manager)".into(),
        role: Role::Administrator,
        key: KeyDigest::of(&public(&key(16))),
        fingerprint: Fingerprint::of(&admin_identity(), &public(&key(16))),
    });
    assert_eq!(
        identities.verification_of(&people[1], &people),
        Verification::NotVerified
    );
}

#[test]
fn an_answer_about_some_people_cannot_add_anything_about_others() {
    let k = keys();
    let mut identities = Identities::default();
    identities.replace(&[ADMIN], known(&k, &k.staff_device));
    assert_eq!(identities, Identities::default());
    identities.replace(&[STAFF], known(&k, &k.staff_device));
    identities.replace(&[STAFF], known(&k, &k.staff_device));
    assert_eq!(identities, known(&k, &k.staff_device), "no duplicates");
}
