//! Read receipts: this phone's news (what it received and read) told to the group after a moment's quiet and only while connected, colleagues' receipts kept, and its own messages placed in the log so that their reach can be shown.

use super::*;
use crate::receipts::ReceiptsRecord;
use huddle_core::receipt::sent_in;

/// How long a phone waits after news before telling it: a conversation
/// opened while messages arrive makes one receipt, not one per message.
pub const RECEIPT_DELAY_MS: u64 = 1_500;

/// Whether an outbox record is one of this phone's read receipts.
pub(crate) fn is_receipt(record: &OutboxRecord) -> bool {
    match &record.intent {
        Intent::Text { envelope } => Envelope::decode(envelope.as_bytes())
            .is_ok_and(|e| matches!(e.body, EnvelopeBody::ReadReceipt(_))),
        _ => false,
    }
}

impl<P: Platform> Driver<P> {
    /// Reads every group's receipts, when the driver starts; those with
    /// news not yet told are told once connected.
    pub(super) async fn load_receipts(&mut self) {
        let groups: Vec<GroupId> = self
            .shared
            .state
            .borrow()
            .conversations
            .iter()
            .filter(|c| sent_in(c.kind))
            .map(|c| c.group)
            .collect();
        for group in groups {
            let record = match self.shared.cache.receipts(group).await {
                Ok(record) => record.unwrap_or_else(|| ReceiptsRecord::new(group)),
                Err(error) => {
                    self.log(&format!("a group's read receipts were not read: {error}"));
                    continue;
                }
            };
            let mut state = self.shared.state.borrow_mut();
            if record.due() {
                state.receipts_due.insert(group);
            }
            state.receipts.insert(group, record);
        }
    }

    /// Changes a group's receipts; returns the write that keeps the change
    /// (none in a group without receipts). News is told after a moment.
    pub(super) fn change_receipts(
        &mut self,
        group: GroupId,
        change: impl FnOnce(&mut ReceiptsRecord),
    ) -> Option<CacheWrite> {
        let due = {
            let mut state = self.shared.state.borrow_mut();
            let kind = state.conversation(group)?.kind;
            if !sent_in(kind) {
                return None;
            }
            if state.open == Some(group) {
                self.repaint_open = true;
            }
            let record = state
                .receipts
                .entry(group)
                .or_insert_with(|| ReceiptsRecord::new(group));
            change(record);
            let write = CacheWrite::Receipts(record.clone());
            let due = record.due();
            if due {
                state.receipts_due.insert(group);
            }
            (due, write)
        };
        if due.0 {
            self.schedule_receipts();
        }
        Some(due.1)
    }

    /// Tells the news after [`RECEIPT_DELAY_MS`] of quiet (a later news
    /// restarts the wait).
    pub(super) fn schedule_receipts(&mut self) {
        self.receipts_generation += 1;
        let generation = self.receipts_generation;
        let inputs = self.inputs.clone();
        self.shared.clock.after(
            RECEIPT_DELAY_MS,
            Box::new(move || {
                let _ = inputs.unbounded_send(Input::SendReceipts { generation });
            }),
        );
    }

    /// Writes a receipt for each group with news, while connected: one
    /// written offline would only be outdated by the next. Each is saved
    /// with what it told, then queued like any message.
    pub(super) async fn send_receipts(&mut self) {
        let live = self
            .engine
            .as_ref()
            .is_some_and(|engine| engine.connection() == ConnectionState::Live);
        if !live {
            return; // told once the connection is back (`show_connection`)
        }
        let due: Vec<GroupId> = std::mem::take(&mut self.shared.state.borrow_mut().receipts_due)
            .into_iter()
            .collect();
        let expiry_now = self.shared.expiry_now();
        // Its time is to the minute: members learn when she read, not the
        // second she did.
        let minute = UnixMillis(expiry_now.0 - expiry_now.0 % 60_000);
        for group in due {
            let client_msg = ClientMessageId::from_bytes(self.shared.randomness.id());
            let made = {
                let state = self.shared.state.borrow();
                let (Some(conversation), Some(record)) =
                    (state.conversation(group), state.receipts.get(&group))
                else {
                    continue;
                };
                if !record.due() || conversation.ended {
                    continue;
                }
                let receipt = record.mine.clone();
                let covers_until = record.covers_until;
                Outgoing::new(
                    &state.enrolment,
                    conversation,
                    client_msg,
                    state.next_order,
                    minute,
                    EnvelopeBody::ReadReceipt(receipt.clone()),
                )
                .map(|outgoing| {
                    let mut told = record.clone();
                    told.told = receipt;
                    let mut outbox = outgoing.outbox;
                    // Gone from the relay with the messages it speaks of.
                    outbox.item.expires_at = outbox.item.expires_at.map(|e| e.min(covers_until));
                    (outbox, told, covers_until)
                })
            };
            let (outbox, told) = match made {
                // What it speaks of has expired: nothing is left to tell.
                Ok((_, told, covers_until)) if covers_until <= expiry_now => {
                    self.shared
                        .write(vec![CacheWrite::Receipts(told.clone())])
                        .await;
                    self.shared.state.borrow_mut().receipts.insert(group, told);
                    continue;
                }
                Ok((outbox, told, _)) => (outbox, told),
                Err(error) => {
                    self.log(&format!("a read receipt was not written: {error}"));
                    continue;
                }
            };
            let writes = vec![
                CacheWrite::Outbox(outbox.clone()),
                CacheWrite::Receipts(told.clone()),
            ];
            if !self.shared.write(writes).await {
                continue;
            }
            let item = outbox.item.clone();
            {
                let mut state = self.shared.state.borrow_mut();
                state.next_order += 1;
                state.outbox.insert(client_msg, outbox);
                state.receipts.insert(group, told);
            }
            let now = self.shared.clock.now();
            self.drive(Event::Enqueue { now, item }).await;
        }
    }

    /// Forgets where expired messages were; the writes.
    pub(super) fn forget_expired_places(&mut self, now: UnixMillis) -> Vec<CacheWrite> {
        self.shared
            .state
            .borrow_mut()
            .receipts
            .values_mut()
            .filter_map(|record| {
                record
                    .forget_expired(now)
                    .then(|| CacheWrite::Receipts(record.clone()))
            })
            .collect()
    }
}
