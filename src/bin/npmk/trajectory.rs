//! `npmk trajectory INPUT...`: k, NPM-dk, NPM-d2k and the phases of one training run, from a
//! monitor log or from the run's checkpoints.

use super::{render::grid, Failure, Status};
use clap::Args;
use npmk::dynamics::{Options, Trajectory};
use npmk::scan::ScanOptions;
use npmk::trajectory::{self, TrajectoryReport, DEFAULT_STEP_PATTERN, MAIN_SERIES};
use std::fmt::Write;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Arguments of `npmk trajectory`.
#[derive(Args, Debug)]
pub struct TrajectoryArgs {
    /// A monitor log (JSONL: one object per line with "step" and "k"), or the checkpoints of one
    /// run: a directory of step folders or files, or the checkpoints themselves.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,

    /// Print the full analysis as JSON on stdout.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print one CSV row per series and step on stdout.
    #[arg(long)]
    pub csv: bool,

    /// Also draw k, NPM-dk and NPM-d2k against step, phases shaded, into this SVG file.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,

    /// Regex with one capture group for the step in a checkpoint's file or folder name.
    #[arg(long, value_name = "REGEX", default_value = DEFAULT_STEP_PATTERN)]
    pub step_regex: String,

    /// Slope (per decade of steps) below which k counts as flat: the P0/P1 threshold.
    #[arg(long, default_value_t = npmk::dynamics::DEFAULT_EPSILON)]
    pub epsilon: f64,

    /// Band around the final k that defines t_set, the start of P3.
    #[arg(long, default_value_t = npmk::dynamics::DEFAULT_DELTA)]
    pub delta: f64,

    /// Thin each series to at most N points per decade of steps before reading slopes (0 keeps
    /// every point). A point every step makes neighbouring slopes mostly sampling noise.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub per_decade: u32,

    /// Worker threads per checkpoint scan (0: one per core).
    #[arg(long, short = 'j', default_value_t = 0, value_name = "N")]
    pub threads: usize,

    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// A file that is not a checkpoint: a monitor log.
fn is_log(path: &Path) -> bool {
    let name = path.to_string_lossy();
    path.is_file() && !name.ends_with(".safetensors") && !name.ends_with(".safetensors.index.json")
}

/// Every input must exist, and a log comes alone.
fn check_inputs(inputs: &[PathBuf]) -> Result<(), Failure> {
    for path in inputs {
        if let Err(e) = std::fs::metadata(path) {
            return Err(Failure::bad_input(format!("{}: {e}", path.display())));
        }
    }
    if inputs.len() > 1 && inputs.iter().any(|p| is_log(p)) {
        return Err(Failure::bad_input(trajectory::TrajectoryError::MixedInputs));
    }
    Ok(())
}

/// Runs the command; returns the text for stdout.
pub fn run(args: &TrajectoryArgs) -> Result<String, Failure> {
    let options = Options { epsilon: args.epsilon, delta: args.delta };
    if !(options.epsilon > 0.0 && options.delta >= 0.0) {
        return Err(Failure {
            status: Status::Usage,
            message: "--epsilon must be > 0 and --delta >= 0".into(),
        });
    }
    check_inputs(&args.inputs)?;
    let pattern = trajectory::step_pattern(&args.step_regex)
        .map_err(|e| Failure { status: Status::Usage, message: e.to_string() })?;
    let input_name = args.inputs[0].clone();
    let mut notes = Vec::new();
    let raw = if is_log(&args.inputs[0]) {
        let log = trajectory::read_log(&args.inputs[0]).map_err(Failure::bad_input)?;
        notes = log.notes;
        log.series
    } else {
        let checkpoints =
            trajectory::discover(&args.inputs, &pattern).map_err(Failure::bad_input)?;
        let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(checkpoints.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} checkpoint {pos}/{len} [{bar:30}] {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        let scan_options = ScanOptions { threads: args.threads, ..ScanOptions::default() };
        let result = trajectory::scan_run(&checkpoints, &scan_options, |done, _, path: &Path| {
            if let Some(bar) = &bar {
                bar.set_position(done as u64);
                bar.set_message(path.display().to_string());
            }
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        result.map_err(Failure::bad_input)?
    };
    let report = trajectory::analyze(&input_name, raw, &options, args.per_decade, notes)
        .map_err(Failure::bad_input)?;
    for note in &report.notes {
        eprintln!("npmk: note: {note}");
    }

    if let Some(path) = &args.plot {
        crate::plot::write_svg(&report, path)
            .map_err(|message| Failure { status: Status::Output, message })?;
    }
    if args.json {
        let mut text = serde_json::to_string_pretty(&report).map_err(|e| Failure {
            status: Status::Internal,
            message: format!("cannot encode the analysis as JSON: {e}"),
        })?;
        text.push('\n');
        Ok(text)
    } else if args.csv {
        Ok(csv(&report))
    } else {
        Ok(table(&report))
    }
}

fn number(v: Option<f64>, digits: usize) -> String {
    // Values that round to zero print as +0.0000, not -0.0000.
    let zero = 0.5 * 10f64.powi(-(digits as i32));
    v.filter(|v| v.is_finite())
        .map(|v| if v.abs() < zero { 0.0 } else { v })
        .map_or("-".into(), |v| format!("{v:+.digits$}"))
}

fn csv(report: &TrajectoryReport) -> String {
    let mut out = String::from("series,step,k,dk,d2k\n");
    for (name, t) in &report.series {
        for p in &t.points {
            let d2k = p.d2k.map_or(String::new(), |v| v.to_string());
            let _ = writeln!(out, "{name},{},{},{},{d2k}", p.step, p.k, p.dk);
        }
    }
    out
}

fn points_table(out: &mut String, t: &Trajectory) {
    let mut rows = vec![vec![
        "step".into(),
        "k".into(),
        "NPM-dk/decade".into(),
        "NPM-d2k".into(),
        "dk/1000 steps to next".into(),
    ]];
    for (i, p) in t.points.iter().enumerate() {
        let per_1000 = t.segments.get(i).map(|s| s.per_1000_steps);
        rows.push(vec![
            p.step.to_string(),
            format!("{:.5}", p.k),
            number(Some(p.dk), 4),
            number(p.d2k, 4),
            number(per_1000, 6),
        ]);
    }
    grid(out, &rows, 1);
}

fn table(report: &TrajectoryReport) -> String {
    let mut out = String::new();
    let t = &report.main;
    let _ = writeln!(
        out,
        "{}: {} points, series \"{MAIN_SERIES}\" (pooled mid-80 k)\n",
        report.input,
        t.points.len()
    );
    points_table(&mut out, t);

    out.push_str("\nphases\n");
    let mut rows = vec![vec!["phase".into(), "from step".into(), "to step".into()]];
    for span in &t.phases {
        rows.push(vec![
            span.name.as_str().into(),
            span.start_step.to_string(),
            span.end_step.to_string(),
        ]);
    }
    grid(&mut out, &rows, 1);
    match t.extremum {
        Some(e) => {
            let kind = serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(String::from));
            let _ = writeln!(
                out,
                "extremum: {} k = {:.5} at step {}",
                kind.unwrap_or_default(),
                e.k,
                e.step
            );
        }
        None => out.push_str("extremum: none (k never reverses)\n"),
    }
    let _ = writeln!(out, "t_set: {} (final k {:.5}, delta {})", t.t_set, t.final_k, t.delta);
    if let Some(b) = &report.bifurcation {
        let _ = writeln!(
            out,
            "P3 selection vs transmission: mean |difference| {:.5}, largest spread {:.5} at step {}",
            b.mean_abs_diff, b.max_spread, b.max_spread_step
        );
    }
    if let Some(s) = &report.kind_spread {
        let _ = writeln!(
            out,
            "P3 across kinds: mean |difference| {:.5}, largest spread {:.5} at step {}",
            s.mean_abs_diff, s.max_spread, s.max_spread_step
        );
    }

    let others: Vec<_> = report.series.iter().filter(|(n, _)| n.as_str() != MAIN_SERIES).collect();
    if !others.is_empty() {
        out.push_str("\nother series (k at the last step, extremum, t_set)\n");
        let mut rows =
            vec![vec!["series".into(), "final k".into(), "extremum".into(), "t_set".into()]];
        for (name, s) in others {
            let extremum = s.extremum.map_or("-".into(), |e| format!("{:.5} @ {}", e.k, e.step));
            rows.push(vec![
                name.clone(),
                format!("{:.5}", s.final_k),
                extremum,
                s.t_set.to_string(),
            ]);
        }
        grid(&mut out, &rows, 1);
    }
    for (name, n) in &report.too_short {
        let _ = writeln!(out, "series {name}: {n} points, too few to analyse");
    }
    out
}
