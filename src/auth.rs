//! Verifying the e-tax bureau's JWTs (HS256 secret or RS256 public key) and minting
//! development tokens with the same configuration.

use std::path::Path;

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use taxdesk_graphql::{Identity, Viewer};
use taxdesk_workflow::Role;
use taxdesk_workflow::users::Claims;

use crate::config::Config;

/// The token's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default)]
    pub iat: u64,
}

/// Keys for verifying (and, with a secret or private key, signing) tokens.
pub struct Keys {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    algorithm: Algorithm,
    /// No key was configured: the secret is the one created in the data dir, so anyone
    /// may mint a token (the `/login` page). Never true with a configured key.
    development: bool,
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
        return Ok(s.trim().to_string());
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

impl Keys {
    pub fn from_config(c: &Config) -> anyhow::Result<Keys> {
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
            return Ok(Keys {
                decoding,
                encoding,
                algorithm: Algorithm::RS256,
                development: false,
            });
        }
        let (secret, development) = match &c.jwt_secret {
            Some(s) => (s.clone(), false),
            None => (dev_secret(&c.data_dir)?, true),
        };
        Ok(Keys {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: Some(EncodingKey::from_secret(secret.as_bytes())),
            algorithm: Algorithm::HS256,
            development,
        })
    }

    /// Whether tokens are signed with the generated development secret (no key configured).
    pub fn is_development(&self) -> bool {
        self.development
    }

    pub fn mint(&self, claims: &TokenClaims) -> anyhow::Result<String> {
        let Some(key) = &self.encoding else {
            bail!("tokens are RS256: set TAXDESK_JWT_PRIVATE_KEY to mint development tokens");
        };
        Ok(encode(&Header::new(self.algorithm), claims, key)?)
    }

    /// Verifies signature and expiry and turns the claims into the user they describe.
    pub fn verify(&self, token: &str) -> Result<Claims, (String, String)> {
        let mut v = Validation::new(self.algorithm);
        v.leeway = 30;
        v.set_required_spec_claims(&["exp", "sub"]);
        let data = decode::<TokenClaims>(token, &self.decoding, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => (
                    "登录已过期，请重新登录".to_string(),
                    "the token has expired; sign in again".to_string(),
                ),
                _ => (
                    "登录凭证无效".to_string(),
                    format!("the token is not valid ({e})"),
                ),
            }
        })?;
        let c = data.claims;
        let role = match c.role.to_ascii_lowercase().as_str() {
            "taxpayer" => Role::Taxpayer,
            "staff" => Role::Staff,
            "admin" => Role::Admin,
            other => {
                return Err((
                    format!("令牌中的角色无效：{other}"),
                    format!("unknown role {other:?} in the token: taxpayer, staff or admin"),
                ));
            }
        };
        if c.sub.is_empty() || c.sub.len() > 64 {
            return Err((
                "令牌中的用户标识无效".into(),
                "the token's subject must be 1–64 characters".into(),
            ));
        }
        Ok(Claims {
            display_name: c
                .name
                .filter(|n| !n.trim().is_empty())
                .map(|n| n.chars().take(100).collect())
                .unwrap_or_else(|| c.sub.clone()),
            id: c.sub,
            role,
            taxpayer_id: c.taxpayer_id,
            email: c.email,
        })
    }
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

/// `Bearer <token>` → the identity the schema sees; the user row is recorded on the way.
pub async fn identify(
    keys: &Keys,
    workflow: &taxdesk_workflow::Workflow,
    header: Option<&str>,
) -> Identity {
    let Some(h) = header else {
        return Identity::Anonymous;
    };
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .unwrap_or(h)
        .trim();
    match keys.verify(token) {
        Ok(claims) => {
            if let Err(e) = workflow.see_user(&claims).await {
                // The request can still be served; the row is written on a later request.
                tracing::warn!(user.id = %claims.id, error = %e, "could not record user");
            }
            Identity::User(viewer_of(&claims))
        }
        Err((zh, en)) => Identity::Rejected { zh, en },
    }
}
