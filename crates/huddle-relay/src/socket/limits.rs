//! Per-device rate limits: a token bucket per device, shared by all its connections.

use huddle_core::ids::DeviceId;
use std::collections::HashMap;
use std::sync::Mutex;

/// A token bucket: `burst` frames at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last_millis: u64,
}

/// The limits every device gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    pub fn is_unlimited(&self) -> bool {
        self.per_second == 0
    }
}

impl TokenBucket {
    pub fn full(limit: RateLimit, now_millis: u64) -> Self {
        TokenBucket {
            tokens: f64::from(limit.burst),
            last_millis: now_millis,
        }
    }

    /// Takes one token; on refusal, how long until one is available.
    pub fn take(&mut self, limit: RateLimit, now_millis: u64) -> Result<(), u32> {
        if limit.is_unlimited() {
            return Ok(());
        }
        let elapsed = now_millis.saturating_sub(self.last_millis) as f64 / 1000.0;
        self.last_millis = self.last_millis.max(now_millis);
        let rate = f64::from(limit.per_second);
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(limit.burst.max(1)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - self.tokens) / rate * 1000.0).ceil();
            Err(wait.clamp(1.0, 60_000.0) as u32)
        }
    }
}

/// Each device's bucket, shared by all its connections.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<DeviceId, TokenBucket>>,
}

impl RateLimiter {
    pub fn take(&self, device: DeviceId, limit: RateLimit, now_millis: u64) -> Result<(), u32> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .entry(device)
            .or_insert_with(|| TokenBucket::full(limit, now_millis))
            .take(limit, now_millis)
    }

    /// Forgets devices that are not connected, so the map stays small.
    pub fn forget(&self, device: DeviceId) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_sustained_rate() {
        let limit = RateLimit {
            per_second: 10,
            burst: 5,
        };
        let mut bucket = TokenBucket::full(limit, 0);
        for _ in 0..5 {
            assert_eq!(bucket.take(limit, 0), Ok(()));
        }
        assert_eq!(bucket.take(limit, 0), Err(100));
        assert_eq!(bucket.take(limit, 50), Err(50));
        assert_eq!(bucket.take(limit, 100), Ok(()));
        // Idle time refills up to the burst, not beyond.
        for _ in 0..5 {
            assert_eq!(bucket.take(limit, 60_000), Ok(()));
        }
        assert!(bucket.take(limit, 60_000).is_err());
        // Clocks going backwards do not mint tokens.
        assert!(bucket.take(limit, 1_000).is_err());
        let unlimited = RateLimit {
            per_second: 0,
            burst: 0,
        };
        assert_eq!(TokenBucket::full(unlimited, 0).take(unlimited, 0), Ok(()));
    }
}
