//! The devagent's job-file linter (`kepm_devagent::lint::lint_file`, the entry point of
//! `kepm-devagent lint`) on arbitrary bytes: the first byte picks the host OS and the file's
//! place (under a `Jobs/` directory or not), the rest is the file.
//!
//! Invariants: never panics; the report has the job exactly when the bytes are JSON; malformed
//! JSON is one `json-syntax` error with its line and column; every finding has a rule, a JSON
//! path starting with `$`, a message and a fix, and renders (text and JSON).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;

use kepm_devagent::lint::{lint_file, LintOptions, Os, Severity};

/// A private directory for the job file, made once per process.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("kepmlog-fuzz-lint-{}", std::process::id()));
        std::fs::create_dir_all(d.join("root/Jobs")).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let host = match selector % 3 {
        0 => Os::Linux,
        1 => Os::Windows,
        _ => Os::MacOs,
    };
    // Under {root}/Jobs/ the linter derives the agent root and checks binaries there.
    let file = if selector & 0x10 != 0 {
        dir().join("root/Jobs/fuzz-job.json")
    } else {
        dir().join("fuzz-job.json")
    };
    std::fs::write(&file, body).expect("write the job file");
    let opts = LintOptions {
        agent_root: None,
        host,
        // Fixed, so that runAt checks do not depend on the day.
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        check_binaries: true,
    };
    let report = lint_file(&file, &opts);
    let is_json = serde_json::from_slice::<serde_json::Value>(body).is_ok();
    assert_eq!(report.job.is_some(), is_json);
    if !is_json {
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].rule, "json-syntax");
        assert!(report.findings[0].position.is_some());
    }
    assert_eq!(
        report.errors() + report.warnings() + report.notes(),
        report.findings.len()
    );
    for f in &report.findings {
        assert!(!f.rule.is_empty());
        assert!(f.path.starts_with('$'), "path {:?}", f.path);
        assert!(!f.message.is_empty(), "{f:?}");
        assert!(!f.fix.is_empty(), "{f:?}");
        assert!(matches!(
            f.severity,
            Severity::Error | Severity::Warning | Severity::Note
        ));
        let _ = f.to_string();
        let _ = f.to_json();
    }
});
