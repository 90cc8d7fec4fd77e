//! Receiving: a log entry opened and what it changed stored with the group's new position; welcomes joined.

use super::*;
use huddle_core::crypto_worker::{WorkerError, WorkerErrorKind};

impl<P: Platform> Driver<P> {
    /// Opens one log entry; returns the engine's event and the writes that
    /// store what it changed (written with the group's new position).
    pub(super) async fn process(
        &mut self,
        entry: LogEntry,
        declared: Option<MembershipChange>,
    ) -> Staged {
        let group = entry.group;
        let seq = entry.seq;
        let mut epoch = self
            .engine
            .as_ref()
            .and_then(|e| e.position(group))
            .map_or(0, |p| p.epoch);
        let now = self.shared.expiry_now();
        let mut writes = Vec::new();
        let opened = self
            .crypto(WorkerRequest::Open {
                group,
                message: entry.payload,
                sender: entry.sender,
                declared,
                now,
            })
            .await;
        match opened {
            Ok(WorkerResponse::Opened(Incoming::Message {
                sender,
                sender_is_administrator,
                client_msg,
                expires_at,
                envelope,
                ..
            })) => {
                let decoded = Envelope::decode(envelope.as_bytes());
                // A read receipt is kept with the group's receipts, never as
                // a message (and one from this person's own phones says
                // nothing to her).
                if let Ok(EnvelopeBody::ReadReceipt(receipt)) = decoded.as_ref().map(|e| &e.body) {
                    let me = self.shared.state.borrow().enrolment.user;
                    if sender.user != me {
                        let receipt = receipt.clone();
                        writes.extend(self.change_receipts(group, |r| {
                            r.heard_from(sender.user, sender.device, receipt)
                        }));
                    }
                    return (Event::Processed { group, seq, epoch }, writes);
                }
                let (sent_at, body) = match decoded {
                    Ok(envelope) => (
                        envelope.sent_at,
                        MessageBody::logged(&envelope.body, seq, sender_is_administrator),
                    ),
                    Err(_) => (now, MessageBody::Unreadable),
                };
                self.learn_about(&[sender.user]);
                // Message ids travel in the clear: a colleague's modified
                // app (or the relay) could reuse the id, and the expiry, of
                // someone else's message to overwrite it on every phone (and
                // take over a shift offer). The first holder keeps it.
                let taken = match self
                    .shared
                    .cache
                    .message(expires_at, group, client_msg)
                    .await
                {
                    // And a removed message stays removed, whoever sends
                    // it again.
                    Ok(existing) => existing.is_some_and(|m| {
                        m.sender_device != sender.device
                            || matches!(m.body, MessageBody::Removed { .. })
                    }),
                    Err(_) => false,
                };
                if taken {
                    self.log(&format!(
                        "entry {seq} of a group reused a message id taken or removed already; it is not stored"
                    ));
                }
                // An acknowledgement means something only in a broadcast
                // group; anywhere else it is kept by nobody.
                let misplaced = matches!(body, MessageBody::Acknowledgement(_))
                    && !self
                        .shared
                        .state
                        .borrow()
                        .conversation(group)
                        .is_some_and(|c| huddle_core::broadcast::acknowledged_in(c.kind));
                // "I can't make my shift" is for a manager, one to one: in
                // a group it would tell everyone, and nobody keeps it.
                let misplaced = misplaced
                    || matches!(body, MessageBody::CannotWork(_))
                        && !self
                            .shared
                            .state
                            .borrow()
                            .conversation(group)
                            .is_some_and(|c| c.kind == GroupKind::Direct);
                if misplaced {
                    self.log(&format!(
                        "entry {seq} of a group was an acknowledgement or a shift it cannot carry; it is not stored"
                    ));
                }
                // A removal is honoured only from the message's author, or
                // as a record made in a clinical group; its mark is kept
                // only when it is.
                let mut refused = false;
                if let (MessageBody::Removal(removal), false) = (&body, taken) {
                    let kind = self
                        .shared
                        .state
                        .borrow()
                        .conversation(group)
                        .map(|c| c.kind);
                    match kind.map(|kind| removal.allowed(sender.user, kind)) {
                        Some(Ok(())) => writes.extend(
                            self.remove_named(group, removal, sender.user, sent_at)
                                .await,
                        ),
                        _ => {
                            refused = true;
                            self.log(&format!(
                                "entry {seq} of a group removed a message its sender may not remove; it changed nothing"
                            ));
                        }
                    }
                }
                if expires_at > now && !taken && !misplaced && !refused {
                    let answer = body.is_answer();
                    let (me, administrator, reading, kind) = {
                        let state = self.shared.state.borrow();
                        let kind = state.conversation(group).map(|c| c.kind);
                        let me = state.enrolment.user;
                        (
                            me,
                            state.enrolment.administrator,
                            state.is_reading(group),
                            kind,
                        )
                    };
                    // News for this phone's next receipt; and an
                    // administrator follows every broadcast's reach.
                    let readable = sender.user != me && body.is_to_read();
                    let broadcast = administrator
                        && matches!(body, MessageBody::Text(_))
                        && kind.is_some_and(huddle_core::broadcast::acknowledged_in);
                    if readable || broadcast {
                        writes.extend(self.change_receipts(group, |r| {
                            if readable {
                                r.received(seq, expires_at, reading);
                            }
                            if broadcast {
                                r.place(client_msg, seq, expires_at);
                            }
                        }));
                    }
                    writes.push(CacheWrite::Message(MessageRecord {
                        group,
                        client_msg,
                        sender: sender.user,
                        sender_device: sender.device,
                        sent_at,
                        expires_at,
                        body,
                    }));
                    let mut state = self.shared.state.borrow_mut();
                    // An answer (to a shift offer, or a broadcast) changes a
                    // card; it is not a message to read.
                    let reading = state.is_reading(group);
                    let to_read = !reading && !answer;
                    if let Some(conversation) = state.conversation_mut(group) {
                        if to_read {
                            conversation.unread += 1;
                            writes.push(CacheWrite::Conversation(conversation.clone()));
                        }
                    }
                    self.repaint_list = true;
                    self.repaint_open |= reading;
                }
            }
            Ok(WorkerResponse::Opened(Incoming::MembershipChanged {
                epoch: new_epoch,
                removed_self,
                removed,
                ..
            })) => {
                epoch = new_epoch;
                if !removed.is_empty() {
                    // Someone left: this phone renews its keys soon, at a
                    // random moment so that a large group's phones do not
                    // all commit at once.
                    let spread = u64::from_be_bytes(
                        self.shared.randomness.id()[..8]
                            .try_into()
                            .unwrap_or([0; 8]),
                    ) % RENEW_AFTER_REMOVAL_WITHIN_MS;
                    let at = now.saturating_add_millis(spread);
                    self.next_key_check = self.next_key_check.min(at);
                }
                if removed_self {
                    let mut state = self.shared.state.borrow_mut();
                    if let Some(conversation) = state.conversation_mut(group) {
                        conversation.ended = true;
                        writes.push(CacheWrite::Conversation(conversation.clone()));
                    }
                    self.repaint_list = true;
                } else {
                    writes.extend(self.members_changed(group).await);
                }
            }
            Ok(WorkerResponse::Opened(Incoming::EpochChanged {
                epoch: new_epoch, ..
            })) => epoch = new_epoch,
            Ok(_) => {}
            Err(error) => {
                // Never the content: only that an entry could not be used.
                self.log(&format!(
                    "entry {seq} of a group could not be opened: {error}"
                ));
                if let Some(refusal) = self.report_if_untrusted(group, seq, entry.sender, &error) {
                    // Not from who it claims to be: never shown.
                    self.shared
                        .screen
                        .show(Update::Problem(crate::update::Problem::Refused {
                            group,
                            refusal,
                        }));
                }
                let own = self.shared.state.borrow().enrolment.device == entry.sender;
                if entry.kind == EntryKind::Application && !own {
                    // Never claimed as received in a receipt.
                    writes.extend(self.change_receipts(group, |r| r.could_not_open(seq)));
                }
                if entry.kind == EntryKind::Commit {
                    // Never stepped over: the group stops here until it is
                    // repaired (the engine says so on the screen).
                    return (Event::Unopenable { group, seq }, writes);
                }
            }
        }
        (Event::Processed { group, seq, epoch }, writes)
    }

    /// The write that replaces the content of the message `removal` names
    /// with its stub, if this phone holds that message, by that author,
    /// and it is one that can be removed.
    async fn remove_named(
        &mut self,
        group: GroupId,
        removal: &huddle_core::removal::Removal,
        by: UserId,
        at: UnixMillis,
    ) -> Option<CacheWrite> {
        let target = self
            .shared
            .cache
            .message(removal.expires_at, group, removal.message.client_msg)
            .await
            .ok()
            .flatten()
            .filter(|m| m.sender == removal.message.author && m.body.is_to_read())?;
        self.repaint_list = true;
        self.repaint_open = true;
        Some(CacheWrite::Message(super::writing::removed(
            target,
            by,
            at,
            &removal.recorded_in,
        )))
    }

    /// When the worker refused an entry as not from who it claims to be (or
    /// a repair as not the group's), the organisation's administrators are
    /// told through the relay's audit log; returns the reason.
    pub(super) fn report_if_untrusted(
        &self,
        group: GroupId,
        seq: u64,
        sender: DeviceId,
        error: &SessionError,
    ) -> Option<huddle_core::wire::Refusal> {
        let SessionError::Crypto(CryptoError::Refused(WorkerError {
            kind: WorkerErrorKind::Untrusted(refusal),
            ..
        })) = error
        else {
            return None;
        };
        if let Some(live) = self.live() {
            let report = ClientFrame::ReportRefused {
                group,
                seq,
                sender,
                refusal: *refusal,
            };
            live.transport.send(&report.encode());
        }
        Some(*refusal)
    }

    /// The people in a group changed: the write that records who is in it now.
    pub(super) async fn members_changed(&mut self, group: GroupId) -> Vec<CacheWrite> {
        let Ok(WorkerResponse::Members { members }) =
            self.crypto(WorkerRequest::Members { group }).await
        else {
            return Vec::new();
        };
        let mut users: Vec<UserId> = members.iter().map(|m| m.user).collect();
        users.sort();
        users.dedup();
        self.learn_about(&users);
        self.repaint_list = true;
        let mut state = self.shared.state.borrow_mut();
        match state.conversation_mut(group) {
            Some(conversation) => {
                conversation.members = users;
                vec![CacheWrite::Conversation(conversation.clone())]
            }
            None => Vec::new(),
        }
    }

    pub(super) async fn join(
        &mut self,
        group: GroupId,
        seq: u64,
        spec: GroupSpec,
        welcome: Vec<u8>,
    ) -> Option<Staged> {
        let joined = match self.crypto(WorkerRequest::Join { welcome }).await {
            Ok(WorkerResponse::Joined(joined)) => joined,
            Ok(_) => return None,
            Err(error) => {
                self.log(&format!("a welcome could not be used: {error}"));
                return None;
            }
        };
        if joined.group != group || joined.profile.kind != spec.kind {
            self.log("a welcome did not match the group the relay named");
            return None;
        }
        let me = self.shared.state.borrow().enrolment.user;
        let mut users: Vec<UserId> = joined.members.iter().map(|m| m.user).collect();
        users.sort();
        users.dedup();
        let peer = (joined.profile.kind == GroupKind::Direct)
            .then(|| users.iter().copied().find(|u| *u != me))
            .flatten();
        let record = ConversationRecord {
            group,
            kind: joined.profile.kind,
            retention: joined.profile.retention,
            name: joined.profile.name.clone(),
            peer,
            members: users,
            unread: 0,
            created_at: self.shared.clock.now(),
            ended: false,
        };
        self.learn_about(&record.members);
        self.shared
            .state
            .borrow_mut()
            .store_conversation(record.clone());
        self.repaint_list = true;
        // One key package was used up: give the relay another.
        let shared = self.shared.clone();
        self.shared.tasks.spawn(Box::pin(async move {
            if let Err(error) = publish_key_packages(&shared, 1, false).await {
                shared
                    .log
                    .warn(&format!("a key package was not replenished: {error}"));
            }
        }));
        // Its receipts start where it joined: nothing before was for it.
        let mut writes = vec![CacheWrite::Conversation(record)];
        writes.extend(self.change_receipts(group, |r| {
            *r = crate::receipts::ReceiptsRecord::starting_at(group, seq)
        }));
        Some((
            Event::Joined {
                group,
                seq,
                epoch: joined.epoch,
            },
            writes,
        ))
    }
}
