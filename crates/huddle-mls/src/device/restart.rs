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

/// A group's members as a phone compares them: each device, with the
/// person it is certified for and the key it signs with.
type Leaves = BTreeMap<DeviceId, (UserId, Vec<u8>)>;

/// The leaves of `members` (each credential was checked when it entered).
fn leaves_of(members: impl Iterator<Item = Member>) -> Leaves {
    members
        .filter_map(|member| {
            let identity = identity_of(&member.credential)?;
            Some((identity.device, (identity.user, member.signature_key)))
        })
        .collect()
}

/// What a phone compares a restart with: the members it held (person, device
/// and key), and which of them are still active.
fn check_restart_members(
    held: &Leaves,
    restarted: &Leaves,
    active: &BTreeSet<DeviceId>,
    own: DeviceId,
    sender: DeviceId,
) -> Result<(), MlsError> {
    let refuse = |why: &str| Err(MlsError::RestartRefused(why.into()));
    if !held.contains_key(&sender) {
        return refuse("it was made by a device that was not in the group");
    }
    if !restarted.contains_key(&own) {
        return refuse("it leaves this phone out");
    }
    if restarted
        .iter()
        .any(|(device, leaf)| held.get(device) != Some(leaf))
    {
        return refuse("it adds someone who was not in the group, or changes someone's key");
    }
    if held
        .keys()
        .any(|device| !restarted.contains_key(device) && active.contains(device))
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

    /// The members of the group as this device holds it.
    fn held_leaves(&mut self, group: GroupId) -> Result<Leaves, MlsError> {
        Ok(leaves_of(self.group_mut(group)?.members()))
    }

    /// Forgets a restart of this device's that the relay refused; nothing
    /// else of the group changes (a commit of the current chain stays).
    pub fn discard_pending_restart(&mut self, group: GroupId) -> Result<(), MlsError> {
        self.discard_restart(group)
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
        let org = self.identity.org;
        let held = self.held_leaves(group)?;
        let profile = self.profile(group)?;
        let active: BTreeSet<DeviceId> = active.iter().copied().collect();
        let wanted: Vec<(DeviceIdentity, Vec<u8>)> = held
            .into_iter()
            .filter(|(device, _)| *device != own && active.contains(device))
            .map(|(device, (user, key))| (DeviceIdentity { org, user, device }, key))
            .collect();
        if wanted.is_empty() {
            // A group of one has nobody to repair it with.
            return Err(MlsError::RestartRefused(
                "nobody else is left in the group".into(),
            ));
        }
        let validated = wanted
            .iter()
            .map(|(member, held_key)| {
                let claimed = key_packages
                    .iter()
                    .find(|kp| kp.device == member.device && kp.user == member.user)
                    .ok_or_else(|| {
                        MlsError::RestartRefused(
                            "the relay handed out no key package for a member".into(),
                        )
                    })?;
                let (key_package, _) =
                    self.validate_key_package(&claimed.key_package, Some(*member))?;
                // The member's own key, as the group held it: a key package
                // certified for her device under another key is not hers.
                if key_package.leaf_node().signature_key().as_slice() != held_key.as_slice() {
                    return Err(MlsError::RestartRefused(
                        "a member's key package is signed with another key".into(),
                    ));
                }
                Ok(key_package)
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
        let made = restarted
            .add_members_without_update(&self.provider, &self.signer, &validated)
            .map(|(commit, welcome, _)| (commit, Some(welcome)))
            .map_err(|e| MlsError::Rejected(format!("{e:?}")));
        let (commit, welcome) = match made {
            Ok(made) => made,
            Err(error) => {
                // Leave the old group as it was, and nothing half made.
                let _ = self.discard_restart(group);
                return Err(error);
            }
        };
        let mut add: Vec<DeviceId> = wanted.iter().map(|(member, _)| member.device).collect();
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
        expected: (GroupId, u32),
        sender: DeviceId,
        active: &[DeviceId],
    ) -> Result<JoinedGroup, MlsError> {
        // Staging a welcome uses up the key package it was sealed to: a
        // refused restart must leave the store as it found it, or the next
        // (rightful) restart could not be joined.
        let mut saved = self.copy_of_storage();
        let joined = self.try_join_restart(welcome, expected, sender, active);
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
        (group, chain): (GroupId, u32),
        sender: DeviceId,
        active: &[DeviceId],
    ) -> Result<JoinedGroup, MlsError> {
        let refuse = |why: &str| Err(MlsError::RestartRefused(why.into()));
        let (staged, joined, welcome_chain) = self.stage_welcome(welcome)?;
        // The welcome must be the one the log's entry announced: this
        // group, that chain, its first commit, made by the device the relay
        // authenticated as the entry's sender.
        if joined.group != group {
            return Err(MlsError::WrongGroup);
        }
        if welcome_chain != chain || staged.group_context().epoch().as_u64() != 1 {
            return refuse("it is not the restart the group's log names");
        }
        let made_by = staged
            .welcome_sender()
            .ok()
            .and_then(|leaf| identity_of(leaf.credential()));
        if made_by.map(|identity| identity.device) != Some(sender) {
            return refuse("it was made by another device than the one that sent it");
        }
        if !self.has_group(group) {
            return Err(MlsError::UnknownGroup);
        }
        if chain <= self.chain(group) {
            return refuse("it does not start a later chain");
        }
        if self.profile(group)? != joined.profile {
            return refuse("it changes the group's type, retention or name");
        }
        let held = self.held_leaves(group)?;
        let restarted = leaves_of(staged.members());
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

    /// Device `n` of person `n`, signing with key `[n]` (or `key`).
    fn leaves(ns: &[u8]) -> Leaves {
        ns.iter()
            .map(|&n| (device(n), (UserId::from_bytes([n; 16]), vec![n])))
            .collect()
    }

    #[test]
    fn a_restart_must_hold_exactly_the_members_held_less_those_signed_out() {
        let held = leaves(&[1, 2, 3]);
        let all_active = set(&[1, 2, 3]);
        let ok = |restarted: &Leaves, active: &BTreeSet<DeviceId>, sender: u8| {
            check_restart_members(&held, restarted, active, device(1), device(sender))
        };
        assert!(ok(&leaves(&[1, 2, 3]), &all_active, 2).is_ok());
        // Someone signed out may be left out, and only then.
        assert!(ok(&leaves(&[1, 2]), &set(&[1, 2]), 2).is_ok());
        assert!(ok(&leaves(&[1, 2]), &all_active, 2).is_err());
        // Nobody new, never this phone left out, never a stranger's restart.
        assert!(ok(&leaves(&[1, 2, 3, 4]), &set(&[1, 2, 3, 4]), 2).is_err());
        assert!(ok(&leaves(&[2, 3]), &all_active, 2).is_err());
        assert!(ok(&leaves(&[1, 2, 3]), &all_active, 9).is_err());
        // The same device under another key, or certified for another
        // person, is not the member held.
        let mut swapped_key = leaves(&[1, 2, 3]);
        swapped_key.insert(device(3), (UserId::from_bytes([3; 16]), vec![0x99]));
        assert!(ok(&swapped_key, &all_active, 2).is_err());
        let mut other_person = leaves(&[1, 2, 3]);
        other_person.insert(device(3), (UserId::from_bytes([2; 16]), vec![3]));
        assert!(ok(&other_person, &all_active, 2).is_err());
    }
}
