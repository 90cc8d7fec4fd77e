//! Restarting a stopped group's encryption: a new MLS group of exactly the members the group had, made by one phone and checked by every other before it joins.
//!
//! A phone stops a group at a commit it cannot open (see
//! `huddle_core::sync`). The repair is a new MLS group in the next chain
//! (the Huddle group id followed by the chain number), whose members come
//! from the phones, never from the relay: the restarting phone adds the
//! members it held, less devices the organisation's directory no longer
//! lists, and every other phone compares the welcome with the members it
//! held before joining. The design and what each party can do with it are
//! in SECURITY.md, "Groups that stop, and their repair".

use super::*;
use huddle_core::wire::{restart_epoch, GroupSpec};

/// What a phone compares a restart with: the members it held, and which of
/// them are still active.
fn check_restart_members(
    held: &BTreeSet<DeviceId>,
    restarted: &BTreeSet<DeviceId>,
    active: &BTreeSet<DeviceId>,
    own: DeviceId,
    sender: DeviceId,
) -> Result<(), MlsError> {
    let refuse = |why: &str| Err(MlsError::RestartRefused(why.into()));
    if !held.contains(&sender) {
        return refuse("it was made by a device that was not in the group");
    }
    if !restarted.contains(&own) {
        return refuse("it leaves this phone out");
    }
    if restarted.iter().any(|device| !held.contains(device)) {
        return refuse("it adds someone who was not in the group");
    }
    if held
        .iter()
        .any(|device| !restarted.contains(device) && active.contains(device))
    {
        return refuse("it leaves out someone who is still in the team");
    }
    Ok(())
}

impl MlsDevice {
    /// The chain of a restart this device made that the relay has not
    /// accepted yet.
    pub(super) fn pending_restart(&self, group: GroupId) -> Option<u32> {
        self.get_entry(&entry_key(RESTART_ENTRY, group))
            .and_then(|bytes| bytes.as_slice().try_into().ok())
            .map(u32::from_be_bytes)
    }

    /// Whether a restart of this device's waits for the relay.
    pub fn has_pending_restart(&self, group: GroupId) -> bool {
        self.pending_restart(group).is_some()
    }

    /// The devices in the group as this device holds it.
    fn held_devices(&mut self, group: GroupId) -> Result<Vec<DeviceIdentity>, MlsError> {
        self.members(group)
    }

    /// Restarts a group's encryption in `chain`: a new MLS group with a key
    /// package for every member this device holds that is still `active`
    /// (the organisation's directory), and the commit and welcome that add
    /// them. Every such member needs a key package among `key_packages`
    /// (certified for that person and device), or nothing is made. The old
    /// group stays until the relay accepts the restart
    /// ([`MlsDevice::merge_pending_commit`]) or refuses it
    /// ([`MlsDevice::discard_pending_commit`]).
    pub fn restart(
        &mut self,
        group: GroupId,
        chain: u32,
        key_packages: &[ClaimedKeyPackage],
        active: &[DeviceId],
    ) -> Result<CommitOut, MlsError> {
        if chain <= self.chain(group) {
            return Err(MlsError::RestartRefused(
                "a restart must start a later chain".into(),
            ));
        }
        let own = self.identity.device;
        let held = self.held_devices(group)?;
        let profile = self.profile(group)?;
        let active: BTreeSet<DeviceId> = active.iter().copied().collect();
        let wanted: Vec<DeviceIdentity> = held
            .into_iter()
            .filter(|member| member.device != own && active.contains(&member.device))
            .collect();
        let validated = wanted
            .iter()
            .map(|member| {
                let claimed = key_packages
                    .iter()
                    .find(|kp| kp.device == member.device && kp.user == member.user)
                    .ok_or_else(|| {
                        MlsError::RestartRefused(
                            "the relay handed out no key package for a member".into(),
                        )
                    })?;
                self.validate_key_package(&claimed.key_package, Some(*member))
                    .map(|(key_package, _)| key_package)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.pending_restart(group).is_some() {
            self.discard_restart(group)?;
        }
        let mut restarted = self.new_mls_group(group, chain, &profile)?;
        self.put_entry(
            &entry_key(RESTART_ENTRY, group),
            chain.to_be_bytes().to_vec(),
        );
        let made = if validated.is_empty() {
            // Nobody else is left: an update alone starts the chain.
            restarted
                .self_update(&self.provider, &self.signer, LeafNodeParameters::default())
                .map(|bundle| {
                    let (commit, welcome, _) = bundle.into_messages();
                    (commit, welcome)
                })
                .map_err(|e| MlsError::Rejected(format!("{e:?}")))
        } else {
            restarted
                .add_members_without_update(&self.provider, &self.signer, &validated)
                .map(|(commit, welcome, _)| (commit, Some(welcome)))
                .map_err(|e| MlsError::Rejected(format!("{e:?}")))
        };
        let (commit, welcome) = match made {
            Ok(made) => made,
            Err(error) => {
                // Leave the old group as it was, and nothing half made.
                let _ = self.discard_restart(group);
                return Err(error);
            }
        };
        let mut add: Vec<DeviceId> = wanted.iter().map(|member| member.device).collect();
        add.sort();
        Ok(CommitOut {
            epoch: restart_epoch(chain),
            commit: serialize(&commit)?,
            welcome: welcome.as_ref().map(serialize).transpose()?,
            change: MembershipChange {
                create: Some(GroupSpec {
                    kind: profile.kind,
                    retention: profile.retention,
                }),
                add,
                remove: Vec::new(),
            },
        })
    }

    /// The relay accepted this device's restart: the restarted group
    /// replaces the old one, whose secrets are deleted.
    pub(super) fn merge_restart(
        &mut self,
        group: GroupId,
        chain: u32,
        now: UnixMillis,
    ) -> Result<u64, MlsError> {
        let mut restarted = MlsGroup::load(self.provider.storage(), &mls_group_id(group, chain))
            .map_err(internal)?
            .ok_or(MlsError::NoPendingCommit)?;
        restarted
            .merge_pending_commit(&self.provider)
            .map_err(internal)?;
        let epoch = wire_epoch(chain, restarted.epoch().as_u64());
        self.replace_group(group, chain, restarted)?;
        self.set_rotated(group, now);
        Ok(epoch)
    }

    /// Forgets a restart of this device's (refused, or another member's
    /// restart came first); the old group is untouched.
    pub(super) fn discard_restart(&mut self, group: GroupId) -> Result<(), MlsError> {
        let Some(chain) = self.pending_restart(group) else {
            return Ok(());
        };
        self.remove_entry(&entry_key(RESTART_ENTRY, group));
        if let Some(mut restarted) =
            MlsGroup::load(self.provider.storage(), &mls_group_id(group, chain))
                .map_err(internal)?
        {
            restarted
                .delete(self.provider.storage())
                .map_err(internal)?;
        }
        Ok(())
    }

    /// `restarted` becomes the group in `chain`; the old group's state is
    /// deleted (a restart of this device's that lost is discarded first, by
    /// the caller: it may share the chain's MLS group id).
    fn replace_group(
        &mut self,
        group: GroupId,
        chain: u32,
        restarted: MlsGroup,
    ) -> Result<(), MlsError> {
        self.remove_entry(&entry_key(RESTART_ENTRY, group));
        let old = match self.groups.remove(&group) {
            Some(old) => Some(old),
            None => {
                MlsGroup::load(self.provider.storage(), &self.mls_id(group)).map_err(internal)?
            }
        };
        if let Some(mut old) = old {
            old.delete(self.provider.storage()).map_err(internal)?;
        }
        self.set_chain(group, chain);
        self.groups.insert(group, restarted);
        Ok(())
    }

    /// Joins another member's restart of a group this device holds, after
    /// comparing it with the group as held: every member must be one it
    /// had, every member it had must be there unless `active` (the
    /// organisation's directory) no longer lists it, this device must be
    /// there, and `sender` (the device the relay authenticated) must be one
    /// it had. Certificates are checked as for any welcome. On any failure
    /// the group stays as it was.
    pub fn join_restart(
        &mut self,
        welcome: &[u8],
        sender: DeviceId,
        active: &[DeviceId],
    ) -> Result<JoinedGroup, MlsError> {
        // Staging a welcome uses up the key package it was sealed to: a
        // refused restart must leave the store as it found it, or the next
        // (rightful) restart could not be joined.
        let mut saved = self.copy_of_storage();
        let joined = self.try_join_restart(welcome, sender, active);
        if joined.is_err() {
            self.groups.clear();
            self.restore_storage(saved);
        } else {
            saved.values_mut().for_each(zeroize::Zeroize::zeroize);
        }
        joined
    }

    fn try_join_restart(
        &mut self,
        welcome: &[u8],
        sender: DeviceId,
        active: &[DeviceId],
    ) -> Result<JoinedGroup, MlsError> {
        let (staged, joined, chain) = self.stage_welcome(welcome)?;
        let group = joined.group;
        if !self.has_group(group) {
            return Err(MlsError::UnknownGroup);
        }
        if chain <= self.chain(group) {
            return Err(MlsError::RestartRefused(
                "it does not start a later chain".into(),
            ));
        }
        let held_profile = self.profile(group)?;
        if held_profile.kind != joined.profile.kind
            || held_profile.retention != joined.profile.retention
        {
            return Err(MlsError::RestartRefused(
                "it changes the group's type or retention".into(),
            ));
        }
        let held: BTreeSet<DeviceId> = self
            .held_devices(group)?
            .iter()
            .map(|member| member.device)
            .collect();
        let restarted: BTreeSet<DeviceId> =
            joined.members.iter().map(|member| member.device).collect();
        let active: BTreeSet<DeviceId> = active.iter().copied().collect();
        check_restart_members(&held, &restarted, &active, self.identity.device, sender)?;
        // A restart of this device's for the same chain lost to this one:
        // its state goes before the joined group is stored under that id.
        self.discard_restart(group)?;
        let mls_group = staged
            .into_group(&self.provider)
            .map_err(|e| MlsError::Rejected(format!("{e:?}")))?;
        self.replace_group(group, chain, mls_group)?;
        self.forget_rotated(group);
        Ok(joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u8) -> DeviceId {
        DeviceId::from_bytes([n; 16])
    }

    fn set(ns: &[u8]) -> BTreeSet<DeviceId> {
        ns.iter().copied().map(device).collect()
    }

    #[test]
    fn a_restart_must_hold_exactly_the_members_held_less_those_signed_out() {
        let held = set(&[1, 2, 3]);
        let all_active = set(&[1, 2, 3]);
        let ok = |restarted: &[u8], active: &BTreeSet<DeviceId>, sender: u8| {
            check_restart_members(&held, &set(restarted), active, device(1), device(sender))
        };
        assert!(ok(&[1, 2, 3], &all_active, 2).is_ok());
        // Someone signed out may be left out, and only then.
        assert!(ok(&[1, 2], &set(&[1, 2]), 2).is_ok());
        assert!(ok(&[1, 2], &all_active, 2).is_err());
        // Nobody new, never this phone left out, never a stranger's restart.
        assert!(ok(&[1, 2, 3, 4], &set(&[1, 2, 3, 4]), 2).is_err());
        assert!(ok(&[2, 3], &all_active, 2).is_err());
        assert!(ok(&[1, 2, 3], &all_active, 9).is_err());
    }
}
