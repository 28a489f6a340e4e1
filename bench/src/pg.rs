//! PostgreSQL for the scenarios that need it: a fresh database per use, dropped afterwards.
//! When the server is unreachable the scenarios report "skipped: <why>" instead of failing.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// Where the benchmark finds PostgreSQL (`--pg URL`); databases are created beside `test`.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

static SEQ: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Debug)]
pub struct Pg {
    /// The maintenance connection's URL (any database the user may connect to).
    pub admin_url: String,
}

/// A database of this run; `drop_db` removes it.
pub struct BenchDb {
    pub name: String,
    pub url: String,
    pg: Pg,
}

impl Pg {
    async fn admin(&self) -> anyhow::Result<DatabaseConnection> {
        let mut opts = sea_orm::ConnectOptions::new(self.admin_url.clone());
        opts.sqlx_logging(false)
            .max_connections(1)
            .connect_timeout(std::time::Duration::from_secs(3));
        Database::connect(opts)
            .await
            .with_context(|| format!("connecting to {}", redact(&self.admin_url)))
    }

    /// `Err(why)` when PostgreSQL cannot be used.
    pub async fn check(&self) -> Result<(), String> {
        let db = self.admin().await.map_err(|e| format!("{e:#}"))?;
        db.execute_unprepared("SELECT 1")
            .await
            .map_err(|e| format!("{e}"))?;
        Ok(())
    }

    /// Creates `taxdesk_bench_<UTC time>_<n>_<what>`.
    pub async fn create_db(&self, what: &str) -> anyhow::Result<BenchDb> {
        let name = format!(
            "taxdesk_bench_{}_{}_{what}",
            chrono::Utc::now().format("%Y%m%d%H%M%S"),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let admin = self.admin().await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let (base, _) = self
            .admin_url
            .rsplit_once('/')
            .context("the PostgreSQL URL names no database")?;
        Ok(BenchDb {
            url: format!("{base}/{name}"),
            name,
            pg: self.clone(),
        })
    }
}

impl BenchDb {
    pub async fn drop_db(self) {
        let r = async {
            self.pg
                .admin()
                .await?
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = r {
            eprintln!("warning: could not drop database {}: {e:#}", self.name);
        }
    }
}

fn redact(url: &str) -> &str {
    url.split('@').next_back().unwrap_or(url)
}
