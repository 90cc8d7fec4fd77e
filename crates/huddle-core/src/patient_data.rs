//! The patient-data detector: finds text that looks like it identifies a person in care.
//!
//! The composer runs this before sending and asks "this looks like patient
//! information; edit or send anyway?". It looks for NHS numbers (ten digits
//! whose last digit is a valid modulus-11 check digit, written together or as
//! 3-3-4), dates of birth and UK postcodes. It is a nudge, not a filter: it
//! prefers missing an unusual format to nagging about every phone number,
//! time or shift date.
//!
//! The scanner works on ASCII bytes and returns byte spans of the input, so
//! it is fast on a slow phone and needs no regex engine in the bundle.

use std::ops::Range;

/// What a finding looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatientDataKind {
    NhsNumber,
    DateOfBirth,
    Postcode,
}

/// One piece of text that looks like patient data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: PatientDataKind,
    /// Byte offsets into the scanned text.
    pub span: Range<usize>,
}

/// A full date with a four-digit year at least this many years before the
/// reference year is taken as a birth date even without a cue word: rotas,
/// training and appointments are not that old.
pub const BIRTH_YEAR_MIN_AGE: i32 = 16;

/// Words that, just before a date, say it is a date of birth.
const BIRTH_CUES: [&str; 5] = ["dob", "d.o.b", "date of birth", "born", "birth date"];

/// How far before a date a cue word may stand.
const CUE_WINDOW: usize = 24;

/// Finds everything in `text` that looks like patient-identifiable data.
/// `reference_year` is this year, passed in (this crate reads no clock).
pub fn detect(text: &str, reference_year: i32) -> Vec<Finding> {
    let bytes = text.as_bytes();
    let mut findings = Vec::new();
    find_nhs_numbers(bytes, &mut findings);
    find_birth_dates(text, reference_year, &mut findings);
    find_postcodes(bytes, &mut findings);
    findings.sort_by_key(|finding| finding.span.start);
    // A span claimed by an earlier finding is not reported twice.
    let mut end_of_last = 0;
    findings.retain(|finding| {
        let keep = finding.span.start >= end_of_last;
        if keep {
            end_of_last = finding.span.end;
        }
        keep
    });
    findings
}

/// Whether ten digits form a valid NHS number (modulus 11).
pub fn is_valid_nhs_number(digits: &[u8; 10]) -> bool {
    if digits.iter().any(|d| *d > 9) {
        return false;
    }
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| u32::from(*digit) * weight)
        .sum();
    let check = match 11 - (sum % 11) {
        11 => 0,
        10 => return false,
        check => check,
    };
    check == u32::from(digits[9])
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte >= 0x80
}

/// A run of ASCII digits starting at `start`.
fn digit_run(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count()
}

fn find_nhs_numbers(bytes: &[u8], findings: &mut Vec<Finding>) {
    let mut index = 0;
    while index < bytes.len() {
        let starts_chain =
            bytes[index].is_ascii_digit() && (index == 0 || !bytes[index - 1].is_ascii_digit());
        if !starts_chain {
            index += 1;
            continue;
        }
        // A chain glued to a word or after "+" (an international phone
        // number) is walked over whole, not matched.
        let glued = index > 0 && (is_word_byte(bytes[index - 1]) || bytes[index - 1] == b'+');
        // Collect digit groups joined by single spaces or hyphens.
        let mut groups: Vec<Range<usize>> = Vec::new();
        let mut separator = None;
        let mut cursor = index;
        loop {
            let len = digit_run(bytes, cursor);
            groups.push(cursor..cursor + len);
            cursor += len;
            let next = bytes.get(cursor).copied();
            let follows_digit = bytes.get(cursor + 1).is_some_and(u8::is_ascii_digit);
            match next {
                Some(sep @ (b' ' | b'-'))
                    if follows_digit && separator.is_none_or(|s| s == sep) =>
                {
                    separator = Some(sep);
                    cursor += 1;
                }
                _ => break,
            }
        }
        let end = groups.last().map_or(index, |g| g.end);
        let bounded = bytes.get(end).is_none_or(|b| !is_word_byte(*b));
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if !glued && bounded && (lengths == [10] || lengths == [3, 3, 4]) {
            let mut digits = [0u8; 10];
            let all = groups.iter().flat_map(|g| bytes[g.clone()].iter());
            for (slot, byte) in digits.iter_mut().zip(all) {
                *slot = byte - b'0';
            }
            if is_valid_nhs_number(&digits) {
                findings.push(Finding {
                    kind: PatientDataKind::NhsNumber,
                    span: index..end,
                });
            }
        }
        index = end.max(index + 1);
    }
}

/// A calendar date found in text.
struct DateMatch {
    span: Range<usize>,
    year: Option<i32>,
    four_digit_year: bool,
}

fn find_birth_dates(text: &str, reference_year: i32, findings: &mut Vec<Finding>) {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let mut index = 0;
    while index < bytes.len() {
        let at_word_start = index == 0 || !is_word_byte(bytes[index - 1]);
        let found = if at_word_start {
            numeric_date(bytes, index).or_else(|| written_date(lower.as_bytes(), index))
        } else {
            None
        };
        let Some(date) = found else {
            index += 1;
            continue;
        };
        let window_start = date.span.start.saturating_sub(CUE_WINDOW);
        let before = &lower.as_bytes()[window_start..date.span.start];
        let cued = BIRTH_CUES
            .iter()
            .any(|cue| before.windows(cue.len()).any(|w| w == cue.as_bytes()));
        let old_enough = date.four_digit_year
            && date
                .year
                .is_some_and(|year| year <= reference_year - BIRTH_YEAR_MIN_AGE && year >= 1880);
        if (cued && date.year.is_some()) || old_enough {
            findings.push(Finding {
                kind: PatientDataKind::DateOfBirth,
                span: date.span.clone(),
            });
        }
        index = date.span.end;
    }
}

fn parse_number(bytes: &[u8], start: usize, min: usize, max: usize) -> Option<(u32, usize)> {
    let len = digit_run(bytes, start);
    if len < min || len > max {
        return None;
    }
    let value = bytes[start..start + len]
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    Some((value, start + len))
}

fn is_real_date(day: u32, month: u32, year: Option<i32>) -> bool {
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => match year {
            Some(y) if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            Some(_) => 28,
            None => 29,
        },
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

fn ends_cleanly(bytes: &[u8], end: usize) -> bool {
    match bytes.get(end) {
        None => true,
        // A sentence may end right after a date: "born 1.2.1950."
        Some(b'.' | b'/' | b'-') => !bytes.get(end + 1).is_some_and(u8::is_ascii_digit),
        Some(b) => !is_word_byte(*b),
    }
}

/// `12/03/1954`, `12-3-54`, `12.03.1954`, or ISO `1954-03-12`.
fn numeric_date(bytes: &[u8], start: usize) -> Option<DateMatch> {
    let (first, after_first) = parse_number(bytes, start, 1, 4)?;
    let separator = *bytes.get(after_first)?;
    if !matches!(separator, b'/' | b'-' | b'.') {
        return None;
    }
    let (second, after_second) = parse_number(bytes, after_first + 1, 1, 2)?;
    if bytes.get(after_second) != Some(&separator) {
        return None;
    }
    let third_start = after_second + 1;
    let third_len = digit_run(bytes, third_start);
    let (third, end) = parse_number(bytes, third_start, 2, 4)?;
    if !ends_cleanly(bytes, end) {
        return None;
    }
    let first_len = after_first - start;
    let (day, month, year, four_digit) = if first_len == 4 && separator == b'-' && third_len == 2 {
        (third, second, first as i32, true)
    } else if first_len <= 2 && (third_len == 2 || third_len == 4) {
        let year = if third_len == 4 {
            third as i32
        } else {
            // Two-digit years: only a cue word can make these a birth date,
            // and the century is a guess that does not matter for that.
            1900 + third as i32
        };
        (first, second, year, third_len == 4)
    } else {
        return None;
    };
    is_real_date(day, month, Some(year)).then_some(DateMatch {
        span: start..end,
        year: Some(year),
        four_digit_year: four_digit,
    })
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// A month name at `start` (full or three letters, "sept" too): its number and end.
fn month_name(lower: &[u8], start: usize) -> Option<(u32, usize)> {
    let word_len = lower[start..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let word = std::str::from_utf8(&lower[start..start + word_len]).ok()?;
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let month = MONTHS.iter().zip(FULL).position(|(short, full)| {
        word == *short || word == full || (word == "sept" && *short == "sep")
    })?;
    Some((month as u32 + 1, start + word_len))
}

fn skip_ordinal(lower: &[u8], at: usize) -> usize {
    for suffix in ["st", "nd", "rd", "th"] {
        if lower[at..].starts_with(suffix.as_bytes())
            && !lower.get(at + 2).is_some_and(u8::is_ascii_alphabetic)
        {
            return at + 2;
        }
    }
    at
}

fn skip_spaces(lower: &[u8], mut at: usize) -> usize {
    while lower.get(at).is_some_and(|b| *b == b' ' || *b == b',') {
        at += 1;
    }
    at
}

/// `12 March 1954`, `12th Mar 1954`, `March 12, 1954`.
fn written_date(lower: &[u8], start: usize) -> Option<DateMatch> {
    let (day, month, after) = if lower[start].is_ascii_digit() {
        let (day, after_day) = parse_number(lower, start, 1, 2)?;
        let after_ordinal = skip_ordinal(lower, after_day);
        let month_start = skip_spaces(lower, after_ordinal);
        if month_start == after_ordinal && after_ordinal == after_day {
            return None;
        }
        let (month, after_month) = month_name(lower, month_start)?;
        (day, month, after_month)
    } else {
        let (month, after_month) = month_name(lower, start)?;
        let day_start = skip_spaces(lower, after_month);
        if day_start == after_month {
            return None;
        }
        let (day, after_day) = parse_number(lower, day_start, 1, 2)?;
        (day, month, skip_ordinal(lower, after_day))
    };
    let year_start = skip_spaces(lower, after);
    let year = if year_start > after {
        parse_number(lower, year_start, 4, 4).filter(|(_, end)| ends_cleanly(lower, *end))
    } else {
        None
    };
    let (year, end) = match year {
        Some((year, end)) => (Some(year as i32), end),
        None => (None, after),
    };
    is_real_date(day, month, year).then_some(DateMatch {
        span: start..end,
        year,
        four_digit_year: year.is_some(),
    })
}

/// Outward code shapes: A9, A99, AA9, AA99, A9A, AA9A.
fn is_outward_code(code: &[u8]) -> bool {
    let upper: Vec<u8> = code.iter().map(u8::to_ascii_uppercase).collect();
    let letter = |b: u8| b.is_ascii_uppercase();
    let digit = |b: u8| b.is_ascii_digit();
    let first_ok = |b: u8| letter(b) && !matches!(b, b'Q' | b'V' | b'X');
    let second_ok = |b: u8| letter(b) && !matches!(b, b'I' | b'J' | b'Z');
    match upper.as_slice() {
        [a, b] => first_ok(*a) && digit(*b),
        [a, b, c] => {
            first_ok(*a)
                && ((digit(*b) && (digit(*c) || letter(*c))) || (second_ok(*b) && digit(*c)))
        }
        [a, b, c, d] => first_ok(*a) && second_ok(*b) && digit(*c) && (digit(*d) || letter(*d)),
        _ => false,
    }
}

/// Inward code: a digit and two letters, never C, I, K, M, O or V.
fn is_inward_code(code: &[u8]) -> bool {
    let allowed = |b: u8| {
        let b = b.to_ascii_uppercase();
        b.is_ascii_uppercase() && !matches!(b, b'C' | b'I' | b'K' | b'M' | b'O' | b'V')
    };
    matches!(code, [d, a, b] if d.is_ascii_digit() && allowed(*a) && allowed(*b))
}

fn find_postcodes(bytes: &[u8], findings: &mut Vec<Finding>) {
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_alphabetic() || (index > 0 && is_word_byte(bytes[index - 1])) {
            index += 1;
            continue;
        }
        let word_len = bytes[index..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let word = &bytes[index..index + word_len];
        let word_end = index + word_len;
        let word_bounded = bytes.get(word_end).is_none_or(|b| !is_word_byte(*b));
        // "M1 1AE" (case-insensitive): outward, one space, inward.
        if word_bounded && is_outward_code(word) && bytes.get(word_end) == Some(&b' ') {
            let inward_start = word_end + 1;
            let inward_len = bytes[inward_start..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            let inward_end = inward_start + inward_len;
            let inward_bounded = bytes.get(inward_end).is_none_or(|b| !is_word_byte(*b));
            if inward_bounded && is_inward_code(&bytes[inward_start..inward_end]) {
                findings.push(Finding {
                    kind: PatientDataKind::Postcode,
                    span: index..inward_end,
                });
                index = inward_end;
                continue;
            }
        }
        // "M11AE": without a space only in capitals, so that ordinary words
        // and codes in lower case are left alone.
        if word_bounded
            && (5..=7).contains(&word_len)
            && word.iter().all(|b| !b.is_ascii_lowercase())
            && is_inward_code(&word[word_len - 3..])
            && is_outward_code(&word[..word_len - 3])
        {
            findings.push(Finding {
                kind: PatientDataKind::Postcode,
                span: index..word_end,
            });
        }
        index = word_end.max(index + 1);
    }
}

#[cfg(test)]
mod tests;
