//! The command line: every subcommand answers `--help`/`-h` with its usage and exits 0
//! without side effects (no data dir, no secret, no server).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary in an empty folder with the data dir pointed inside it; kills it if it
/// does not end by itself (a `serve` that started) and says so.
fn run(args: &[&str], dir: &std::path::Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taxdesk"))
        .args(args)
        .current_dir(dir)
        .env("TAXDESK_DATA_DIR", dir.join("data"))
        .env("TAXDESK_BIND", "127.0.0.1:0")
        .env_remove("DATABASE_URL")
        .env_remove("TAXDESK_JWT_SECRET")
        .env_remove("TAXDESK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start taxdesk");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    (status.and_then(|s| s.code()), out)
}

#[test]
fn every_subcommand_answers_help_and_touches_nothing() {
    let dir = crate::helpers::TempDir(
        std::env::temp_dir().join(format!("taxdesk-cli-{}", uuid::Uuid::new_v4().simple())),
    );
    std::fs::create_dir_all(&dir.0).expect("dir");
    let cases: &[(&[&str], &str)] = &[
        (&["--help"], "taxdesk serve"),
        (&["serve", "--help"], "USAGE: taxdesk serve"),
        (&["serve", "-h"], "USAGE: taxdesk serve"),
        (&["migrate", "--help"], "USAGE: taxdesk migrate"),
        (&["schema", "-h"], "USAGE: taxdesk schema"),
        (&["token", "--help"], "USAGE: taxdesk token"),
        (&["token", "--role", "staff", "-h"], "USAGE: taxdesk token"),
        (&["kb", "--help"], "taxdesk kb import"),
        (&["kb", "import", "--help"], "USAGE: taxdesk kb import"),
        (&["kb", "eval", "-h"], "USAGE: taxdesk kb eval"),
        (
            &["kb", "model", "fetch", "--help"],
            "USAGE: taxdesk kb model",
        ),
    ];
    for (args, usage) in cases {
        let (code, out) = run(args, &dir.0);
        assert_eq!(code, Some(0), "taxdesk {args:?} did not exit 0 by itself");
        assert!(out.contains(usage), "taxdesk {args:?} printed {out:?}");
        let created: Vec<_> = std::fs::read_dir(&dir.0)
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(created.is_empty(), "taxdesk {args:?} created {created:?}");
    }
    // A stray argument is an error, not a reason to start.
    let (code, _) = run(&["serve", "now"], &dir.0);
    assert_eq!(code, Some(2));
    assert!(!dir.0.join("data").exists());
}
