//! Table-driven tests of the patient-data detector: what it must find, and what it must leave alone.

use super::*;

const THIS_YEAR: i32 = 2026;

/// (text, expected findings as (kind, matched text)).
fn cases() -> Vec<(&'static str, Vec<(PatientDataKind, &'static str)>)> {
    use PatientDataKind::*;
    vec![
        // NHS numbers: valid check digit, together or 3-3-4.
        (
            "NHS no 9434765919 for Mrs B",
            vec![(NhsNumber, "9434765919")],
        ),
        (
            "her number is 943 476 5919.",
            vec![(NhsNumber, "943 476 5919")],
        ),
        ("943-476-5919", vec![(NhsNumber, "943-476-5919")]),
        ("4010232137", vec![(NhsNumber, "4010232137")]),
        // Wrong check digit, or a check digit of 10: not an NHS number.
        ("9434765918", vec![]),
        ("9434765910", vec![]),
        // Phone numbers: eleven digits, or international.
        ("call me on 07700 900461", vec![]),
        ("07700900461", vec![]),
        ("0161 496 0958 is the office", vec![]),
        ("+44 943 476 5919", vec![]),
        ("+449434765919", vec![]),
        // Longer digit runs and mixed separators are not NHS numbers.
        ("94347659190", vec![]),
        ("ref 9434765919X", vec![]),
        ("943 476-5919", vec![]),
        // Times, counts and shift dates are not patient data.
        ("handover at 07:30, then 12:00", vec![]),
        ("shift on 12/03/2026 and 01-12-2026", vec![]),
        ("rota from 3 March 2026", vec![]),
        ("training on 14th November", vec![]),
        ("meds round 2-3 times", vec![]),
        ("room 12 and 14", vec![]),
        // Dates of birth: a cue word, or an old full date.
        ("DOB 12/03/1954", vec![(DateOfBirth, "12/03/1954")]),
        ("d.o.b. 1.2.54", vec![(DateOfBirth, "1.2.54")]),
        (
            "born 3 March 1941, lives alone",
            vec![(DateOfBirth, "3 March 1941")],
        ),
        (
            "Date of birth: March 3rd, 1941",
            vec![(DateOfBirth, "march 3rd, 1941")],
        ),
        ("Mr A (1950-07-21) fell", vec![(DateOfBirth, "1950-07-21")]),
        ("seen 21.07.1950.", vec![(DateOfBirth, "21.07.1950")]),
        ("DOB 31/02/1950", vec![]),
        ("dob tbc", vec![]),
        // Postcodes.
        ("lives at M1 1AE", vec![(Postcode, "M1 1AE")]),
        ("SW1A 1AA", vec![(Postcode, "SW1A 1AA")]),
        ("postcode ec1a 1bb please", vec![(Postcode, "ec1a 1bb")]),
        ("B338TH", vec![(Postcode, "B338TH")]),
        ("CR2 6XH.", vec![(Postcode, "CR2 6XH")]),
        // Things shaped a little like postcodes.
        ("meet at 3pm in B1 4am", vec![]),
        ("ward B1 and room 2", vec![]),
        ("m11ae", vec![]),
        ("A1 road", vec![]),
        ("QA1 1AA", vec![]),
        // Several at once, in order.
        (
            "9434765919, DOB 12/03/1954, M1 1AE",
            vec![
                (NhsNumber, "9434765919"),
                (DateOfBirth, "12/03/1954"),
                (Postcode, "M1 1AE"),
            ],
        ),
        ("", vec![]),
        ("Grüße 943 476 5919 ✓", vec![(NhsNumber, "943 476 5919")]),
    ]
}

#[test]
fn the_detector_finds_what_it_should_and_nothing_else() {
    let mut failures = Vec::new();
    for (text, expected) in cases() {
        let lower = text.to_ascii_lowercase();
        let found: Vec<(PatientDataKind, String)> = detect(text, THIS_YEAR)
            .into_iter()
            .map(|f| {
                let matched = if f.kind == PatientDataKind::DateOfBirth {
                    // Written dates are matched case-insensitively.
                    lower[f.span.clone()].to_string()
                } else {
                    text[f.span.clone()].to_string()
                };
                (f.kind, matched)
            })
            .collect();
        let expected: Vec<(PatientDataKind, String)> = expected
            .into_iter()
            .map(|(kind, s)| {
                (
                    kind,
                    if kind == PatientDataKind::DateOfBirth {
                        s.to_ascii_lowercase()
                    } else {
                        s.to_string()
                    },
                )
            })
            .collect();
        if found != expected {
            failures.push(format!("{text:?}: expected {expected:?}, found {found:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_check_digit_follows_modulus_11() {
    assert!(is_valid_nhs_number(&[9, 4, 3, 4, 7, 6, 5, 9, 1, 9]));
    assert!(!is_valid_nhs_number(&[9, 4, 3, 4, 7, 6, 5, 9, 1, 8]));
    // Remainder 0 gives check digit 0.
    assert!(is_valid_nhs_number(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert!(!is_valid_nhs_number(&[10, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
}

#[test]
fn arbitrary_text_never_panics() {
    let samples = [
        "1/",
        "31/",
        "1/1/",
        "march",
        "march ",
        "12 ",
        "12th",
        "A",
        "A1 ",
        "A1 1",
        "9".repeat(50).leak(),
        "é1/2/1950",
        "1-2-",
        "0000-00-00",
    ];
    for sample in samples {
        let _ = detect(sample, THIS_YEAR);
    }
    // Every prefix of a mixed text (on character boundaries).
    let text = "DOB 12/03/1954 at SW1A 1AA, NHS 943 476 5919 — ok";
    for (end, _) in text.char_indices() {
        let _ = detect(&text[..end], THIS_YEAR);
    }
}
