//! k across a training run: series of (step, k) from a monitor log or from the checkpoints of
//! one run, read through NPM-dk, NPM-d2k and the phases of [`crate::dynamics`].
//!
//! Series are named `all` (the pooled fit over included matrices, the headline), one per class
//! (`selection`, `value`, `transmission`, `other`) and, from checkpoints, one per kind
//! (`kind:<name>`, the median of per-matrix k). All use the mid-80 body.

use crate::dynamics::{self, DynamicsError, Options, Spread, Trajectory};
use crate::scan::{scan_path, ScanOptions, ScanReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The series every report is built around.
pub const MAIN_SERIES: &str = "all";

/// The default pattern for a step number in a checkpoint's file or folder name: `step1000`,
/// `step_1000`, `checkpoint-1000`, `global_step1000`, `model-step1000.safetensors`,
/// `iter_0001000`, `ckpt-1000`.
pub const DEFAULT_STEP_PATTERN: &str = r"(?i)(?:step|checkpoint|iter|ckpt)[-_]?(\d+)";

/// Why a trajectory could not be built. Display is one line naming the file.
#[derive(Debug)]
pub enum TrajectoryError {
    /// A file or directory could not be read.
    Io(PathBuf, std::io::Error),
    /// A log line is not a JSON object with a numeric `step` and `k`.
    BadLogLine {
        /// The log.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No step number in a checkpoint's name.
    NoStep(PathBuf),
    /// The step pattern is not a regex with one capture group.
    BadPattern(String),
    /// Two inputs carry the same step.
    DuplicateStep {
        /// The step.
        step: u64,
        /// The two inputs.
        first: PathBuf,
        /// The second input.
        second: PathBuf,
    },
    /// A directory held no checkpoint whose name carries a step.
    NoCheckpoints(PathBuf),
    /// A checkpoint failed to scan.
    Checkpoint(crate::checkpoint::CheckpointError),
    /// The main series cannot be analysed (too few points, duplicate steps...).
    Dynamics(PathBuf, DynamicsError),
    /// Inputs mix a log with checkpoints, or several logs.
    MixedInputs,
}

impl std::fmt::Display for TrajectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrajectoryError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            TrajectoryError::BadLogLine { path, line, reason } => {
                write!(f, "{}: line {line}: {reason}", path.display())
            }
            TrajectoryError::NoStep(p) => write!(
                f,
                "{}: no step number in the name (use --step-regex with one capture group)",
                p.display()
            ),
            TrajectoryError::BadPattern(e) => write!(f, "--step-regex: {e}"),
            TrajectoryError::DuplicateStep { step, first, second } => {
                write!(f, "step {step} appears twice: {} and {}", first.display(), second.display())
            }
            TrajectoryError::NoCheckpoints(p) => {
                write!(f, "{}: no checkpoint with a step number in its name", p.display())
            }
            TrajectoryError::Checkpoint(e) => write!(f, "{e}"),
            TrajectoryError::Dynamics(p, e) => write!(f, "{}: {e}", p.display()),
            TrajectoryError::MixedInputs => f.write_str(
                "give either one monitor log (JSONL) or the checkpoints of one run, not both",
            ),
        }
    }
}

impl std::error::Error for TrajectoryError {}

/// Named series of (step, k).
pub type SeriesSet = BTreeMap<String, Vec<(u64, f64)>>;

/// A monitor log read into series, with what was left out and why.
#[derive(Debug, Default)]
pub struct LogSeries {
    /// The series.
    pub series: SeriesSet,
    /// Lines left out, said in words (step 0, steps without a fit, a cut-off last line).
    pub notes: Vec<String>,
}

/// Reads a monitor log: one JSON object per line with at least `step` and `k`; a `k_class`
/// object adds one series per class. Left out, and said so in the notes: step 0 (it has no
/// place on the log10 axis), steps whose k is null (no fit), and a last line cut short (what a
/// trainer that crashed mid-write leaves). Any other malformed line is an error.
pub fn read_log(path: &Path) -> Result<LogSeries, TrajectoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrajectoryError::Io(path.into(), e))?;
    let mut out = LogSeries::default();
    let (mut step0, mut no_fit) = (0usize, 0usize);
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| TrajectoryError::BadLogLine {
            path: path.into(),
            line: i + 1,
            reason: reason.into(),
        };
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) if e.is_eof() && i + 1 == lines.len() && !text.ends_with('\n') => {
                out.notes
                    .push(format!("line {} is cut short (an interrupted write); left out", i + 1));
                continue;
            }
            Err(e) => return Err(bad(&format!("not JSON ({e})"))),
        };
        let step =
            v.get("step").and_then(|s| s.as_u64()).ok_or_else(|| bad("no integer \"step\""))?;
        let k = v.get("k").ok_or_else(|| bad("no \"k\""))?;
        if !(k.is_null() || k.is_number()) {
            return Err(bad("\"k\" is not a number"));
        }
        if step == 0 {
            step0 += 1;
            continue;
        }
        if k.is_null() {
            no_fit += 1;
        }
        let series = &mut out.series;
        let mut add = |name: &str, value: &serde_json::Value| {
            if let Some(k) = value.as_f64().filter(|k| k.is_finite()) {
                series.entry(name.to_string()).or_default().push((step, k));
            }
        };
        add(MAIN_SERIES, k);
        if let Some(classes) = v.get("k_class").and_then(|c| c.as_object()) {
            for (class, value) in classes {
                add(class, value);
            }
        }
    }
    if step0 > 0 {
        out.notes.push("step 0 left out: it has no place on the log10(step) axis".into());
    }
    if no_fit > 0 {
        out.notes.push(format!("{no_fit} steps without a fit (k null) left out"));
    }
    out.series.entry(MAIN_SERIES.to_string()).or_default();
    Ok(out)
}

/// Keeps at most `per_decade` points per decade of steps: the first point of each
/// `1/per_decade` slice of log10(step), and the last point. Dense logs (a point every step) otherwise make the
/// slopes between neighbours mostly sampling noise. `per_decade = 0` keeps everything.
pub fn thin(points: &[(u64, f64)], per_decade: u32) -> Vec<(u64, f64)> {
    if per_decade == 0 {
        return points.to_vec();
    }
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.0);
    let mut kept: Vec<(u64, f64)> = Vec::new();
    let mut last_slice = None;
    for p in sorted {
        let slice = ((p.0.max(1) as f64).log10() * per_decade as f64 + 1e-9).floor() as i64;
        if last_slice != Some(slice) {
            kept.push(p);
            last_slice = Some(slice);
        }
    }
    // Keep the final point too: t_set and the final k are read against it.
    if let (Some(last), Some(kept_last)) = (points.iter().max_by_key(|p| p.0), kept.last()) {
        if kept_last.0 != last.0 {
            kept.push(*last);
        }
    }
    kept
}

/// The step in a checkpoint's path: the last match of `pattern` in its last component.
pub fn step_of(path: &Path, pattern: &regex::Regex) -> Option<u64> {
    let name = path.file_name()?.to_string_lossy();
    let captures = pattern.captures_iter(&name).last()?;
    captures.get(1)?.as_str().parse().ok()
}

/// Compiles a step pattern; it must have exactly one capture group.
pub fn step_pattern(pattern: &str) -> Result<regex::Regex, TrajectoryError> {
    let re = regex::Regex::new(pattern).map_err(|e| TrajectoryError::BadPattern(e.to_string()))?;
    if re.captures_len() != 2 {
        return Err(TrajectoryError::BadPattern(format!(
            "{pattern:?} must have exactly one capture group (the step number)"
        )));
    }
    Ok(re)
}

/// The checkpoints of one run, sorted by step. `inputs` are either one directory whose entries
/// carry step numbers, or checkpoint files and directories that each carry one.
pub fn discover(
    inputs: &[PathBuf],
    pattern: &regex::Regex,
) -> Result<Vec<(u64, PathBuf)>, TrajectoryError> {
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    let single_run_dir =
        inputs.len() == 1 && inputs[0].is_dir() && step_of(&inputs[0], pattern).is_none();
    if single_run_dir {
        let dir = &inputs[0];
        let entries = std::fs::read_dir(dir).map_err(|e| TrajectoryError::Io(dir.clone(), e))?;
        for entry in entries {
            let path = entry.map_err(|e| TrajectoryError::Io(dir.clone(), e))?.path();
            let is_checkpoint = path.is_dir()
                || path.extension().is_some_and(|e| e == "safetensors")
                || path.to_string_lossy().ends_with(".safetensors.index.json");
            if let (true, Some(step)) = (is_checkpoint, step_of(&path, pattern)) {
                found.push((step, path));
            }
        }
        if found.is_empty() {
            return Err(TrajectoryError::NoCheckpoints(dir.clone()));
        }
    } else {
        for path in inputs {
            let step =
                step_of(path, pattern).ok_or_else(|| TrajectoryError::NoStep(path.clone()))?;
            found.push((step, path.clone()));
        }
    }
    found.sort();
    for pair in found.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(TrajectoryError::DuplicateStep {
                step: pair[0].0,
                first: pair[0].1.clone(),
                second: pair[1].1.clone(),
            });
        }
    }
    Ok(found)
}

/// Adds one checkpoint's k values to the series: pooled `all`, each pooled class with matrices,
/// and each kind's median of per-matrix k.
pub fn add_scan(series: &mut SeriesSet, step: u64, report: &ScanReport) {
    let mut add = |name: String, k: Option<f64>| {
        if let Some(k) = k.filter(|k| k.is_finite()) {
            series.entry(name).or_default().push((step, k));
        }
    };
    let pooled = &report.pooled;
    add(MAIN_SERIES.into(), pooled.all.fits.mid80.map(|f| f.k));
    for (name, summary) in [
        ("selection", &pooled.selection),
        ("value", &pooled.value),
        ("transmission", &pooled.transmission),
        ("other", &pooled.other),
    ] {
        if summary.n_matrices > 0 {
            add(name.into(), summary.fits.mid80.map(|f| f.k));
        }
    }
    for kind in &report.kinds {
        add(format!("kind:{}", kind.kind.name()), kind.median_k.mid80);
    }
}

/// Scans checkpoints in step order into series; `progress(done, total, path)` is called before
/// each one.
pub fn scan_run(
    checkpoints: &[(u64, PathBuf)],
    options: &ScanOptions,
    mut progress: impl FnMut(usize, usize, &Path),
) -> Result<SeriesSet, TrajectoryError> {
    let mut series = SeriesSet::new();
    series.entry(MAIN_SERIES.to_string()).or_default();
    for (i, (step, path)) in checkpoints.iter().enumerate() {
        progress(i, checkpoints.len(), path);
        let report = scan_path(path, options).map_err(TrajectoryError::Checkpoint)?;
        add_scan(&mut series, *step, &report);
    }
    Ok(series)
}

/// The analysis of every series of a run.
#[derive(Debug, serde::Serialize)]
pub struct TrajectoryReport {
    /// What was read.
    pub input: String,
    /// The main series (`all`), flattened into the top level: points, phases, extremum, t_set.
    #[serde(flatten)]
    pub main: Trajectory,
    /// Every series with at least three points, analysed the same way.
    pub series: BTreeMap<String, Trajectory>,
    /// Series with fewer than three points, with their point counts.
    pub too_short: BTreeMap<String, usize>,
    /// In P3 of the main series: selection versus transmission, when both exist.
    pub bifurcation: Option<Spread>,
    /// In P3 of the main series: the spread across kinds (per-matrix medians), when known.
    pub kind_spread: Option<Spread>,
    /// What was left out of the input, or thinned, said in words.
    pub notes: Vec<String>,
    /// The raw series.
    #[serde(skip)]
    pub raw: SeriesSet,
}

/// Analyses a set of series; the main one must have at least three points.
///
/// With `per_decade > 0`, series denser than that are first thinned to at most `per_decade`
/// points per decade of steps (see [`thin`]); the report says so in its notes.
pub fn analyze(
    input: &Path,
    raw: SeriesSet,
    options: &Options,
    per_decade: u32,
    mut notes: Vec<String>,
) -> Result<TrajectoryReport, TrajectoryError> {
    // Duplicates are an error in the input, whatever thinning would keep.
    for points in raw.values() {
        let mut steps: Vec<u64> = points.iter().map(|p| p.0).collect();
        steps.sort_unstable();
        if let Some(pair) = steps.windows(2).find(|w| w[0] == w[1]) {
            let error = DynamicsError::DuplicateStep { step: pair[0] };
            return Err(TrajectoryError::Dynamics(input.into(), error));
        }
    }
    let mut thinned_any = false;
    let raw: SeriesSet = raw
        .into_iter()
        .map(|(name, points)| {
            let kept = thin(&points, per_decade);
            thinned_any |= kept.len() < points.len();
            (name, kept)
        })
        .collect();
    if thinned_any {
        notes.push(format!(
            "dense series thinned to at most {per_decade} points per decade of steps \
             (--per-decade 0 keeps every point)"
        ));
    }
    let main_points = raw.get(MAIN_SERIES).cloned().unwrap_or_default();
    let main = dynamics::analyze(&main_points, options)
        .map_err(|e| TrajectoryError::Dynamics(input.into(), e))?;
    let mut series = BTreeMap::new();
    let mut too_short = BTreeMap::new();
    for (name, points) in &raw {
        match dynamics::analyze(points, options) {
            Ok(t) => {
                series.insert(name.clone(), t);
            }
            Err(_) => {
                too_short.insert(name.clone(), points.len());
            }
        }
    }
    let window = main.p3_window();
    let spread_of = |names: &[&String]| -> Option<Spread> {
        let (start, end) = window?;
        let named: Vec<(&str, &[(u64, f64)])> =
            names.iter().map(|n| (n.as_str(), raw[n.as_str()].as_slice())).collect();
        dynamics::spread((start, end), &named).ok()
    };
    let classes: Vec<&String> =
        raw.keys().filter(|n| n.as_str() == "selection" || n.as_str() == "transmission").collect();
    let kinds: Vec<&String> = raw.keys().filter(|n| n.starts_with("kind:")).collect();
    let bifurcation = if classes.len() == 2 { spread_of(&classes) } else { None };
    let kind_spread = if kinds.len() >= 2 { spread_of(&kinds) } else { None };
    Ok(TrajectoryReport {
        input: input.display().to_string(),
        main,
        series,
        too_short,
        bifurcation,
        kind_spread,
        notes,
        raw,
    })
}
