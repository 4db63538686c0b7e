//! `npmk`: the Weibull shape k of neural-network weight magnitudes, from the command line.
//!
//! One module per subcommand under `src/bin/npmk/`; each parses its own arguments (clap derive)
//! and returns the text for stdout, or a [`Failure`] with its exit code. Nothing reaches stdout
//! until a command has succeeded.

mod plot;
mod render;
mod scan;
mod trajectory;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   internal error (a bug in npmk; please report it)
  2   bad input: the checkpoint is missing, unreadable or malformed
  3   the output could not be written (e.g. a closed pipe)
  64  bad command-line arguments";

/// Exit statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Internal = 1,
    BadInput = 2,
    Output = 3,
    Usage = 64,
}

/// A command that did not succeed: the exit status and a one-line message for stderr.
#[derive(Debug)]
struct Failure {
    status: Status,
    message: String,
}

impl Failure {
    fn bad_input(message: impl std::fmt::Display) -> Failure {
        Failure { status: Status::BadInput, message: message.to_string() }
    }
}

#[derive(Parser)]
#[command(
    name = "npmk",
    version,
    about = "Weibull shape k of neural-network weight magnitudes (NPM-k)",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit every matrix of a safetensors checkpoint: per matrix, per kind and pooled k.
    #[command(after_help = EXIT_CODES)]
    Scan(scan::ScanArgs),
    /// Read k across a training run: NPM-dk, NPM-d2k, phases P0-P3, from a monitor log or
    /// from the run's checkpoints.
    #[command(after_help = EXIT_CODES)]
    Trajectory(trajectory::TrajectoryArgs),
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(Status::Usage as u8),
            };
        }
    };
    let result = std::panic::catch_unwind(|| match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Trajectory(args) => trajectory::run(&args),
    });
    let outcome = match result {
        Ok(outcome) => outcome,
        // The hook has already printed the message.
        Err(_) => return ExitCode::from(Status::Internal as u8),
    };
    match outcome {
        Ok(text) => write_stdout(&text),
        Err(failure) => {
            eprintln!("npmk: {}", failure.message);
            ExitCode::from(failure.status as u8)
        }
    }
}

/// Writes the result; a closed pipe or full disk is exit status 3.
fn write_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(Status::Output as u8)
        }
        Err(e) => {
            eprintln!("npmk: cannot write the output: {e}");
            ExitCode::from(Status::Output as u8)
        }
    }
}

/// A panic is a bug: one line on stderr (once, even if worker threads panic too), status 1.
fn install_panic_hook() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static REPORTED: AtomicBool = AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        if REPORTED.swap(true, Ordering::SeqCst) {
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        let line = format!("{message}{}", place.unwrap_or_default()).replace(['\n', '\r'], " ");
        eprintln!("npmk: internal error (a bug, please report it): {line}");
    }));
}
