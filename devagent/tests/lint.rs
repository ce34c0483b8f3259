//! `kepm-devagent lint`: a table of good and bad job files with the exact findings expected.

use std::path::{Path, PathBuf};
use std::process::Command;

use kepm_devagent::lint::{lint_file, LintOptions, Os, Severity};
use serde_json::Value;

use Severity::{Error as E, Warning as W};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn opts() -> LintOptions {
    LintOptions {
        agent_root: Some(dir().join("agent-root")),
        ..LintOptions::default()
    }
}

/// (file in tests/jobs without .json, expected findings as (severity, rule, JSON path)).
/// (severity, rule, JSON path)
type Expected = (Severity, &'static str, &'static str);

const CASES: &[(&str, &[Expected])] = &[
    ("good-minimal", &[]),
    ("good-cron", &[]),
    ("good-calendar", &[]),
    ("good-run-at", &[]),
    ("good-event-topic", &[]),
    ("good-executable-path", &[]),
    ("good-path-lookup", &[]),
    ("good-os-excluded", &[]),
    ("good-events-only", &[]),
    ("good-arguments-quoted", &[]),
    // The vendor guide's sample job, for Linux (see secrets_scanner_is_the_guide_sample).
    ("secrets-scanner", &[]),
    ("malformed", &[(E, "json-syntax", "$")]),
    ("root-array", &[(E, "json-root", "$")]),
    ("id-mismatch", &[(E, "id-file-name", "$.id")]),
    ("id_underscore", &[(E, "id-underscore", "$.id")]),
    ("id-missing", &[(E, "id-missing", "$.id")]),
    ("enabled-missing", &[(E, "enabled-missing", "$.enabled")]),
    ("enabled-false", &[(W, "enabled-false", "$.enabled")]),
    ("schedule-two-modes", &[(E, "schedule-mode", "$.schedule")]),
    ("schedule-empty", &[(E, "schedule-mode", "$.schedule")]),
    // "Jobs: Definition & Format": a job may run through the API alone.
    ("schedule-none", &[(W, "schedule-missing", "$.schedule")]),
    (
        "cron-out-of-range",
        &[(E, "schedule-cron", "$.schedule.cronExpression")],
    ),
    (
        "cron-six-fields",
        &[(E, "schedule-cron", "$.schedule.cronExpression")],
    ),
    (
        "run-at-local",
        &[(E, "schedule-run-at", "$.schedule.runAt")],
    ),
    (
        "run-at-past",
        &[(W, "schedule-run-at-past", "$.schedule.runAt")],
    ),
    (
        "calendar-bad",
        &[
            (E, "schedule-calendar", "$.schedule.calendar[0].time"),
            (
                E,
                "schedule-calendar",
                "$.schedule.calendar[0].daysOfWeek[0]",
            ),
        ],
    ),
    (
        "interval-zero",
        &[(E, "schedule-interval", "$.schedule.intervalMinutes")],
    ),
    ("events-object", &[(E, "events-shape", "$.events")]),
    // Custom event names are the vendor's ("Jobs: Definition & Format").
    ("events-custom", &[]),
    (
        "events-case",
        &[(W, "events-type", "$.events[0].eventType")],
    ),
    // osFilter is optional: without it the job targets every OS.
    ("os-filter-missing", &[]),
    ("os-filter-none", &[(E, "os-filter-none", "$.osFilter")]),
    (
        "mqtt-missing",
        &[(W, "mqtt-topics-missing", "$.mqttTopics")],
    ),
    (
        "mqtt-no-keeper-logger",
        &[(W, "mqtt-keeper-logger", "$.mqttTopics.allowedPublications")],
    ),
    (
        "event-topic-undeclared",
        &[(E, "event-topic", "$.eventTopic")],
    ),
    (
        "event-topic-renamed",
        &[(W, "event-topic-default", "$.mqttTopics.allowedPublications")],
    ),
    (
        "task-no-command",
        &[(E, "task-command", "$.tasks[0].command")],
    ),
    (
        "task-command-path",
        &[
            (E, "task-command", "$.tasks[0].command"),
            (E, "task-binary", "$.tasks[0].command"),
        ],
    ),
    (
        "task-execution-type",
        &[(E, "task-execution-type", "$.tasks[0].ExecutionType")],
    ),
    (
        "task-timeout-zero",
        &[(E, "task-timeout", "$.tasks[0].timeoutSeconds")],
    ),
    (
        "task-timeout-negative",
        &[(E, "task-timeout", "$.tasks[0].timeoutSeconds")],
    ),
    (
        "task-binary-missing",
        &[(E, "task-binary", "$.tasks[0].command")],
    ),
    (
        "task-relative-executable-path",
        &[(E, "task-executable-path", "$.tasks[0].executablePath")],
    ),
    (
        "unknown-fields",
        // executionType is "Jobs and Applications"' spelling: not unknown.
        &[(W, "unknown-field", "$.owner")],
    ),
    (
        "task-no-api-base",
        &[(W, "task-api-base", "$.tasks[0].arguments")],
    ),
    (
        "task-api-base-misspelt",
        &[
            (W, "parameter-undeclared", "$.tasks[0].arguments"),
            (W, "task-api-base", "$.tasks[0].arguments"),
        ],
    ),
    (
        "task-arguments-missing",
        &[(W, "task-api-base", "$.tasks[0].arguments")],
    ),
    (
        "task-arguments-array",
        &[(E, "task-arguments", "$.tasks[0].arguments")],
    ),
    (
        "task-arguments-type",
        &[(E, "task-arguments", "$.tasks[0].arguments")],
    ),
    ("tasks-empty", &[(E, "tasks-missing", "$.tasks")]),
    (
        "field-types",
        &[
            (E, "field-type", "$.enabled"),
            (E, "field-type", "$.tasks[0].continueOnFailure"),
        ],
    ),
    ("task-duplicate-id", &[(W, "task-id", "$.tasks[1].id")]),
];

#[test]
fn lint_table() {
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for (name, want) in CASES {
        let file = dir().join("jobs").join(format!("{name}.json"));
        let report = lint_file(&file, &opts());
        let got: Vec<(Severity, &str, &str)> = report
            .findings
            .iter()
            .map(|f| (f.severity, f.rule, f.path.as_str()))
            .collect();
        if got != *want {
            failures.push(format!("{name}: expected {want:?}\n   got {got:?}"));
        }
        for f in &report.findings {
            assert!(!f.message.is_empty() && !f.fix.is_empty(), "{name}: {f:?}");
            assert_eq!(f.file, file.display().to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_is_in_the_table() {
    let mut files: Vec<String> = std::fs::read_dir(dir().join("jobs"))
        .expect("tests/jobs")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    files.sort();
    let mut names: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(files, names);
}

fn only_finding(name: &str) -> kepm_devagent::lint::Finding {
    let report = lint_file(&dir().join(format!("jobs/{name}.json")), &opts());
    assert_eq!(report.findings.len(), 1, "{name}: {:#?}", report.findings);
    report.findings[0].clone()
}

/// The JSON string a fix suggests after `write "arguments": `, decoded.
fn suggested_arguments(fix: &str) -> String {
    let json = fix
        .strip_prefix("write \"arguments\": ")
        .or_else(|| fix.strip_prefix("add \"arguments\": "))
        .unwrap_or_else(|| panic!("not an arguments fix: {fix}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json} is not a JSON string: {e}"))
}

#[test]
fn arguments_as_one_string_are_accepted() {
    let report = lint_file(&dir().join("jobs/good-arguments-quoted.json"), &opts());
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.errors(), 0);
}

#[test]
fn an_arguments_array_is_an_error_whose_fix_is_the_joined_string() {
    let f = only_finding("task-arguments-array");
    assert_eq!(f.severity, E);
    assert_eq!(f.rule, "task-arguments");
    assert!(f.message.contains("one string"), "{}", f.message);
    // Copy-pasteable: the exact JSON text to put in the job file, each element quoted by
    // the agent's rules where needed (the number 5 written as its text).
    let want = r#"--scan --keeper-api-base={KeeperApiBaseUrl} --out "C:\Program Files\X\\" "say \"hi\"" 5"#;
    assert_eq!(
        f.fix,
        format!("write \"arguments\": {}", Value::from(want)),
        "{f}"
    );
    // ...and the agent would split that string back into the array's elements.
    let line = suggested_arguments(&f.fix);
    assert_eq!(
        kepm_devagent::cmdline::split_command_line(&line),
        [
            "--scan",
            "--keeper-api-base={KeeperApiBaseUrl}",
            "--out",
            r"C:\Program Files\X\",
            r#"say "hi""#,
            "5"
        ]
    );
}

#[test]
fn arguments_fixes_show_the_string_form() {
    let f = only_finding("task-arguments-type");
    assert!(f.message.contains("found an object"), "{f}");
    assert_eq!(
        suggested_arguments(&f.fix),
        "--keeper-api-base={KeeperApiBaseUrl} ..."
    );
    let f = only_finding("task-arguments-missing");
    assert_eq!(
        suggested_arguments(&f.fix),
        "--keeper-api-base={KeeperApiBaseUrl}"
    );
    // A string without the placeholder: the fix is that string with the argument added.
    let f = only_finding("task-no-api-base");
    assert_eq!(f.severity, W);
    assert_eq!(
        suggested_arguments(&f.fix),
        "--verbose --keeper-api-base={KeeperApiBaseUrl}"
    );
    // A misspelt placeholder: the fix corrects that argument in place, and says why.
    let report = lint_file(&dir().join("jobs/task-api-base-misspelt.json"), &opts());
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == "task-api-base")
        .expect("task-api-base finding");
    assert!(f.message.contains("{KeeperApiBaseURL}"), "{f}");
    assert_eq!(
        suggested_arguments(&f.fix),
        "--keeper-api-base={KeeperApiBaseUrl} --verbose"
    );
    let f = only_finding("tasks-empty");
    assert!(
        f.fix
            .contains(r#""arguments": "--keeper-api-base={KeeperApiBaseUrl}""#),
        "{f}"
    );
}

#[test]
fn secrets_scanner_is_the_guide_sample() {
    // The vendor guide's sample job, changed only where it is Windows-specific: osFilter
    // selects Linux, and executablePath (a Windows path to the binary in the agent's layout)
    // is left out, since on Linux that path is where "command" resolves to anyway
    // (tests/agent-root/Jobs/bin/SecretScanner/SecretScanner here). tests/run.rs runs it,
    // also with executablePath set to that binary's absolute path.
    let text = std::fs::read_to_string(dir().join("jobs/secrets-scanner.json")).expect("fixture");
    let job: Value = serde_json::from_str(&text).expect("JSON");
    let task = &job["tasks"][0];
    assert_eq!(
        task["arguments"],
        "--scan --keeper-api-base={KeeperApiBaseUrl}"
    );
    assert_eq!(task["command"], "SecretScanner");
    assert_eq!(job["osFilter"]["linux"], true);
    assert_eq!(job["osFilter"]["windows"], false);
}

#[test]
fn malformed_json_reports_line_and_column() {
    let report = lint_file(&dir().join("jobs/malformed.json"), &opts());
    assert_eq!(report.findings[0].position, Some((5, 1)));
    assert!(
        report.findings[0]
            .to_string()
            .contains("malformed.json:5:1: error[json-syntax]"),
        "{}",
        report.findings[0]
    );
}

#[test]
fn a_missing_file_is_a_finding_not_a_crash() {
    let report = lint_file(Path::new("/nonexistent/job.json"), &opts());
    assert_eq!(report.errors(), 1);
    assert_eq!(report.findings[0].rule, "file");
}

fn lint_cmd(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kepm-devagent"))
        .arg("lint")
        .args(args)
        .output()
        .expect("run kepm-devagent lint");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn exit_status_and_text_output() {
    let root = dir().join("agent-root");
    let root = root.to_str().expect("utf-8 path");
    let good = dir().join("jobs/good-minimal.json");
    let warn = dir().join("jobs/enabled-false.json");
    let bad = dir().join("jobs/task-binary-missing.json");
    let (code, out) = lint_cmd(&[
        "--agent-root",
        root,
        good.to_str().expect("path"),
        warn.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("good-minimal.json: ok"), "{out}");
    assert!(out.contains("warning[enabled-false] $.enabled"), "{out}");
    assert!(
        out.contains("2 file(s): 0 error(s), 1 warning(s), 0 note(s)"),
        "{out}"
    );
    let (code, out) = lint_cmd(&["--agent-root", root, bad.to_str().expect("path")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error[task-binary] $.tasks[0].command"),
        "{out}"
    );
    assert!(
        out.contains("fix: build the tool and install it at"),
        "{out}"
    );
}

#[test]
fn json_format() {
    let root = dir().join("agent-root");
    let bad = dir().join("jobs/calendar-bad.json");
    let (code, out) = lint_cmd(&[
        "--format",
        "json",
        "--agent-root",
        root.to_str().expect("path"),
        bad.to_str().expect("path"),
    ]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(v["errors"], 2);
    assert_eq!(v["warnings"], 0);
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "schedule-calendar");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["path"], "$.schedule.calendar[0].time");
    assert!(f["fix"].as_str().is_some_and(|s| !s.is_empty()));
    let (_, out) = lint_cmd(&[
        "--format",
        "json",
        dir().join("jobs/malformed.json").to_str().expect("p"),
    ]);
    let v: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(v["findings"][0]["line"], 5);
    assert_eq!(v["findings"][0]["column"], 1);
}

#[test]
fn the_examples_lint_clean_where_installed() {
    // Binaries are installed by each language's test script (scripts/test-jobs.sh runs the
    // full check); here every other rule must pass.
    let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/jobs");
    let Ok(entries) = std::fs::read_dir(&jobs) else {
        return;
    };
    let mut checked = 0;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let report = lint_file(&p, &LintOptions::default());
        let other: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error && f.rule != "task-binary")
            .collect();
        assert!(other.is_empty(), "{}: {other:#?}", p.display());
        // The agent's form: one arguments string carrying the API base, no finding at all.
        let arguments: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.path.ends_with(".arguments"))
            .collect();
        assert!(arguments.is_empty(), "{}: {arguments:#?}", p.display());
        checked += 1;
    }
    assert!(checked > 0, "no job file in {}", jobs.display());
}

#[test]
fn the_powershell_example_is_one_windows_command_line() {
    // Windows only: linted here without its binary check (no PowerShell on this host).
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/powershell/temp-report.json");
    let report = lint_file(&job, &LintOptions::default());
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let text = std::fs::read_to_string(&job).expect("the PowerShell example job");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    let line = v["tasks"][0]["arguments"]
        .as_str()
        .expect("arguments is one string");
    // What kepmlog.exe gets (the task is `kepmlog run`, which starts powershell.exe): the
    // script path with its space is one argument, its backslashes intact, and the API base is
    // kepmlog's own argument.
    assert_eq!(
        kepm_devagent::cmdline::split_command_line(line),
        [
            "run",
            "--keeper-api-base={KeeperApiBaseUrl}",
            "--source",
            "TempReport",
            "--deadline",
            "540",
            "--",
            "powershell.exe",
            "-NoProfile",
            "-NonInteractive",
            "-ExecutionPolicy",
            "Bypass",
            "-File",
            r"C:\Program Files\KEPM\Jobs\bin\temp-report\temp-report.ps1",
            "-Days",
            "30",
        ]
    );
    assert_eq!(v["tasks"][0]["command"], "kepmlog");
}

/// The vendor-shaped corpus: tests/jobs/vendor/{case}/{id}.json, with the findings each must
/// produce in {case}/expect.txt as `severity rule path` lines (`#` starts a comment; none for
/// the vendor's own examples). Binaries are not checked: the examples name paths such as
/// /opt/KeeperPrivilegeManager/... that no test machine has. Lint runs as Linux and as
/// Windows: paths follow the OS the job targets, so the findings are the same.
#[test]
fn vendor_corpus() {
    let corpus = dir().join("jobs/vendor");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("tests/jobs/vendor")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "{cases:?}");
    for case in cases {
        let expect = std::fs::read_to_string(case.join("expect.txt")).expect("expect.txt");
        let want: Vec<String> = expect
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        let jobs: Vec<PathBuf> = std::fs::read_dir(&case)
            .expect("case dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        assert_eq!(jobs.len(), 1, "{}: one job file", case.display());
        for host in [Os::Linux, Os::Windows] {
            let report = lint_file(
                &jobs[0],
                &LintOptions {
                    host,
                    check_binaries: false,
                    ..opts()
                },
            );
            let got: Vec<String> = report
                .findings
                .iter()
                .map(|f| format!("{} {} {}", f.severity, f.rule, f.path))
                .collect();
            assert_eq!(
                got,
                want,
                "{} as {host:?}: {:#?}",
                case.display(),
                report.findings
            );
        }
    }
}

#[test]
fn a_windows_job_is_not_checked_for_binaries_on_linux() {
    // "Job Minimal Windows" with binary checks on: Linux is not targeted, so nothing is looked up.
    let f = dir().join("jobs/vendor/minimal-windows/my-tool.json");
    let report = lint_file(
        &f,
        &LintOptions {
            host: Os::Linux,
            ..opts()
        },
    );
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn lint_as_another_os() {
    let linux = dir().join("jobs/vendor/minimal-linux/my-tool.json");
    let windows_posix = dir().join("jobs/vendor/posix-path-on-windows/posix-path-on-windows.json");
    let root = dir().join("agent-root");
    let root = root.to_str().expect("path");
    // A Linux-only job: Windows is not targeted, so neither its path nor its binary matter.
    let (code, out) = lint_cmd(&[
        "--os",
        "windows",
        "--agent-root",
        root,
        linux.to_str().expect("p"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("my-tool.json: ok"), "{out}");
    // A Windows job: as Windows, its POSIX executablePath is flagged, and the absolute path of
    // another OS cannot be looked up from here (a note).
    let (code, out) = lint_cmd(&[
        "--os",
        "windows",
        "--agent-root",
        root,
        windows_posix.to_str().expect("p"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error[task-executable-path]"), "{out}");
    assert!(out.contains("is not an absolute path on windows"), "{out}");
    // As Linux, the binary check is skipped for a Windows-only job, and notes are counted.
    let (code, out) = lint_cmd(&[
        "--format",
        "json",
        "--os",
        "linux",
        windows_posix.to_str().expect("p"),
    ]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(v["errors"], 1);
    assert_eq!(v["notes"], 0);
    assert_eq!(v["files"][0]["notes"], 0);
}

#[test]
fn notes_are_their_own_severity() {
    let f = dir().join("jobs/vendor/parameter-undeclared/parameter-undeclared.json");
    let (code, out) = lint_cmd(&[
        "--format",
        "json",
        "--no-binary-check",
        f.to_str().expect("p"),
    ]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(
        (
            v["errors"].as_u64(),
            v["warnings"].as_u64(),
            v["notes"].as_u64()
        ),
        (Some(0), Some(1), Some(1))
    );
    let severities: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["severity"].as_str())
        .collect();
    assert_eq!(severities, ["warning", "note"]);
}
