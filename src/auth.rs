//! Verifying the e-tax bureau's JWTs (HS256 secret or RS256 public key) and minting
//! development tokens with the same configuration.

use std::path::Path;

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use taxdesk_chat::download_link::DownloadLinks;
use taxdesk_graphql::{Identity, Viewer};
use taxdesk_workflow::Role;
use taxdesk_workflow::users::Claims;

use crate::config::Config;

/// The token's payload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenClaims {
    pub sub: String,
    /// `taxpayer`, `staff` or `admin`.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// 纳税人识别号.
    #[serde(default, alias = "taxpayerId", skip_serializing_if = "Option::is_none")]
    pub taxpayer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not valid before (checked, with the same leeway as `exp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Filled in by [`Keys::mint`] from `TAXDESK_JWT_ISSUER` when left empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// A string or a list (RFC 7519); filled in by [`Keys::mint`] from
    /// `TAXDESK_JWT_AUDIENCE` when left empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// Shortest HS256 secret accepted: 32 bytes, the size of the hash (RFC 7518, 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// Seconds of clock difference tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 30;

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why a token is refused, in both languages. Never the library's own text: it names
/// internals (claim parsing, base64, key types) that help an attacker more than a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub zh: String,
    pub en: String,
}

fn refused(zh: &str, en: &str) -> Refused {
    Refused {
        zh: zh.into(),
        en: en.into(),
    }
}

fn refusal_of(e: &jsonwebtoken::errors::Error) -> Refused {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => refused(
            "登录已过期，请重新登录",
            "the token has expired; sign in again",
        ),
        ErrorKind::ImmatureSignature => refused(
            "登录凭证尚未生效（nbf）",
            "the token is not valid yet (nbf)",
        ),
        ErrorKind::InvalidIssuer => refused(
            "登录凭证的签发方（iss）不被接受",
            "the token's issuer (iss) is not accepted",
        ),
        ErrorKind::InvalidAudience => refused(
            "登录凭证的受众（aud）不是本服务",
            "the token's audience (aud) is not this service",
        ),
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => refused("登录凭证缺少有效期（exp）", "the token has no expiry (exp)"),
            "sub" => refused(
                "登录凭证缺少用户标识（sub）",
                "the token has no subject (sub)",
            ),
            "iss" => refused("登录凭证缺少签发方（iss）", "the token has no issuer (iss)"),
            "aud" => refused("登录凭证缺少受众（aud）", "the token has no audience (aud)"),
            _ => refused("登录凭证缺少必需的声明", "the token lacks a required claim"),
        },
        ErrorKind::InvalidSignature => {
            refused("登录凭证签名无效", "the token's signature does not verify")
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => refused(
            "登录凭证的签名算法不被接受",
            "the token's signing algorithm is not accepted",
        ),
        _ => refused("登录凭证格式无效", "the token is malformed"),
    }
}

/// Keys for verifying (and, with a secret or private key, signing) tokens.
pub struct Keys {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    algorithm: Algorithm,
    /// No key was configured: the secret is the one created in the data dir, so anyone
    /// may mint a token (the `/login` page). Never true with a configured key.
    development: bool,
    issuer: Option<String>,
    audience: Option<String>,
    max_ttl_secs: u64,
}

/// A PEM given inline, or the path of a file holding it.
fn pem(value: &str) -> anyhow::Result<Vec<u8>> {
    if value.trim_start().starts_with("-----BEGIN") {
        Ok(value.as_bytes().to_vec())
    } else {
        std::fs::read(value).with_context(|| format!("reading PEM file {value}"))
    }
}

/// The development secret: created once in the data dir, then reused by `serve` and `token`.
fn dev_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path)
        && !s.trim().is_empty()
    {
        let secret = s.trim().to_string();
        check_secret_length(&secret, &path.display().to_string())?;
        return Ok(secret);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let secret: String = (0..48)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    tracing::info!(path = %path.display(), "created a development JWT secret");
    Ok(secret)
}

/// A short HS256 secret can be guessed offline from one token; an empty one lets anyone
/// sign anything.
fn check_secret_length(secret: &str, origin: &str) -> anyhow::Result<()> {
    let n = secret.len();
    if n < MIN_SECRET_BYTES {
        bail!(
            "the JWT secret from {origin} is {n} bytes long; at least {MIN_SECRET_BYTES} are \
             needed (e.g. `openssl rand -hex 32`)"
        );
    }
    Ok(())
}

impl Keys {
    pub fn from_config(c: &Config) -> anyhow::Result<Keys> {
        let checks = |k: Keys| Keys {
            issuer: c.jwt_issuer.clone(),
            audience: c.jwt_audience.clone(),
            max_ttl_secs: c.jwt_max_ttl.as_secs().max(1),
            ..k
        };
        if let Some(public) = &c.jwt_public_key {
            let decoding = DecodingKey::from_rsa_pem(&pem(public)?)
                .context("TAXDESK_JWT_PUBLIC_KEY is not an RSA public key in PEM")?;
            let encoding = match &c.jwt_private_key {
                Some(p) => Some(
                    EncodingKey::from_rsa_pem(&pem(p)?)
                        .context("TAXDESK_JWT_PRIVATE_KEY is not an RSA private key in PEM")?,
                ),
                None => None,
            };
            return Ok(checks(Keys {
                decoding,
                encoding,
                algorithm: Algorithm::RS256,
                development: false,
                issuer: None,
                audience: None,
                max_ttl_secs: 0,
            }));
        }
        let (secret, development) = match &c.jwt_secret {
            Some(s) => {
                check_secret_length(s, "TAXDESK_JWT_SECRET (or jwt_secret in the file)")?;
                (s.clone(), false)
            }
            None => (dev_secret(&c.data_dir)?, true),
        };
        Ok(checks(Keys {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: Some(EncodingKey::from_secret(secret.as_bytes())),
            algorithm: Algorithm::HS256,
            development,
            issuer: None,
            audience: None,
            max_ttl_secs: 0,
        }))
    }

    /// The longest lifetime a token may have (`TAXDESK_JWT_MAX_TTL`).
    pub fn max_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.max_ttl_secs)
    }

    /// Whether tokens are signed with the generated development secret (no key configured).
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// Signs `claims`, adding the configured issuer and audience when they are not given,
    /// so a minted token passes [`Keys::verify`].
    pub fn mint(&self, claims: &TokenClaims) -> anyhow::Result<String> {
        let Some(key) = &self.encoding else {
            bail!("tokens are RS256: set TAXDESK_JWT_PRIVATE_KEY to mint development tokens");
        };
        let mut claims = claims.clone();
        if claims.iss.is_none() {
            claims.iss = self.issuer.clone();
        }
        if claims.aud.is_none() {
            claims.aud = self.audience.clone().map(serde_json::Value::String);
        }
        Ok(encode(&Header::new(self.algorithm), &claims, key)?)
    }

    /// Verifies signature, `exp`, `nbf`, the configured issuer and audience and the longest
    /// lifetime, and turns the claims into the user they describe.
    pub fn verify(&self, token: &str) -> Result<Claims, Refused> {
        self.verify_at(token, now_secs()).map(|(claims, _)| claims)
    }

    /// [`Keys::verify`], also giving the token's `exp` (a WebSocket closes then).
    pub fn verify_with_expiry(&self, token: &str) -> Result<(Claims, u64), Refused> {
        self.verify_at(token, now_secs())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<(Claims, u64), Refused> {
        let mut v = Validation::new(self.algorithm);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        if let Some(aud) = &self.audience {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        // Read as JSON first, so that the spec claims are validated (a missing `exp` is named)
        // before our own shape is required of them.
        // The library's text (which part failed to parse, key types …) goes to the log
        // only; the client gets a fixed sentence naming the check.
        let data = decode::<serde_json::Value>(token, &self.decoding, &v).map_err(|e| {
            tracing::info!(error = %e, "token refused");
            refusal_of(&e)
        })?;
        let claims: TokenClaims = serde_json::from_value(data.claims).map_err(|e| {
            tracing::info!(error = %e, "token claims refused");
            refused("登录凭证的声明格式无效", "the token's claims are malformed")
        })?;
        if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err(refused(
                "登录凭证的签发时间（iat）在未来",
                "the token's issue time (iat) is in the future",
            ));
        }
        let lifetime = claims.exp.saturating_sub(claims.iat.unwrap_or(now));
        if lifetime > self.max_ttl_secs + LEEWAY_SECS {
            return Err(Refused {
                zh: format!("登录凭证有效期过长（最长 {} 秒）", self.max_ttl_secs),
                en: format!(
                    "the token lives longer than the {} seconds allowed",
                    self.max_ttl_secs
                ),
            });
        }
        let c = claims;
        let role = match c.role.to_ascii_lowercase().as_str() {
            "taxpayer" => Role::Taxpayer,
            "staff" => Role::Staff,
            "admin" => Role::Admin,
            _ => {
                return Err(refused(
                    "令牌中的角色无效（须为 taxpayer、staff 或 admin）",
                    "the token's role must be taxpayer, staff or admin",
                ));
            }
        };
        if c.sub.is_empty() || c.sub.len() > 64 {
            return Err(refused(
                "令牌中的用户标识无效",
                "the token's subject must be 1–64 characters",
            ));
        }
        let exp = c.exp;
        let claims = Claims {
            display_name: c
                .name
                .filter(|n| !n.trim().is_empty())
                .map(|n| n.chars().take(100).collect())
                .unwrap_or_else(|| c.sub.clone()),
            id: c.sub,
            role,
            taxpayer_id: c.taxpayer_id,
            email: c.email,
        };
        Ok((claims, exp))
    }
}

/// The signer of download links (`Attachment.url`): keyed by `TAXDESK_LINK_SECRET`, else
/// derived from the HS256 JWT secret (configured or the development one), so every
/// instance sharing that secret accepts the others' links. With RS256 and no link secret
/// there is nothing secret to derive from: a random key of this process, and a warning
/// that links then work only on the instance that made them.
pub fn download_links(c: &Config) -> anyhow::Result<DownloadLinks> {
    if let Some(secret) = &c.link_secret {
        return Ok(DownloadLinks::new(secret.as_bytes(), c.link_ttl));
    }
    if c.jwt_public_key.is_none() {
        let jwt_secret = match &c.jwt_secret {
            Some(s) => s.clone(),
            None => dev_secret(&c.data_dir)?,
        };
        return Ok(DownloadLinks::derived_from_jwt_secret(
            jwt_secret.as_bytes(),
            c.link_ttl,
        ));
    }
    tracing::warn!(
        "tokens are RS256 and TAXDESK_LINK_SECRET is unset: download links are signed with a \
         key of this process only (set TAXDESK_LINK_SECRET when several instances serve)"
    );
    let key: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    Ok(DownloadLinks::new(&key, c.link_ttl))
}

pub fn viewer_of(c: &Claims) -> Viewer {
    Viewer {
        id: c.id.clone(),
        role_: c.role,
        display_name: c.display_name.clone(),
        taxpayer_id: c.taxpayer_id.clone(),
        email: c.email.clone(),
    }
}

/// The token of an `Authorization` value (`Bearer <token>`; a bare token is accepted too).
fn bearer(header: &str) -> &str {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim()
}

/// `Bearer <token>` → the identity the schema sees; the user row is recorded on the way.
pub async fn identify(
    keys: &Keys,
    workflow: &taxdesk_workflow::Workflow,
    header: Option<&str>,
) -> Identity {
    identify_until(keys, workflow, header).await.0
}

/// [`identify`], also giving when the token expires (seconds since the epoch), for a
/// connection that outlives one request.
pub async fn identify_until(
    keys: &Keys,
    workflow: &taxdesk_workflow::Workflow,
    header: Option<&str>,
) -> (Identity, Option<u64>) {
    let Some(h) = header else {
        return (Identity::Anonymous, None);
    };
    match keys.verify_with_expiry(bearer(h)) {
        Ok((claims, exp)) => match workflow.see_user(&claims).await {
            Ok(()) => (Identity::User(viewer_of(&claims)), Some(exp)),
            Err(taxdesk_workflow::Error::Refused(r)) => {
                (Identity::Forbidden { zh: r.zh, en: r.en }, None)
            }
            Err(e) => {
                // The request can still be served; the row is written on a later request.
                tracing::warn!(user.id = %claims.id, error = %e, "could not record user");
                (Identity::User(viewer_of(&claims)), Some(exp))
            }
        },
        Err(Refused { zh, en }) => (Identity::Rejected { zh, en }, None),
    }
}
