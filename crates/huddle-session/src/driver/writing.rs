//! Writing: a message saved and queued, an outbox item encrypted (or a commit made again) when its turn comes, groups made and changed.

use super::*;

impl<P: Platform> Driver<P> {
    pub(super) async fn compose(
        &mut self,
        group: GroupId,
        body: EnvelopeBody,
    ) -> Result<(), SessionError> {
        let now = self.shared.clock.now();
        let client_msg = ClientMessageId::from_bytes(self.shared.randomness.id());
        // Its expiry is counted on the time expiry goes by everywhere.
        let expiry_now = self.shared.expiry_now();
        let outgoing = {
            let state = self.shared.state.borrow();
            let conversation = state
                .conversation(group)
                .ok_or(SessionError::ConversationGone)?;
            Outgoing::new(
                &state.enrolment,
                conversation,
                client_msg,
                state.next_order,
                expiry_now,
                body,
            )?
        };
        // A removal takes the content off this phone with the mark's own
        // write: gone here at once, even offline.
        let stub = match &outgoing.message.body {
            MessageBody::Removal(removal) => Some(
                self.removed_here(group, removal, outgoing.message.sent_at)
                    .await?,
            ),
            _ => None,
        };
        // Saved before anything else: what the person typed is never lost.
        let mut writes = vec![
            CacheWrite::Message(outgoing.message),
            CacheWrite::Outbox(outgoing.outbox.clone()),
        ];
        writes.extend(stub.map(CacheWrite::Message));
        self.shared.cache.write(writes).await?;
        let item = outgoing.outbox.item.clone();
        {
            let mut state = self.shared.state.borrow_mut();
            state.next_order += 1;
            state.outbox.insert(client_msg, outgoing.outbox);
        }
        self.repaint_list = true;
        self.repaint_open = true;
        // Encrypted and sent when its turn comes (at once, if the phone is
        // started and nothing of ours is changing the group).
        self.drive(Event::Enqueue { now, item }).await;
        Ok(())
    }

    /// What is left of the message `removal` names on this phone once its
    /// own person removes it: checked as every other phone will check it.
    async fn removed_here(
        &self,
        group: GroupId,
        removal: &huddle_core::removal::Removal,
        now: UnixMillis,
    ) -> Result<MessageRecord, SessionError> {
        let target = self
            .shared
            .cache
            .message(removal.expires_at, group, removal.message.client_msg)
            .await?
            .filter(|m| m.sender == removal.message.author && m.body.is_to_read())
            .ok_or(SessionError::NothingToRemove)?;
        if self
            .shared
            .state
            .borrow()
            .outbox
            .contains_key(&target.client_msg)
        {
            return Err(SessionError::NotSentYet);
        }
        let me = self.shared.state.borrow().enrolment.user;
        Ok(removed(target, me, now, &removal.recorded_in))
    }

    /// Saves a made outbox record and queues it.
    pub(super) async fn enqueue(
        &mut self,
        submission: Submission,
        intent: Intent,
    ) -> Result<(), SessionError> {
        let client_msg = submission.client_msg;
        let record = {
            let state = self.shared.state.borrow();
            OutboxRecord {
                order: state.next_order,
                item: OutboxItem::new(submission),
                intent,
            }
        };
        self.shared
            .cache
            .write(vec![CacheWrite::Outbox(record.clone())])
            .await?;
        let item = record.item.clone();
        {
            let mut state = self.shared.state.borrow_mut();
            state.next_order += 1;
            state.outbox.insert(client_msg, record);
        }
        let now = self.shared.clock.now();
        self.drive(Event::Enqueue { now, item }).await;
        Ok(())
    }

    /// Makes the MLS message of an outbox item in the group's current epoch:
    /// encrypts a message, or makes a commit that lost its epoch again.
    pub(super) async fn seal(&mut self, client_msg: ClientMessageId, group: GroupId) -> Event {
        let now = self.shared.clock.now();
        let record = self.shared.state.borrow().outbox.get(&client_msg).cloned();
        let made = match record {
            None => Err("the item is no longer in the outbox".to_owned()),
            Some(record) => match &record.intent {
                Intent::Text { envelope } => {
                    // A removal names, to the relay, the message whose
                    // ciphertext goes with it.
                    let removes = match Envelope::decode(envelope.as_bytes()) {
                        Ok(Envelope {
                            body: EnvelopeBody::Removal(removal),
                            ..
                        }) => Some(removal.message.client_msg),
                        _ => None,
                    };
                    let request = WorkerRequest::Seal {
                        group,
                        client_msg,
                        expires_at: record.item.expires_at.unwrap_or(now),
                        envelope: envelope.clone(),
                    };
                    match self.ask_past_orphan_commit(group, request).await {
                        Ok(WorkerResponse::Sealed(sealed)) => Ok((
                            sealed.epoch,
                            match removes {
                                Some(removes) => Payload::Removing {
                                    ciphertext: sealed.ciphertext,
                                    removes,
                                },
                                None => Payload::Application {
                                    ciphertext: sealed.ciphertext,
                                },
                            },
                        )),
                        Ok(_) => Err("the crypto worker answered something else".to_owned()),
                        Err(error) => Err(error.to_string()),
                    }
                }
                intent => {
                    // Our commit lost the race for its epoch: drop it and make
                    // the same change again on top of the one that won.
                    if record.item.made.is_some() {
                        let _ = self
                            .crypto(WorkerRequest::DiscardPendingCommit { group })
                            .await;
                    }
                    // A removal another member made first leaves nothing to do.
                    let intent = match intent {
                        Intent::Remove { devices } => {
                            let Ok(left) = self.still_members(group, devices).await else {
                                self.log("the members of a group could not be read");
                                return Event::NotSealed { now, client_msg };
                            };
                            if left.is_empty() {
                                self.shared.state.borrow_mut().outbox.remove(&client_msg);
                                self.shared
                                    .write(vec![CacheWrite::DeleteOutbox(client_msg)])
                                    .await;
                                return Event::Unneeded { now, client_msg };
                            }
                            Intent::Remove { devices: left }
                        }
                        intent => intent.clone(),
                    };
                    self.make_commit(group, &intent)
                        .await
                        .map(|submission| (submission.epoch, submission.payload))
                        .map_err(|error| error.to_string())
                }
            },
        };
        match made {
            Ok((epoch, payload)) => Event::Sealed {
                now,
                client_msg,
                epoch,
                payload,
            },
            Err(error) => {
                self.log(&format!("an outbox item could not be made: {error}"));
                Event::NotSealed { now, client_msg }
            }
        }
    }

    /// Asks the worker to make something in `group`. If a commit of this
    /// device waits there that the outbox never recorded (the page stopped
    /// between the worker saving it and the outbox saving it), it is
    /// dropped and the worker asked again: a commit goes out only from the
    /// outbox, after it is saved there, so that one never left the phone,
    /// and dropping it loses nothing.
    async fn ask_past_orphan_commit(
        &self,
        group: GroupId,
        request: WorkerRequest,
    ) -> Result<WorkerResponse, SessionError> {
        let answer = self.crypto(request.clone()).await;
        if !self.orphan_commit(group, &answer) {
            return answer;
        }
        self.log("a commit left unsent by a restart was dropped");
        let _ = self
            .crypto(WorkerRequest::DiscardPendingCommit { group })
            .await;
        self.crypto(request).await
    }

    /// Whether `answer` says a commit of this device waits in `group` while
    /// the outbox holds none of ours there.
    fn orphan_commit(&self, group: GroupId, answer: &Result<WorkerResponse, SessionError>) -> bool {
        let pending = matches!(
            answer,
            Err(SessionError::Crypto(CryptoError::Refused(refusal)))
                if refusal.kind == WorkerErrorKind::CommitPending
        );
        pending
            && !self
                .shared
                .state
                .borrow()
                .outbox
                .values()
                .any(|r| r.item.group == group && r.item.is_commit())
    }

    pub(super) async fn create_group(
        &mut self,
        profile: GroupProfile,
        peer: Option<UserId>,
        members: Vec<ClaimedKeyPackage>,
    ) -> Result<GroupId, SessionError> {
        let group = GroupId::from_bytes(self.shared.randomness.id());
        self.crypto(WorkerRequest::CreateGroup {
            group,
            profile: profile.clone(),
        })
        .await?;
        let me = self.shared.state.borrow().enrolment.user;
        let mut users = vec![me];
        users.extend(members.iter().map(|m| m.user));
        users.sort();
        users.dedup();
        let record = ConversationRecord {
            group,
            kind: profile.kind,
            retention: profile.retention,
            name: profile.name.clone(),
            peer,
            members: users,
            unread: 0,
            created_at: self.shared.clock.now(),
            ended: false,
        };
        let group = record.group;
        self.shared
            .state
            .borrow_mut()
            .store_conversation(record.clone());
        // Its maker holds its log from the start.
        let receipts = self.change_receipts(group, |r| {
            *r = crate::receipts::ReceiptsRecord::starting_at(group, 0)
        });
        let mut writes = vec![CacheWrite::Conversation(record)];
        writes.extend(receipts);
        if let Err(error) = self.shared.cache.write(writes).await {
            let mut state = self.shared.state.borrow_mut();
            state.conversations.retain(|c| c.group != group);
            state.receipts.remove(&group);
            return Err(error.into());
        }
        self.repaint_list = true;
        let intent = Intent::Add {
            key_packages: members,
            create: Some(GroupSpec {
                kind: profile.kind,
                retention: profile.retention,
            }),
        };
        self.commit(group, intent).await?;
        Ok(group)
    }

    pub(super) async fn remove(
        &mut self,
        group: GroupId,
        users: Vec<UserId>,
    ) -> Result<(), SessionError> {
        let members = match self.crypto(WorkerRequest::Members { group }).await? {
            WorkerResponse::Members { members } => members,
            _ => return Err(SessionError::Crypto(CryptoError::Stopped)),
        };
        let devices: Vec<DeviceId> = members
            .iter()
            .filter(|m| users.contains(&m.user))
            .map(|m| m.device)
            .collect();
        if devices.is_empty() {
            return Err(SessionError::NotMembers);
        }
        self.commit(group, Intent::Remove { devices }).await
    }

    /// Of `devices`, those still members of `group` by this phone's MLS
    /// state.
    async fn still_members(
        &self,
        group: GroupId,
        devices: &[DeviceId],
    ) -> Result<Vec<DeviceId>, SessionError> {
        match self.crypto(WorkerRequest::Members { group }).await? {
            WorkerResponse::Members { members } => Ok(devices
                .iter()
                .copied()
                .filter(|device| members.iter().any(|m| m.device == *device))
                .collect()),
            _ => Err(SessionError::UnexpectedAnswer),
        }
    }

    /// Removes revoked devices the relay named from a group, unless a
    /// commit of this phone's is already waiting there (the relay names
    /// them again at the next sign-in), another member removed them, or
    /// the group is one only administrators change and this phone is not
    /// an administrator's (every other phone would refuse its commit).
    pub(super) async fn remove_revoked(&mut self, group: GroupId, devices: Vec<DeviceId>) {
        let skip = {
            let state = self.shared.state.borrow();
            let administrator = state.enrolment.administrator;
            state.conversation(group).is_none_or(|c| {
                c.ended
                    || (!administrator
                        && matches!(c.kind, GroupKind::Clinical | GroupKind::EmergencyBroadcast))
            }) || state
                .outbox
                .values()
                .any(|r| r.item.group == group && r.item.is_commit())
        };
        if skip {
            return;
        }
        let left = match self.still_members(group, &devices).await {
            Ok(left) if !left.is_empty() => left,
            Ok(_) => return,
            Err(error) => {
                self.log(&format!(
                    "the members of a group could not be read: {error}"
                ));
                return;
            }
        };
        if let Err(error) = self.commit(group, Intent::Remove { devices: left }).await {
            self.log(&format!(
                "could not remove revoked devices from a group: {error}"
            ));
        }
    }

    /// Makes the commit an intent describes, in the group's current epoch,
    /// and queues it.
    pub(super) async fn commit(
        &mut self,
        group: GroupId,
        intent: Intent,
    ) -> Result<(), SessionError> {
        if self.shared.state.borrow().conversation(group).is_none() {
            return Err(SessionError::ConversationGone);
        }
        let mut submission = self.make_commit(group, &intent).await?;
        submission.client_msg = ClientMessageId::from_bytes(self.shared.randomness.id());
        self.enqueue(submission, intent).await
    }

    pub(super) async fn make_commit(
        &self,
        group: GroupId,
        intent: &Intent,
    ) -> Result<Submission, SessionError> {
        let request = match intent {
            Intent::Add { key_packages, .. } if key_packages.is_empty() => {
                WorkerRequest::SelfUpdate { group }
            }
            Intent::Add { key_packages, .. } => WorkerRequest::AddMembers {
                group,
                key_packages: key_packages.clone(),
            },
            Intent::Remove { devices } => WorkerRequest::RemoveMembers {
                group,
                devices: devices.clone(),
            },
            Intent::Text { .. } | Intent::Restart => return Err(SessionError::UnexpectedAnswer),
        };
        let WorkerResponse::Commit(commit) = self.ask_past_orphan_commit(group, request).await?
        else {
            return Err(SessionError::Crypto(CryptoError::Stopped));
        };
        let create = match intent {
            Intent::Add { create, .. } => *create,
            _ => None,
        };
        Ok(Submission {
            client_msg: ClientMessageId::from_bytes([0; 16]),
            group,
            epoch: commit.epoch,
            expires_at: None,
            payload: Payload::Commit {
                commit: commit.commit,
                welcome: commit.welcome,
                change: MembershipChange {
                    create,
                    ..commit.change
                },
            },
        })
    }
}

/// A message with its content replaced by the stub of a removal: who
/// removed it, when, and where it was recorded (nothing it said).
pub(super) fn removed(
    mut message: MessageRecord,
    by: UserId,
    at: UnixMillis,
    recorded_in: &str,
) -> MessageRecord {
    message.body = MessageBody::Removed {
        by,
        at,
        recorded_in: recorded_in.to_owned(),
    };
    message
}

/// Key packages for the relay: a stock the first time, one more after each
/// group this device joins.
pub(super) async fn publish_key_packages<P: Platform>(
    shared: &Shared<P>,
    count: u32,
    last_resort: bool,
) -> Result<(), SessionError> {
    let crypto = super::identities::crypto(shared)?;
    let key_packages = match crypto
        .request(WorkerRequest::KeyPackages {
            count,
            last_resort: false,
        })
        .await?
    {
        WorkerResponse::KeyPackages { key_packages } => key_packages,
        _ => return Err(SessionError::Crypto(CryptoError::Stopped)),
    };
    let last_resort = if last_resort {
        match crypto
            .request(WorkerRequest::KeyPackages {
                count: 1,
                last_resort: true,
            })
            .await?
        {
            WorkerResponse::KeyPackages { mut key_packages } => key_packages.pop(),
            _ => None,
        }
    } else {
        None
    };
    shared
        .ask(|request| ClientFrame::PublishKeyPackages {
            request,
            key_packages,
            last_resort,
        })
        .await?;
    Ok(())
}
