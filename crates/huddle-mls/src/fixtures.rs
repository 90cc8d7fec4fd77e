//! An organisation in one process, for tests and benchmarks: a founding administrator's device, and devices enrolled through real invites.
//!
//! Every device here is certified the way phones are: the founder makes the
//! organisation key, and each other device accepts an invite the founder
//! certified. Nothing is skipped, so chains and checks are the real ones.

use crate::device::{MlsDevice, MlsError};
use huddle_core::certificate::OrgKeyFingerprint;
use huddle_core::identity::DeviceIdentity;
use huddle_core::retention::UnixMillis;
use huddle_core::wire::{ClaimedKeyPackage, Role};

/// When the fixtures' certificates are made.
pub const CERTIFIED_AT: UnixMillis = UnixMillis(1_790_000_000_000);

/// A new organisation: `identity`'s device, certified by a fresh
/// organisation key as its first administrator.
pub fn found(identity: DeviceIdentity) -> Result<MlsDevice, MlsError> {
    let mut device = MlsDevice::create(identity)?;
    device.found_organisation("Founder", CERTIFIED_AT)?;
    Ok(device)
}

/// A device for `identity`, invited by `administrator` with `role`.
pub fn enrol(
    administrator: &mut MlsDevice,
    identity: DeviceIdentity,
    role: Role,
) -> Result<MlsDevice, MlsError> {
    let name = format!("Person {}", identity.user);
    let (certificate, invite_key) = administrator.certify_invite(
        identity.user,
        &name,
        role,
        CERTIFIED_AT.saturating_add_millis(86_400_000),
        CERTIFIED_AT,
    )?;
    let pinned: OrgKeyFingerprint = administrator
        .org_key_fingerprint()
        .ok_or(MlsError::NotCertified)?;
    let mut device = MlsDevice::create(identity)?;
    device.accept_invite(&certificate, &invite_key, pinned, CERTIFIED_AT)?;
    Ok(device)
}

/// A key package as the relay hands it out: for the device it was published by.
pub fn claimed(device: &MlsDevice, key_package: Vec<u8>) -> ClaimedKeyPackage {
    let identity = device.identity();
    ClaimedKeyPackage {
        user: identity.user,
        device: identity.device,
        key_package,
    }
}
