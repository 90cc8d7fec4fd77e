//! Rate limits: token buckets by key (a device, a network address), kept across reconnects, and what each frame costs.

use crate::store::keys::{MAX_CLAIM_USERS, MAX_KEY_PACKAGES_PER_DEVICE};
use crate::store::log::MAX_CHANGES_PER_COMMIT;
use huddle_core::wire::{ClientFrame, Payload, MAX_IDENTITY_USERS};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A rate: `burst` tokens at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl RateLimit {
    pub fn per_second(per_second: u32, burst: u32) -> Self {
        RateLimit {
            per_second: f64::from(per_second),
            burst,
        }
    }

    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        RateLimit {
            per_second: f64::from(per_minute) / 60.0,
            burst,
        }
    }

    /// No limit (load tests only).
    pub fn is_unlimited(&self) -> bool {
        self.per_second <= 0.0
    }
}

/// A token bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last_millis: u64,
}

impl TokenBucket {
    pub fn full(limit: RateLimit, now_millis: u64) -> Self {
        TokenBucket {
            tokens: f64::from(limit.burst),
            last_millis: now_millis,
        }
    }

    fn refill(&mut self, limit: RateLimit, now_millis: u64) {
        let elapsed = now_millis.saturating_sub(self.last_millis) as f64 / 1000.0;
        self.last_millis = self.last_millis.max(now_millis);
        self.tokens = (self.tokens + elapsed * limit.per_second).min(f64::from(limit.burst.max(1)));
    }

    /// Takes `cost` tokens; on refusal, how many milliseconds until they are
    /// there. A cost over a full bucket is let through once the bucket is
    /// full, and leaves it in debt: a costly frame is paid for in full, so
    /// packing more into one frame never buys more work per second.
    pub fn take(&mut self, limit: RateLimit, now_millis: u64, cost: u32) -> Result<(), u32> {
        if limit.is_unlimited() {
            return Ok(());
        }
        self.refill(limit, now_millis);
        let cost = f64::from(cost.max(1));
        let needed = cost.min(f64::from(limit.burst.max(1)));
        if self.tokens >= needed {
            self.tokens -= cost;
            Ok(())
        } else {
            let wait = ((needed - self.tokens) / limit.per_second * 1000.0).ceil();
            Err(wait.clamp(1.0, 3_600_000.0) as u32)
        }
    }

    /// Whether the bucket has refilled to the brim by `now_millis`: then it
    /// is the same as a new one, and can be forgotten.
    fn is_full(&self, limit: RateLimit, now_millis: u64) -> bool {
        let mut probe = *self;
        probe.refill(limit, now_millis);
        probe.tokens >= f64::from(limit.burst.max(1))
    }
}

/// How often (in calls) a limiter forgets buckets that have refilled.
const TIDY_EVERY: u64 = 1024;

/// A bucket per key, shared by all of that key's connections and kept when
/// they close: reconnecting does not refill it.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: RateLimit,
    buckets: Mutex<HashMap<K, TokenBucket>>,
    calls: AtomicU64,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes `cost` tokens from `key`'s bucket; on refusal, how many
    /// milliseconds until they are there.
    pub fn take(&self, key: K, now_millis: u64, cost: u32) -> Result<(), u32> {
        if self.limit.is_unlimited() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if self.calls.fetch_add(1, Ordering::Relaxed) % TIDY_EVERY == TIDY_EVERY - 1 {
            // A bucket that has refilled is the same as a new one: forget it,
            // so that the map holds only keys that were busy lately.
            buckets.retain(|_, bucket| !bucket.is_full(self.limit, now_millis));
        }
        buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::full(self.limit, now_millis))
            .take(self.limit, now_millis, cost)
    }

    /// How many keys have a bucket (for tests of the tidying).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The network a request comes from, for per-address limits: the address
/// for IPv4, its /64 for IPv6 (one household or phone gets a whole /64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetworkKey(u128);

impl From<IpAddr> for NetworkKey {
    fn from(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => NetworkKey(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => NetworkKey(u128::from(u32::from(v4))),
                None => NetworkKey(((u128::from(v6) >> 64) << 64) | (1 << 32)),
            },
        }
    }
}

/// Rows of work a device may ask for at once: a commit of the largest
/// size (a group of a whole council's staff), or ten frames of key packages.
pub const WORK_BURST: u32 = MAX_CHANGES_PER_COMMIT as u32;

/// The rows of work a frame asks of the writer: each key package stored,
/// each person whose key packages are claimed, each device a commit adds or
/// removes, each person whose identities are read. Paid for from the device's work allowance, beside the one frame
/// it costs, so that packing more into a frame never buys more work. A
/// frame over the per-frame limits is refused without any work: none.
pub fn frame_work(frame: &ClientFrame) -> u32 {
    let (items, most) = match frame {
        ClientFrame::PublishKeyPackages { key_packages, .. } => {
            (key_packages.len(), MAX_KEY_PACKAGES_PER_DEVICE)
        }
        ClientFrame::ClaimKeyPackages { users, .. } => (users.len(), MAX_CLAIM_USERS),
        ClientFrame::Identities { users, .. } => (users.len(), MAX_IDENTITY_USERS),
        ClientFrame::Submit(submission) => match &submission.payload {
            Payload::Commit { change, .. } => (
                change.add.len() + change.remove.len(),
                MAX_CHANGES_PER_COMMIT,
            ),
            Payload::Application { .. } | Payload::Removing { .. } => (0, 0),
        },
        _ => (0, 0),
    };
    if items > most {
        return 0;
    }
    u32::try_from(items).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_sustained_rate() {
        let limit = RateLimit::per_second(10, 5);
        let mut bucket = TokenBucket::full(limit, 0);
        for _ in 0..5 {
            assert_eq!(bucket.take(limit, 0, 1), Ok(()));
        }
        assert_eq!(bucket.take(limit, 0, 1), Err(100));
        assert_eq!(bucket.take(limit, 50, 1), Err(50));
        assert_eq!(bucket.take(limit, 100, 1), Ok(()));
        // Idle time refills up to the burst, not beyond.
        for _ in 0..5 {
            assert_eq!(bucket.take(limit, 60_000, 1), Ok(()));
        }
        assert!(bucket.take(limit, 60_000, 1).is_err());
        // Clocks going backwards do not mint tokens.
        assert!(bucket.take(limit, 1_000, 1).is_err());
        let unlimited = RateLimit::per_second(0, 0);
        assert_eq!(
            TokenBucket::full(unlimited, 0).take(unlimited, 0, 1),
            Ok(())
        );
    }

    #[test]
    fn costly_frames_are_paid_for_in_full() {
        let limit = RateLimit::per_second(10, 50);
        let mut bucket = TokenBucket::full(limit, 0);
        assert_eq!(bucket.take(limit, 0, 40), Ok(()));
        assert_eq!(bucket.take(limit, 0, 20), Err(1_000));
        // A frame dearer than the whole bucket goes through on a full
        // bucket, and the device then waits for all of it to refill.
        assert_eq!(bucket.take(limit, 2_000, 1_000), Err(2_000));
        assert_eq!(bucket.take(limit, 10_000, 1_000), Ok(()));
        assert_eq!(bucket.take(limit, 10_000, 1), Err(95_100));
        assert_eq!(bucket.take(limit, 105_100, 1), Ok(()));
    }

    #[test]
    fn per_minute_limits_refill_slowly() {
        let limit = RateLimit::per_minute(30, 2);
        let mut bucket = TokenBucket::full(limit, 0);
        assert_eq!(bucket.take(limit, 0, 1), Ok(()));
        assert_eq!(bucket.take(limit, 0, 1), Ok(()));
        assert_eq!(bucket.take(limit, 0, 1), Err(2_000));
        assert_eq!(bucket.take(limit, 2_000, 1), Ok(()));
    }

    #[test]
    fn buckets_outlive_their_connections_until_they_have_refilled() {
        let limiter = RateLimiter::new(RateLimit::per_second(1, 2));
        assert_eq!(limiter.take(7u8, 0, 2), Ok(()));
        // However often the key comes back, its bucket is the one it emptied.
        assert!(limiter.take(7u8, 10, 1).is_err());
        // Tidying forgets only buckets that have refilled to the brim.
        for key in 0..(TIDY_EVERY as u8 / 8) {
            let _ = limiter.take(key.wrapping_add(100), 0, 1);
        }
        for _ in 0..TIDY_EVERY {
            let _ = limiter.take(200u8, 5_000, 1);
        }
        assert!(limiter.tracked() < 10, "refilled buckets are forgotten");
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64_and_ipv4_per_address() {
        let key = |text: &str| NetworkKey::from(text.parse::<IpAddr>().expect("address"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("192.0.2.1"), key("::ffff:192.0.2.1"));
        assert_ne!(key("0.0.0.1"), key("::1"));
    }
}
