//! The passcode that locks a phone: what counts as one, stretching it with Argon2id, the keys derived from it and the relay's share, and the proof an unlock sends.
//!
//! See SECURITY.md, "The lost phone". The stretched passcode `A` never
//! leaves the crypto worker. From it:
//! - the **verifier** `V = HKDF-SHA-384(A, "huddle passcode verifier")` is
//!   given to the relay once, at setup, and lets it check a proof;
//! - an unlock sends `HMAC-SHA-384(V, label || device || nonce)` for a
//!   nonce the relay chose, signed with the phone's lock key;
//! - the **unlock key** `HKDF-SHA-384(A || share, "huddle unlock key")`
//!   wraps the phone's data keys; the share is held by the relay and
//!   released on a correct proof, so neither the phone alone nor the relay
//!   alone can derive it;
//! - the **offline key** `HKDF-SHA-384(A, "huddle offline unlock")` seals a
//!   copy of the share on the phone for the grace period.

use crate::at_rest::{self, AtRestError, DataKey, KEY_LEN, NONCE_LEN};
use crate::ids::{DeviceId, OrgId};
use crate::wire::PhonePolicy;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha384;
use zeroize::Zeroizing;

/// Argon2id's cost, at OWASP's minimum: 19 MiB of memory, 2 passes, 1 lane.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
pub const ARGON2_PASSES: u32 = 2;
pub const ARGON2_LANES: u32 = 1;
/// A passcode of digits has at least this many.
pub const MIN_DIGITS: usize = 6;
/// A passphrase has at least this many words...
pub const MIN_WORDS: usize = 4;
/// ...and at least this many letters in all.
pub const MIN_LETTERS: usize = 12;
/// The longest passcode accepted, in bytes.
pub const MAX_LEN: usize = 256;
pub const SHARE_LEN: usize = 32;
pub const VERIFIER_LEN: usize = 48;
pub const PROOF_LEN: usize = 48;
pub const NONCE_LEN_UNLOCK: usize = 32;

/// Why a passcode was not accepted, in words for the person choosing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasscodeError {
    #[error("Use at least 6 digits.")]
    TooFewDigits,
    #[error("Use at least 4 words, with spaces between them.")]
    TooFewWords,
    #[error("Use longer words: at least 12 letters in all.")]
    WordsTooShort,
    #[error("Use digits only, or words only.")]
    Mixed,
    #[error("That is too long.")]
    TooLong,
    #[error("Avoid a pattern like 123456, 121212 or 111111, or the same word again and again: they are the first things anyone tries.")]
    TooEasy,
}

/// A passcode as typed, checked and put in one form (words lower-cased, with
/// single spaces), so that the same passcode always stretches the same way.
/// Prints as `Passcode(***)`; wiped from memory when dropped.
pub struct Passcode(Zeroizing<String>);

impl std::fmt::Debug for Passcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passcode(***)")
    }
}

impl Passcode {
    /// At least 6 digits (not a plain run or repeat), or at least 4 words.
    pub fn new(typed: &str) -> Result<Self, PasscodeError> {
        match Typed::read(typed)? {
            Typed::Digits(digits) => {
                if is_run_or_repeat(digits.as_bytes()) {
                    return Err(PasscodeError::TooEasy);
                }
                Ok(Passcode(Zeroizing::new(digits.to_owned())))
            }
            Typed::Words(words) => {
                let letters: usize = words
                    .iter()
                    .map(|w| w.chars().filter(|c| c.is_alphabetic()).count())
                    .sum();
                if letters < MIN_LETTERS {
                    return Err(PasscodeError::WordsTooShort);
                }
                let mut distinct = words.clone();
                distinct.sort();
                distinct.dedup();
                if distinct.len() < MIN_WORDS - 1 {
                    return Err(PasscodeError::TooEasy);
                }
                Ok(Passcode(Zeroizing::new(words.join(" "))))
            }
        }
    }

    /// A passcode typed to unlock: put in the same form as [`Passcode::new`]
    /// does, without its rules for choosing one (what was accepted when it
    /// was chosen must open the phone whatever the rules are now). What
    /// could never have been chosen (too few digits or words) is refused
    /// here, so that a slip does not spend one of the ten guesses the relay
    /// allows.
    pub fn typed(typed: &str) -> Result<Self, PasscodeError> {
        Ok(Passcode(Zeroizing::new(match Typed::read(typed)? {
            Typed::Digits(digits) => digits.to_owned(),
            Typed::Words(words) => words.join(" "),
        })))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// A passcode as typed, trimmed, in one of its two kinds, with the length
/// rules both kinds share checked.
enum Typed<'a> {
    Digits(&'a str),
    /// Its words, lower-cased.
    Words(Vec<String>),
}

impl<'a> Typed<'a> {
    fn read(typed: &'a str) -> Result<Self, PasscodeError> {
        let typed = typed.trim();
        if typed.len() > MAX_LEN {
            return Err(PasscodeError::TooLong);
        }
        if typed.chars().all(|c| c.is_ascii_digit()) {
            if typed.len() < MIN_DIGITS {
                return Err(PasscodeError::TooFewDigits);
            }
            return Ok(Typed::Digits(typed));
        }
        // Words are letters (an apostrophe or a hyphen inside one is fine):
        // "1 2 3 4" is four digits, not a passphrase.
        if typed
            .chars()
            .any(|c| !(c.is_alphabetic() || c.is_whitespace() || c == '\'' || c == '-'))
        {
            return Err(PasscodeError::Mixed);
        }
        let words: Vec<String> = typed
            .split_whitespace()
            .map(|word| word.to_lowercase())
            .collect();
        if words.len() < MIN_WORDS {
            return Err(PasscodeError::TooFewWords);
        }
        Ok(Typed::Words(words))
    }
}

/// The digit codes people choose most (beyond the patterns below), which
/// ten guesses would try first.
const COMMON_CODES: &[&str] = &[
    "112233", "123321", "159753", "147258", "258369", "102030", "696969", "131313", "110011",
    "112358", "789456", "456123", "147852", "987456", "741852", "963852", "101101",
];

/// 123456, 654321, 890123, 111111, 121212, 123123 and the like, and the
/// common codes above.
fn is_run_or_repeat(digits: &[u8]) -> bool {
    // Each step up or down by one (wrapping 9 to 0), or no step at all.
    let steps: Vec<i16> = digits
        .windows(2)
        .map(|pair| (i16::from(pair[1]) - i16::from(pair[0])).rem_euclid(10))
        .collect();
    let run = steps.iter().all(|step| *step == steps[0]) && matches!(steps[0], 0 | 1 | 9);
    // A block of up to three digits, repeated.
    let repeated = (1..=3).any(|period| {
        digits.len() >= period * 2
            && digits
                .iter()
                .enumerate()
                .all(|(i, d)| *d == digits[i % period])
    });
    run || repeated || COMMON_CODES.iter().any(|code| code.as_bytes() == digits)
}

/// The passcode stretched by Argon2id: `A`. Never leaves the worker; wiped
/// from memory when dropped.
pub struct Stretched(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Stretched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stretched(***)")
    }
}

/// The relay's share of the unlock key. Prints as `Share(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Share(Zeroizing<[u8; SHARE_LEN]>);

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Share(***)")
    }
}

impl Share {
    pub fn from_bytes(bytes: [u8; SHARE_LEN]) -> Self {
        Share(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; SHARE_LEN] {
        &self.0
    }
}

/// What the relay keeps to check a proof. It opens nothing; it lets the
/// relay (or whoever copies its database) search the passcode offline at
/// Argon2id's cost, which is why it is kept like a password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier([u8; VERIFIER_LEN]);

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(***)")
    }
}

impl Verifier {
    pub fn from_bytes(bytes: [u8; VERIFIER_LEN]) -> Self {
        Verifier(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; VERIFIER_LEN] {
        &self.0
    }

    fn mac(&self, nonce: &[u8; NONCE_LEN_UNLOCK], device: DeviceId) -> Hmac<Sha384> {
        // Keys of any length are accepted by HMAC.
        let mut mac = match Hmac::<Sha384>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        };
        mac.update(b"huddle unlock proof v1");
        mac.update(device.as_bytes());
        mac.update(nonce);
        mac
    }

    /// The proof of the passcode for this nonce (the phone's side).
    pub fn proof(&self, nonce: &[u8; NONCE_LEN_UNLOCK], device: DeviceId) -> [u8; PROOF_LEN] {
        let mut proof = [0u8; PROOF_LEN];
        proof.copy_from_slice(&self.mac(nonce, device).finalize().into_bytes());
        proof
    }

    /// Whether `proof` is right for this nonce, in constant time (the
    /// relay's side).
    pub fn check(&self, nonce: &[u8; NONCE_LEN_UNLOCK], device: DeviceId, proof: &[u8]) -> bool {
        self.mac(nonce, device).verify_slice(proof).is_ok()
    }
}

/// What the phone's lock key signs to ask for its share: so that only the
/// phone (not someone who knows its id) spends its guesses.
pub fn unlock_transcript(
    device: DeviceId,
    nonce: &[u8; NONCE_LEN_UNLOCK],
    proof: &[u8],
) -> Vec<u8> {
    let mut transcript = Vec::with_capacity(32 + 16 + NONCE_LEN_UNLOCK + proof.len());
    transcript.extend_from_slice(b"huddle unlock request v1");
    transcript.extend_from_slice(device.as_bytes());
    transcript.extend_from_slice(nonce);
    transcript.extend_from_slice(proof);
    transcript
}

/// What the phone's lock key signs to ask for a nonce, at its time `at`.
pub fn nonce_request_transcript(device: DeviceId, at: u64) -> Vec<u8> {
    let mut transcript = Vec::with_capacity(32 + 16 + 8);
    transcript.extend_from_slice(b"huddle unlock nonce v1");
    transcript.extend_from_slice(device.as_bytes());
    transcript.extend_from_slice(&at.to_be_bytes());
    transcript
}

// The JSON the phone and the relay exchange at `/api/unlock/nonce` and
// `/api/unlock`.

#[derive(Debug, Serialize, Deserialize)]
pub struct NonceRequest {
    pub device: DeviceId,
    /// The phone's clock, in Unix milliseconds: a request is answered
    /// within five minutes of it, so an old one cannot be replayed later.
    pub at: u64,
    /// DER ECDSA P-384 signature by the lock key over the nonce request
    /// transcript, as hex.
    pub signature: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NonceAnswer {
    /// As hex.
    pub nonce: String,
}

/// The relay's refusal of a nonce request whose time is too far from its
/// own, with its own time: the phone asks once more at that time, so that a
/// phone whose clock is wrong still unlocks (its own clock decides nothing
/// here; the time only keeps a signed request from being used again later).
#[derive(Debug, Serialize, Deserialize)]
pub struct ClockRefusal {
    /// Always `clock`.
    pub error: String,
    pub message: String,
    pub relay_time: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UnlockRequest {
    pub device: DeviceId,
    /// The nonce from `/api/unlock/nonce`, as hex.
    pub nonce: String,
    /// HMAC-SHA-384 of the nonce under the passcode's verifier, as hex.
    pub proof: String,
    /// DER ECDSA P-384 signature by the lock key over the unlock
    /// transcript, as hex.
    pub signature: String,
}

/// What a phone learns from an unlock. Prints without the share.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UnlockAnswer {
    /// The passcode was right: the share, as hex.
    Unlocked { share: String, policy: PhonePolicy },
    /// It was wrong: this many guesses are left before the phone is wiped.
    WrongPasscode { left: u32 },
    /// That was the last guess: the share is destroyed; the phone must wipe
    /// itself.
    Wiped,
}

impl std::fmt::Debug for UnlockAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnlockAnswer::Unlocked { .. } => f.write_str("Unlocked { share: *** }"),
            UnlockAnswer::WrongPasscode { left } => write!(f, "WrongPasscode {{ left: {left} }}"),
            UnlockAnswer::Wiped => f.write_str("Wiped"),
        }
    }
}

/// HMAC accepts keys of every length; this cannot be reached.
fn unreachable_hmac() -> ! {
    panic!("HMAC refused a key, which it never does")
}

/// Stretches a passcode for this device of this organisation (the salt),
/// with Argon2id at the cost above. Slow on purpose: about a second on a
/// slow phone.
pub fn stretch(passcode: &Passcode, org: OrgId, device: DeviceId) -> Stretched {
    let mut salt = [0u8; 32];
    salt[..16].copy_from_slice(org.as_bytes());
    salt[16..].copy_from_slice(device.as_bytes());
    let mut out = Zeroizing::new([0u8; 32]);
    // The parameters are constants within Argon2's limits, the salt and the
    // output have fixed lengths and the passcode at most `MAX_LEN` bytes:
    // neither call can fail. If one ever did, carrying on would make every
    // passcode the same, so it stops instead.
    let stretched = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, Some(32))
        .and_then(|params| {
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(passcode.as_bytes(), &salt, &mut out[..])
        });
    if let Err(error) = stretched {
        panic!("Argon2id refused its fixed parameters: {error}");
    }
    Stretched(out)
}

fn hkdf(input: &[u8], info: &[u8], out: &mut [u8]) {
    let hk = hkdf::Hkdf::<Sha384>::new(Some(b"huddle passcode v1"), input);
    // The outputs asked for are far below HKDF-SHA-384's limit.
    let _ = hk.expand(info, out);
}

impl Stretched {
    pub fn verifier(&self) -> Verifier {
        let mut bytes = [0u8; VERIFIER_LEN];
        hkdf(&self.0[..], b"huddle passcode verifier", &mut bytes);
        Verifier(bytes)
    }

    /// The key that wraps the phone's data keys: needs the relay's share.
    pub fn unlock_key(&self, share: &Share) -> DataKey {
        let mut input = Zeroizing::new([0u8; 32 + SHARE_LEN]);
        input[..32].copy_from_slice(&self.0[..]);
        input[32..].copy_from_slice(&share.0[..]);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        hkdf(&input[..], b"huddle unlock key", &mut key[..]);
        DataKey::from_bytes(*key)
    }

    /// The key that seals the phone's copy of the share for offline
    /// unlocks within the grace period.
    pub fn offline_key(&self) -> DataKey {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        hkdf(&self.0[..], b"huddle offline unlock", &mut key[..]);
        DataKey::from_bytes(*key)
    }
}

/// Wraps a key (a data key, or the share) under `kek`, its purpose bound as
/// associated data: `nonce || ciphertext || tag`.
pub fn wrap(kek: &DataKey, nonce: [u8; NONCE_LEN], purpose: &str, key: &[u8]) -> Vec<u8> {
    let mut wrapped = nonce.to_vec();
    wrapped.extend_from_slice(&at_rest::encrypt(kek, &nonce, purpose.as_bytes(), key));
    wrapped
}

/// The inverse of [`wrap`]; a wrong passcode (so a wrong key) or another
/// purpose fails.
pub fn unwrap(
    kek: &DataKey,
    purpose: &str,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AtRestError> {
    if wrapped.len() < NONCE_LEN {
        return Err(AtRestError::Truncated);
    }
    let (nonce, rest) = wrapped.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| AtRestError::Truncated)?;
    at_rest::decrypt(kek, nonce, purpose.as_bytes(), rest)
}

#[cfg(test)]
mod tests;
