//! Catching a device up: its waiting welcomes, then each group's backlog after its cursor (with `Skipped` for what was deleted), then `Synced`.

use super::connection::Connection;
use crate::clock::now;
use crate::AppState;
use axum::extract::ws::Message;
use futures::{Sink, Stream};
use huddle_core::ids::{DeviceId, GroupId};
use huddle_core::wire::{ErrorCode, GroupCursor, ServerFrame};
use std::collections::HashMap;

/// How many backlog entries are read from the database at a time.
const BACKLOG_PAGE: u32 = 500;

/// Sends each group's backlog after the device's cursor, its waiting
/// welcomes, then `Synced`; false once the connection is gone.
/// `sent_up_to` records what went out, so that live copies are not sent
/// twice.
pub async fn sync<S>(
    connection: &mut Connection<S>,
    state: &AppState,
    device: DeviceId,
    cursors: Vec<GroupCursor>,
    sent_up_to: &mut HashMap<GroupId, u64>,
) -> bool
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let asked: HashMap<GroupId, u64> = cursors.iter().map(|c| (c.group, c.seq)).collect();
    let groups = match state.store.groups_of(device).await {
        Ok(groups) => groups,
        Err(error) => {
            tracing::error!(%error, "could not list a device's groups");
            return connection
                .send(&ServerFrame::Error {
                    code: ErrorCode::Internal,
                    message: "The relay could not read its database; try again.".into(),
                })
                .await;
        }
    };
    let welcomes = match state.store.welcomes_for(device).await {
        Ok(welcomes) => welcomes,
        Err(error) => {
            tracing::error!(%error, "could not read welcomes");
            Vec::new()
        }
    };
    for welcome in welcomes {
        // A device that lists the group and stands at or past the welcome
        // has joined: it is not needed again. One that lists the group from
        // before (a restart of the group's encryption) still needs it.
        if asked
            .get(&welcome.group)
            .is_some_and(|cursor| *cursor >= welcome.seq)
        {
            if let Err(error) = state.store.welcome_used(device, welcome.group).await {
                tracing::warn!(%error, "could not delete a used welcome");
            }
            continue;
        }
        let frame = ServerFrame::Welcome {
            group: welcome.group,
            seq: welcome.seq,
            spec: welcome.spec,
            welcome: welcome.welcome,
        };
        if !connection.send(&frame).await {
            return false;
        }
    }
    for group in groups {
        // Groups the device has not joined yet start after their welcome.
        let Some(after) = asked.get(&group).copied() else {
            continue;
        };
        if !backlog(connection, state, device, group, after, sent_up_to).await {
            return false;
        }
    }
    connection.send(&ServerFrame::Synced).await
}

/// One group's entries after `after`, page by page.
async fn backlog<S>(
    connection: &mut Connection<S>,
    state: &AppState,
    device: DeviceId,
    group: GroupId,
    mut after: u64,
    sent_up_to: &mut HashMap<GroupId, u64>,
) -> bool
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let end = match state.store.readable_end(group, device).await {
        Ok(end) => end,
        Err(error) => {
            tracing::error!(%error, "could not read a group's end");
            return true;
        }
    };
    loop {
        let page = match state
            .store
            .backlog_with_declarations(group, device, after, BACKLOG_PAGE, now())
            .await
        {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(%error, "could not read a backlog");
                break;
            }
        };
        let full = page.len() == BACKLOG_PAGE as usize;
        for (entry, declared) in page {
            // Entries deleted since the cursor (expired messages) leave a
            // gap; say so, so the device does not wait for them.
            if entry.seq > after + 1 {
                let skipped = ServerFrame::Skipped {
                    group,
                    up_to: entry.seq - 1,
                };
                if !connection.send(&skipped).await {
                    return false;
                }
            }
            after = entry.seq;
            sent_up_to.insert(group, entry.seq);
            if !connection
                .send(&ServerFrame::delivery(entry, declared))
                .await
            {
                return false;
            }
        }
        if !full {
            break;
        }
    }
    if end > after {
        sent_up_to.insert(group, end);
        return connection
            .send(&ServerFrame::Skipped { group, up_to: end })
            .await;
    }
    true
}
