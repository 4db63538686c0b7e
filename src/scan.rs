//! Scanning a checkpoint: per-matrix, per-kind and pooled Weibull fits.
//!
//! [`scan`] reads every tensor of a [`Checkpoint`] once, straight from its memory map into a
//! [`Sketch`], and fits the sketch over the standard bodies (mid-80, mid-90, full) and an
//! optional custom one. It then summarises:
//!
//! * per tensor: dtype, shape, element counts (zeros and non-finite values apart), role and
//!   fits, or why a tensor was skipped (a dtype npmk does not fit, or a name filter);
//! * per kind: the median of the per-matrix k over the 2-D matrices of that kind, for each body,
//!   and the body-versus-tail ablation (median of k(mid-90) - k(mid-80) and k(full) - k(mid-80));
//! * pooled per class: one fit over all elements of the class's matrices, by merging sketches;
//!   `all` pools selection, value and transmission (not `other`, see [`roles`](crate::roles)).
//!
//! Pooled k and the median of per-matrix k are different numbers: pooling matrices of different
//! scales lowers k. Reports carry both, under different names.
//!
//! # Threads, memory and determinism
//!
//! Workers (scoped threads, as many as [`ScanOptions::threads`]) take whole tensors from a
//! shared queue, largest first, each with one reusable 512 KiB sketch; the per-class pools are
//! four more sketches behind locks. Memory is therefore `(threads + 4) * 512 KiB` plus the
//! report, whatever the checkpoint's size; tensor bytes are never copied. Every per-tensor
//! result depends only on that tensor, and pooling adds counts, so the report is identical for
//! every thread count and schedule.

use crate::checkpoint::{Checkpoint, CheckpointError, Tensor};
use crate::roles::{classify, Class, Family, Kind, Role};
use crate::{Counts, Dtype, NoFit, Sketch, Trim, WeibullFit, GAUSSIAN_K};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes pushed between two progress reports.
const CHUNK: usize = 8 << 20;

/// How to scan.
#[derive(Clone, Copy, Default)]
pub struct ScanOptions<'a> {
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
    /// A body to fit besides mid-80, mid-90 and full.
    pub custom_trim: Option<Trim>,
    /// Tensors whose name this returns `false` for are listed as skipped, not read.
    pub filter: Option<&'a (dyn Fn(&str) -> bool + Sync)>,
    /// Called now and then from the workers with (bytes read so far, bytes to read).
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl std::fmt::Debug for ScanOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanOptions")
            .field("threads", &self.threads)
            .field("custom_trim", &self.custom_trim)
            .field("filter", &self.filter.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// One value per body: mid-80, mid-90, full, and the custom body when one was asked for.
/// Serialises as a map `{"mid80", "mid90", "full"[, "custom"]}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerTrim<T> {
    /// The central 80% (the papers' protocol).
    pub mid80: T,
    /// The central 90%.
    pub mid90: T,
    /// Every rank.
    pub full: T,
    /// The custom body, if any.
    pub custom: Option<T>,
}

impl<T> PerTrim<T> {
    /// The values with their names, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &T)> {
        [("mid80", &self.mid80), ("mid90", &self.mid90), ("full", &self.full)]
            .into_iter()
            .chain(self.custom.as_ref().map(|c| ("custom", c)))
    }

    /// Applies `f` to every value.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerTrim<U> {
        PerTrim {
            mid80: f(&self.mid80),
            mid90: f(&self.mid90),
            full: f(&self.full),
            custom: self.custom.as_ref().map(f),
        }
    }
}

impl<T: Serialize> Serialize for PerTrim<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The standard bodies plus `custom`.
fn trims(custom: Option<Trim>) -> PerTrim<Trim> {
    PerTrim { mid80: Trim::MID80, mid90: Trim::MID90, full: Trim::FULL, custom }
}

/// Fits for each body, or why there is none.
type Fits = PerTrim<Result<WeibullFit, NoFit>>;

/// The fits as reported: a fit or `null` per body.
fn fit_values(fits: &Fits) -> PerTrim<Option<WeibullFit>> {
    fits.map(|r| r.ok())
}

/// The reasons for the missing fits, by body; `None` when every body fitted.
fn no_fit_reasons(fits: &Fits) -> Option<BTreeMap<String, String>> {
    let reasons: BTreeMap<String, String> = fits
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| (name.to_string(), e.to_string())))
        .collect();
    (!reasons.is_empty()).then_some(reasons)
}

/// The result of scanning one checkpoint.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScanReport {
    /// The path that was scanned, as given.
    pub path: String,
    /// The safetensors files read.
    pub files: Vec<String>,
    /// npmk's version.
    pub npmk_version: &'static str,
    /// The Gaussian anchor that deviations are measured from.
    pub gaussian_k: f64,
    /// The bodies fitted.
    pub trims: PerTrim<Trim>,
    /// Every tensor of the checkpoint, in natural name order.
    pub tensors: Vec<TensorReport>,
    /// Per kind, over 2-D matrices; kinds with no matrix are left out.
    #[serde(serialize_with = "serialize_kinds")]
    pub kinds: Vec<KindSummary>,
    /// Pooled fits per class.
    pub pooled: PooledFits,
}

/// One tensor's line of the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TensorReport {
    /// Name.
    pub name: String,
    /// dtype as safetensors spells it.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Elements.
    pub n: u64,
    /// Zeros (`None` when the tensor was not read).
    pub n_zero: Option<u64>,
    /// NaN and ±Inf together (`None` when not read).
    pub n_nonfinite: Option<u64>,
    /// NaN (`None` when not read).
    pub n_nan: Option<u64>,
    /// +Inf and -Inf (`None` when not read).
    pub n_inf: Option<u64>,
    /// Kind, from the name.
    pub kind: Kind,
    /// Class, from the name and the number of dimensions.
    pub class: Class,
    /// Layer index, from the name.
    pub layer: Option<u32>,
    /// The family table that recognised the name.
    pub family: Option<Family>,
    /// Fits per body; `null` for a body without a fit.
    pub fits: PerTrim<Option<WeibullFit>>,
    /// Why a body has no fit (absent bodies only), or `null`.
    pub no_fit: Option<BTreeMap<String, String>>,
    /// Why the tensor was not read, or `null`.
    pub skipped: Option<String>,
}

impl TensorReport {
    /// Whether the tensor was read and is a 2-D matrix: the unit of per-kind summaries.
    pub fn is_matrix(&self) -> bool {
        self.skipped.is_none() && self.shape.len() == 2
    }
}

/// Per-kind summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KindSummary {
    /// The kind.
    #[serde(skip)]
    pub kind: Kind,
    /// The class of 2-D matrices of this kind.
    pub class: Class,
    /// 2-D matrices of this kind that were read.
    pub n_matrices: usize,
    /// Median of the per-matrix k, over the matrices with a fit for that body.
    pub median_k: PerTrim<Option<f64>>,
    /// `median_k.mid80 - gaussian_k`.
    pub dk_gaussian: Option<f64>,
    /// Body-versus-tail ablation: median over matrices of k(body) - k(mid-80), for mid-90, full
    /// (and custom).
    pub tail_shift: BTreeMap<String, Option<f64>>,
}

fn serialize_kinds<S: Serializer>(kinds: &[KindSummary], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(kinds.len()))?;
    for k in kinds {
        map.serialize_entry(k.kind.name(), k)?;
    }
    map.end()
}

/// One pooled fit.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PooledSummary {
    /// Matrices pooled.
    pub n_matrices: usize,
    /// Elements pooled (all of them, zeros and non-finite included).
    pub n: u64,
    /// Zeros among them.
    pub n_zero: u64,
    /// NaN and ±Inf among them.
    pub n_nonfinite: u64,
    /// Fit per body, or `null`.
    pub fits: PerTrim<Option<WeibullFit>>,
    /// Why a body has no fit, or `null`.
    pub no_fit: Option<BTreeMap<String, String>>,
    /// `fits.mid80.k - gaussian_k`.
    pub dk_gaussian: Option<f64>,
}

/// Pooled fits per class. `all` = selection + value + transmission.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PooledFits {
    /// Query, key and fused qkv matrices.
    pub selection: PooledSummary,
    /// Value matrices.
    pub value: PooledSummary,
    /// Attention output and feed-forward matrices.
    pub transmission: PooledSummary,
    /// Unknown 2-D matrices.
    pub other: PooledSummary,
    /// Selection, value and transmission together.
    pub all: PooledSummary,
}

/// What happens to one tensor.
enum Plan {
    Read(Dtype),
    Skip(String),
}

/// What a worker learns from one tensor.
struct Measured {
    counts: Counts,
    fits: Fits,
}

/// Opens and scans the checkpoint at `path`.
pub fn scan_path(
    path: impl AsRef<Path>,
    options: &ScanOptions,
) -> Result<ScanReport, CheckpointError> {
    let checkpoint = Checkpoint::open(path)?;
    Ok(scan(&checkpoint, options))
}

/// The classes that have a pool, in pool-array order.
const POOLED: [Class; 4] = [Class::Selection, Class::Value, Class::Transmission, Class::Other];

fn pool_slot(class: Class) -> Option<usize> {
    POOLED.iter().position(|&c| c == class)
}

/// Scans an open checkpoint (see the module docs).
pub fn scan(checkpoint: &Checkpoint, options: &ScanOptions) -> ScanReport {
    let trims = trims(options.custom_trim);
    let tensors = checkpoint.tensors();

    // 1. Roles and plans.
    let roles: Vec<Role> =
        tensors.iter().map(|t| classify(t.name(), t.entry.shape.len())).collect();
    let plans: Vec<Plan> = tensors.iter().map(|t| plan(t, options)).collect();

    // 2. The work queue: tensors to read, largest first, so that threads finish together.
    let mut work: Vec<usize> =
        (0..tensors.len()).filter(|&i| matches!(plans[i], Plan::Read(_))).collect();
    work.sort_by_key(|&i| (std::cmp::Reverse(tensors[i].byte_len()), i));
    let total_bytes: u64 = work.iter().map(|&i| tensors[i].byte_len() as u64).sum();

    // 3. The workers.
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, work.len().max(1));
    let shared = Shared {
        checkpoint,
        work: &work,
        plans: &plans,
        roles: &roles,
        trims,
        next: AtomicUsize::new(0),
        done_bytes: AtomicU64::new(0),
        total_bytes,
        progress: options.progress,
        pools: POOLED.map(|_| Mutex::new(Sketch::new_boxed())),
    };
    let mut measured: Vec<Option<Measured>> = tensors.iter().map(|_| None).collect();
    let batches: Vec<Vec<(usize, Measured)>> = if threads == 1 {
        vec![shared.worker()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| shared.worker())).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    };
    for (i, m) in batches.into_iter().flatten() {
        measured[i] = Some(m);
    }

    // 4. Per-tensor lines.
    let reports: Vec<TensorReport> = tensors
        .iter()
        .zip(&roles)
        .zip(&plans)
        .zip(measured)
        .map(|(((t, role), plan), m)| tensor_report(t, role, plan, m, &trims))
        .collect();

    // 5. Per-kind medians, and the pools.
    let has_custom = trims.custom.is_some();
    let kinds =
        Kind::ALL.iter().filter_map(|&kind| kind_summary(kind, &reports, has_custom)).collect();
    let pools: Vec<Box<Sketch>> = shared
        .pools
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()))
        .collect();
    let matrices = |class: Class| {
        reports.iter().filter(|r| r.class == class && r.skipped.is_none() && r.n > 0).count()
    };
    let summary = |sketch: &Sketch, n_matrices| pooled_summary(sketch, n_matrices, &trims);
    let mut all = Sketch::new_boxed();
    for class in [Class::Selection, Class::Value, Class::Transmission] {
        all.merge(&pools[pool_slot(class).expect("pooled class")]);
    }
    let n_all = matrices(Class::Selection) + matrices(Class::Value) + matrices(Class::Transmission);
    let pooled = PooledFits {
        selection: summary(&pools[0], matrices(Class::Selection)),
        value: summary(&pools[1], matrices(Class::Value)),
        transmission: summary(&pools[2], matrices(Class::Transmission)),
        other: summary(&pools[3], matrices(Class::Other)),
        all: summary(&all, n_all),
    };

    ScanReport {
        path: checkpoint.path().display().to_string(),
        files: checkpoint.files().map(|f| f.display().to_string()).collect(),
        npmk_version: env!("CARGO_PKG_VERSION"),
        gaussian_k: GAUSSIAN_K,
        trims,
        tensors: reports,
        kinds,
        pooled,
    }
}

/// Whether and how a tensor is read.
fn plan(tensor: &Tensor, options: &ScanOptions) -> Plan {
    if let Some(filter) = options.filter {
        if !filter(tensor.name()) {
            return Plan::Skip("excluded by the name filter".into());
        }
    }
    match tensor.entry.element {
        Some(dtype) => Plan::Read(dtype),
        None => Plan::Skip(format!(
            "dtype {} is not fitted (only BF16, F16 and F32 are)",
            tensor.entry.dtype
        )),
    }
}

/// State the workers share.
struct Shared<'a> {
    checkpoint: &'a Checkpoint,
    work: &'a [usize],
    plans: &'a [Plan],
    roles: &'a [Role],
    trims: PerTrim<Trim>,
    next: AtomicUsize,
    done_bytes: AtomicU64,
    total_bytes: u64,
    progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
    pools: [Mutex<Box<Sketch>>; 4],
}

impl Shared<'_> {
    /// Takes tensors from the queue until it is empty; one sketch, reused.
    fn worker(&self) -> Vec<(usize, Measured)> {
        let mut sketch = Sketch::new_boxed();
        let mut out = Vec::new();
        loop {
            let slot = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = self.work.get(slot) else { break };
            let Plan::Read(dtype) = self.plans[i] else { continue };
            let tensor = &self.checkpoint.tensors()[i];

            // Ingest in chunks (whole elements each: CHUNK is a multiple of 4) for progress.
            sketch.clear();
            for chunk in self.checkpoint.bytes(tensor).chunks(CHUNK) {
                sketch.push_le_bytes(dtype, chunk).expect("validated tensors hold whole elements");
                let done = self.done_bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed)
                    + chunk.len() as u64;
                if let Some(progress) = self.progress {
                    progress(done, self.total_bytes);
                }
            }

            let fits = self.trims.map(|&trim| sketch.fit(trim));
            if let Some(slot) = pool_slot(self.roles[i].class) {
                let mut pool = self.pools[slot].lock().unwrap_or_else(|p| p.into_inner());
                pool.merge(&sketch);
            }
            out.push((i, Measured { counts: sketch.counts(), fits }));
        }
        out
    }
}

/// One tensor's report line.
fn tensor_report(
    tensor: &Tensor,
    role: &Role,
    plan: &Plan,
    measured: Option<Measured>,
    trims: &PerTrim<Trim>,
) -> TensorReport {
    let skipped = match plan {
        Plan::Skip(reason) => Some(reason.clone()),
        Plan::Read(_) => None,
    };
    let nothing: PerTrim<Option<WeibullFit>> = trims.map(|_| None);
    let (counts, fits, no_fit) = match &measured {
        Some(m) => (Some(m.counts), fit_values(&m.fits), no_fit_reasons(&m.fits)),
        None => (None, nothing, None),
    };
    TensorReport {
        name: tensor.entry.name.clone(),
        dtype: tensor.entry.dtype.clone(),
        shape: tensor.entry.shape.clone(),
        n: tensor.entry.numel,
        n_zero: counts.map(|c| c.zero),
        n_nonfinite: counts.map(|c| c.nonfinite()),
        n_nan: counts.map(|c| c.nan),
        n_inf: counts.map(|c| c.pos_inf + c.neg_inf),
        kind: role.kind,
        class: role.class,
        layer: role.layer,
        family: role.family,
        fits,
        no_fit,
        skipped,
    }
}

/// The median of a list (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { 0.5 * (values[mid - 1] + values[mid]) })
}

/// The summary of one kind over its 2-D matrices, or `None` if it has none.
fn kind_summary(kind: Kind, reports: &[TensorReport], has_custom: bool) -> Option<KindSummary> {
    type Pick = fn(&PerTrim<Option<WeibullFit>>) -> Option<WeibullFit>;
    let members: Vec<&TensorReport> =
        reports.iter().filter(|r| r.kind == kind && r.is_matrix()).collect();
    if members.is_empty() {
        return None;
    }
    let bodies: PerTrim<Pick> = PerTrim {
        mid80: |f| f.mid80,
        mid90: |f| f.mid90,
        full: |f| f.full,
        custom: has_custom.then_some((|f| f.custom.flatten()) as Pick),
    };

    // Median k per body, over the matrices with a fit for that body.
    let median_k = bodies.map(|pick| {
        let mut ks: Vec<f64> = members.iter().filter_map(|r| pick(&r.fits)).map(|f| f.k).collect();
        median(&mut ks)
    });

    // Ablation: per matrix, k(body) - k(mid-80); the median of those.
    let shift = bodies.map(|pick| {
        let mut d: Vec<f64> =
            members.iter().filter_map(|r| Some(pick(&r.fits)?.k - r.fits.mid80?.k)).collect();
        median(&mut d)
    });
    let tail_shift = shift.iter().skip(1).map(|(name, v)| (name.to_string(), *v)).collect();

    Some(KindSummary {
        kind,
        class: kind.class(),
        n_matrices: members.len(),
        dk_gaussian: median_k.mid80.map(|k| k - GAUSSIAN_K),
        median_k,
        tail_shift,
    })
}

/// A pooled sketch's summary.
fn pooled_summary(sketch: &Sketch, n_matrices: usize, trims: &PerTrim<Trim>) -> PooledSummary {
    let fits: Fits = trims.map(|&t| sketch.fit(t));
    let counts = sketch.counts();
    PooledSummary {
        n_matrices,
        n: counts.total,
        n_zero: counts.zero,
        n_nonfinite: counts.nonfinite(),
        dk_gaussian: fits.mid80.as_ref().ok().map(|f| f.k - GAUSSIAN_K),
        no_fit: no_fit_reasons(&fits),
        fits: fit_values(&fits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty_lists() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn per_trim_serialises_custom_only_when_present() {
        let a = PerTrim { mid80: 1, mid90: 2, full: 3, custom: None };
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"mid80":1,"mid90":2,"full":3}"#);
        let b = PerTrim { custom: Some(4), ..a };
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"mid80":1,"mid90":2,"full":3,"custom":4}"#
        );
    }
}
