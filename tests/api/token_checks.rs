//! What a token must be to be accepted: `nbf`, the configured issuer and audience, a
//! bounded lifetime, a secret long enough to sign with; refusals that name no internals.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::helpers::{Client, SECRET, TestApp};

fn now() -> u64 {
    taxdesk::auth::now_secs()
}

/// A token with exactly these claims, signed with the test secret.
fn signed(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

fn bearer(app: &TestApp, token: String) -> Client {
    Client {
        token: Some(token),
        ..app.anonymous()
    }
}

/// The `en` text of the refusal of `{ me { id } }`, checking it is UNAUTHENTICATED.
async fn refusal(app: &TestApp, token: String) -> String {
    let r = bearer(app, token).gql("{ me { id } }", json!({})).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{:?}", r.0);
    r.0["errors"][0]["extensions"]["en"]
        .as_str()
        .expect("en")
        .to_string()
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let app = TestApp::spawn().await;
    let t = now();
    let early = signed(
        json!({"sub": "tp1", "role": "taxpayer", "iat": t, "nbf": t + 600, "exp": t + 1200}),
    );
    assert!(refusal(&app, early).await.contains("not valid yet"));
    let ready =
        signed(json!({"sub": "tp1", "role": "taxpayer", "iat": t, "nbf": t - 5, "exp": t + 1200}));
    bearer(&app, ready)
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let app = TestApp::spawn_with(&[
        ("TAXDESK_JWT_ISSUER", "https://etax.example.gov.cn"),
        ("TAXDESK_JWT_AUDIENCE", "taxdesk"),
    ])
    .await;
    let t = now();
    let with = |extra: Value| {
        let mut c = json!({"sub": "tp1", "role": "taxpayer", "iat": t, "exp": t + 600});
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        signed(c)
    };
    let wrong_iss = with(json!({"iss": "https://evil.example", "aud": "taxdesk"}));
    assert!(refusal(&app, wrong_iss).await.contains("issuer"));
    let no_iss = with(json!({"aud": "taxdesk"}));
    assert!(refusal(&app, no_iss).await.contains("issuer"));
    let wrong_aud = with(json!({"iss": "https://etax.example.gov.cn", "aud": "other-app"}));
    assert!(refusal(&app, wrong_aud).await.contains("audience"));
    let no_aud = with(json!({"iss": "https://etax.example.gov.cn"}));
    assert!(refusal(&app, no_aud).await.contains("audience"));
    assert_eq!(app.count("SELECT id FROM users").await, 0);

    let right = with(json!({"iss": "https://etax.example.gov.cn", "aud": ["portal", "taxdesk"]}));
    bearer(&app, right)
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    // Tokens minted with the server's configuration (`taxdesk token`, `/login`) pass.
    app.user("staff", "s1")
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
}

#[tokio::test]
async fn a_token_living_longer_than_the_maximum_is_refused() {
    let app = TestApp::spawn_with(&[("TAXDESK_JWT_MAX_TTL", "2h")]).await;
    let t = now();
    let century =
        signed(json!({"sub": "tp1", "role": "taxpayer", "iat": t, "exp": t + 100 * 365 * 86_400}));
    assert!(refusal(&app, century).await.contains("longer than"));
    // Without iat, what is left of its life counts.
    let no_iat = signed(json!({"sub": "tp1", "role": "taxpayer", "exp": t + 3 * 3600}));
    assert!(refusal(&app, no_iat).await.contains("longer than"));
    // Issued an hour ago for three hours in all: fine, and so is a token without iat
    // that has an hour left.
    let older = signed(json!({"sub": "tp1", "role": "taxpayer", "iat": t - 3600, "exp": t + 3600}));
    bearer(&app, older)
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    let short = signed(json!({"sub": "tp1", "role": "taxpayer", "exp": t + 3600}));
    bearer(&app, short)
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    // The default maximum (24h) refuses the 100-year token too.
    let default = TestApp::spawn().await;
    let century =
        signed(json!({"sub": "tp1", "role": "taxpayer", "iat": t, "exp": t + 100 * 365 * 86_400}));
    assert!(refusal(&default, century).await.contains("longer than"));
}

#[tokio::test]
async fn refusals_do_not_echo_the_jwt_library() {
    let app = TestApp::spawn().await;
    let t = now();
    let cases = [
        ("not-a-token".to_string(), "the token is malformed"),
        ("a.b.c".to_string(), "the token is malformed"),
        (
            // Signed with another secret.
            encode(
                &Header::default(),
                &json!({"sub": "x", "role": "admin", "exp": t + 60}),
                &EncodingKey::from_secret(b"another-secret-another-secret-another"),
            )
            .expect("sign"),
            "the token's signature does not verify",
        ),
        (
            signed(json!({"sub": "x", "role": "admin", "exp": "tomorrow"})),
            "the token has no expiry (exp)",
        ),
        (
            signed(json!({"sub": "x", "role": ["admin"], "exp": t + 60})),
            "the token's claims are malformed",
        ),
        (
            signed(json!({"sub": "x", "role": "admin"})),
            "the token has no expiry (exp)",
        ),
    ];
    for (token, expected) in cases {
        let r = bearer(&app, token).gql("{ me { id } }", json!({})).await;
        assert_eq!(r.code(), Some("UNAUTHENTICATED"));
        assert_eq!(r.0["errors"][0]["extensions"]["en"], expected, "{:?}", r.0);
        assert!(
            !r.0.to_string().contains("Error"),
            "no library error names: {}",
            r.0
        );
    }
}

/// The secret as `taxdesk.toml` gives it (the environment ignores empty values).
fn config_with_secret(dir: &std::path::Path, secret: &str) -> taxdesk::Config {
    let file = dir.join("taxdesk.toml");
    std::fs::write(&file, format!("jwt_secret = {secret:?}\n")).expect("write config");
    let env = std::collections::HashMap::from([
        ("TAXDESK_CONFIG".to_string(), file.display().to_string()),
        ("TAXDESK_DATA_DIR".to_string(), dir.display().to_string()),
        (
            "DATABASE_URL".to_string(),
            format!("sqlite://{}/taxdesk.db", dir.display()),
        ),
        ("TAXDESK_BIND".to_string(), "127.0.0.1:0".to_string()),
    ]);
    taxdesk::Config::from_sources(&env).expect("config")
}

#[tokio::test]
async fn short_secrets_are_refused_at_start() {
    let dir = crate::helpers::TempDir(
        std::env::temp_dir().join(format!("taxdesk-secret-{}", uuid::Uuid::new_v4().simple())),
    );
    std::fs::create_dir_all(&dir.0).expect("dir");
    for secret in ["", "short", "0123456789abcdef0123456789abcde"] {
        let err = match taxdesk::start(config_with_secret(&dir.0, secret)).await {
            Ok(running) => {
                running.abort();
                panic!("a {}-byte secret was accepted", secret.len());
            }
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("at least 32"), "{err}");
    }
    // A development secret file someone shortened by hand is refused too.
    std::fs::write(dir.0.join("jwt-secret"), "tiny").expect("write");
    let mut dev = config_with_secret(&dir.0, "");
    dev.jwt_secret = None;
    let err = taxdesk::auth::Keys::from_config(&dev)
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("at least 32"));
    // 32 bytes are enough, and the generated development secret is longer.
    let ok = config_with_secret(&dir.0, "0123456789abcdef0123456789abcdef");
    taxdesk::auth::Keys::from_config(&ok).expect("32 bytes");
    std::fs::remove_file(dir.0.join("jwt-secret")).expect("rm");
    taxdesk::auth::Keys::from_config(&dev).expect("generated secret");
    let generated = std::fs::read_to_string(dir.0.join("jwt-secret")).expect("written");
    assert!(generated.trim().len() >= 64);
}
