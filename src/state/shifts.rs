//! A shift offer's card in words: when and what, where it stands as the person reading it needs to hear it, and the buttons she may press.

use crate::state::time::{day_label, minutes_label};
use huddle_core::ids::UserId;
use huddle_core::shift::{MessageRef, Request, Shift, ShiftAction, ShiftStatus, ShiftUpdate};
use huddle_session::shifts::ShiftCard;
use huddle_session::Directory;

/// Who is reading: the card's words and buttons depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub me: UserId,
    pub administrator: bool,
    /// The year today, so that dates this year leave it out.
    pub this_year: i32,
}

/// One button on a card: what it says and the answer it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShiftButton {
    pub label: String,
    pub update: ShiftUpdate,
    /// The one thing most people reading it will want to do.
    pub primary: bool,
}

/// A shift offer as its card shows it. What it says is content: it never
/// prints (see the `Debug` below).
#[derive(Clone, PartialEq, Eq)]
pub struct ShiftView {
    /// The shift's day and start (minutes after midnight), for the week's list.
    pub day: u32,
    pub start: u16,
    /// "Thu 3 Dec, 07:00 to 15:00".
    pub when: String,
    /// "07:00 to 15:00", for the week's list under its day.
    pub hours: String,
    /// "Senior carer, Rowan unit".
    pub what: String,
    pub note: String,
    /// "open", "claimed", "confirmed" or "withdrawn": for styling and tests.
    pub state: &'static str,
    /// Where it stands, in a sentence for the person reading.
    pub status: String,
    pub buttons: Vec<ShiftButton>,
    /// One of this phone's answers to it is still on its way to the relay.
    pub sending: bool,
    /// One of this phone's answers to it was not sent (refused, or too many
    /// tries): it counts for nothing, and the reader can answer again.
    pub failed: bool,
}

impl std::fmt::Debug for ShiftView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShiftView")
            .field("day", &self.day)
            .field("state", &self.state)
            .field("buttons", &self.buttons.len())
            .field("sending", &self.sending)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The card of the offer `offer` (its author and id), which says `shift`
/// and stands as `card`, for `viewer`.
pub fn shift_view(
    offer: MessageRef,
    shift: &Shift,
    card: &ShiftCard,
    viewer: Viewer,
    directory: &Directory,
) -> ShiftView {
    let name = |user: UserId| {
        if user == viewer.me {
            "you".to_owned()
        } else {
            directory.name_of(user).unwrap_or("someone").to_owned()
        }
    };
    let poster = offer.author;
    let manages = viewer.me == poster || viewer.administrator;
    let decider = if viewer.me == poster {
        "you".to_owned()
    } else {
        name(poster)
    };
    let answer = |action| ShiftUpdate { offer, action };
    let mut buttons = Vec::new();
    let (state, status) = match &card.status {
        ShiftStatus::Withdrawn => (
            "withdrawn",
            "Withdrawn: this shift is no longer offered.".to_owned(),
        ),
        ShiftStatus::Confirmed { to, .. } => {
            if manages {
                buttons.push(ShiftButton {
                    label: "Reopen this shift".into(),
                    update: answer(ShiftAction::Release),
                    primary: false,
                });
            }
            let status = if to.by() == viewer.me {
                "Confirmed: this shift is yours.".to_owned()
            } else {
                format!("Taken: confirmed for {}.", name(to.by()))
            };
            ("confirmed", status)
        }
        ShiftStatus::Open { requests } => {
            let mine = requests.iter().find(|r| r.by() == viewer.me);
            if viewer.me != poster && mine.is_none() {
                buttons.push(ShiftButton {
                    label: "I can take this shift".into(),
                    update: answer(ShiftAction::Claim),
                    primary: true,
                });
            }
            if mine.is_some() {
                buttons.push(ShiftButton {
                    label: "Cancel my claim".into(),
                    update: answer(ShiftAction::CancelClaim),
                    primary: false,
                });
            }
            if manages {
                for (index, request) in requests.iter().enumerate() {
                    let whom = if request.by() == viewer.me {
                        "yourself".to_owned()
                    } else {
                        name(request.by())
                    };
                    buttons.push(ShiftButton {
                        label: format!("Confirm {whom}"),
                        update: answer(ShiftAction::Confirm { claim: request.id }),
                        primary: index == 0,
                    });
                }
            }
            open_status(requests, viewer, &decider, &name)
        }
    };
    if manages && card.status != ShiftStatus::Withdrawn {
        buttons.push(ShiftButton {
            label: "Withdraw this offer".into(),
            update: answer(ShiftAction::Withdraw),
            primary: false,
        });
    }
    let (when, hours, what) = shift_words(shift, viewer.this_year);
    ShiftView {
        day: shift.day,
        start: shift.start,
        when,
        hours,
        what,
        note: shift.note.clone(),
        state,
        status,
        buttons,
        sending: card.sending,
        failed: card.failed,
    }
}

/// A shift in words: when ("Thu 3 Dec, 07:00 to 15:00"), its hours
/// ("07:00 to 15:00") and what ("Senior carer, Rowan unit").
fn shift_words(shift: &Shift, this_year: i32) -> (String, String, String) {
    let mut hours = format!(
        "{} to {}",
        minutes_label(shift.start),
        minutes_label(shift.end)
    );
    if shift.overnight() {
        hours.push_str(" the next day");
    }
    let when = format!("{}, {hours}", day_label(shift.day, this_year));
    let what = if shift.unit.trim().is_empty() {
        shift.role.clone()
    } else {
        format!("{}, {}", shift.role, shift.unit)
    };
    (when, hours, what)
}

/// "I can't make my shift" as its card shows it, in a one-to-one
/// conversation with a manager. What it says is content: it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct CannotWorkView {
    /// "Ben Okafor can't make this shift", or, on her own phone, "You told
    /// your manager you can't make this shift".
    pub who: String,
    pub when: String,
    pub what: String,
    /// The reader may offer it to the team (she did not send it).
    pub can_offer: bool,
    /// The shift, as an offer would carry it (no note: nothing of why).
    pub shift: Shift,
}

impl std::fmt::Debug for CannotWorkView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CannotWorkView")
            .field("day", &self.shift.day)
            .field("can_offer", &self.can_offer)
            .finish_non_exhaustive()
    }
}

/// The card for `sender`'s "I can't make my shift", for `viewer`.
pub fn cannot_work_view(
    sender: UserId,
    shift: &Shift,
    viewer: Viewer,
    directory: &Directory,
) -> CannotWorkView {
    let (when, _, what) = shift_words(shift, viewer.this_year);
    let own = sender == viewer.me;
    CannotWorkView {
        who: if own {
            "You told your manager you can't make this shift.".to_owned()
        } else {
            format!(
                "{} can't make this shift.",
                directory.name_of(sender).unwrap_or("A colleague")
            )
        },
        when,
        what,
        can_offer: !own,
        shift: Shift {
            note: String::new(),
            ..shift.clone()
        },
    }
}

/// One day of the week's shifts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShiftDay {
    /// "Thu 3 Dec".
    pub label: String,
    /// The day's offers, earliest start first: (the offer's message id, its view).
    pub shifts: Vec<(huddle_core::ids::ClientMessageId, ShiftView)>,
}

/// The days the group needs to cover, from `today` for `DAYS_AHEAD` days:
/// each day with its offers (withdrawn ones left out), earliest first, and
/// how many of them are still not confirmed for anyone (the gaps).
pub fn shift_week(
    offers: impl IntoIterator<Item = (huddle_core::ids::ClientMessageId, ShiftView)>,
    today: u32,
    this_year: i32,
) -> (Vec<ShiftDay>, usize) {
    let mut shifts: Vec<(huddle_core::ids::ClientMessageId, ShiftView)> = offers
        .into_iter()
        .filter(|(_, view)| view.state != "withdrawn")
        .filter(|(_, view)| view.day >= today && view.day < today.saturating_add(DAYS_AHEAD))
        .collect();
    shifts.sort_by_key(|(id, view)| (view.day, view.start, *id));
    let gaps = shifts
        .iter()
        .filter(|(_, view)| view.state != "confirmed")
        .count();
    let mut days: Vec<ShiftDay> = Vec::new();
    for (id, view) in shifts {
        let label = day_label(view.day, this_year);
        match days.last_mut() {
            Some(day) if day.label == label => day.shifts.push((id, view)),
            _ => days.push(ShiftDay {
                label,
                shifts: vec![(id, view)],
            }),
        }
    }
    (days, gaps)
}

/// How far ahead the week's list looks.
pub const DAYS_AHEAD: u32 = 7;

/// Where an open shift stands: who claimed it first, and who else asked.
fn open_status(
    requests: &[Request],
    viewer: Viewer,
    decider: &str,
    name: &dyn Fn(UserId) -> String,
) -> (&'static str, String) {
    let Some(first) = requests.first() else {
        return ("open", "Open: nobody has claimed it yet.".to_owned());
    };
    let waiting = format!("waiting for {decider} to confirm");
    // Who else asked (the reader is told of her own request apart).
    let others: Vec<String> = requests[1..]
        .iter()
        .filter(|r| r.by() != viewer.me)
        .map(|r| name(r.by()))
        .collect();
    let mut status = if first.by() == viewer.me {
        format!("Claimed by you, {waiting}.")
    } else if requests.iter().any(|r| r.by() == viewer.me) {
        format!(
            "Already claimed by {}. You asked too, in case it is not confirmed for them.",
            name(first.by())
        )
    } else {
        format!("Claimed by {}, {waiting}.", name(first.by()))
    };
    if !others.is_empty() {
        status.push_str(&format!(" Also asked: {}.", others.join(", ")));
    }
    ("claimed", status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle_core::ids::ClientMessageId;
    use huddle_core::wire::{Person, Role};

    const ANN: UserId = UserId::from_bytes([1; 16]);
    const BEN: UserId = UserId::from_bytes([2; 16]);
    const CAROL: UserId = UserId::from_bytes([3; 16]);

    fn directory() -> Directory {
        let person = |user, name: &str| Person {
            user,
            display_name: name.into(),
            role: Role::Staff,
            devices: vec![],
        };
        Directory {
            people: vec![
                person(ANN, "Ann Lee"),
                person(BEN, "Ben Okafor"),
                person(CAROL, "Carol Diaz"),
            ],
        }
    }

    fn offer() -> MessageRef {
        MessageRef {
            author: ANN,
            client_msg: ClientMessageId::from_bytes([9; 16]),
        }
    }

    fn request(user: UserId) -> Request {
        Request {
            id: MessageRef {
                author: user,
                client_msg: ClientMessageId::from_bytes(*user.as_bytes()),
            },
        }
    }

    fn night() -> Shift {
        Shift {
            day: 20_425, // Wednesday 3 December 2025
            start: 20 * 60,
            end: 8 * 60,
            unit: "Rowan unit".into(),
            role: "Senior carer".into(),
            note: String::new(),
        }
    }

    #[test]
    fn a_shift_someone_cannot_work_reads_as_hers_and_is_offered_without_its_note() {
        let viewer = |me| Viewer {
            me,
            administrator: true,
            this_year: 2025,
        };
        let shift = Shift {
            note: "Private to my manager".into(),
            ..night()
        };
        let managers = cannot_work_view(BEN, &shift, viewer(ANN), &directory());
        assert_eq!(managers.who, "Ben Okafor can't make this shift.");
        assert_eq!(managers.when, "Wed 3 Dec, 20:00 to 08:00 the next day");
        assert_eq!(managers.what, "Senior carer, Rowan unit");
        assert!(managers.can_offer);
        assert_eq!(managers.shift.note, "", "nothing of why goes to the team");
        let own = cannot_work_view(BEN, &shift, viewer(BEN), &directory());
        assert!(!own.can_offer);
        assert!(own.who.starts_with("You told"));
        assert!(!format!("{own:?}").contains("Rowan"));
    }

    /// `shift`'s card standing as `status`, for `me` (staff, in 2025).
    fn view_of(shift: &Shift, status: ShiftStatus, me: UserId) -> ShiftView {
        let viewer = Viewer {
            me,
            administrator: false,
            this_year: 2025,
        };
        let card = ShiftCard {
            status,
            sending: false,
            failed: false,
        };
        shift_view(offer(), shift, &card, viewer, &directory())
    }

    fn view(status: ShiftStatus, me: UserId) -> ShiftView {
        view_of(&night(), status, me)
    }

    fn labels(view: &ShiftView) -> Vec<&str> {
        view.buttons.iter().map(|b| b.label.as_str()).collect()
    }

    #[test]
    fn a_card_never_prints_what_the_shift_says() {
        let mut shift = night();
        shift.note = "Mrs Jones in room 4".into();
        let printed = format!(
            "{:?}",
            view_of(&shift, ShiftStatus::Open { requests: vec![] }, BEN)
        );
        assert!(
            !printed.contains("Jones") && !printed.contains("Rowan"),
            "{printed}"
        );
    }

    #[test]
    fn a_card_says_when_and_what_in_plain_words() {
        let view = view(ShiftStatus::Open { requests: vec![] }, BEN);
        assert_eq!(view.when, "Wed 3 Dec, 20:00 to 08:00 the next day");
        assert_eq!(view.what, "Senior carer, Rowan unit");
        assert_eq!(view.status, "Open: nobody has claimed it yet.");
        assert_eq!(labels(&view), ["I can take this shift"]);
    }

    #[test]
    fn the_first_to_claim_and_everyone_else_read_the_same_standing_in_their_own_words() {
        let open = ShiftStatus::Open {
            requests: vec![request(BEN), request(CAROL)],
        };
        let ben = view(open.clone(), BEN);
        assert_eq!(
            ben.status,
            "Claimed by you, waiting for Ann Lee to confirm. Also asked: Carol Diaz."
        );
        assert_eq!(labels(&ben), ["Cancel my claim"]);
        let carol = view(open.clone(), CAROL);
        assert_eq!(
            carol.status,
            "Already claimed by Ben Okafor. You asked too, in case it is not confirmed for them."
        );
        let ann = view(open, ANN);
        assert_eq!(
            ann.status,
            "Claimed by Ben Okafor, waiting for you to confirm. Also asked: Carol Diaz."
        );
        assert_eq!(
            labels(&ann),
            [
                "Confirm Ben Okafor",
                "Confirm Carol Diaz",
                "Withdraw this offer"
            ]
        );
        assert!(ann.buttons[0].primary && !ann.buttons[1].primary);
    }

    #[test]
    fn the_week_lists_days_in_order_with_the_gaps_still_open_and_leaves_out_the_rest() {
        let at = |day: u32, start: u16, status: ShiftStatus, n: u8| {
            let mut shift = night();
            (shift.day, shift.start) = (day, start);
            (
                ClientMessageId::from_bytes([n; 16]),
                view_of(&shift, status, BEN),
            )
        };
        let open = || ShiftStatus::Open { requests: vec![] };
        let taken = ShiftStatus::Confirmed {
            to: request(CAROL),
            others: vec![],
        };
        let today = 20_425;
        let (days, gaps) = shift_week(
            [
                at(today + 1, 20 * 60, open(), 1),
                at(today, 20 * 60, taken, 2),
                at(today + 1, 7 * 60, open(), 3),
                at(today, 8 * 60, ShiftStatus::Withdrawn, 4),
                at(today - 1, 8 * 60, open(), 5),
                at(today + DAYS_AHEAD, 8 * 60, open(), 6),
            ],
            today,
            2025,
        );
        let listed: Vec<(&str, Vec<u8>)> = days
            .iter()
            .map(|day| {
                (
                    day.label.as_str(),
                    day.shifts.iter().map(|(id, _)| id.as_bytes()[0]).collect(),
                )
            })
            .collect();
        assert_eq!(listed, [("Wed 3 Dec", vec![2]), ("Thu 4 Dec", vec![3, 1])]);
        assert_eq!(gaps, 2, "the two open ones; the taken one is covered");
        assert_eq!(days[1].shifts[0].1.hours, "07:00 to 08:00");
        assert_eq!(days[1].shifts[1].1.hours, "20:00 to 08:00 the next day");
    }

    #[test]
    fn a_confirmed_shift_is_taken_for_everyone_but_its_holder() {
        let confirmed = ShiftStatus::Confirmed {
            to: request(BEN),
            others: vec![request(CAROL)],
        };
        assert_eq!(
            view(confirmed.clone(), BEN).status,
            "Confirmed: this shift is yours."
        );
        let carol = view(confirmed.clone(), CAROL);
        assert_eq!(carol.status, "Taken: confirmed for Ben Okafor.");
        assert!(carol.buttons.is_empty());
        assert_eq!(
            labels(&view(confirmed, ANN)),
            ["Reopen this shift", "Withdraw this offer"]
        );
        let withdrawn = view(ShiftStatus::Withdrawn, ANN);
        assert_eq!(withdrawn.state, "withdrawn");
        assert!(withdrawn.buttons.is_empty());
    }
}
