//! `kepm-devagent lint`: prints each file's findings as text or one JSON document.

use std::process::ExitCode;

use clap::Args;
use kepm_devagent::lint::{lint_file, LintOptions, Os};
use serde_json::{json, Value};

use super::out::Out;

#[derive(Args)]
pub(crate) struct LintArgs {
    /// Job files.
    #[arg(required = true, value_name = "JOB.json")]
    files: Vec<std::path::PathBuf>,
    /// Agent root: binaries are looked up at DIR/Jobs/bin/{command}/{command}. Default: the
    /// directory above Jobs/ when the file is in one, else executablePath and PATH only.
    #[arg(long, value_name = "DIR", env = "KEPM_AGENT_ROOT")]
    agent_root: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: LintFormat,
    /// Check as if on this OS: its jobs' binaries under --agent-root (PATH and absolute
    /// executablePaths of another OS cannot be checked from here). Default: this machine's.
    #[arg(long, value_enum)]
    os: Option<LintOs>,
    /// Skip the binary checks (task-binary), e.g. in CI before the tools are built.
    #[arg(long)]
    no_binary_check: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LintOs {
    Windows,
    Linux,
    Macos,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LintFormat {
    Text,
    Json,
}

pub(crate) fn lint(args: &LintArgs) -> ExitCode {
    let opts = LintOptions {
        agent_root: args.agent_root.clone(),
        host: match args.os {
            Some(LintOs::Windows) => Os::Windows,
            Some(LintOs::Linux) => Os::Linux,
            Some(LintOs::Macos) => Os::MacOs,
            None => Os::current(),
        },
        check_binaries: !args.no_binary_check,
        ..LintOptions::default()
    };
    let reports: Vec<_> = args.files.iter().map(|f| lint_file(f, &opts)).collect();
    let errors: usize = reports.iter().map(|r| r.errors()).sum();
    let warnings: usize = reports.iter().map(|r| r.warnings()).sum();
    let notes: usize = reports.iter().map(|r| r.notes()).sum();
    let out = Out;
    match args.format {
        LintFormat::Json => {
            let findings: Vec<Value> = reports
                .iter()
                .flat_map(|r| r.findings.iter().map(|f| f.to_json()))
                .collect();
            let files: Vec<Value> = args
                .files
                .iter()
                .zip(&reports)
                .map(|(f, r)| {
                    json!({"file": f.display().to_string(), "errors": r.errors(),
                           "warnings": r.warnings(), "notes": r.notes()})
                })
                .collect();
            out.line(
                &json!({"files": files, "findings": findings, "errors": errors,
                        "warnings": warnings, "notes": notes})
                .to_string(),
            );
        }
        LintFormat::Text => {
            for f in reports.iter().flat_map(|r| &r.findings) {
                out.line(&f.to_string());
            }
            for (f, r) in args.files.iter().zip(&reports) {
                if r.findings.is_empty() {
                    out.line(&format!("{}: ok", f.display()));
                }
            }
            out.line(&format!(
                "{} file(s): {errors} error(s), {warnings} warning(s), {notes} note(s)",
                args.files.len()
            ));
        }
    }
    ExitCode::from(u8::from(errors > 0))
}
