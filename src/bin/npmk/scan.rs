//! `npmk scan PATH`: the NPM-k picture of one checkpoint.

use super::{render, Failure, Status};
use clap::Args;
use npmk::checkpoint::Checkpoint;
use npmk::scan::{scan, ScanOptions};
use npmk::Trim;
use regex::Regex;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `npmk scan`.
#[derive(Args, Debug)]
pub struct ScanArgs {
    /// A .safetensors file, a *.safetensors.index.json, or a directory holding one of them.
    pub path: PathBuf,

    /// Print the full report as JSON on stdout.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print one CSV row per tensor on stdout.
    #[arg(long)]
    pub csv: bool,

    /// Worker threads (0: one per core). The output is the same for every value.
    #[arg(long, short = 'j', default_value_t = 0, value_name = "N")]
    pub threads: usize,

    /// Fit an extra body of plotting positions, e.g. 0.2,0.8 (0 <= LO < HI <= 1).
    #[arg(long, value_name = "LO,HI", value_parser = parse_trim)]
    pub trim: Option<Trim>,

    /// Read only tensors whose name matches REGEX (repeatable: any match counts).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub include: Vec<Regex>,

    /// Skip tensors whose name matches REGEX (repeatable).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub exclude: Vec<Regex>,

    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn parse_trim(text: &str) -> Result<Trim, String> {
    let (lo, hi) = text.split_once(',').ok_or("expected LO,HI, e.g. 0.1,0.9")?;
    let number = |s: &str| s.trim().parse::<f64>().map_err(|e| format!("{s:?}: {e}"));
    Trim::new(number(lo)?, number(hi)?).map_err(|e| e.to_string())
}

fn parse_regex(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| e.to_string().replace('\n', " "))
}

/// Runs the scan; returns the text for stdout.
pub fn run(args: &ScanArgs) -> Result<String, Failure> {
    let checkpoint = Checkpoint::open(&args.path).map_err(Failure::bad_input)?;

    let filter = |name: &str| {
        let included = args.include.is_empty() || args.include.iter().any(|r| r.is_match(name));
        included && !args.exclude.iter().any(|r| r.is_match(name))
    };
    let filtering = !args.include.is_empty() || !args.exclude.is_empty();

    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(checkpoint.data_bytes());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            // Workers report concurrently; a late report of a smaller total must not rewind.
            if done > bar.position() {
                bar.set_position(done);
            }
        }
    };

    let options = ScanOptions {
        threads: args.threads,
        custom_trim: args.trim,
        filter: filtering.then_some(&filter as &(dyn Fn(&str) -> bool + Sync)),
        progress: bar.as_ref().map(|_| &progress as &(dyn Fn(u64, u64) + Sync)),
    };
    let report = scan(&checkpoint, &options);
    if filtering && report.tensors.iter().all(|t| t.skipped.is_some()) {
        eprintln!("npmk: note: --include/--exclude left no tensor to read");
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    if args.json {
        let mut text = serde_json::to_string_pretty(&report).map_err(|e| Failure {
            status: Status::Internal,
            message: format!("cannot encode the report as JSON: {e}"),
        })?;
        text.push('\n');
        Ok(text)
    } else if args.csv {
        Ok(render::csv(&report))
    } else {
        Ok(render::table(&report))
    }
}
