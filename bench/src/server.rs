//! A taxdesk server of the benchmark's own: a temp folder with a fresh SQLite database, on
//! 127.0.0.1:0, on a tokio runtime (and OS thread) of its own so the load generator's tasks
//! and the server's tasks are scheduled apart, as they would be in two processes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use taxdesk::Config;
use taxdesk::auth::{Keys, TokenClaims};
use tokio::sync::oneshot;

/// At least 32 bytes: shorter secrets are refused at start.
const SECRET: &str = "taxdesk-bench-secret-0123456789abcdef";

pub struct BenchServer {
    pub addr: SocketAddr,
    keys: Keys,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
    database_url: String,
}

impl BenchServer {
    /// Starts a server; `extra` environment settings win over the benchmark's defaults.
    pub async fn start(extra: &[(&str, &str)]) -> anyhow::Result<BenchServer> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("taxdesk-bench-{}", &unique[..12]));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut vars: HashMap<String, String> = HashMap::from([
            (
                "DATABASE_URL".into(),
                format!("sqlite://{}/taxdesk.db", dir.display()),
            ),
            ("TAXDESK_BIND".into(), "127.0.0.1:0".into()),
            ("TAXDESK_DATA_DIR".into(), dir.display().to_string()),
            ("TAXDESK_JWT_SECRET".into(), SECRET.into()),
            ("TAXDESK_CALENDAR".into(), "always".into()),
            ("TAXDESK_LOG_FORMAT".into(), "text".into()),
            // Benches measure the engine, not the limiter (every client shares 127.0.0.1).
            ("TAXDESK_RATE_LIMIT".into(), "off".into()),
            // No model download and no FAQ embedding in the background of a measurement.
            ("TAXDESK_KB_MODEL_URL".into(), "off".into()),
        ]);
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        let database_url = vars["DATABASE_URL"].clone();
        let config = Config::from_sources(&vars).context("bench server configuration")?;
        let keys = keys()?;

        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<SocketAddr>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("taxdesk-server".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("taxdesk-server-worker")
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!(e).context("server runtime")));
                        return;
                    }
                };
                rt.block_on(async move {
                    match taxdesk::start(config).await {
                        Ok(running) => {
                            let _ = ready_tx.send(Ok(running.addr));
                            let _ = stop_rx.await;
                            running.stop(Duration::from_secs(2)).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.context("starting taxdesk")));
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .context("spawning the server thread")?;
        let addr = ready_rx
            .await
            .map_err(|_| anyhow!("the server thread ended before it was ready"))??;
        Ok(BenchServer {
            addr,
            keys,
            stop: Some(stop_tx),
            thread: Some(thread),
            dir,
            database_url,
        })
    }

    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// The server's database (SQLite file in its folder, or the PostgreSQL URL given).
    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// A token valid for four hours; the display name is the id in upper case.
    pub fn token(&self, role: &str, sub: &str) -> anyhow::Result<String> {
        token(&self.keys, role, sub)
    }

    /// Stops the server (connections get a short grace) and removes its folder.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        // Not stopped with `stop()` (an error path): ask the server to end, and leave its
        // thread to finish on its own; the process is about to exit anyway.
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The benchmark's token keys (HS256 with its own secret), for servers in this process or
/// in a child.
pub fn keys() -> anyhow::Result<Keys> {
    let vars = HashMap::from([("TAXDESK_JWT_SECRET".to_string(), SECRET.to_string())]);
    let config = Config::from_sources(&vars).context("token configuration")?;
    Keys::from_config(&config).context("token keys")
}

/// A token valid for four hours; the display name is the id in upper case.
pub fn token(keys: &Keys, role: &str, sub: &str) -> anyhow::Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    keys.mint(&TokenClaims {
        sub: sub.into(),
        role: role.into(),
        name: Some(sub.to_uppercase()),
        taxpayer_id: (role == "taxpayer").then(|| format!("91330000{sub}")),
        email: None,
        exp: now + 4 * 3600,
        iat: Some(now),
        ..TokenClaims::default()
    })
}

/// A server in a child process (this binary, `__serve`), for a clean resident-memory
/// figure: it prints `ADDR <addr>` and stops when its stdin closes.
pub struct ChildServer {
    pub addr: SocketAddr,
    child: tokio::process::Child,
}

impl ChildServer {
    pub async fn start() -> anyhow::Result<ChildServer> {
        use tokio::io::AsyncBufReadExt;
        let exe = std::env::current_exe().context("this executable")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("__serve")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the server process")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let addr = loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .context("the server process did not start within 60 s")??
                .context("the server process ended before it was ready")?;
            if let Some(a) = line.strip_prefix("ADDR ") {
                break a.trim().parse().context("server address")?;
            }
        };
        Ok(ChildServer { addr, child })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// `__serve`: the child side of [`ChildServer`].
pub async fn serve_child() -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let server = BenchServer::start(&[]).await?;
    println!("ADDR {}", server.addr);
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    server.stop().await;
    Ok(())
}

/// Resident memory of a process in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
