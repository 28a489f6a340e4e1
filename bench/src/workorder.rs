//! `workorder`: work-order transitions per second through GraphQL (create → dispatch → accept
//! → progress → complete), on SQLite and on PostgreSQL, each against the database's own
//! ceiling measured in the same run with the same statements per transition:
//!
//! - PostgreSQL: `pgbench` running [`TEMPLATE`] (the reads and writes of one order's five
//!   transitions, as the service issues them) on the same database;
//! - SQLite: the same statements in a raw sea-orm loop, on a fresh file database with the
//!   server's connection settings (one connection, WAL, `synchronous = NORMAL`).
//!
//! The rows each path wrote per order are counted and shown, so the two can be compared.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};

use crate::client::Gql;
use crate::load;
use crate::pg::Pg;
use crate::report::{Check, Column, ScenarioReport};
use crate::server::BenchServer;

pub const NAME: &str = "workorder";

pub struct Options {
    /// Orders driven at once (closed loops); also pgbench's `-c` and the raw loop's tasks.
    pub clients: usize,
    /// Seconds per measured phase.
    pub seconds: u64,
}

/// One order's five transitions as statements. `BEGIN`/`COMMIT` lines delimit the five
/// transactions; `:name` is a parameter; a `--pg` suffix marks a PostgreSQL-only statement
/// (none now). Mirrors `workflow/src/work_order/service.rs` (load, decide, version-checked
/// update, history, effects) for a taxpayer's order dispatched by an admin to a staff
/// handler, with one admin as the supervisor (so: five history rows, four notifications, one
/// deadline job). Not here, as they are rare beside the rest: the number block the service
/// reserves once per 16 creates, and the coalesced job wake-up NOTIFY after commits (at most
/// one per 20 ms).
const TEMPLATE: &str = r#"
BEGIN
SELECT id, role, display_name, taxpayer_id, email, created_at, updated_at FROM users WHERE id = :tp
INSERT INTO work_orders (id, number, title, description, category, taxpayer_id, created_by, handler_id, status, priority, urge_count, last_urged_at, resolution, rating_score, rating_comment, rated_at, closed_at, deadline, overdue_escalated_for, source_session_id, source_leave_message_id, version, created_at, updated_at) VALUES (:wo, :wo, '发票开具失败', '开具数电发票时提示额度不足，请协助处理。', '发票业务', :tp, :tp, NULL, 'SUBMITTED', 'NORMAL', 0, NULL, NULL, NULL, NULL, NULL, NULL, CURRENT_TIMESTAMP, NULL, NULL, NULL, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)
INSERT INTO work_order_history (id, work_order_id, seq, event, from_status, to_status, actor_id, actor_role, note, at) VALUES (:h1, :wo, 1, 'CREATE', NULL, 'SUBMITTED', :tp, 'TAXPAYER', NULL, CURRENT_TIMESTAMP)
INSERT INTO jobs (id, kind, payload, dedupe_key, run_at, state, attempts, max_attempts, created_at, updated_at) VALUES (:job, 'work_order.deadline', '{"workOrderId": "bench"}', :job, CURRENT_TIMESTAMP, 'DONE', 0, 5, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) ON CONFLICT (dedupe_key) DO NOTHING
SELECT id, role, display_name, taxpayer_id, email, created_at, updated_at FROM users WHERE id = :tp
SELECT id, role, display_name, taxpayer_id, email, created_at, updated_at FROM users WHERE role = 'ADMIN'
INSERT INTO notifications (id, user_id, kind, title, body, target_kind, target_id, read_at, created_at) VALUES (:n1, :admin, 'WORK_ORDER_CREATED', '新工单', '工单「发票开具失败」（发票业务）已提交，等待分派。', 'WORK_ORDER', :wo, NULL, CURRENT_TIMESTAMP)
COMMIT
BEGIN
SELECT * FROM work_orders WHERE id = :wo
SELECT id, role, display_name, taxpayer_id, email, created_at, updated_at FROM users WHERE id = :handler
UPDATE work_orders SET id = :wo, number = :wo, title = '发票开具失败', description = '开具数电发票时提示额度不足，请协助处理。', category = '发票业务', taxpayer_id = :tp, created_by = :tp, handler_id = :handler, status = 'DISPATCHED', priority = 'NORMAL', urge_count = 0, last_urged_at = NULL, resolution = NULL, rating_score = NULL, rating_comment = NULL, rated_at = NULL, closed_at = NULL, deadline = CURRENT_TIMESTAMP, overdue_escalated_for = NULL, source_session_id = NULL, source_leave_message_id = NULL, version = 2, created_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP WHERE id = :wo AND version = 1
INSERT INTO work_order_history (id, work_order_id, seq, event, from_status, to_status, actor_id, actor_role, note, at) VALUES (:h2, :wo, 2, 'DISPATCH', 'SUBMITTED', 'DISPATCHED', :admin, 'ADMIN', NULL, CURRENT_TIMESTAMP)
SELECT id, role, display_name, taxpayer_id, email, created_at, updated_at FROM users WHERE id = :handler
INSERT INTO notifications (id, user_id, kind, title, body, target_kind, target_id, read_at, created_at) VALUES (:n2, :handler, 'WORK_ORDER_DISPATCHED', '工单已分派给您', '请及时受理工单「发票开具失败」。', 'WORK_ORDER', :wo, NULL, CURRENT_TIMESTAMP)
COMMIT
BEGIN
SELECT * FROM work_orders WHERE id = :wo
UPDATE work_orders SET id = :wo, number = :wo, title = '发票开具失败', description = '开具数电发票时提示额度不足，请协助处理。', category = '发票业务', taxpayer_id = :tp, created_by = :tp, handler_id = :handler, status = 'IN_PROGRESS', priority = 'NORMAL', urge_count = 0, last_urged_at = NULL, resolution = NULL, rating_score = NULL, rating_comment = NULL, rated_at = NULL, closed_at = NULL, deadline = CURRENT_TIMESTAMP, overdue_escalated_for = NULL, source_session_id = NULL, source_leave_message_id = NULL, version = 3, created_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP WHERE id = :wo AND version = 2
INSERT INTO work_order_history (id, work_order_id, seq, event, from_status, to_status, actor_id, actor_role, note, at) VALUES (:h3, :wo, 3, 'ACCEPT', 'DISPATCHED', 'IN_PROGRESS', :handler, 'STAFF', NULL, CURRENT_TIMESTAMP)
COMMIT
BEGIN
SELECT * FROM work_orders WHERE id = :wo
UPDATE work_orders SET id = :wo, number = :wo, title = '发票开具失败', description = '开具数电发票时提示额度不足，请协助处理。', category = '发票业务', taxpayer_id = :tp, created_by = :tp, handler_id = :handler, status = 'IN_PROGRESS', priority = 'NORMAL', urge_count = 0, last_urged_at = NULL, resolution = NULL, rating_score = NULL, rating_comment = NULL, rated_at = NULL, closed_at = NULL, deadline = CURRENT_TIMESTAMP, overdue_escalated_for = NULL, source_session_id = NULL, source_leave_message_id = NULL, version = 4, created_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP WHERE id = :wo AND version = 3
INSERT INTO work_order_history (id, work_order_id, seq, event, from_status, to_status, actor_id, actor_role, note, at) VALUES (:h4, :wo, 4, 'PROGRESS', 'IN_PROGRESS', 'IN_PROGRESS', :handler, 'STAFF', '已联系纳税人核实情况', CURRENT_TIMESTAMP)
SELECT id, role, display_name, taxpayer_id, email, created_at, updated_at FROM users WHERE id = :tp
INSERT INTO notifications (id, user_id, kind, title, body, target_kind, target_id, read_at, created_at) VALUES (:n3, :tp, 'WORK_ORDER_PROGRESS', '工单有新进展', '您的工单「发票开具失败」有新的处理进展：\n已联系纳税人核实情况', 'WORK_ORDER', :wo, NULL, CURRENT_TIMESTAMP)
COMMIT
BEGIN
SELECT * FROM work_orders WHERE id = :wo
UPDATE work_orders SET id = :wo, number = :wo, title = '发票开具失败', description = '开具数电发票时提示额度不足，请协助处理。', category = '发票业务', taxpayer_id = :tp, created_by = :tp, handler_id = :handler, status = 'COMPLETED', priority = 'NORMAL', urge_count = 0, last_urged_at = NULL, resolution = '已调整发票额度', rating_score = NULL, rating_comment = NULL, rated_at = NULL, closed_at = CURRENT_TIMESTAMP, deadline = CURRENT_TIMESTAMP, overdue_escalated_for = NULL, source_session_id = NULL, source_leave_message_id = NULL, version = 5, created_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP WHERE id = :wo AND version = 4
INSERT INTO work_order_history (id, work_order_id, seq, event, from_status, to_status, actor_id, actor_role, note, at) VALUES (:h5, :wo, 5, 'COMPLETE', 'IN_PROGRESS', 'COMPLETED', :handler, 'STAFF', '已调整发票额度', CURRENT_TIMESTAMP)
SELECT id, role, display_name, taxpayer_id, email, created_at, updated_at FROM users WHERE id = :tp
INSERT INTO notifications (id, user_id, kind, title, body, target_kind, target_id, read_at, created_at) VALUES (:n4, :tp, 'WORK_ORDER_COMPLETED', '工单已办结', '您的工单「发票开具失败」已办结，欢迎评价。处理结果：\n已调整发票额度', 'WORK_ORDER', :wo, NULL, CURRENT_TIMESTAMP)
SELECT id, role, display_name, taxpayer_id, email, created_at, updated_at FROM users WHERE id = :tp
COMMIT
"#;

/// Parameters that are fresh ids for every order (the rest name the order's users).
const FRESH: &[&str] = &[
    "wo", "h1", "h2", "h3", "h4", "h5", "n1", "n2", "n3", "n4", "job",
];
const TRANSITIONS_PER_ORDER: u64 = 5;

pub async fn run(opts: &Options, pg: &Pg) -> anyhow::Result<ScenarioReport> {
    let mut report = ScenarioReport::new(
        NAME,
        "work-order transitions per second vs the database's own ceiling",
        format!(
            "{c} closed loops for {s} s each drive orders through GraphQL: the taxpayer creates, \
             an admin dispatches to a staff handler, who accepts, adds progress and completes \
             (5 transitions, each one mutation and one transaction). Then the database's ceiling \
             for the same work, in the same run: on PostgreSQL `pgbench -M prepared -c {c} -j 2 \
             -T {s}` with a script of the statements the service issues for those 5 transitions \
             (reads, version-checked updates, history, notifications, the deadline job and its \
             NOTIFY; `bench/src/workorder.rs` TEMPLATE), on the same database; on SQLite the same \
             statements in a raw sea-orm loop ({c} tasks) on a fresh file with the server's \
             settings (one connection, WAL). Rows written per completed order are counted for \
             both paths.",
            c = opts.clients,
            s = opts.seconds
        ),
        vec![
            Column::int("database", "database"),
            Column::int("path", "path"),
            Column::int("orders", "orders"),
            Column::float("transitions_per_second", "transitions/s", 0),
            Column::float("p50_ms", "p50 ms", 2),
            Column::float("p99_ms", "p99 ms", 2),
            Column::int("errors", "errors"),
            Column::int(
                "rows_per_order",
                "rows/order (history, notifications, jobs)",
            ),
        ],
    );

    // SQLite.
    eprintln!("workorder: SQLite through GraphQL");
    let server = BenchServer::start(&[]).await?;
    let sqlite_url = server.database_url();
    let gql = graphql_phase(&server, opts).await;
    let rows = count_rows(&sqlite_url).await;
    server.stop().await;
    let gql = gql?;
    report
        .rows
        .push(gql.row("SQLite", "GraphQL", rows.as_ref().ok()));
    eprintln!("workorder: SQLite raw sea-orm loop");
    let dir = tempdir("wo-ceiling")?;
    let url = format!("sqlite://{}/ceiling.db", dir.display());
    let ceiling = sqlite_ceiling(&url, opts).await;
    let ceiling_rows = count_rows(&url).await;
    let _ = std::fs::remove_dir_all(&dir);
    let ceiling = ceiling?;
    report.rows.push(ceiling.row(
        "SQLite",
        "raw sea-orm loop (ceiling)",
        ceiling_rows.as_ref().ok(),
    ));
    report.checks.push(Check::info_ratio(
        "work-order transitions/s, SQLite",
        gql.per_second,
        "tr/s",
        "raw sea-orm loop",
        ceiling.per_second,
    ));
    gql.notes("SQLite GraphQL", &mut report.notes);

    // PostgreSQL.
    let target = "≥ 0.5 × limit";
    if let Err(why) = pg.check().await {
        report.notes.push(format!("PostgreSQL: skipped: {why}"));
        report.checks.push(Check::skipped(
            "work-order transitions/s, PostgreSQL",
            target,
            &why,
        ));
        return Ok(report);
    }
    let db = pg.create_db("wo").await?;
    let r = async {
        eprintln!("workorder: PostgreSQL through GraphQL");
        let server = BenchServer::start(&[("DATABASE_URL", &db.url)]).await?;
        let gql = graphql_phase(&server, opts).await;
        let rows = count_rows(&db.url).await;
        server.stop().await;
        let gql = gql?;
        let before = count_rows(&db.url).await?;
        eprintln!("workorder: PostgreSQL pgbench");
        let bench = pgbench(&db.url, opts).await?;
        let after = count_rows(&db.url).await?;
        anyhow::Ok((gql, rows, bench, before, after))
    }
    .await;
    db.drop_db().await;
    let (gql, rows, bench, before, after) = r?;
    report
        .rows
        .push(gql.row("PostgreSQL", "GraphQL", rows.as_ref().ok()));
    let mut bench_row = bench.row("PostgreSQL", "pgbench (ceiling)", None);
    bench_row["rows_per_order"] = json!(after.per_order_since(&before));
    report.rows.push(bench_row);
    gql.notes("PostgreSQL GraphQL", &mut report.notes);
    report.checks.push(Check::ratio_at_least(
        "work-order transitions/s, PostgreSQL",
        gql.per_second,
        "tr/s",
        "pgbench, same statements",
        bench.per_second,
        0.5,
    ));
    Ok(report)
}

fn tempdir(what: &str) -> anyhow::Result<std::path::PathBuf> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("taxdesk-bench-{what}-{}", &unique[..8]));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

struct Phase {
    orders: u64,
    per_second: f64,
    histogram: Option<hdrhistogram::Histogram<u64>>,
    errors: u64,
    first_error: Option<String>,
}

impl Phase {
    fn row(&self, database: &str, path: &str, rows: Option<&Rows>) -> Value {
        let mut row = match &self.histogram {
            Some(h) => load::quantiles(h),
            None => json!({}),
        };
        row["database"] = json!(database);
        row["path"] = json!(path);
        row["orders"] = json!(self.orders);
        row["transitions_per_second"] = json!(self.per_second);
        row["errors"] = json!(self.errors);
        row["rows_per_order"] = json!(rows.map(|r| r.per_order()));
        row
    }

    fn notes(&self, what: &str, notes: &mut Vec<String>) {
        if self.errors > 0 {
            notes.push(format!(
                "{what}: {} failed orders; first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
    }
}

const CREATE: &str =
    "mutation($i: CreateWorkOrderInput!) { createWorkOrder(input: $i) { id status } }";
const DISPATCH: &str =
    "mutation($i: DispatchWorkOrderInput!) { dispatchWorkOrder(input: $i) { id status } }";
const ACCEPT: &str = "mutation($id: ID!) { acceptWorkOrder(id: $id) { id status } }";
const PROGRESS: &str =
    "mutation($i: AddWorkOrderProgressInput!) { addWorkOrderProgress(input: $i) { id status } }";
const COMPLETE: &str =
    "mutation($i: CompleteWorkOrderInput!) { completeWorkOrder(input: $i) { id status } }";

async fn graphql_phase(server: &BenchServer, opts: &Options) -> anyhow::Result<Phase> {
    let gql = Gql::new(server.graphql_url())?;
    let admin = server.token("admin", "bench-wo-admin")?;
    let mut users = vec![];
    for w in 0..opts.clients {
        users.push((
            server.token("taxpayer", &format!("bench-wo-tp-{w}"))?,
            format!("bench-wo-h-{w}"),
            server.token("staff", &format!("bench-wo-h-{w}"))?,
        ));
    }
    // Everyone is seen once, so the handlers exist and the admin is a supervisor.
    gql.run(&admin, "{ me { id } }", json!({})).await?;
    for (tp, _, h) in &users {
        gql.run(tp, "{ me { id } }", json!({})).await?;
        gql.run(h, "{ me { id } }", json!({})).await?;
    }
    let users = Arc::new(users);
    let op = move |w: usize, _i: u64, mut hist: hdrhistogram::Histogram<u64>| {
        let (gql, admin, users) = (gql.clone(), admin.clone(), users.clone());
        async move {
            let (tp, handler_id, handler) = &users[w];
            let r = async {
                let mut step = async |token: &str, q: &str, vars: Value| {
                    let t = Instant::now();
                    let v = gql.run(token, q, vars).await?;
                    load::record(&mut hist, t.elapsed());
                    anyhow::Ok(v)
                };
                let created = step(
                    tp,
                    CREATE,
                    json!({"i": {"title": "发票开具失败", "description": "开具数电发票时提示额度不足，请协助处理。", "category": "发票业务"}}),
                )
                .await?;
                let id = created["createWorkOrder"]["id"]
                    .as_str()
                    .ok_or_else(|| anyhow!("no id in {created}"))?
                    .to_string();
                step(&admin, DISPATCH, json!({"i": {"id": id, "handlerId": handler_id}})).await?;
                step(handler, ACCEPT, json!({"id": id})).await?;
                step(handler, PROGRESS, json!({"i": {"id": id, "note": "已联系纳税人核实情况"}})).await?;
                let done = step(handler, COMPLETE, json!({"i": {"id": id, "resolution": "已调整发票额度"}})).await?;
                if done["completeWorkOrder"]["status"] != "COMPLETED" {
                    bail!("not completed: {done}");
                }
                anyhow::Ok(1)
            }
            .await;
            (hist, r)
        }
    };
    let r = load::run(opts.clients, Duration::from_secs(opts.seconds), op).await?;
    Ok(Phase {
        orders: r.ok,
        per_second: r.ok as f64 * TRANSITIONS_PER_ORDER as f64 / r.elapsed.as_secs_f64(),
        histogram: Some(r.histogram),
        errors: r.errors,
        first_error: r.first_error,
    })
}

/// The template as (transactions of (sql with `?`, parameter names)).
fn parsed(backend: DbBackend) -> Vec<Vec<(String, Vec<String>)>> {
    let mut txns = vec![];
    let mut cur: Vec<(String, Vec<String>)> = vec![];
    for line in TEMPLATE.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line {
            "BEGIN" => cur.clear(),
            "COMMIT" => txns.push(std::mem::take(&mut cur)),
            l => {
                if let Some(sql) = l.strip_suffix("--pg") {
                    if backend != DbBackend::Postgres {
                        continue;
                    }
                    cur.push((sql.trim().to_string(), vec![]));
                    continue;
                }
                let (mut sql, mut names) = (String::new(), vec![]);
                let mut chars = l.chars().peekable();
                while let Some(c) = chars.next() {
                    let next_is_name = chars.peek().is_some_and(|n| n.is_ascii_lowercase());
                    if c == ':' && next_is_name {
                        let mut name = String::new();
                        while let Some(&n) = chars.peek() {
                            if n.is_ascii_alphanumeric() || n == '_' {
                                name.push(n);
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        names.push(name);
                        sql.push_str(&match backend {
                            DbBackend::Postgres => format!("${}", names.len()),
                            _ => "?".into(),
                        });
                    } else {
                        sql.push(c);
                    }
                }
                // '\n' in the template's string literals is a newline, as the service writes.
                cur.push((sql.replace("\\n", "\n"), names));
            }
        }
    }
    txns
}

/// The template as a pgbench script: fresh ids from `random()`, the rest from `-D`.
fn pgbench_script() -> String {
    let mut s = String::new();
    for name in FRESH {
        s.push_str(&format!("\\set {name} random(1, 9000000000000000000)\n"));
    }
    for line in TEMPLATE.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let line = line.strip_suffix("--pg").unwrap_or(line).trim();
        // pgbench passes E'' escapes through; a real newline would end the command.
        let line = if line.contains("\\n") {
            line.replacen("'您的", "E'您的", 1)
        } else {
            line.to_string()
        };
        s.push_str(&line);
        s.push_str(";\n");
    }
    s
}

async fn sqlite_ceiling(url: &str, opts: &Options) -> anyhow::Result<Phase> {
    let db = taxdesk::db::connect(url).await?;
    taxdesk::db::migrate(&db).await?;
    for (id, role) in [
        ("bench-wo-admin", "ADMIN"),
        ("bench-wo-tp", "TAXPAYER"),
        ("bench-wo-h", "STAFF"),
    ] {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO users (id, role, display_name, created_at, updated_at) VALUES (?, ?, ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            [id.into(), role.into(), id.into()],
        ))
        .await?;
    }
    let txns = Arc::new(parsed(DbBackend::Sqlite));
    let op = move |_w: usize, _i: u64, mut hist: hdrhistogram::Histogram<u64>| {
        let (db, txns) = (db.clone(), txns.clone());
        async move {
            let r = one_order(&db, &txns, &mut hist).await;
            (hist, r.map(|_| 1))
        }
    };
    let r = load::run(opts.clients, Duration::from_secs(opts.seconds), op).await?;
    Ok(Phase {
        orders: r.ok,
        per_second: r.ok as f64 * TRANSITIONS_PER_ORDER as f64 / r.elapsed.as_secs_f64(),
        histogram: Some(r.histogram),
        errors: r.errors,
        first_error: r.first_error,
    })
}

async fn one_order(
    db: &DatabaseConnection,
    txns: &[Vec<(String, Vec<String>)>],
    hist: &mut hdrhistogram::Histogram<u64>,
) -> anyhow::Result<()> {
    let mut ids = std::collections::HashMap::new();
    for name in FRESH {
        ids.insert(*name, uuid::Uuid::now_v7().to_string());
    }
    ids.insert("tp", "bench-wo-tp".into());
    ids.insert("handler", "bench-wo-h".into());
    ids.insert("admin", "bench-wo-admin".into());
    let backend = db.get_database_backend();
    for txn in txns {
        let t = Instant::now();
        let tx = db.begin().await?;
        for (sql, names) in txn {
            let values: Vec<sea_orm::Value> = names
                .iter()
                .map(|n| ids.get(n.as_str()).cloned().unwrap_or_default().into())
                .collect();
            let stmt = Statement::from_sql_and_values(backend, sql, values);
            if sql.starts_with("SELECT") || sql.contains("RETURNING") {
                tx.query_all_raw(stmt).await?;
            } else {
                tx.execute_raw(stmt).await?;
            }
        }
        tx.commit().await?;
        load::record(hist, t.elapsed());
    }
    Ok(())
}

async fn pgbench(url: &str, opts: &Options) -> anyhow::Result<Phase> {
    let dir = tempdir("pgbench")?;
    let script = dir.join("workorder.sql");
    std::fs::write(&script, pgbench_script())?;
    let out = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &opts.clients.to_string()])
        .args(["-T", &opts.seconds.to_string()])
        .args([
            "-D",
            "tp=bench-wo-tp-0",
            "-D",
            "handler=bench-wo-h-0",
            "-D",
            "admin=bench-wo-admin",
        ])
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .await
        .context("running pgbench (is it installed?)")?;
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("pgbench failed: {stderr}{stdout}");
    }
    let field = |prefix: &str| -> Option<f64> {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    let tps = field("tps = ").with_context(|| format!("no tps in pgbench's output:\n{stdout}"))?;
    let orders = field("number of transactions actually processed: ").unwrap_or(0.0);
    let failed = field("number of failed transactions: ").unwrap_or(0.0);
    let latency = field("latency average = ");
    Ok(Phase {
        orders: orders as u64,
        per_second: tps * TRANSITIONS_PER_ORDER as f64,
        histogram: None,
        errors: failed as u64,
        first_error: latency.map(|l| format!("average latency per order {l} ms")),
    })
}

/// Rows the work-order path writes, for comparing the GraphQL run with the ceiling's.
struct Rows {
    completed: i64,
    history: i64,
    notifications: i64,
    jobs: i64,
}

impl Rows {
    fn per_order(&self) -> String {
        let n = self.completed.max(1) as f64;
        format!(
            "{:.1}, {:.1}, {:.1}",
            self.history as f64 / n,
            self.notifications as f64 / n,
            self.jobs as f64 / n
        )
    }

    fn per_order_since(&self, before: &Rows) -> String {
        Rows {
            completed: self.completed - before.completed,
            history: self.history - before.history,
            notifications: self.notifications - before.notifications,
            jobs: self.jobs - before.jobs,
        }
        .per_order()
    }
}

async fn count_rows(url: &str) -> anyhow::Result<Rows> {
    let mut opts = sea_orm::ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false).max_connections(1);
    let db = sea_orm::Database::connect(opts).await?;
    let backend = db.get_database_backend();
    let count = async |sql: &str| -> anyhow::Result<i64> {
        let row = db
            .query_one_raw(Statement::from_string(backend, sql.to_string()))
            .await?
            .context("no count")?;
        Ok(row.try_get_by_index::<i64>(0)?)
    };
    let rows = Rows {
        completed: count("SELECT COUNT(*) FROM work_orders WHERE status = 'COMPLETED'").await?,
        history: count("SELECT COUNT(*) FROM work_order_history").await?,
        notifications: count("SELECT COUNT(*) FROM notifications WHERE target_kind = 'WORK_ORDER'")
            .await?,
        jobs: count("SELECT COUNT(*) FROM jobs WHERE kind = 'work_order.deadline'").await?,
    };
    db.close().await?;
    Ok(rows)
}
