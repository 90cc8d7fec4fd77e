//! Keeping the phone tidy: a conversation marked read, what has expired deleted, and everything wiped when the relay says so.

use super::*;

impl<P: Platform> Driver<P> {
    /// The open conversation is on screen: repaint it, and it is read.
    pub(super) async fn viewed(&mut self) {
        self.shared.paint_open().await;
        let (group, read) = {
            let mut state = self.shared.state.borrow_mut();
            let Some(group) = state.open.filter(|_| state.visible) else {
                return;
            };
            let read = match state.conversation_mut(group) {
                Some(conversation) if conversation.unread > 0 => {
                    conversation.unread = 0;
                    Some(conversation.clone())
                }
                _ => None,
            };
            (group, read)
        };
        let mut writes = Vec::new();
        if let Some(conversation) = read {
            writes.push(CacheWrite::Conversation(conversation));
            self.repaint_list = true;
        }
        // On screen: news for the group's read receipts, if it holds any.
        let unread_news = self
            .shared
            .state
            .borrow()
            .receipts
            .get(&group)
            .is_some_and(|r| r.mine.read_through < r.mine.delivered_through);
        if unread_news {
            writes.extend(self.change_receipts(group, |r| r.read_all()));
        }
        self.shared.write(writes).await;
    }

    /// Deletes what has expired: messages by one range delete, and what the
    /// relay never stored from the outbox (its text is in the outbox too).
    pub(super) async fn sweep(&mut self) {
        let now = self.shared.expiry_now();
        // An app left open, away from the relay for longer than allowed
        // (a phone lost with Huddle on screen), wipes itself as one opened
        // afresh would.
        let connected = self.shared.state.borrow().connection.live;
        let away = self.shared.standing.get();
        if !connected && away.is_some_and(|standing| standing.away_too_long(now)) {
            self.wipe(SignOut::AwayTooLong).await;
            return;
        }
        if let Err(error) = self.shared.cache.expire(now).await {
            self.log(&format!("expired messages were not deleted: {error}"));
            self.shared
                .screen
                .show(Update::Problem(crate::update::Problem::Storage(error)));
            return;
        }
        self.withdraw_expired_unsent(now).await;
        let forgotten = self.forget_expired_places(now);
        self.shared.write(forgotten).await;
        self.clamp_unread().await;
        if now >= self.next_key_check {
            self.rotate_keys(now).await;
        }
        let saved = self.shared.standing.get().map(|saved| saved.latest_seen);
        if saved.is_some_and(|saved| now.0.saturating_sub(saved.0) >= STANDING_SAVED_EVERY_MS) {
            self.save_standing(None).await;
        }
        self.shared.screen.show(Update::Tick(now));
        self.repaint_list = true;
        self.repaint_open = true;
    }

    /// Withdraws the outbox's messages that expired before the relay
    /// stored them (their text is in the outbox too).
    pub(super) async fn withdraw_expired_unsent(&mut self, now: UnixMillis) {
        let withdrawn: Vec<ClientMessageId> = match self.engine.as_mut() {
            Some(engine) => engine.withdraw_expired(now),
            None => self.shared.state.borrow().expired_outbox(now),
        };
        if withdrawn.is_empty() {
            return;
        }
        let writes = {
            let mut state = self.shared.state.borrow_mut();
            withdrawn
                .iter()
                .map(|id| {
                    state.outbox.remove(id);
                    CacheWrite::DeleteOutbox(*id)
                })
                .collect()
        };
        self.shared.write(writes).await;
    }

    /// Saves the latest time known, and after a sign-in (`signed_in`: the
    /// organisation's policy) the time of it: what the next opening of the
    /// app goes by, before it reaches the relay.
    pub(super) async fn save_standing(&mut self, signed_in: Option<PhonePolicy>) {
        let Some(standing) = self.shared.standing_now(signed_in) else {
            return;
        };
        if self
            .shared
            .write(vec![CacheWrite::Standing(standing)])
            .await
        {
            self.shared.standing.set(Some(standing));
        }
    }

    /// Renews this device's keys in each group where they are due (a week
    /// of use, or a member removed since): an update commit, queued like
    /// any other (post-compromise security: a copy of the old keys opens
    /// nothing after it). Only while connected, so that commits made in
    /// one epoch are not left waiting for hours.
    pub(super) async fn rotate_keys(&mut self, now: UnixMillis) {
        let live = self.engine.is_some() && self.shared.state.borrow().connection.live;
        if !live {
            return;
        }
        self.next_key_check = now.saturating_add_millis(KEY_CHECK_EVERY_MS);
        let groups: Vec<GroupId> = self.shared.state.borrow().active_groups();
        let due = match self.crypto(WorkerRequest::KeysDue { groups, now }).await {
            Ok(WorkerResponse::Groups { groups }) => groups,
            Ok(_) => return,
            Err(error) => {
                self.log(&format!("could not check whether keys are due: {error}"));
                return;
            }
        };
        for group in due {
            let waiting = self
                .shared
                .state
                .borrow()
                .outbox
                .values()
                .any(|r| r.item.group == group && r.item.is_commit());
            if waiting {
                continue;
            }
            let renew = Intent::Add {
                key_packages: Vec::new(),
                create: None,
            };
            if let Err(error) = self.commit(group, renew).await {
                self.log(&format!("could not renew keys in a group: {error}"));
            }
        }
    }

    /// Unread counts never exceed what is left after expiry.
    pub(super) async fn clamp_unread(&mut self) {
        let unread: Vec<(GroupId, u32)> = self
            .shared
            .state
            .borrow()
            .conversations
            .iter()
            .filter(|c| c.unread > 0)
            .map(|c| (c.group, c.unread))
            .collect();
        let mut writes = Vec::new();
        for (group, unread) in unread {
            let left = self
                .shared
                .cache
                .message_count(group)
                .await
                .unwrap_or(unread);
            if left < unread {
                let mut state = self.shared.state.borrow_mut();
                if let Some(conversation) = state.conversation_mut(group) {
                    conversation.unread = left;
                    writes.push(CacheWrite::Conversation(conversation.clone()));
                }
            }
        }
        self.shared.write(writes).await;
    }

    /// Remote wipe: the relay refused this device. Everything on the phone
    /// goes: messages, keys, group secrets.
    pub(super) async fn wipe(&mut self, why: SignOut) {
        let live = self.shared.live.borrow_mut().take();
        if let Some(live) = live {
            live.transport.disconnect();
            if let Err(error) = live.crypto.request(WorkerRequest::Wipe).await {
                self.log(&format!("the crypto worker's store was not wiped: {error}"));
            }
        }
        if let Err(error) = self.shared.cache.wipe().await {
            self.log(&format!("the phone's storage was not wiped: {error}"));
        }
        self.engine = None;
        {
            let mut state = self.shared.state.borrow_mut();
            state.wiped = true;
            state.conversations.clear();
            state.outbox.clear();
            state.receipts.clear();
            state.receipts_due.clear();
            state.directory = Default::default();
        }
        self.shared.screen.show(Update::SignedOut(why));
    }
}
