//! Times as a person reads them: "14:05", "Yesterday", and "Disappears in 3 hours".

use huddle_core::calendar::{civil_from_days, days_from_civil};
use huddle_core::retention::UnixMillis;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// How far behind the screens' clock may be: it ticks every few seconds.
const CLOCK_LAG: u64 = 15_000;

/// When a message will disappear, relative to now.
pub fn expiry_label(expires_at: UnixMillis, now: UnixMillis) -> String {
    let left = expires_at.0.saturating_sub(now.0);
    if left == 0 {
        return "Disappearing now".to_owned();
    }
    // Minutes round up, so the last one reads "1 minute", never "0", but
    // not for the few seconds the clock the label is drawn with may lag:
    // a message sent a moment after the last tick reads "5 minutes", not
    // "6", in a 5-minute group. Hours and days round to the nearest, for
    // the same reason ("7 days", not "8", in a 7-day group).
    let nearest = |unit: u64| ((left + unit / 2) / unit).max(1);
    let (count, unit) = if left < HOUR {
        (
            left.saturating_sub(CLOCK_LAG).div_ceil(MINUTE).max(1),
            "minute",
        )
    } else if left < 2 * DAY {
        (nearest(HOUR), "hour")
    } else {
        (nearest(DAY), "day")
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("Disappears in {count} {unit}{plural}")
}

/// A message's own countdown, only near its end: the conversation says
/// once how long its messages last, so each bubble need not repeat it. Its
/// last day, or its last half where the group keeps messages under two
/// days.
pub fn expiry_soon_label(
    expires_at: UnixMillis,
    now: UnixMillis,
    retention_millis: u64,
) -> Option<String> {
    let soon = if retention_millis < 2 * DAY {
        retention_millis / 2
    } else {
        DAY
    };
    (expires_at.0.saturating_sub(now.0) <= soon).then(|| expiry_label(expires_at, now))
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

/// How long something has waited, rounded down: "40 seconds", "12
/// minutes", "2 hours".
pub fn elapsed_label(millis: u64) -> String {
    let (count, unit) = if millis < MINUTE {
        (millis / 1000, "second")
    } else if millis < HOUR {
        (millis / MINUTE, "minute")
    } else {
        (millis / HOUR, "hour")
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

const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A shift's day (days since 1970-01-01 on the home's calendar) as
/// "Tue 3 Dec", with the year when it is not `this_year`.
pub fn day_label(day: u32, this_year: i32) -> String {
    const NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let (year, month, day_of_month) = civil_from_days(i64::from(day));
    let name = NAMES[(day % 7) as usize];
    let month = MONTH_NAMES[(month - 1) as usize];
    if year == i64::from(this_year) {
        format!("{name} {day_of_month} {month}")
    } else {
        format!("{name} {day_of_month} {month} {year}")
    }
}

/// Minutes after midnight as "07:30".
pub fn minutes_label(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The day of `at` on the phone's calendar (`offset_minutes` east of UTC).
pub fn local_day(at: UnixMillis, offset_minutes: i64) -> u32 {
    let local = at.0 as i64 + offset_minutes * 60_000;
    u32::try_from(local.div_euclid(DAY as i64)).unwrap_or(0)
}

/// A date field's value ("2026-12-03") as a day; `None` if it is not one.
pub fn parse_date(value: &str) -> Option<u32> {
    let mut parts = value.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // 31 February is not a day: it must read back as what was written.
    (civil_from_days(days) == (year, month, day))
        .then(|| u32::try_from(days).ok())
        .flatten()
}

/// A day as a date field's value ("2026-12-03").
pub fn date_value(day: u32) -> String {
    let (year, month, day_of_month) = civil_from_days(i64::from(day));
    format!("{year:04}-{month:02}-{day_of_month:02}")
}

/// A time field's value ("07:30") as minutes after midnight.
pub fn parse_time(value: &str) -> Option<u16> {
    let (hours, minutes) = value.trim().split_once(':')?;
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.get(..2)?.parse().ok()?);
    (hours < 24 && minutes < 60).then(|| hours * 60 + minutes)
}

/// The instant a day and a clock time on the phone's calendar name
/// (`offset_minutes` east of UTC): what a date and a time field mean.
pub fn local_instant(day: u32, minutes: u16, offset_minutes: i64) -> UnixMillis {
    let local = i64::from(day) * DAY as i64 + i64::from(minutes) * 60_000;
    UnixMillis(u64::try_from(local - offset_minutes * 60_000).unwrap_or(0))
}

/// When a person's access ends, inside a sentence: "today at 18:00",
/// "14 Dec at 18:00".
pub fn access_end_label(ends_at: UnixMillis, now: UnixMillis, offset_minutes: i64) -> String {
    let local = |t: UnixMillis| t.0 as i64 + offset_minutes * 60_000;
    let minutes = local(ends_at).rem_euclid(DAY as i64) / 60_000;
    let clock = format!("{:02}:{:02}", minutes / 60, minutes % 60);
    let (day, today) = (
        local(ends_at).div_euclid(DAY as i64),
        local(now).div_euclid(DAY as i64),
    );
    if day == today {
        return format!("today at {clock}");
    }
    let (year, month, day_of_month) = civil_from_days(day);
    let month = MONTH_NAMES[(month - 1) as usize];
    if year == civil_from_days(today).0 {
        format!("{day_of_month} {month} at {clock}")
    } else {
        format!("{day_of_month} {month} {year} at {clock}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-22 14:05:00 UTC, a Sunday.
    const NOW: UnixMillis = UnixMillis(1_795_356_300_000);

    #[test]
    fn how_long_something_has_waited_is_rounded_down() {
        assert_eq!(elapsed_label(999), "0 seconds");
        assert_eq!(elapsed_label(40_500), "40 seconds");
        assert_eq!(elapsed_label(MINUTE), "1 minute");
        assert_eq!(elapsed_label(12 * MINUTE + 59_000), "12 minutes");
        assert_eq!(elapsed_label(2 * HOUR + 59 * MINUTE), "2 hours");
    }

    #[test]
    fn shift_days_and_times_read_and_write_as_the_form_and_the_card_show_them() {
        let day = parse_date("2026-12-03").expect("a date");
        assert_eq!(date_value(day), "2026-12-03");
        assert_eq!(day_label(day, 2026), "Thu 3 Dec");
        assert_eq!(day_label(day, 2025), "Thu 3 Dec 2026");
        assert_eq!(parse_date("2026-02-31"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(
            parse_date("2028-02-29").map(date_value).as_deref(),
            Some("2028-02-29")
        );
        assert_eq!(parse_time("07:30"), Some(450));
        assert_eq!(parse_time("23:59:00"), Some(23 * 60 + 59));
        assert_eq!(parse_time("24:00"), None);
        assert_eq!(parse_time(""), None);
        assert_eq!(minutes_label(450), "07:30");
        // 14:05 UTC on Sunday 22 November is Monday already in Auckland.
        assert_eq!(day_label(local_day(NOW, 0), 2026), "Sun 22 Nov");
        assert_eq!(day_label(local_day(NOW, 13 * 60), 2026), "Mon 23 Nov");
    }

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
        // Sent a moment after the clock last ticked, in a 5-minute group.
        assert_eq!(at(5 * MINUTE + 4_000), "Disappears in 5 minutes");
        assert_eq!(at(4 * MINUTE + 20_000), "Disappears in 5 minutes");
        assert_eq!(at(5_000), "Disappears in 1 minute");
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

    #[test]
    fn an_end_of_access_is_read_on_the_phones_calendar() {
        // 18:00 on 2026-12-14 in London in winter (UTC) and in Paris (UTC+1).
        let day = parse_date("2026-12-14").expect("a date");
        let six = parse_time("18:00").expect("a time");
        assert_eq!(local_instant(day, six, 0), UnixMillis(1_797_271_200_000));
        assert_eq!(local_instant(day, six, 60), UnixMillis(1_797_267_600_000));
        let ends = local_instant(day, six, 60);
        assert_eq!(access_end_label(ends, NOW, 60), "14 Dec at 18:00");
        assert_eq!(
            access_end_label(ends, UnixMillis(1_797_240_000_000), 60),
            "today at 18:00"
        );
        assert_eq!(
            access_end_label(UnixMillis(1_830_000_000_000), NOW, 0),
            "28 Dec 2027 at 13:20"
        );
    }

    #[test]
    fn a_bubble_counts_down_only_near_its_end() {
        let week = 7 * DAY;
        let sent = |left: u64| UnixMillis(NOW.0 + left);
        assert_eq!(expiry_soon_label(sent(week), NOW, week), None);
        assert_eq!(expiry_soon_label(sent(DAY + HOUR), NOW, week), None);
        assert_eq!(
            expiry_soon_label(sent(20 * HOUR), NOW, week).as_deref(),
            Some("Disappears in 20 hours")
        );
        // A 5-minute group: its last two and a half minutes.
        assert_eq!(expiry_soon_label(sent(5 * MINUTE), NOW, 5 * MINUTE), None);
        assert_eq!(
            expiry_soon_label(sent(2 * MINUTE), NOW, 5 * MINUTE).as_deref(),
            Some("Disappears in 2 minutes")
        );
    }
}
