//! Persisting MLS state: the changes since the last save, as key-value writes and deletions for an encrypted store.
//!
//! OpenMLS keeps its state (groups, secret trees, key package private keys)
//! in a key-value storage provider. Huddle uses the in-memory one and
//! journals it: after each operation, [`StateJournal::take_changes`] returns
//! what was written or deleted, which the crypto worker writes to
//! IndexedDB, encrypted at rest, and the tests write to a map. Deletions
//! matter as much as writes: when OpenMLS drops an old epoch's secrets or a
//! used key package's private key, the store drops them too (forward secrecy).

use openmls_memory_storage::MemoryStorage;
use std::collections::HashMap;
use std::sync::RwLock;
use zeroize::Zeroize;

/// One change to persist.
#[derive(Clone, PartialEq, Eq)]
pub enum StateChange {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

impl std::fmt::Debug for StateChange {
    /// Values are secret: only sizes are printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateChange::Put { key, value } => {
                write!(
                    f,
                    "Put(key {} bytes, value {} bytes)",
                    key.len(),
                    value.len()
                )
            }
            StateChange::Delete { key } => write!(f, "Delete(key {} bytes)", key.len()),
        }
    }
}

/// A change's value is a copy of a secret (an epoch's key schedule, a key
/// package's private key): it is wiped once the change has been stored.
impl Drop for StateChange {
    fn drop(&mut self) {
        if let StateChange::Put { value, .. } = self {
            value.zeroize();
        }
    }
}

/// What the store held at the last save, to compare against. It is a copy
/// of every secret OpenMLS holds, so its values are wiped when replaced,
/// removed or dropped.
#[derive(Default)]
pub struct StateJournal {
    saved: HashMap<Vec<u8>, Vec<u8>>,
}

impl Drop for StateJournal {
    fn drop(&mut self) {
        self.saved.values_mut().for_each(Zeroize::zeroize);
    }
}

impl StateJournal {
    /// A journal for storage restored from `entries` (nothing to save yet).
    pub fn restored(entries: &HashMap<Vec<u8>, Vec<u8>>) -> Self {
        StateJournal {
            saved: entries.clone(),
        }
    }

    /// What changed in `storage` since the last call. Comparing values is a
    /// memory compare per entry, far cheaper than the signatures and key
    /// derivations of the operation that caused the changes.
    pub fn take_changes(&mut self, storage: &MemoryStorage) -> Vec<StateChange> {
        let values = read_values(&storage.values);
        let mut changes = Vec::new();
        for (key, value) in values.iter() {
            if self.saved.get(key) != Some(value) {
                changes.push(StateChange::Put {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        for key in self.saved.keys() {
            if !values.contains_key(key) {
                changes.push(StateChange::Delete { key: key.clone() });
            }
        }
        for change in &changes {
            match change {
                StateChange::Put { key, value } => {
                    if let Some(mut old) = self.saved.insert(key.clone(), value.clone()) {
                        old.zeroize();
                    }
                }
                StateChange::Delete { key } => {
                    if let Some(mut old) = self.saved.remove(key) {
                        old.zeroize();
                    }
                }
            }
        }
        changes
    }
}

/// Builds the in-memory storage from saved entries.
pub fn storage_from_entries(entries: HashMap<Vec<u8>, Vec<u8>>) -> MemoryStorage {
    MemoryStorage {
        values: RwLock::new(entries),
    }
}

/// Applies changes to a map of entries (what a store does; used by tests
/// and by simple stores).
pub fn apply_changes(entries: &mut HashMap<Vec<u8>, Vec<u8>>, changes: &[StateChange]) {
    for change in changes {
        match change {
            StateChange::Put { key, value } => {
                if let Some(mut old) = entries.insert(key.clone(), value.clone()) {
                    old.zeroize();
                }
            }
            StateChange::Delete { key } => {
                if let Some(mut old) = entries.remove(key) {
                    old.zeroize();
                }
            }
        }
    }
}

fn read_values(
    lock: &RwLock<HashMap<Vec<u8>, Vec<u8>>>,
) -> std::sync::RwLockReadGuard<'_, HashMap<Vec<u8>, Vec<u8>>> {
    // A poisoned lock means a panic happened while writing; the map itself
    // is still a map, and the next operation will overwrite what matters.
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}
