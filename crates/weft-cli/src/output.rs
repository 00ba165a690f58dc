//! Human or JSON output, and the exit codes (documented in README.md).
//!
//! Everything the CLI prints to standard output goes through [`print`] (or [`outln!`], or
//! [`Stdout`] for streamed bytes), never `println!`: `println!` panics when the reader has gone
//! (`weft chain info | head -1`), and weft cannot restore the default SIGPIPE action without
//! `unsafe`. A reader that has gone ends the command quietly with exit 0, as ripgrep does:
//! what the reader wanted, it read (README, "Exit codes").

use std::io::Write;

use serde_json::Value;

/// `println!` for standard output, through [`print`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Writes `text` to standard output and flushes it. If the reader has gone, the process ends
/// here, quietly, with exit 0; any other failure to write ends it with exit 1 and the reason.
pub fn print(text: &str) {
    print_bytes(text.as_bytes());
}

/// [`print`] for bytes that need not be text (a record's plaintext).
pub fn print_bytes(bytes: &[u8]) {
    if let Err(error) = try_print(bytes) {
        stdout_failed(&error);
    }
}

/// Writes `bytes` to standard output and flushes them; the error is the caller's.
pub fn try_print(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Ends the process after a failed write to standard output (see [`print`]).
pub fn stdout_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(exit::OK);
    }
    eprintln!("weft: cannot write to standard output: {error}");
    std::process::exit(exit::ERROR)
}

/// Standard output as a writer, for a command that streams bytes to it (`gcode open --out -`):
/// a reader that has gone ends the process quietly with exit 0 ([`print`]); other errors are
/// returned.
#[derive(Debug, Clone, Copy)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::io::stdout()
            .write(bytes)
            .inspect_err(closed_ends_the_process)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout()
            .flush()
            .inspect_err(closed_ends_the_process)
    }
}

fn closed_ends_the_process(error: &std::io::Error) {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        stdout_failed(error);
    }
}

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

/// An answer that cannot be believed: no trust root to check it against, or one it does not
/// check out against. Exit 4, with the reason (README, "Exit codes").
#[derive(Debug)]
pub struct Untrusted(pub String);

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untrusted {}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    /// Print nothing (the demo narrates instead).
    pub quiet: bool,
}

impl Output {
    /// Prints `value` as JSON, or `human` as text ([`print`]: a reader that has gone ends the
    /// command with exit 0).
    pub fn emit(&self, value: Value, human: impl FnOnce() -> String) {
        if let Some(text) = self.render(value, human) {
            print(&text);
        }
    }

    /// [`Output::emit`] for a server (`weft node run`): a reader of standard output that has
    /// gone does not stop it, the line is lost.
    pub fn announce(&self, value: Value, human: impl FnOnce() -> String) {
        if let Some(text) = self.render(value, human) {
            let _ = try_print(text.as_bytes());
        }
    }

    /// The text `emit` prints, with its newline; `None` when nothing is printed.
    fn render(&self, value: Value, human: impl FnOnce() -> String) -> Option<String> {
        if self.quiet {
            return None;
        }
        if self.json {
            let json = serde_json::to_string_pretty(&value).expect("JSON values serialise");
            return Some(format!("{json}\n"));
        }
        let text = human();
        (!text.is_empty()).then(|| format!("{text}\n"))
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

impl Output {
    /// A transaction committed at `position`: `{"tx_id", "height"}`.
    pub fn committed(&self, id: &weft_core::TxId, position: weft_ledger::state::Position) {
        self.emit(
            serde_json::json!({"tx_id": id.to_hex(), "height": position.height}),
            || {
                format!(
                    "committed transaction {id}\n  in block {} at index {}",
                    position.height, position.index
                )
            },
        );
    }
}
