//! Repairing a stopped group: this phone's restart of the group's encryption made and queued, another member's restart checked and joined, and the line the conversation shows for it.
//!
//! The relay is asked (the directory, key packages) in a task of its own,
//! because its answers reach the phone through the driver; the worker is
//! asked by the driver when those answers come back (`Input::RestartReady`,
//! `Input::RejoinReady`). SECURITY.md, "Groups that stop, and their repair",
//! says what each party can do.

use super::*;

/// Every device the organisation's directory lists: those a restart may
/// not leave out.
fn active_devices(directory: &crate::records::Directory) -> Vec<DeviceId> {
    directory
        .people
        .iter()
        .flat_map(|person| person.devices.iter().copied())
        .collect()
}

impl<P: Platform> Driver<P> {
    /// The engine asked this phone to restart `group` in `chain`: the
    /// members it holds are looked up, and the relay asked for who is still
    /// in the team and for a key package of each; then `RestartReady`.
    pub(super) fn start_restart(&self, group: GroupId, chain: u32) {
        let shared = self.shared.clone();
        let inputs = self.inputs.clone();
        let own = self.shared.state.borrow().enrolment.device;
        self.shared.tasks.spawn(Box::pin(async move {
            let asked = async {
                let crypto = identities::crypto(&shared)?;
                let held = match crypto.request(WorkerRequest::Members { group }).await? {
                    WorkerResponse::Members { members } => members,
                    _ => return Err(SessionError::UnexpectedAnswer),
                };
                let directory = shared.fetch_directory().await?;
                let active = active_devices(&directory);
                let mut users: Vec<UserId> = held
                    .iter()
                    .filter(|m| m.device != own && active.contains(&m.device))
                    .map(|m| m.user)
                    .collect();
                users.sort();
                users.dedup();
                let key_packages = if users.is_empty() {
                    Vec::new()
                } else {
                    shared.claim_key_packages(users).await?
                };
                Ok((key_packages, active, directory))
            };
            let input = match asked.await {
                Ok((key_packages, active, directory)) => {
                    let _ = inputs.unbounded_send(Input::SaveDirectory(directory));
                    Input::RestartReady {
                        group,
                        chain,
                        key_packages,
                        active,
                    }
                }
                Err(error) => {
                    shared.log.warn(&format!(
                        "a stopped group could not be restarted yet: {error}"
                    ));
                    Input::RestartFailed { group }
                }
            };
            let _ = inputs.unbounded_send(input);
        }));
    }

    /// Makes the restart, unless the group was repaired meanwhile, and
    /// queues it like any commit.
    pub(super) async fn restart_ready(
        &mut self,
        group: GroupId,
        chain: u32,
        key_packages: Vec<ClaimedKeyPackage>,
        active: Vec<DeviceId>,
    ) {
        let now = self.shared.clock.now();
        let still_stopped = self
            .engine
            .as_ref()
            .is_some_and(|engine| engine.stopped_at(group).is_some());
        if !still_stopped {
            return;
        }
        let made = self
            .crypto(WorkerRequest::Restart {
                group,
                chain,
                key_packages,
                active,
            })
            .await;
        let commit = match made {
            Ok(WorkerResponse::Commit(commit)) => commit,
            Ok(_) => {
                self.drive(Event::RestartFailed { now, group }).await;
                return;
            }
            Err(error) => {
                self.log(&format!("a restart could not be made: {error}"));
                self.drive(Event::RestartFailed { now, group }).await;
                return;
            }
        };
        let submission = Submission {
            client_msg: ClientMessageId::from_bytes(self.shared.randomness.id()),
            group,
            epoch: commit.epoch,
            expires_at: None,
            payload: Payload::Commit {
                commit: commit.commit,
                welcome: commit.welcome,
                change: commit.change,
            },
        };
        if let Err(error) = self.enqueue(submission, Intent::Restart).await {
            self.log(&format!("a restart could not be saved: {error}"));
            let _ = self
                .crypto(WorkerRequest::DiscardPendingCommit { group })
                .await;
            self.drive(Event::RestartFailed { now, group }).await;
        }
    }

    /// The engine has another member's restart, entry and welcome: the
    /// relay is asked who is still in the team (the cached list if it
    /// cannot answer), then `RejoinReady`.
    pub(super) fn start_rejoin(&self, rejoin: Rejoin) {
        let shared = self.shared.clone();
        let inputs = self.inputs.clone();
        self.shared.tasks.spawn(Box::pin(async move {
            let directory = match shared.fetch_directory().await {
                Ok(directory) => {
                    let _ = inputs.unbounded_send(Input::SaveDirectory(directory.clone()));
                    directory
                }
                Err(_) => shared.state.borrow().directory.clone(),
            };
            let active = active_devices(&directory);
            let _ = inputs.unbounded_send(Input::RejoinReady { rejoin, active });
        }));
    }

    /// Joins another member's restart if the worker finds its members are
    /// the ones this phone held; otherwise the group stays stopped, and the
    /// refusal is reported like any entry that did not check out.
    pub(super) async fn rejoin_ready(&mut self, rejoin: Rejoin, active: Vec<DeviceId>) {
        let Rejoin {
            group,
            seq,
            chain,
            sender,
            spec,
            welcome,
        } = rejoin;
        let answer = self
            .crypto(WorkerRequest::JoinRestart {
                welcome,
                group,
                chain,
                sender,
                active,
            })
            .await;
        let joined = match answer {
            Ok(WorkerResponse::Joined(joined))
                if joined.group == group && joined.profile.kind == spec.kind =>
            {
                joined
            }
            Ok(_) => {
                self.log("a repair did not match the group the relay named");
                self.drive(Event::Unopenable { group, seq }).await;
                return;
            }
            Err(error) => {
                self.log(&format!("a repair of a group was refused: {error}"));
                self.report_if_untrusted(group, seq, sender, &error);
                self.drive(Event::Unopenable { group, seq }).await;
                return;
            }
        };
        let mut writes = self.members_changed(group).await;
        writes.extend(self.repaired_line(group, sender));
        // One key package was used up: give the relay another.
        let shared = self.shared.clone();
        self.shared.tasks.spawn(Box::pin(async move {
            if let Err(error) = publish_key_packages(&shared, 1, false).await {
                shared
                    .log
                    .warn(&format!("a key package was not replenished: {error}"));
            }
        }));
        self.drive_staged((
            Event::Joined {
                group,
                seq,
                epoch: joined.epoch,
            },
            writes,
        ))
        .await;
    }

    /// The line the conversation shows where it was repaired: who
    /// restarted it, and that what was sent while it was stopped could not
    /// be read here. It expires like a message of the group.
    pub(super) fn repaired_line(&mut self, group: GroupId, by: DeviceId) -> Vec<CacheWrite> {
        let now = self.shared.expiry_now();
        let mut state = self.shared.state.borrow_mut();
        let own = state.enrolment.device == by;
        let sender = if own {
            Some(state.enrolment.user)
        } else {
            state
                .directory
                .people
                .iter()
                .find(|person| person.devices.contains(&by))
                .map(|person| person.user)
        };
        let Some(conversation) = state.conversation_mut(group) else {
            return Vec::new();
        };
        let expires_at = now.saturating_add_millis(conversation.retention.0.saturating_mul(1000));
        let line = MessageRecord {
            group,
            client_msg: ClientMessageId::from_bytes(self.shared.randomness.id()),
            sender: sender.unwrap_or(UserId::from_bytes([0; 16])),
            sender_device: by,
            sent_at: now,
            expires_at,
            body: MessageBody::Repaired,
        };
        self.repaint_list = true;
        if state.is_reading(group) {
            self.repaint_open = true;
        }
        vec![CacheWrite::Message(line)]
    }
}
