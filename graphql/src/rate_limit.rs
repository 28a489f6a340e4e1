//! Rate limits per user and per client address, in process: one token bucket per
//! (action, user) and per (action, address), refilled continuously. The map is bounded:
//! a full bucket is the same as no bucket, so those go first when it fills up, then the
//! longest idle.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strum::{AsRefStr, EnumIter, IntoEnumIterator};

/// What is limited. Its name in `TAXDESK_RATE_LIMIT` is the snake_case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, AsRefStr)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    /// A question to the virtual agent: `askBot`, or a message in a chat with the bot.
    Ask,
    /// `sendMessage`, `leaveMessage`, `replyLeaveMessage`.
    Message,
    /// `uploadAttachment`, `importFaqs`, `transcribeSpeech`.
    Upload,
    /// `createWorkOrder`.
    WorkOrder,
    /// `POST /login`, and requests whose token is refused.
    Login,
}

/// Whose bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    User,
    Address,
}

/// `count` per `per`, with bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    fn per_second(&self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64().max(1e-3)
    }
}

/// Which rates apply; an absent rule means no limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RatePolicy {
    rules: HashMap<(Action, Scope), Rate>,
}

fn rate(count: u32, secs: u64) -> Rate {
    Rate {
        count,
        per: Duration::from_secs(secs),
    }
}

impl RatePolicy {
    pub fn off() -> RatePolicy {
        RatePolicy::default()
    }

    /// The defaults of `TAXDESK_RATE_LIMIT=on`: far above what a person does, and ten
    /// times that per address (an office shares one).
    pub fn defaults() -> RatePolicy {
        use Action::*;
        let user = [
            (Ask, rate(30, 60)),
            (Message, rate(60, 60)),
            (Upload, rate(20, 60)),
            (WorkOrder, rate(20, 3600)),
        ];
        let address = [
            (Ask, rate(300, 60)),
            (Message, rate(600, 60)),
            (Upload, rate(100, 60)),
            (WorkOrder, rate(200, 3600)),
            (Login, rate(30, 60)),
        ];
        let mut rules = HashMap::new();
        for (a, r) in user {
            rules.insert((a, Scope::User), r);
        }
        for (a, r) in address {
            rules.insert((a, Scope::Address), r);
        }
        RatePolicy { rules }
    }

    pub fn is_off(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rule(&self, action: Action, scope: Scope) -> Option<Rate> {
        self.rules.get(&(action, scope)).copied()
    }

    /// `off`, `on` (the defaults), or the defaults changed by a comma-separated list of
    /// `ACTION=COUNT/PERIOD` (per user) and `ACTION.ip=COUNT/PERIOD` (per client address),
    /// where a rule may also be `off`: `ask=10/1m,ask.ip=100/1m,upload.ip=off`.
    pub fn parse(
        text: &str,
        duration: impl Fn(&str) -> Result<Duration, String>,
    ) -> Result<RatePolicy, String> {
        let text = text.trim();
        match text {
            "off" | "0" | "false" => return Ok(RatePolicy::off()),
            "on" | "1" | "true" | "" => return Ok(RatePolicy::defaults()),
            _ => {}
        }
        let mut policy = RatePolicy::defaults();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (target, value) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?}: write ACTION=COUNT/PERIOD"))?;
            let (name, scope) = match target.trim().strip_suffix(".ip") {
                Some(name) => (name, Scope::Address),
                None => (target.trim(), Scope::User),
            };
            let action = Action::iter()
                .find(|a| {
                    let n: &str = a.as_ref();
                    n == name
                })
                .ok_or_else(|| {
                    let names: Vec<String> =
                        Action::iter().map(|a| a.as_ref().to_owned()).collect();
                    format!("{name:?} is not one of {}", names.join(", "))
                })?;
            let value = value.trim();
            if value == "off" {
                policy.rules.remove(&(action, scope));
                continue;
            }
            let (count, period) = value
                .split_once('/')
                .ok_or_else(|| format!("{entry:?}: write COUNT/PERIOD, e.g. 30/1m"))?;
            let count: u32 = count
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{entry:?}: the count must be a positive number"))?;
            let per = duration(period.trim())?;
            if per.is_zero() {
                return Err(format!("{entry:?}: the period must be longer than zero"));
            }
            policy.rules.insert((action, scope), Rate { count, per });
        }
        Ok(policy)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_second()).min(f64::from(rate.count))
    }
}

/// How many buckets are kept at most (≈100 bytes each).
const MAX_BUCKETS: usize = 100_000;

/// The buckets of every user and address; cheap to clone (shared).
#[derive(Clone)]
pub struct RateLimiter {
    policy: Arc<RatePolicy>,
    buckets: Arc<Mutex<HashMap<(Action, Subject), Bucket>>>,
    max_buckets: usize,
}

impl RateLimiter {
    pub fn new(policy: RatePolicy) -> RateLimiter {
        RateLimiter::with_capacity(policy, MAX_BUCKETS)
    }

    fn with_capacity(policy: RatePolicy, max_buckets: usize) -> RateLimiter {
        RateLimiter {
            policy: Arc::new(policy),
            buckets: Arc::new(Mutex::new(HashMap::new())),
            max_buckets,
        }
    }

    pub fn is_off(&self) -> bool {
        self.policy.is_off()
    }

    /// Takes one unit of `action` from the user's and from the address's bucket, or from
    /// neither: `Err(wait)` says how long until both would have one.
    pub fn take(
        &self,
        action: Action,
        user: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<(), Duration> {
        self.take_at(action, user, address, Instant::now())
    }

    fn take_at(
        &self,
        action: Action,
        user: Option<&str>,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut applicable = Vec::with_capacity(2);
        if let (Some(u), Some(r)) = (user, self.policy.rule(action, Scope::User)) {
            applicable.push(((action, Subject::User(u.to_owned())), r));
        }
        if let (Some(a), Some(r)) = (address, self.policy.rule(action, Scope::Address)) {
            applicable.push(((action, Subject::Address(a)), r));
        }
        if applicable.is_empty() {
            return Ok(());
        }
        // A poisoned lock only means another request panicked mid-update: the counts
        // are still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        let mut levels = Vec::with_capacity(2);
        for (key, rate) in &applicable {
            let level = buckets
                .get(key)
                .map_or(f64::from(rate.count), |b| b.refilled(*rate, now));
            if level < 1.0 {
                wait = wait.max(Duration::from_secs_f64((1.0 - level) / rate.per_second()));
            }
            levels.push(level);
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if buckets.len() + applicable.len() > self.max_buckets {
            evict(&mut buckets, &self.policy, now, self.max_buckets);
        }
        for ((key, _), level) in applicable.into_iter().zip(levels) {
            buckets.insert(
                key,
                Bucket {
                    tokens: level - 1.0,
                    at: now,
                },
            );
        }
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

/// Drops the buckets that have refilled (as good as absent), then, if the map is still
/// over three quarters full, the longest idle ones down to three quarters.
fn evict(
    buckets: &mut HashMap<(Action, Subject), Bucket>,
    policy: &RatePolicy,
    now: Instant,
    max: usize,
) {
    buckets.retain(|(action, subject), b| {
        let scope = match subject {
            Subject::User(_) => Scope::User,
            Subject::Address(_) => Scope::Address,
        };
        policy
            .rule(*action, scope)
            .is_some_and(|r| b.refilled(r, now) < f64::from(r.count))
    });
    let keep = max * 3 / 4;
    if buckets.len() > keep {
        let mut ages: Vec<Instant> = buckets.values().map(|b| b.at).collect();
        ages.sort_unstable();
        let cutoff = ages[buckets.len() - keep];
        buckets.retain(|_, b| b.at >= cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RatePolicy, String> {
        RatePolicy::parse(s, |d| match d {
            "1m" => Ok(Duration::from_secs(60)),
            "1h" => Ok(Duration::from_secs(3600)),
            "10s" => Ok(Duration::from_secs(10)),
            other => Err(format!("bad duration {other}")),
        })
    }

    #[test]
    fn the_setting_reads_off_on_and_overrides() {
        assert!(parse("off").unwrap().is_off());
        assert_eq!(parse("on").unwrap(), RatePolicy::defaults());
        let p = parse("ask=10/1m, ask.ip=100/1h, upload.ip=off").unwrap();
        assert_eq!(p.rule(Action::Ask, Scope::User), Some(rate(10, 60)));
        assert_eq!(p.rule(Action::Ask, Scope::Address), Some(rate(100, 3600)));
        assert_eq!(p.rule(Action::Upload, Scope::Address), None);
        assert_eq!(
            p.rule(Action::Message, Scope::User),
            RatePolicy::defaults().rule(Action::Message, Scope::User),
            "what is not named keeps its default"
        );
        for bad in ["chat=1/1m", "ask=0/1m", "ask=3", "ask=3/soon", "ask"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_empties_then_refills_over_its_period() {
        let limiter = RateLimiter::new(parse("ask=3/10s,ask.ip=off").unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at(Action::Ask, Some("u"), None, t0).is_ok());
        }
        let wait = limiter
            .take_at(Action::Ask, Some("u"), None, t0)
            .unwrap_err();
        assert!(
            wait > Duration::from_secs(3) && wait <= Duration::from_secs(4),
            "{wait:?}"
        );
        assert!(
            limiter.take_at(Action::Ask, Some("v"), None, t0).is_ok(),
            "another user has a bucket of their own"
        );
        let later = t0 + Duration::from_millis(3400);
        assert!(limiter.take_at(Action::Ask, Some("u"), None, later).is_ok());
        assert!(
            limiter
                .take_at(Action::Ask, Some("u"), None, later)
                .is_err()
        );
    }

    #[test]
    fn user_and_address_are_both_charged_or_neither() {
        let limiter = RateLimiter::new(parse("message=5/1m,message.ip=2/1m").unwrap());
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let t0 = Instant::now();
        assert!(
            limiter
                .take_at(Action::Message, Some("a"), Some(ip), t0)
                .is_ok()
        );
        assert!(
            limiter
                .take_at(Action::Message, Some("b"), Some(ip), t0)
                .is_ok()
        );
        // The address is spent: refused, and user c's bucket is left untouched.
        assert!(
            limiter
                .take_at(Action::Message, Some("c"), Some(ip), t0)
                .is_err()
        );
        for _ in 0..5 {
            assert!(
                limiter
                    .take_at(Action::Message, Some("c"), None, t0)
                    .is_ok()
            );
        }
        assert!(
            limiter
                .take_at(Action::Message, Some("c"), None, t0)
                .is_err()
        );
    }

    #[test]
    fn the_map_stays_bounded_under_a_flood_of_addresses() {
        let limiter = RateLimiter::with_capacity(parse("login.ip=5/1m").unwrap(), 1_000);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            let at = t0 + Duration::from_millis(u64::from(i));
            assert!(limiter.take_at(Action::Login, None, Some(ip), at).is_ok());
            assert!(limiter.len() <= 1_000);
        }
        assert!(
            RateLimiter::new(RatePolicy::off())
                .take(Action::Login, Some("x"), None)
                .is_ok()
        );
    }
}
