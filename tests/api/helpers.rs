//! `TestApp::spawn()`: a server of our own, a database of our own, tokens for named users.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use taxdesk::auth::{Keys, TokenClaims};
use taxdesk::{Config, Running};

/// At least 32 bytes: shorter secrets are refused at start.
pub const SECRET: &str = "taxdesk-test-secret-0123456789abcdef";

pub struct TestApp {
    pub base: String,
    pub ws_url: String,
    pub http: reqwest::Client,
    pub database_url: String,
    pub data_dir: std::path::PathBuf,
    /// The settings it was started with, for a second instance on the same database.
    vars: HashMap<String, String>,
    keys: Keys,
    running: Option<Running>,
    /// PostgreSQL: the admin URL and the database to drop afterwards.
    pg_cleanup: Option<(String, String)>,
    _dir: TempDir,
}

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Replaces the database name of a PostgreSQL URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = base.rsplit_once('/').map(|(p, _)| p).unwrap_or(base);
    match query {
        Some(q) => format!("{prefix}/{db}?{q}"),
        None => format!("{prefix}/{db}"),
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// Starts a server with extra environment settings (e.g. `TAXDESK_URGE_COOLDOWN`).
    pub async fn spawn_with(env: &[(&str, &str)]) -> TestApp {
        let dir = TempDir(std::env::temp_dir().join(format!("taxdesk-test-{}", unique())));
        std::fs::create_dir_all(&dir.0).expect("temp dir");
        let mut vars: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut pg_cleanup = None;
        let database_url = match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
        {
            Some(admin) => {
                let name = format!("taxdesk_test_{}", unique());
                let conn = sea_orm::Database::connect(&admin)
                    .await
                    .expect("connect TEST_DATABASE_URL");
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                pg_cleanup = Some((admin.clone(), name.clone()));
                with_database(&admin, &name)
            }
            None => format!("sqlite://{}/taxdesk.db", dir.0.display()),
        };
        vars.insert("DATABASE_URL".into(), database_url.clone());
        // A test may listen elsewhere (`0.0.0.0:0`) or run the embedded default without a
        // key (`TAXDESK_JWT_SECRET` = "": the development secret in the data dir signs).
        vars.entry("TAXDESK_BIND".into())
            .or_insert_with(|| "127.0.0.1:0".into());
        vars.insert("TAXDESK_DATA_DIR".into(), dir.0.display().to_string());
        vars.entry("TAXDESK_JWT_SECRET".into())
            .or_insert_with(|| SECRET.into());
        // Tests never download the embedding model: CI hands the cached one in through
        // TAXDESK_KB_MODEL (its FAQ vectors cached once for every test), else lexical only.
        vars.entry("TAXDESK_KB_MODEL_URL".into())
            .or_insert_with(|| "off".into());
        if let Some(model) = std::env::var("TAXDESK_KB_MODEL")
            .ok()
            .filter(|m| !m.is_empty())
        {
            vars.entry("TAXDESK_KB_MODEL".into()).or_insert(model);
            vars.entry("TAXDESK_KB_VECTORS".into())
                .or_insert_with(|| own_vector_cache(&dir.0));
        }
        // Off in tests unless a test turns it on.
        vars.entry("TAXDESK_RATE_LIMIT".into())
            .or_insert_with(|| "off".into());
        let config = Config::from_sources(&vars).expect("test config");
        let started_with = vars.clone();
        let keys = Keys::from_config(&config).expect("keys");
        let running = taxdesk::start(config.clone()).await.expect("server starts");
        let addr = running.addr;
        TestApp {
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/graphql/ws"),
            http: reqwest::Client::new(),
            database_url,
            data_dir: dir.0.clone(),
            vars: started_with,
            keys,
            running: Some(running),
            pg_cleanup,
            _dir: dir,
        }
    }

    /// The configuration this server was started with (for CLI verbs on its database).
    pub fn config(&self) -> Config {
        Config::from_sources(&self.vars).expect("test config")
    }

    /// Another server on the same database (scale-out), with its own scheduler.
    pub async fn second_instance(&self) -> Running {
        let config = Config::from_sources(&self.vars).expect("test config");
        taxdesk::start(config).await.expect("second server starts")
    }

    /// This server's instance id (its listener connection is `taxdesk-listen-<id>`).
    pub fn instance_id(&self) -> String {
        self.running.as_ref().expect("running").instance_id.clone()
    }

    /// A client of `sub` talking to another instance (see [`TestApp::second_instance`]).
    pub fn user_at(&self, addr: std::net::SocketAddr, role: &str, sub: &str) -> Client {
        Client {
            http: self.http.clone(),
            url: format!("http://{addr}/graphql"),
            token: Some(self.token(role, sub)),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// Polls `sql`'s row count until it reaches `n` (or `timeout` passes); returns the last count.
    pub async fn wait_for_count(&self, sql: &str, n: i64, timeout: Duration) -> i64 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let c = self.count(sql).await;
            if c >= n || std::time::Instant::now() > deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `/healthz` as JSON.
    pub async fn health(&self) -> Value {
        self.http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("healthz answers")
            .json()
            .await
            .expect("healthz is JSON")
    }

    /// Polls `/healthz` until `semanticSearch` is `want` (or `timeout` passes); the last value.
    pub async fn wait_semantic_search(&self, want: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let now = self.health().await["semanticSearch"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if now == want || std::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.running.as_ref().expect("running").workflow.db()
    }

    /// A token for `sub` with `role`; the user's name is their id in upper case, and
    /// taxpayers get an email address.
    pub fn token(&self, role: &str, sub: &str) -> String {
        self.token_with(role, sub, Duration::from_secs(3600), true)
    }

    pub fn token_with(&self, role: &str, sub: &str, ttl: Duration, email: bool) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let exp = if ttl.is_zero() {
            now - 3600
        } else {
            now + ttl.as_secs()
        };
        self.keys
            .mint(&TokenClaims {
                sub: sub.into(),
                role: role.into(),
                name: Some(sub.to_uppercase()),
                taxpayer_id: (role == "taxpayer").then(|| format!("91330000{sub}")),
                email: email.then(|| format!("{sub}@example.com")),
                exp,
                iat: Some(now),
                ..TokenClaims::default()
            })
            .expect("mint")
    }

    /// The keys the server verifies with, to mint tokens with unusual claims.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn user(&self, role: &str, sub: &str) -> Client {
        Client {
            http: self.http.clone(),
            url: format!("{}/graphql", self.base),
            token: Some(self.token(role, sub)),
        }
    }

    pub fn anonymous(&self) -> Client {
        Client {
            http: self.http.clone(),
            url: format!("{}/graphql", self.base),
            token: None,
        }
    }

    /// Fault injection: every UPDATE of `table` whose new row meets `when` (a condition on
    /// `NEW`, written the same for both databases) fails with "injected fault: `name`" until
    /// [`clear_fault`](Self::clear_fault) drops it.
    pub async fn inject_fault(&self, name: &str, table: &str, when: &str) {
        let message = format!("injected fault: {name}");
        if self.is_postgres() {
            self.execute(&format!(
                "CREATE FUNCTION {name}() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql"
            ))
            .await;
            self.execute(&format!(
                "CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW \
                 WHEN ({when}) EXECUTE FUNCTION {name}()"
            ))
            .await;
        } else {
            self.execute(&format!(
                "CREATE TRIGGER {name} BEFORE UPDATE ON {table} WHEN {when} \
                 BEGIN SELECT RAISE(ABORT, '{message}'); END"
            ))
            .await;
        }
    }

    pub async fn clear_fault(&self, name: &str, table: &str) {
        let drop = if self.is_postgres() {
            format!("DROP TRIGGER {name} ON {table}")
        } else {
            format!("DROP TRIGGER {name}")
        };
        self.execute(&drop).await;
    }

    /// Runs one statement on the server's database behind its back (to damage a row, say).
    pub async fn execute(&self, sql: &str) {
        let backend = self.db().get_database_backend();
        self.db()
            .execute_raw(Statement::from_string(backend, sql.to_string()))
            .await
            .expect("statement");
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let backend = self.db().get_database_backend();
        let row = self
            .db()
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM ({sql}) t"),
            ))
            .await
            .expect("count query")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("n")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The server's tasks live on the test's runtime, which this drop blocks: abort them
        // rather than wait for them.
        if let Some(r) = self.running.take() {
            r.abort();
        }
        let Some((admin, name)) = self.pg_cleanup.take() else {
            return;
        };
        // Dropping a PostgreSQL database needs its connections gone (FORCE ends them), on a
        // runtime of its own.
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(conn) = sea_orm::Database::connect(&admin).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join()
        .ok();
    }
}

/// A GraphQL client for one user.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
}

/// A GraphQL response, with helpers to read it.
#[derive(Debug, Clone)]
pub struct Gql(pub Value);

impl Gql {
    /// The first error's `extensions.code`, if any.
    pub fn code(&self) -> Option<&str> {
        self.0["errors"][0]["extensions"]["code"].as_str()
    }

    /// Panics unless the response is the coded INTERNAL error with a request id whose
    /// message does not contain `hidden` (what stays in the server's log).
    pub fn assert_internal_hiding(&self, hidden: &str) {
        assert_eq!(self.code(), Some("INTERNAL"), "{:?}", self.0);
        let e = &self.0["errors"][0];
        assert!(e["extensions"]["requestId"].is_string(), "{:?}", self.0);
        assert!(!e["message"].to_string().contains(hidden), "{:?}", self.0);
    }

    /// Panics with the errors unless the response has none.
    pub fn ok(self) -> Value {
        assert!(
            self.0.get("errors").is_none(),
            "unexpected errors: {}",
            serde_json::to_string_pretty(&self.0["errors"]).unwrap()
        );
        self.0["data"].clone()
    }
}

impl Client {
    pub async fn gql(&self, query: &str, variables: Value) -> Gql {
        let mut req = self
            .http
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request sent");
        let body: Value = resp.json().await.expect("a JSON body");
        Gql(body)
    }
}

/// The FAQ vector cache a test server uses: its own copy of the one CI fills before the tests
/// (`.ci/run`). A server saves only the texts its own knowledge base uses, so a test that
/// edits, disables or imports FAQs would otherwise drop seed vectors from the shared file and
/// make every later server embed them again (minutes of CPU while tests run side by side).
/// Without a filled cache (a local run), the servers share one file and fill it.
fn own_vector_cache(data_dir: &std::path::Path) -> String {
    let shared = std::env::temp_dir().join("taxdesk-test-kb-vectors.bin");
    let own = data_dir.join("kb-vectors.bin");
    match std::fs::copy(&shared, &own) {
        Ok(_) => own.display().to_string(),
        Err(_) => shared.display().to_string(),
    }
}
