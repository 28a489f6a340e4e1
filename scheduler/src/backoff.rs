//! Exponential back-off with full jitter between attempts of a failing job.

use chrono::Duration;

/// The wait before attempt `attempt + 1`: a random time up to `base · 2^(attempt-1)`,
/// capped, but never below a tenth of it so retries do not stampede.
pub fn delay(attempt: i32, base: Duration, cap: Duration) -> Duration {
    let exp = (attempt.max(1) - 1).min(30) as u32;
    let ceiling = base
        .checked_mul(2i32.saturating_pow(exp))
        .unwrap_or(cap)
        .min(cap);
    let ms = ceiling.num_milliseconds().max(1);
    let floor = ms / 10;
    Duration::milliseconds(rand::random_range(floor..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_is_capped() {
        let base = Duration::seconds(1);
        let cap = Duration::seconds(60);
        for _ in 0..100 {
            let d1 = delay(1, base, cap);
            assert!(d1 >= Duration::milliseconds(100) && d1 <= Duration::seconds(1));
            let d4 = delay(4, base, cap);
            assert!(d4 >= Duration::milliseconds(800) && d4 <= Duration::seconds(8));
            assert!(delay(40, base, cap) <= cap);
        }
    }
}
