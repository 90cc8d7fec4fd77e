//! Times as a person reads them: "14:05", "Yesterday", and "Disappears in 3 hours".

use huddle_core::retention::UnixMillis;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// When a message will disappear, relative to now.
pub fn expiry_label(expires_at: UnixMillis, now: UnixMillis) -> String {
    let left = expires_at.0.saturating_sub(now.0);
    if left == 0 {
        return "Disappearing now".to_owned();
    }
    // Minutes round up, so the last one reads "1 minute", never "0".
    // Hours and days round to the nearest: the clock the label is drawn
    // with ticks every few seconds, and a message sent a moment after the
    // last tick must read "7 days", not "8", in a 7-day group.
    let nearest = |unit: u64| ((left + unit / 2) / unit).max(1);
    let (count, unit) = if left < HOUR {
        (left.div_ceil(MINUTE), "minute")
    } else if left < 2 * DAY {
        (nearest(HOUR), "hour")
    } else {
        (nearest(DAY), "day")
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("Disappears in {count} {unit}{plural}")
}

/// A retention time in words ("1 day", "30 minutes").
pub fn duration_label(millis: u64) -> String {
    let (count, unit) = if millis >= DAY && millis.is_multiple_of(DAY) {
        (millis / DAY, "day")
    } else if millis >= HOUR && millis.is_multiple_of(HOUR) {
        (millis / HOUR, "hour")
    } else {
        (millis.div_ceil(MINUTE), "minute")
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

/// The clock time of `at` in the phone's time zone (`offset_minutes` east
/// of UTC), with the day when it is not today.
pub fn clock_label(at: UnixMillis, now: UnixMillis, offset_minutes: i64) -> String {
    let local = |t: UnixMillis| t.0 as i64 + offset_minutes * 60_000;
    let (at_local, now_local) = (local(at), local(now));
    let day = |t: i64| t.div_euclid(DAY as i64);
    let minutes = at_local.rem_euclid(DAY as i64) / 60_000;
    let clock = format!("{:02}:{:02}", minutes / 60, minutes % 60);
    match day(now_local) - day(at_local) {
        0 => clock,
        1 => format!("Yesterday {clock}"),
        2..=6 => {
            // 1 January 1970 was a Thursday.
            const NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
            let name = NAMES[day(at_local).rem_euclid(7) as usize];
            format!("{name} {clock}")
        }
        _ => {
            let (_, month, day_of_month) = civil_from_days(day(at_local));
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!("{day_of_month} {} {clock}", MONTHS[(month - 1) as usize])
        }
    }
}

/// The date of `at` in the phone's time zone, as "30 Nov 2026".
pub fn date_label(at: UnixMillis, offset_minutes: i64) -> String {
    let local = at.0 as i64 + offset_minutes * 60_000;
    let (year, month, day) = civil_from_days(local.div_euclid(DAY as i64));
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!("{day} {} {year}", MONTHS[(month - 1) as usize])
}

/// When one of a person's phones was added and last used, so that she can
/// tell which is the lost one: "Added 12 Nov 2026, last used 14:02".
pub fn phone_history_label(
    added_at: UnixMillis,
    last_seen: Option<UnixMillis>,
    now: UnixMillis,
    offset_minutes: i64,
) -> String {
    let added = date_label(added_at, offset_minutes);
    match last_seen {
        Some(seen) => format!(
            "Added {added}, last used {}",
            clock_label(seen, now, offset_minutes)
        ),
        None => format!("Added {added}"),
    }
}

/// A signed-out phone's line for whoever signed it out: which phone, when,
/// and whether it has been told to wipe itself yet (the relay's word: it
/// told the phone, which proved it was that phone).
pub fn signed_out_label(
    added_at: UnixMillis,
    signed_out_at: UnixMillis,
    wiped_at: Option<UnixMillis>,
    now: UnixMillis,
    offset_minutes: i64,
) -> String {
    // Inside a sentence, "yesterday" takes no capital.
    let when = |at: UnixMillis| {
        let label = clock_label(at, now, offset_minutes);
        match label.strip_prefix("Yesterday") {
            Some(rest) => format!("yesterday{rest}"),
            None => label,
        }
    };
    let phone = format!("Phone added {}", date_label(added_at, offset_minutes));
    match wiped_at {
        Some(wiped) => format!(
            "{phone}, signed out {}. Told to wipe itself {}.",
            when(signed_out_at),
            when(wiped)
        ),
        None => format!(
            "{phone}, signed out {}. No word from it yet: it wipes itself when Huddle is next opened on it online.",
            when(signed_out_at)
        ),
    }
}

/// The calendar year of `at`, for the patient-data detector's age check.
pub fn year_of(at: UnixMillis) -> i32 {
    civil_from_days((at.0 / DAY) as i64).0 as i32
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-22 14:05:00 UTC, a Sunday.
    const NOW: UnixMillis = UnixMillis(1_795_356_300_000);

    #[test]
    fn a_phone_says_when_it_was_added_and_last_used() {
        let added = UnixMillis(NOW.0 - 10 * DAY);
        assert_eq!(
            phone_history_label(added, Some(UnixMillis(NOW.0 - 3_600_000)), NOW, 0),
            "Added 12 Nov 2026, last used 13:05"
        );
        assert_eq!(
            phone_history_label(added, None, NOW, 0),
            "Added 12 Nov 2026"
        );
    }

    #[test]
    fn a_signed_out_phone_says_whether_it_has_wiped_itself() {
        let added = UnixMillis(NOW.0 - 10 * 86_400_000);
        let out = UnixMillis(NOW.0 - 25 * 3_600_000);
        assert_eq!(
            signed_out_label(added, out, Some(UnixMillis(NOW.0 - 60_000)), NOW, 0),
            "Phone added 12 Nov 2026, signed out yesterday 13:05. Told to wipe itself 14:04."
        );
        assert_eq!(
            signed_out_label(added, UnixMillis(NOW.0 - 120_000), None, NOW, 60),
            "Phone added 12 Nov 2026, signed out 15:03. No word from it yet: it wipes itself when Huddle is next opened on it online."
        );
    }

    #[test]
    fn expiry_reads_in_the_largest_sensible_unit() {
        let at = |ms: u64| expiry_label(UnixMillis(NOW.0 + ms), NOW);
        assert_eq!(at(0), "Disappearing now");
        assert_eq!(at(30_000), "Disappears in 1 minute");
        assert_eq!(at(5 * MINUTE), "Disappears in 5 minutes");
        assert_eq!(at(HOUR), "Disappears in 1 hour");
        assert_eq!(at(DAY + 1), "Disappears in 24 hours");
        assert_eq!(at(DAY + 40 * MINUTE), "Disappears in 25 hours");
        assert_eq!(at(7 * DAY), "Disappears in 7 days");
        // Just sent, drawn with a clock a few seconds behind.
        assert_eq!(at(7 * DAY + 4_000), "Disappears in 7 days");
        assert_eq!(at(HOUR + 4_000), "Disappears in 1 hour");
        assert_eq!(at(7 * DAY - 3 * HOUR), "Disappears in 7 days");
        assert_eq!(expiry_label(UnixMillis(1), NOW), "Disappearing now");
    }

    #[test]
    fn durations_read_plainly() {
        assert_eq!(duration_label(5 * MINUTE), "5 minutes");
        assert_eq!(duration_label(HOUR), "1 hour");
        assert_eq!(duration_label(DAY), "1 day");
        assert_eq!(duration_label(14 * DAY), "14 days");
    }

    #[test]
    fn clock_times_carry_the_day_when_not_today() {
        assert_eq!(clock_label(NOW, NOW, 0), "14:05");
        // An hour east of UTC.
        assert_eq!(clock_label(NOW, NOW, 60), "15:05");
        assert_eq!(
            clock_label(UnixMillis(NOW.0 - DAY), NOW, 0),
            "Yesterday 14:05"
        );
        assert_eq!(
            clock_label(UnixMillis(NOW.0 - 3 * DAY), NOW, 0),
            "Thu 14:05"
        );
        assert_eq!(
            clock_label(UnixMillis(NOW.0 - 30 * DAY), NOW, 0),
            "23 Oct 14:05"
        );
        assert_eq!(year_of(NOW), 2026);
    }

    #[test]
    fn dates_read_with_the_year() {
        assert_eq!(date_label(NOW, 0), "22 Nov 2026");
        // Ten hours east: already the next day.
        assert_eq!(date_label(NOW, 600), "23 Nov 2026");
    }
}
