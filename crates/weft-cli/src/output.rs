//! Human or JSON output, and the exit codes (documented in README.md).

use serde_json::Value;

/// Exit codes.
pub mod exit {
    pub const OK: i32 = 0;
    /// Bad input, missing files, storage or I/O errors.
    pub const ERROR: i32 = 1;
    /// Command-line usage error (unknown flag, missing argument).
    pub const USAGE: i32 = 2;
    /// The ledger refused the transaction: a business rule failed.
    pub const REJECTED: i32 = 3;
    /// A check ran and said no: unknown file, not the recipient, invalid proof, failed audit.
    pub const NEGATIVE: i32 = 4;
}

/// A check that ran and answered "no"; its report is already printed.
#[derive(Debug)]
pub struct Negative;

impl std::fmt::Display for Negative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("negative verdict")
    }
}

impl std::error::Error for Negative {}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    /// Print nothing (the demo narrates instead).
    pub quiet: bool,
}

impl Output {
    /// Prints `value` as JSON, or `human` as text.
    pub fn emit(&self, value: Value, human: impl FnOnce() -> String) {
        if self.quiet {
            return;
        }
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).expect("JSON values serialise")
            );
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }

    /// A progress bar on a terminal, hidden otherwise (and always with --json).
    pub fn progress(&self, total: u64, what: &str) -> indicatif::ProgressBar {
        use std::io::IsTerminal;
        if self.json || self.quiet || !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {percent}% {binary_bytes_per_sec} eta {eta}",
            )
            .expect("template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar
    }
}
