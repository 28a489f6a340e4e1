//! Connecting to the database (SQLite file with WAL, or PostgreSQL) and applying migrations.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use taxdesk_migrations::{Migrator, MigratorTrait};

/// The SQLite file of a `sqlite:` URL, if it names one (not `:memory:`).
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        if let Some(file) = sqlite_file(url)
            && let Some(dir) = Path::new(file).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
        }
        // One writing connection: SQLite has one writer anyway, and a single connection makes
        // every transaction serial, so concurrent writers never meet SQLITE_BUSY (or, in a
        // transaction that read first, SQLITE_BUSY_SNAPSHOT) mid-transaction. Reads that need
        // not wait for it go through `connect_reader`'s pool.
        opts.max_connections(1)
            .min_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
            });
    } else {
        opts.max_connections(16).min_connections(1);
    }
    let redacted = url.split('@').next_back().unwrap_or(url);
    Database::connect(opts)
        .await
        .with_context(|| format!("connecting to the database ({redacted})"))
}

/// Read-only connections beside SQLite's one writer.
const SQLITE_READERS: u32 = 4;
/// Connections for reads outside transactions beside PostgreSQL's 16 for transactions.
const PG_READERS: u32 = 8;

/// The connection for reads outside transactions (see `Workflow::reader`). SQLite (a file):
/// a pool of its own, so that a read never queues behind the one writer; WAL lets these read
/// the last commit while a write is in progress, and `query_only` makes any write sent here by
/// mistake fail loudly rather than race the writer. PostgreSQL: a second, smaller pool.
/// SQLite in memory (where another connection would be another, empty database): the
/// writer's pool itself.
pub async fn connect_reader(
    url: &str,
    writer: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    if url.starts_with("postgres") {
        // A pool of its own here too: a read outside a transaction (a queue place, a list)
        // must not wait in line behind the writers' transactions for a connection — in a
        // burst of hand-overs every answer would otherwise wait for the whole burst.
        let mut opts = ConnectOptions::new(url.to_string());
        opts.sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(10))
            .max_connections(PG_READERS)
            .min_connections(1);
        return Database::connect(opts)
            .await
            .context("opening the PostgreSQL readers");
    }
    if !url.starts_with("sqlite:") || sqlite_file(url).is_none() {
        return Ok(writer.clone());
    }
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(SQLITE_READERS)
        .min_connections(1)
        .map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(false)
                .busy_timeout(Duration::from_secs(10))
                .pragma("query_only", "ON")
        });
    Database::connect(opts)
        .await
        .context("opening the SQLite readers")
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("applying migrations")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn finds_the_sqlite_file() {
        assert_eq!(
            sqlite_file("sqlite://./data/taxdesk.db"),
            Some("./data/taxdesk.db")
        );
        assert_eq!(
            sqlite_file("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/test"), None);
    }
}
