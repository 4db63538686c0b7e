//! `npmk_monitor_*`: NPM-k of a training run at every step, appended to a JSONL file.
//!
//! Per step the trainer calls `begin_step`, pushes each weight tensor by name, and calls
//! `end_step`. Tensors are named by the role tables ([`npmk::roles`]); every tensor whose class
//! is not `excluded` (selection, value, transmission, other) is pooled into `k`, and each class is
//! also fitted alone. Excluded tensors (embeddings, LM head, norms, biases, buffers, anything not
//! 2-D) are counted and logged, not pooled, and not scanned unless per-tensor fits are on.
//!
//! Memory is fixed after the first step: four class sketches and a pooled one (512 KiB each),
//! one more per tensor with per-tensor fits, the sampled positions, and a gather buffer. Steps
//! reuse all of it.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::{Duration, Instant};

use npmk::dynamics::DEFAULT_SETTLE_WINDOW;
use npmk::dynamics::{OnlineOptions, OnlineTracker, DEFAULT_DELTA, DEFAULT_EPSILON};
use npmk::roles::{classify, Class, Role};
use npmk::{Dtype, NoFit, Sketch, Trim, WeibullFit};

use crate::error::{guard, guard_value, Error, Result, NPMK_ERR_CALL_ORDER, NPMK_ERR_IO};
use crate::sketch::{dtype_of, element_bytes};

/// `npmk_step_report.phase` when the step has no k (no fit): no phase is read.
pub const NPMK_PHASE_NONE: i32 = -1;

/// Monitor options (`npmk_monitor_options` in C). A zeroed struct means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NpmkMonitorOptions {
    /// Non-zero: also fit every tensor on its own (one 512 KiB sketch per tensor) and list the
    /// fits in each JSONL line.
    pub per_tensor: u32,
    /// Non-zero: append to an existing file; zero: start a new file (truncate).
    pub append: u32,
    /// 0 or 1: every element. s >= 2: only elements whose index in their tensor is a multiple
    /// of s (the same positions every step).
    pub sample_stride: u64,
    /// 0 or 1: every element. In (0, 1): about this fraction of each tensor at fixed random
    /// positions (one per stratum of n / m elements), drawn once per tensor from `seed` and the
    /// tensor's name and reused every step; each tensor must then come in one push per step.
    pub sample_fraction: f64,
    /// Seed of the sampled positions.
    pub seed: u64,
    /// Phase threshold on the slope of k per decade of steps; 0 means 0.01.
    pub epsilon: f64,
    /// Half-width of the settled band of k; 0 means 0.0025.
    pub delta: f64,
    /// Number of recent steps that must lie in the band to read P3; 0 means 4.
    pub settle_window: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// What `npmk_monitor_end_step` reports (`npmk_step_report` in C). The first five fields are
/// fixed by the ABI; NaN marks a missing value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NpmkStepReport {
    /// The step, as given to `begin_step`.
    pub step: u64,
    /// Pooled mid-80 k over the included tensors; NaN when there is no fit.
    pub k: f64,
    /// NPM-dk: backward slope of k per decade of steps; NaN until two steps have a k.
    pub dk: f64,
    /// NPM-d2k of the last three steps with a k; NaN until there are three.
    pub d2k: f64,
    /// Causal phase 0 to 3 (P0 to P3), or `NPMK_PHASE_NONE` when k is NaN.
    pub phase: i32,
    /// Included (pooled) tensors pushed this step.
    pub n_tensors: u32,
    /// Pooled mid-80 scale.
    pub lambda: f64,
    /// Pooled mid-80 R^2.
    pub r2: f64,
    /// Pooled k over the mid-90 body.
    pub k_mid90: f64,
    /// Pooled k over every rank.
    pub k_full: f64,
    /// Mid-80 k of the selection class (q, k, fused qkv).
    pub k_selection: f64,
    /// Mid-80 k of the value class.
    pub k_value: f64,
    /// Mid-80 k of the transmission class (o, feed-forward).
    pub k_transmission: f64,
    /// Mid-80 k of tensors the role tables do not know.
    pub k_other: f64,
    /// Standard error of `k` due to sampling (0 without sampling).
    pub k_se: f64,
    /// Ranks in the pooled mid-80 regression.
    pub n_used: u64,
    /// Finite non-zero elements pooled (sampled elements only, when sampling).
    pub n_usable: u64,
    /// Zeros among the pooled (sampled) elements.
    pub n_zero: u64,
    /// NaNs among the pooled (sampled) elements.
    pub n_nan: u64,
    /// Infinities among the pooled (sampled) elements.
    pub n_inf: u64,
    /// Microseconds spent inside this step's monitor calls.
    pub micros: u64,
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<NpmkMonitorOptions>() == 56);
    assert!(offset_of!(NpmkMonitorOptions, sample_fraction) == 16);
    assert!(offset_of!(NpmkMonitorOptions, settle_window) == 48);
    assert!(size_of::<NpmkStepReport>() == 160 && offset_of!(NpmkStepReport, phase) == 32);
    assert!(offset_of!(NpmkStepReport, lambda) == 40 && offset_of!(NpmkStepReport, k_se) == 104);
    assert!(offset_of!(NpmkStepReport, micros) == 152);
};

/// The classes pooled into k, in report order, with their slot in `Monitor::classes`.
const POOLED: [Class; 4] = [Class::Selection, Class::Value, Class::Transmission, Class::Other];

fn slot(class: Class) -> Option<usize> {
    POOLED.iter().position(|&c| c == class)
}

/// sd(k) of n Gaussian elements is about this over sqrt(n) (METHOD.md section 2).
const K_SD_SQRT_N: f64 = 1.3;

/// Bytes gathered per push when sampling.
const SCRATCH_BYTES: usize = 16 << 10;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sampling {
    Full,
    Stride(u64),
    Positions { fraction: f64, seed: u64 },
}

/// One tensor name seen by the monitor.
struct Tensor {
    name: String,
    role: Role,
    /// The step generation in which it was last pushed.
    generation: u64,
    /// Elements of it pushed so far in the current step.
    offset: u64,
    /// Sampled positions, drawn for a tensor of `positions_for` elements.
    positions: Vec<u64>,
    positions_for: u64,
    /// Its own sketch, with per-tensor fits.
    sketch: Option<Box<Sketch>>,
}

/// The per-step NPM-k monitor behind `npmk_monitor *`.
pub struct Monitor {
    file: File,
    per_tensor: bool,
    sampling: Sampling,
    tracker: OnlineTracker,
    open: bool,
    step: u64,
    generation: u64,
    last_step: Option<u64>,
    classes: [Box<Sketch>; 4],
    class_used: [bool; 4],
    pooled: Box<Sketch>,
    tensors: Vec<Tensor>,
    index: HashMap<String, usize>,
    scratch: Vec<u8>,
    line: String,
    busy: Duration,
    /// Included elements pushed this step, before sampling.
    population: u64,
    included: u32,
    excluded: u32,
    excluded_elements: u64,
}

fn call_order(message: impl Into<String>) -> Error {
    Error::new(NPMK_ERR_CALL_ORDER, message)
}

/// The defaults: no per-tensor fits, truncate, no sampling, METHOD.md thresholds.
fn default_options() -> NpmkMonitorOptions {
    NpmkMonitorOptions {
        per_tensor: 0,
        append: 0,
        sample_stride: 0,
        sample_fraction: 0.0,
        seed: 0,
        epsilon: DEFAULT_EPSILON,
        delta: DEFAULT_DELTA,
        settle_window: DEFAULT_SETTLE_WINDOW as u32,
        reserved: 0,
    }
}

/// splitmix64: the positions' random numbers.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Sorted positions, one drawn uniformly in each of m = round(fraction n) equal strata of
/// 0..n, from a generator seeded by `seed` and `name`.
fn draw_positions(n: u64, fraction: f64, seed: u64, name: &str, out: &mut Vec<u64>) {
    let m = ((fraction * n as f64).round() as u64).clamp(1, n.max(1));
    let mut state = name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    out.clear();
    out.reserve_exact(m as usize);
    for b in 0..m {
        let lo = (u128::from(b) * u128::from(n) / u128::from(m)) as u64;
        let hi = (u128::from(b + 1) * u128::from(n) / u128::from(m)) as u64;
        out.push(lo + splitmix(&mut state) % (hi - lo).max(1));
    }
}

/// Pushes the elements of `bytes` at the chosen positions. `offset` is the index, within its
/// tensor, of the first element of `bytes` (for tensors pushed in several chunks).
fn ingest(
    target: &mut Sketch,
    scratch: &mut Vec<u8>,
    dtype: Dtype,
    bytes: &[u8],
    offset: u64,
    plan: Plan<'_>,
) {
    let size = dtype.size();
    let n = (bytes.len() / size) as u64;
    let mut gather = |indices: &mut dyn Iterator<Item = u64>| {
        scratch.clear();
        for i in indices {
            let at = i as usize * size;
            scratch.extend_from_slice(&bytes[at..at + size]);
            if scratch.len() + size > SCRATCH_BYTES {
                // Whole elements only, so the push cannot fail.
                let _ = target.push_le_bytes(dtype, scratch);
                scratch.clear();
            }
        }
        let _ = target.push_le_bytes(dtype, scratch);
    };
    match plan {
        Plan::Full => {
            let _ = target.push_le_bytes(dtype, bytes);
        }
        Plan::Stride(s) => {
            let first = (s - offset % s) % s;
            gather(&mut (first..n).step_by(s as usize));
        }
        Plan::Positions(positions) => gather(&mut positions.iter().copied().filter(|&p| p < n)),
    }
}

#[derive(Clone, Copy)]
enum Plan<'a> {
    Full,
    Stride(u64),
    Positions(&'a [u64]),
}

fn k_or_nan(fit: &std::result::Result<WeibullFit, NoFit>) -> f64 {
    fit.as_ref().map_or(f64::NAN, |f| f.k)
}

impl Monitor {
    fn new(path: &CStr, options: &NpmkMonitorOptions) -> Result<Monitor> {
        // Options: zero means default; sampling modes exclude each other.
        let mut o = *options;
        let defaults = default_options();
        if o.epsilon == 0.0 {
            o.epsilon = defaults.epsilon;
        }
        if o.delta == 0.0 {
            o.delta = defaults.delta;
        }
        if o.settle_window == 0 {
            o.settle_window = defaults.settle_window;
        }
        if o.reserved != 0 {
            return Err(Error::invalid("options.reserved must be 0"));
        }
        if !(0.0..=1.0).contains(&o.sample_fraction) {
            return Err(Error::invalid(format!(
                "options.sample_fraction = {} is outside [0, 1]",
                o.sample_fraction
            )));
        }
        let fraction_on = o.sample_fraction > 0.0 && o.sample_fraction < 1.0;
        let sampling = match (o.sample_stride >= 2, fraction_on) {
            (true, true) => {
                return Err(Error::invalid(
                    "options.sample_stride and options.sample_fraction cannot both be set",
                ))
            }
            (true, false) => Sampling::Stride(o.sample_stride),
            (false, true) => Sampling::Positions { fraction: o.sample_fraction, seed: o.seed },
            (false, false) => Sampling::Full,
        };
        let tracker = OnlineTracker::new(OnlineOptions {
            epsilon: o.epsilon,
            delta: o.delta,
            settle_window: o.settle_window as usize,
        })
        .map_err(|e| Error::invalid(format!("options: {e}")))?;

        // The file: a new trajectory truncates unless told to append.
        let path = path_of(path)?;
        let mut open = OpenOptions::new();
        if o.append != 0 {
            open.append(true).create(true);
        } else {
            open.write(true).create(true).truncate(true);
        }
        let file = open.open(&path).map_err(|e| {
            Error::new(NPMK_ERR_IO, format!("cannot open {} for writing: {e}", path.display()))
        })?;

        Ok(Monitor {
            file,
            per_tensor: o.per_tensor != 0,
            sampling,
            tracker,
            open: false,
            step: 0,
            generation: 0,
            last_step: None,
            classes: std::array::from_fn(|_| Sketch::new_boxed()),
            class_used: [false; 4],
            pooled: Sketch::new_boxed(),
            tensors: Vec::new(),
            index: HashMap::new(),
            scratch: Vec::with_capacity(SCRATCH_BYTES),
            line: String::with_capacity(1024),
            busy: Duration::ZERO,
            population: 0,
            included: 0,
            excluded: 0,
            excluded_elements: 0,
        })
    }

    fn begin_step(&mut self, step: u64) -> Result<()> {
        let t0 = Instant::now();
        if self.open {
            return Err(call_order(format!(
                "step {} is still open; call npmk_monitor_end_step first",
                self.step
            )));
        }
        if let Some(previous) = self.last_step.filter(|&p| step <= p) {
            return Err(Error::invalid(format!(
                "step {step} does not come after the previous step {previous}"
            )));
        }
        for (sketch, used) in self.classes.iter_mut().zip(&mut self.class_used) {
            if std::mem::take(used) {
                sketch.clear();
            }
        }
        self.open = true;
        self.step = step;
        self.generation += 1;
        self.population = 0;
        self.included = 0;
        self.excluded = 0;
        self.excluded_elements = 0;
        self.busy = t0.elapsed();
        Ok(())
    }

    fn push(&mut self, name: &str, ndim: usize, dtype: Dtype, bytes: &[u8]) -> Result<()> {
        let t0 = Instant::now();
        if !self.open {
            return Err(call_order("no step is open; call npmk_monitor_begin_step first"));
        }
        let n = (bytes.len() / dtype.size()) as u64;

        // Find or register the tensor; validate before changing anything.
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.tensors.push(Tensor {
                    name: name.to_owned(),
                    role: classify(name, ndim),
                    generation: 0,
                    offset: 0,
                    positions: Vec::new(),
                    positions_for: 0,
                    sketch: None,
                });
                self.index.insert(name.to_owned(), self.tensors.len() - 1);
                self.tensors.len() - 1
            }
        };
        let first_push = self.tensors[i].generation != self.generation;
        if let Sampling::Positions { fraction, seed } = self.sampling {
            let t = &mut self.tensors[i];
            if !first_push {
                return Err(Error::invalid(format!(
                    "tensor {name} was already pushed this step; with sample_fraction each \
                     tensor comes in one push per step"
                )));
            }
            if t.positions_for != n {
                if t.positions_for != 0 {
                    return Err(Error::invalid(format!(
                        "tensor {name} has {n} elements, {} at an earlier step; sampled \
                         positions need a fixed size",
                        t.positions_for
                    )));
                }
                draw_positions(n, fraction, seed, name, &mut t.positions);
                t.positions_for = n;
            }
        }

        // First push of this tensor in this step: count it, reset its own sketch.
        let t = &mut self.tensors[i];
        let class = t.role.class;
        if first_push {
            t.generation = self.generation;
            t.offset = 0;
            if class == Class::Excluded {
                self.excluded += 1;
            } else {
                self.included += 1;
            }
            if self.per_tensor {
                match &mut t.sketch {
                    Some(s) => s.clear(),
                    None => t.sketch = Some(Sketch::new_boxed()),
                }
            }
        }
        if class == Class::Excluded {
            self.excluded_elements += n;
        } else {
            self.population += n;
        }

        // Excluded tensors are only scanned for their own fit; included ones go to their own
        // sketch (merged into the class at the end of the step) or straight to the class.
        let target: Option<&mut Sketch> = match (&mut t.sketch, slot(class)) {
            (Some(own), _) if self.per_tensor => Some(own),
            (_, Some(c)) => {
                self.class_used[c] = true;
                Some(&mut self.classes[c])
            }
            _ => None,
        };
        if let Some(target) = target {
            let plan = match self.sampling {
                Sampling::Full => Plan::Full,
                Sampling::Stride(s) => Plan::Stride(s),
                Sampling::Positions { .. } => Plan::Positions(&t.positions),
            };
            ingest(target, &mut self.scratch, dtype, bytes, t.offset, plan);
        }
        if self.per_tensor {
            if let Some(c) = slot(class) {
                self.class_used[c] = true;
            }
        }
        t.offset += n;
        self.busy += t0.elapsed();
        Ok(())
    }

    fn end_step(&mut self) -> Result<NpmkStepReport> {
        let t0 = Instant::now();
        if !self.open {
            return Err(call_order("no step is open; call npmk_monitor_begin_step first"));
        }
        self.open = false;

        // Per-tensor sketches join their class.
        if self.per_tensor {
            for t in self.tensors.iter().filter(|t| t.generation == self.generation) {
                if let (Some(c), Some(s)) = (slot(t.role.class), &t.sketch) {
                    self.classes[c].merge(s);
                }
            }
        }

        // Pool the classes and fit.
        self.pooled.clear();
        for (sketch, _) in self.classes.iter().zip(self.class_used).filter(|(_, used)| *used) {
            self.pooled.merge(sketch);
        }
        let mid80 = self.pooled.fit(Trim::MID80);
        let k_mid90 = k_or_nan(&self.pooled.fit(Trim::MID90));
        let k_full = k_or_nan(&self.pooled.fit(Trim::FULL));
        // With a single class in use, its pool is the pooled sketch: reuse that fit.
        let only_class = self.class_used.iter().filter(|&&used| used).count() == 1;
        let class_k: [f64; 4] = std::array::from_fn(|c| match (self.class_used[c], only_class) {
            (true, true) => k_or_nan(&mid80),
            (true, false) => k_or_nan(&self.classes[c].fit(Trim::MID80)),
            (false, _) => f64::NAN,
        });
        let counts = self.pooled.counts();

        // Dynamics from the steps that had a k.
        let k = k_or_nan(&mid80);
        let (mut dk, mut d2k, mut phase) = (f64::NAN, f64::NAN, NPMK_PHASE_NONE);
        if k.is_finite() && self.step > 0 {
            let r = self
                .tracker
                .push(self.step, k)
                .map_err(|e| Error::invalid(format!("step {}: {e}", self.step)))?;
            (dk, d2k, phase) = (r.dk, r.d2k, r.phase.code());
        } else if k.is_finite() {
            // Step 0 has no place on the log axis; k has not moved yet.
            phase = 0;
        }
        self.last_step = Some(self.step);

        // Sampling error of k: simple random sampling of m of the N usable elements.
        let k_se = match self.sampling {
            Sampling::Full => 0.0,
            _ if counts.total == 0 || counts.usable == 0 => f64::NAN,
            _ => {
                let m = counts.usable as f64;
                let big_n = self.population as f64 * m / counts.total as f64;
                K_SD_SQRT_N * (1.0 / m - 1.0 / big_n).max(0.0).sqrt()
            }
        };

        let fit = mid80.as_ref().ok();
        let report = NpmkStepReport {
            step: self.step,
            k,
            dk,
            d2k,
            phase,
            n_tensors: self.included,
            lambda: fit.map_or(f64::NAN, |f| f.lambda),
            r2: fit.map_or(f64::NAN, |f| f.r2),
            k_mid90,
            k_full,
            k_selection: class_k[0],
            k_value: class_k[1],
            k_transmission: class_k[2],
            k_other: class_k[3],
            k_se,
            n_used: fit.map_or(0, |f| f.n_used),
            n_usable: counts.usable,
            n_zero: counts.zero,
            n_nan: counts.nan,
            n_inf: counts.pos_inf + counts.neg_inf,
            micros: (self.busy + t0.elapsed()).as_micros() as u64,
        };
        let no_fit = match &mid80 {
            Err(_) if self.included == 0 => Some("no included tensor was pushed".to_string()),
            Err(e) => Some(e.to_string()),
            Ok(_) => None,
        };
        self.format_line(&report, fit, &counts, no_fit.as_deref());
        self.file.write_all(self.line.as_bytes()).map_err(|e| {
            Error::new(NPMK_ERR_IO, format!("writing step {} to the JSONL file: {e}", self.step))
        })?;
        Ok(report)
    }

    /// The JSONL line of one step, into `self.line`. Non-finite numbers become `null`.
    fn format_line(
        &mut self,
        r: &NpmkStepReport,
        fit: Option<&WeibullFit>,
        counts: &npmk::Counts,
        no_fit: Option<&str>,
    ) {
        use serde_json::{json, Map, Value};
        let class_k = [r.k_selection, r.k_value, r.k_transmission, r.k_other];
        let k_class: Map<String, Value> =
            POOLED.iter().zip(class_k).map(|(c, k)| (c.name().to_string(), json!(k))).collect();
        let n_class: Map<String, Value> = POOLED
            .iter()
            .enumerate()
            .map(|(c, class)| {
                let n = if self.class_used[c] { self.classes[c].counts().usable } else { 0 };
                (class.name().to_string(), json!(n))
            })
            .collect();
        let (phase, phase_code) = match r.phase {
            p @ 0..=3 => (json!(format!("P{p}")), json!(p)),
            _ => (Value::Null, Value::Null),
        };
        let sampling = match self.sampling {
            Sampling::Full => json!({"mode": "full"}),
            Sampling::Stride(s) => json!({"mode": "stride", "stride": s}),
            Sampling::Positions { fraction, seed } => {
                json!({"mode": "positions", "fraction": fraction, "seed": seed})
            }
        };
        let mut line = json!({
            "step": r.step,
            "k": r.k,
            "k_mid80": r.k,
            "k_mid90": r.k_mid90,
            "k_full": r.k_full,
            "lambda": r.lambda,
            "r2": r.r2,
            "ks": fit.map_or(f64::NAN, |f| f.ks),
            "n_used": r.n_used,
            "k_se": r.k_se,
            "k_class": k_class,
            "n_class": n_class,
            "dk": r.dk,
            "d2k": r.d2k,
            "phase": phase,
            "phase_code": phase_code,
            "counts": {
                "elements": self.population,
                "sampled": counts.total,
                "usable": counts.usable,
                "zero": counts.zero,
                "nan": counts.nan,
                "inf": r.n_inf,
            },
            "tensors_pooled": self.included,
            "excluded": {"tensors": self.excluded, "elements": self.excluded_elements},
            "sampling": sampling,
            "micros": r.micros,
        });
        if let Some(why) = no_fit {
            line["no_fit"] = json!(why);
        }
        if self.per_tensor {
            let seen = self.tensors.iter().filter(|t| t.generation == self.generation);
            let tensors: Vec<Value> = seen
                .map(|t| {
                    let s = t.sketch.as_deref().expect("per-tensor sketches exist once pushed");
                    let c = s.counts();
                    let f = s.fit(Trim::MID80).ok();
                    json!({
                        "name": t.name,
                        "kind": t.role.kind.name(),
                        "class": t.role.class.name(),
                        "pooled": t.role.class != Class::Excluded,
                        "layer": t.role.layer,
                        "k": f.map_or(f64::NAN, |f| f.k),
                        "lambda": f.map_or(f64::NAN, |f| f.lambda),
                        "elements": t.offset,
                        "usable": c.usable,
                        "zero": c.zero,
                        "nan": c.nan,
                        "inf": c.pos_inf + c.neg_inf,
                    })
                })
                .collect();
            line["tensors"] = Value::Array(tensors);
        }
        self.line = line.to_string();
        self.line.push('\n');
    }
}

#[cfg(unix)]
fn path_of(path: &CStr) -> Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::OsStr::from_bytes(path.to_bytes()).into())
}

#[cfg(not(unix))]
fn path_of(path: &CStr) -> Result<std::path::PathBuf> {
    path.to_str().map(Into::into).map_err(|_| Error::invalid("jsonl_path is not valid UTF-8"))
}

/// `&mut Monitor` from a handle.
///
/// # Safety
/// `m` is NULL or a live handle used by no other thread during the call.
unsafe fn monitor_mut<'a>(m: *mut Monitor) -> Result<&'a mut Monitor> {
    // SAFETY: non-null handles are live monitors used by one thread at a time (caller's
    // contract).
    unsafe { m.as_mut() }.ok_or_else(|| Error::null("m"))
}

/// Borrows a NUL-terminated C string.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string readable for the call.
unsafe fn c_str<'a>(s: *const c_char, arg: &str) -> Result<&'a CStr> {
    if s.is_null() {
        return Err(Error::null(arg));
    }
    // SAFETY: non-null and NUL-terminated (caller's contract).
    Ok(unsafe { CStr::from_ptr(s) })
}

/// Writes the default options to `*out`: no per-tensor fits, a new file, no sampling, and the
/// METHOD.md thresholds (epsilon 0.01, delta 0.0025, settle window 4).
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_monitor_options_init(out: *mut NpmkMonitorOptions) -> i32 {
    guard("npmk_monitor_options_init", || {
        if out.is_null() {
            return Err(Error::null("out"));
        }
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { out.write(default_options()) };
        Ok(())
    })
}

/// Creates a monitor with default options that writes to `jsonl_path` (created or truncated).
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`, `NPMK_ERR_IO` (the file cannot be opened).
///
/// # Safety
/// `jsonl_path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_monitor_new(
    jsonl_path: *const c_char,
    out: *mut *mut Monitor,
) -> i32 {
    guard("npmk_monitor_new", || {
        // SAFETY: forwarded caller's contract.
        let path = unsafe { c_str(jsonl_path, "jsonl_path") }?;
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let monitor = Box::new(Monitor::new(path, &default_options())?);
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { out.write(Box::into_raw(monitor)) };
        Ok(())
    })
}

/// Creates a monitor with `options` (see `npmk_monitor_options`; zeroed fields take the
/// defaults).
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`, `NPMK_ERR_INVALID_ARGUMENT` (an option out of range, or
/// both sampling modes), `NPMK_ERR_IO`.
///
/// # Safety
/// `jsonl_path` must be NULL or a NUL-terminated string; `options` NULL or readable; `out` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_monitor_new_with_options(
    jsonl_path: *const c_char,
    options: *const NpmkMonitorOptions,
    out: *mut *mut Monitor,
) -> i32 {
    guard("npmk_monitor_new_with_options", || {
        // SAFETY: forwarded caller's contract.
        let path = unsafe { c_str(jsonl_path, "jsonl_path") }?;
        if options.is_null() {
            return Err(Error::null("options"));
        }
        // SAFETY: options is non-null and readable (caller's contract); read_unaligned makes
        // no alignment demand, and every bit pattern is a valid NpmkMonitorOptions.
        let options = unsafe { options.read_unaligned() };
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let monitor = Box::new(Monitor::new(path, &options)?);
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { out.write(Box::into_raw(monitor)) };
        Ok(())
    })
}

/// Opens step `step`. Steps must increase from one call to the next; step 0 is allowed first
/// (it gets k but no dk, d2k, and phase P0).
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`, `NPMK_ERR_CALL_ORDER` (a step is already open),
/// `NPMK_ERR_INVALID_ARGUMENT` (step not after the previous one).
///
/// # Safety
/// `m` must be NULL or a live handle used by no other thread during the call.
#[no_mangle]
pub unsafe extern "C" fn npmk_monitor_begin_step(m: *mut Monitor, step: u64) -> i32 {
    // SAFETY: forwarded caller's contract.
    guard("npmk_monitor_begin_step", || unsafe { monitor_mut(m) }?.begin_step(step))
}

/// Pushes `n_elements` values of one weight tensor, named as in the model's state dict (for
/// example `model.layers.3.self_attn.q_proj.weight`), taken as a 2-D matrix. A tensor may come
/// in several pushes (consecutive chunks, in order) unless positions are sampled.
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`, `NPMK_ERR_UNSUPPORTED_DTYPE`, `NPMK_ERR_CALL_ORDER` (no
/// open step), `NPMK_ERR_INVALID_ARGUMENT` (name not UTF-8; with sampled positions, a second
/// push of the tensor in a step or a changed size).
///
/// # Safety
/// `m` must be NULL or a live handle used by no other thread during the call; `name` NULL or a
/// NUL-terminated string; `data` must point to `n_elements` readable elements of `dtype`.
#[no_mangle]
pub unsafe extern "C" fn npmk_monitor_push(
    m: *mut Monitor,
    name: *const c_char,
    dtype: i32,
    data: *const c_void,
    n_elements: usize,
) -> i32 {
    guard("npmk_monitor_push", || {
        // SAFETY: forwarded caller's contract.
        unsafe { push_impl(m, name, 2, dtype, data, n_elements) }
    })
}

/// As `npmk_monitor_push`, for a tensor with `ndim` dimensions: tensors that are not 2-D are
/// excluded from the pool whatever their name (METHOD.md section 3).
///
/// # Safety
/// As for `npmk_monitor_push`.
#[no_mangle]
pub unsafe extern "C" fn npmk_monitor_push_ndim(
    m: *mut Monitor,
    name: *const c_char,
    ndim: u32,
    dtype: i32,
    data: *const c_void,
    n_elements: usize,
) -> i32 {
    guard("npmk_monitor_push_ndim", || {
        // SAFETY: forwarded caller's contract.
        unsafe { push_impl(m, name, ndim as usize, dtype, data, n_elements) }
    })
}

/// The body of both push exports.
///
/// # Safety
/// As for `npmk_monitor_push`.
unsafe fn push_impl(
    m: *mut Monitor,
    name: *const c_char,
    ndim: usize,
    dtype: i32,
    data: *const c_void,
    n_elements: usize,
) -> Result<()> {
    // SAFETY: forwarded caller's contract.
    let (monitor, name) = unsafe { (monitor_mut(m)?, c_str(name, "name")?) };
    let name = name.to_str().map_err(|_| Error::invalid("name is not valid UTF-8"))?;
    let dtype = dtype_of(dtype)?;
    // SAFETY: forwarded caller's contract on data and n_elements.
    let bytes = unsafe { element_bytes(data, n_elements, dtype) }?;
    monitor.push(name, ndim, dtype, bytes)
}

/// Closes the open step: fits, reads dk, d2k and the phase, appends one JSON line to the file
/// (written through before returning) and, if `out` is not NULL, writes the report to `*out`.
///
/// A step whose pooled tensors give no fit still succeeds: k is NaN, the phase
/// `NPMK_PHASE_NONE`, and the line says why under `no_fit`.
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT` (m), `NPMK_ERR_CALL_ORDER` (no open step), `NPMK_ERR_IO`
/// (the line could not be written; the step is closed all the same).
///
/// # Safety
/// `m` must be NULL or a live handle used by no other thread during the call; `out` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_monitor_end_step(m: *mut Monitor, out: *mut NpmkStepReport) -> i32 {
    guard("npmk_monitor_end_step", || {
        // SAFETY: forwarded caller's contract.
        let report = unsafe { monitor_mut(m) }?.end_step()?;
        if !out.is_null() {
            // SAFETY: out is non-null and writable (caller's contract).
            unsafe { out.write(report) };
        }
        Ok(())
    })
}

/// Frees a monitor and closes its file; NULL does nothing. A step left open is not written.
///
/// # Safety
/// `m` must be NULL or a handle from this library not yet freed; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn npmk_monitor_free(m: *mut Monitor) {
    guard_value("npmk_monitor_free", (), || {
        if !m.is_null() {
            // SAFETY: non-null handles come from Box::into_raw here and are freed once
            // (caller's contract).
            drop(unsafe { Box::from_raw(m) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strata_positions_are_sorted_distinct_and_reproducible() {
        let mut a = Vec::new();
        draw_positions(1000, 0.1, 7, "w", &mut a);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && *a.last().unwrap() < 1000);
        for (b, p) in a.iter().enumerate() {
            assert!((b as u64 * 10..(b as u64 + 1) * 10).contains(p));
        }
        let mut b = Vec::new();
        draw_positions(1000, 0.1, 7, "w", &mut b);
        assert_eq!(a, b);
        draw_positions(1000, 0.1, 7, "other", &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn stride_sampling_follows_the_tensor_across_chunks() {
        let values: Vec<f32> = (0..1000).map(|i| 1.0 + i as f32).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut whole = Sketch::new_boxed();
        let mut scratch = Vec::new();
        ingest(&mut whole, &mut scratch, Dtype::F32, &bytes, 0, Plan::Stride(7));
        let mut chunked = Sketch::new_boxed();
        ingest(&mut chunked, &mut scratch, Dtype::F32, &bytes[..404], 0, Plan::Stride(7));
        ingest(&mut chunked, &mut scratch, Dtype::F32, &bytes[404..], 101, Plan::Stride(7));
        assert!(*whole == *chunked);
        assert_eq!(whole.counts().total, 143);
        let mut direct = Sketch::new_boxed();
        let picked: Vec<f32> = values.iter().step_by(7).copied().collect();
        direct.push_f32(&picked);
        assert_eq!(whole.words()[..0xFF00], direct.words()[..0xFF00]);
    }
}
