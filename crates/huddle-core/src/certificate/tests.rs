//! Tests for certificate chains: the rules of who may sign what, with real P-384 signatures.

use super::*;
use p384::ecdsa::signature::{Signer as _, Verifier as _};
use p384::ecdsa::{DerSignature, SigningKey, VerifyingKey};

pub(crate) fn key(n: u8) -> SigningKey {
    let mut scalar = [0u8; 48];
    scalar[47] = n;
    scalar[0] = 1;
    SigningKey::from_slice(&scalar).expect("a valid scalar")
}

pub(crate) fn public(key: &SigningKey) -> Vec<u8> {
    key.verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec()
}

pub(crate) fn p384_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = p384::ecdsa::Signature::from_der(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

pub(crate) const ORG: OrgId = OrgId::from_bytes([1; 16]);
pub(crate) const ADMIN: UserId = UserId::from_bytes([2; 16]);
pub(crate) const STAFF: UserId = UserId::from_bytes([3; 16]);

pub(crate) fn statement(
    user: UserId,
    name: &str,
    role: Role,
    subject: Subject,
    key: &SigningKey,
) -> Statement {
    Statement {
        org: ORG,
        user,
        display_name: name.to_owned(),
        role,
        subject,
        public_key: public(key),
        issued_at: UnixMillis(1_000),
        expires_at: None,
    }
}

pub(crate) fn sign(statement: Statement, issuer: &SigningKey) -> Certificate {
    let signature: DerSignature = issuer.sign(&statement.to_be_signed());
    Certificate {
        statement,
        signature: signature.as_bytes().to_vec(),
    }
}

pub(crate) struct Keys {
    pub org: SigningKey,
    pub admin_device: SigningKey,
    pub invite: SigningKey,
    pub staff_device: SigningKey,
}

pub(crate) fn keys() -> Keys {
    Keys {
        org: key(1),
        admin_device: key(2),
        invite: key(3),
        staff_device: key(4),
    }
}

pub(crate) fn admin_chain(k: &Keys) -> Chain {
    let admin = statement(
        ADMIN,
        "Asha (manager)",
        Role::Administrator,
        Subject::Device(DeviceId::from_bytes([20; 16])),
        &k.admin_device,
    );
    Chain(vec![sign(admin, &k.org)])
}

pub(crate) fn invite_chain(k: &Keys) -> Chain {
    let mut invite = statement(STAFF, "Ben", Role::Staff, Subject::Invite, &k.invite);
    invite.expires_at = Some(UnixMillis(5_000));
    admin_chain(k).extended(sign(invite, &k.admin_device))
}

pub(crate) fn staff_statement(k: &Keys) -> Statement {
    statement(
        STAFF,
        "Ben",
        Role::Staff,
        Subject::Device(DeviceId::from_bytes([30; 16])),
        &k.staff_device,
    )
}

pub(crate) fn staff_chain(k: &Keys) -> Chain {
    invite_chain(k).extended(sign(staff_statement(k), &k.invite))
}

#[test]
fn a_staff_chain_through_an_administrator_and_an_invite_verifies() {
    let k = keys();
    let chain = staff_chain(&k);
    let leaf = chain
        .verify(&public(&k.org), &p384_verify)
        .expect("a good chain");
    assert_eq!(leaf.user, STAFF);
    assert_eq!(
        check_names(leaf, chain.claimed_identity(), &public(&k.staff_device)).map(|i| i.user),
        Ok(STAFF)
    );
    assert!(admin_chain(&k)
        .verify(&public(&k.org), &p384_verify)
        .is_ok());
}

#[test]
fn a_chain_from_another_organisation_key_is_refused() {
    let k = keys();
    let chain = staff_chain(&k);
    assert_eq!(
        chain.verify(&public(&key(9)), &p384_verify),
        Err(CertificateError::Signature)
    );
}

#[test]
fn a_changed_name_breaks_the_signature() {
    let k = keys();
    let mut chain = staff_chain(&k);
    chain.0[2].statement.display_name = "Asha (manager)".into();
    assert!(chain.verify(&public(&k.org), &p384_verify).is_err());
    let mut chain = staff_chain(&k);
    chain.0[0].statement.role = Role::Staff;
    assert_eq!(
        chain.verify(&public(&k.org), &p384_verify),
        Err(CertificateError::Signature)
    );
}

#[test]
fn a_staff_device_cannot_certify_anyone() {
    let k = keys();
    // Ben certifies an invite, then a device "for the manager", with his own key.
    let ben = staff_chain(&k);
    let fake_invite = statement(
        ADMIN,
        "Asha (manager)",
        Role::Administrator,
        Subject::Invite,
        &key(7),
    );
    let forged = ben.extended(sign(fake_invite, &k.staff_device));
    assert_eq!(
        forged.verify_to_any(&public(&k.org), &p384_verify),
        Err(CertificateError::NotAllowed)
    );
    // Or a device directly.
    let fake_device = statement(
        ADMIN,
        "Asha (manager)",
        Role::Administrator,
        Subject::Device(DeviceId::from_bytes([40; 16])),
        &key(8),
    );
    let forged = staff_chain(&k).extended(sign(fake_device, &k.staff_device));
    assert_eq!(
        forged.verify(&public(&k.org), &p384_verify),
        Err(CertificateError::NotAllowed)
    );
}

#[test]
fn an_invite_certifies_only_the_person_name_and_role_it_names_before_it_expires() {
    let k = keys();
    let device = Subject::Device(DeviceId::from_bytes([31; 16]));
    for (user, name, role) in [
        (ADMIN, "Ben", Role::Staff),
        (STAFF, "Asha (manager)", Role::Staff),
        (STAFF, "Ben", Role::Administrator),
    ] {
        let other = statement(user, name, role, device, &k.staff_device);
        let chain = invite_chain(&k).extended(sign(other, &k.invite));
        assert_eq!(
            chain.verify(&public(&k.org), &p384_verify),
            Err(CertificateError::NotAllowed),
            "{name} {role:?}"
        );
    }
    let mut late = staff_statement(&k);
    late.issued_at = UnixMillis(6_000);
    let chain = invite_chain(&k).extended(sign(late, &k.invite));
    assert_eq!(
        chain.verify(&public(&k.org), &p384_verify),
        Err(CertificateError::InviteExpired)
    );
}

#[test]
fn the_organisation_key_certifies_devices_only_and_an_invite_is_not_a_device() {
    let k = keys();
    let invite = statement(STAFF, "Ben", Role::Staff, Subject::Invite, &k.invite);
    let chain = Chain(vec![sign(invite, &k.org)]);
    assert_eq!(
        chain.verify_to_any(&public(&k.org), &p384_verify),
        Err(CertificateError::NotAllowed)
    );
    assert_eq!(
        invite_chain(&k).verify(&public(&k.org), &p384_verify),
        Err(CertificateError::NotADevice)
    );
    assert!(invite_chain(&k)
        .verify_to_any(&public(&k.org), &p384_verify)
        .is_ok());
}

#[test]
fn a_chain_names_one_device_and_one_key() {
    let k = keys();
    let chain = staff_chain(&k);
    let leaf = chain.verify(&public(&k.org), &p384_verify).expect("good");
    let someone_else = DeviceIdentity {
        org: ORG,
        user: ADMIN,
        device: DeviceId::from_bytes([30; 16]),
    };
    assert!(matches!(
        check_names(leaf, Some(someone_else), &public(&k.staff_device)),
        Err(CertificateError::WrongIdentity { .. })
    ));
    assert_eq!(
        check_names(leaf, None, &public(&k.invite)),
        Err(CertificateError::WrongKey)
    );
}

#[test]
fn credentials_round_trip_and_hostile_ones_are_refused_before_they_cost_anything() {
    let k = keys();
    let chain = staff_chain(&k);
    let bytes = chain.to_credential_bytes();
    assert_eq!(Chain::from_credential_bytes(&bytes), Ok(chain.clone()));
    assert_eq!(
        Chain::from_credential_bytes(b"HDL1aaaa"),
        Err(CertificateError::Unreadable)
    );
    assert_eq!(
        Chain::from_credential_bytes(&bytes[..bytes.len() - 3]),
        Err(CertificateError::Unreadable)
    );
    let mut huge = b"HDL2".to_vec();
    huge.resize(MAX_CHAIN_LINKS * MAX_CERTIFICATE_BYTES + 5, 0);
    assert_eq!(
        Chain::from_credential_bytes(&huge),
        Err(CertificateError::TooLarge)
    );
    // A length prefix claiming a billion links fails without allocating them.
    let mut claim = b"HDL2".to_vec();
    claim.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x03]);
    assert_eq!(
        Chain::from_credential_bytes(&claim),
        Err(CertificateError::Unreadable)
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        Chain::from_credential_bytes(&trailing),
        Err(CertificateError::Unreadable),
        "one chain has one encoding"
    );
    let long = Chain(vec![chain.0[0].clone(); MAX_CHAIN_LINKS + 1]);
    assert_eq!(
        Chain::from_credential_bytes(&long.to_credential_bytes()),
        Err(CertificateError::Length)
    );
    assert_eq!(
        long.verify(&public(&k.org), &p384_verify),
        Err(CertificateError::Length)
    );
}

#[test]
fn invite_certificates_round_trip_and_fingerprints_pin_the_key() {
    let k = keys();
    let invite = InviteCertificate {
        org_key: public(&k.org),
        chain: invite_chain(&k),
    };
    assert_eq!(
        InviteCertificate::from_bytes(&invite.to_bytes()),
        Ok(invite.clone())
    );
    let fingerprint = OrgKeyFingerprint::of(&invite.org_key);
    assert_eq!(
        OrgKeyFingerprint::from_hex(&fingerprint.to_hex()),
        Some(fingerprint)
    );
    assert_ne!(fingerprint, OrgKeyFingerprint::of(&public(&key(9))));
}
