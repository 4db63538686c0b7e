//! Text renderings of a scan report: the readable table and CSV.

use npmk::scan::{PerTrim, PooledSummary, ScanReport, TensorReport};
use npmk::WeibullFit;
use std::fmt::Write;

/// `384x1536`; `scalar` for a 0-D tensor.
fn shape(dims: &[u64]) -> String {
    if dims.is_empty() {
        return "scalar".into();
    }
    dims.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
}

fn k(fit: Option<WeibullFit>) -> String {
    fit.map_or("-".into(), |f| format!("{:.4}", f.k))
}

fn signed(v: Option<f64>) -> String {
    // Values that round to zero print as +0.0000, not -0.0000.
    v.map(|v| if v.abs() < 5e-5 { 0.0 } else { v }).map_or("-".into(), |v| format!("{v:+.4}"))
}

fn plain(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Left-aligned first column, right-aligned numbers, two spaces apart; the last column is free
/// text.
pub fn grid(out: &mut String, rows: &[Vec<String>], left: usize) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            let last = c + 1 == row.len();
            if c < left || (last && c + 1 == columns) {
                line.push_str(cell);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn trim_heads(report: &ScanReport, prefix: &str) -> Vec<String> {
    report.trims.iter().map(|(name, _)| format!("{prefix}{name}")).collect()
}

/// The readable report: a header, one line per tensor, per-kind medians with the body-versus-
/// tail ablation, and the pooled fits.
pub fn table(report: &ScanReport) -> String {
    let mut out = String::new();
    let read = report.tensors.iter().filter(|t| t.skipped.is_none()).count();
    let _ = writeln!(out, "checkpoint  {}", report.path);
    for file in &report.files {
        let _ = writeln!(out, "file        {file}");
    }
    let _ = writeln!(
        out,
        "tensors     {} ({} read, {} skipped); k(Gaussian) = {:.4}",
        report.tensors.len(),
        read,
        report.tensors.len() - read,
        report.gaussian_k
    );
    if let Some(t) = report.trims.custom {
        let _ = writeln!(out, "custom body [{}, {}]", t.lo, t.hi);
    }

    // Per tensor.
    out.push_str("\nPer tensor (k by body; vs G = k(mid80) - k(Gaussian) = k(mid80) - 1.2054)\n");
    let mut rows = vec![[
        vec!["name".into(), "dtype".into(), "shape".into(), "kind".into(), "class".into()],
        vec!["layer".into()],
        trim_heads(report, "k "),
        vec!["vs G".into(), "R2".into(), "zero".into(), "nonfinite".into(), "note".into()],
    ]
    .concat()];
    for t in &report.tensors {
        rows.push(tensor_row(t));
    }
    grid(&mut out, &rows, 5);

    // Per kind.
    out.push_str(
        "\nPer kind (median of per-matrix k over 2-D matrices; shift = k(body) - k(mid80))\n",
    );
    let mut rows = vec![[
        vec!["kind".into(), "class".into(), "matrices".into()],
        trim_heads(report, "k "),
        vec!["vs G".into()],
        trim_heads(report, "shift ").into_iter().skip(1).collect(),
    ]
    .concat()];
    for kind in &report.kinds {
        let medians: Vec<String> = kind.median_k.iter().map(|(_, v)| plain(*v)).collect();
        let t = &kind.tail_shift;
        let shifts: Vec<String> =
            [Some(t.mid90), Some(t.full), t.custom].into_iter().flatten().map(signed).collect();
        rows.push(
            [
                vec![
                    kind.kind.name().into(),
                    kind.class.name().into(),
                    kind.n_matrices.to_string(),
                ],
                medians,
                vec![signed(kind.dk_gaussian)],
                shifts,
            ]
            .concat(),
        );
    }
    grid(&mut out, &rows, 2);

    // Pooled.
    out.push_str(
        "\nPooled (one fit over all elements of a class; all = every included matrix, other too)\n",
    );
    let mut rows = vec![[
        vec!["pool".into(), "matrices".into(), "elements".into()],
        trim_heads(report, "k "),
        vec!["lambda mid80".into(), "vs G".into(), "note".into()],
    ]
    .concat()];
    let p = &report.pooled;
    for (name, pool) in [
        ("selection", &p.selection),
        ("value", &p.value),
        ("transmission", &p.transmission),
        ("other", &p.other),
        ("all", &p.all),
    ] {
        rows.push(pool_row(name, pool));
    }
    grid(&mut out, &rows, 1);
    out.push_str(
        "A pooled k sits below the per-matrix k when the pooled matrices differ in scale \
         (their |w| mix); read it beside the per-kind medians above, never in place of them.\n",
    );
    out
}

/// The reason for the mid-80 body if it has none, else the first other one.
fn first_reason(reasons: &std::collections::BTreeMap<String, String>) -> String {
    let pick = reasons.get_key_value("mid80").or_else(|| reasons.iter().next());
    pick.map(|(body, why)| format!("no fit ({body}): {why}")).unwrap_or_default()
}

/// A name as one table cell: control characters (a newline would break the row) are escaped.
fn cell_text(name: &str) -> String {
    if name.chars().any(char::is_control) {
        name.chars()
            .flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] })
            .collect()
    } else {
        name.to_string()
    }
}

fn tensor_row(t: &TensorReport) -> Vec<String> {
    let ks: Vec<String> = t.fits.iter().map(|(_, f)| k(*f)).collect();
    let note = match (&t.skipped, &t.no_fit) {
        (Some(reason), _) => format!("skipped: {reason}"),
        (None, Some(reasons)) => first_reason(reasons),
        _ => String::new(),
    };
    let count = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
    [
        vec![
            cell_text(&t.name),
            t.dtype.clone(),
            shape(&t.shape),
            t.kind.name().into(),
            t.class.name().into(),
            t.layer.map_or("-".into(), |l| l.to_string()),
        ],
        ks,
        vec![
            signed(t.fits.mid80.map(|f| f.k - npmk::GAUSSIAN_K)),
            t.fits.mid80.map_or("-".into(), |f| format!("{:.4}", f.r2)),
            count(t.n_zero),
            count(t.n_nonfinite),
            note,
        ],
    ]
    .concat()
}

fn pool_row(name: &str, pool: &PooledSummary) -> Vec<String> {
    let ks: Vec<String> = pool.fits.iter().map(|(_, f)| k(*f)).collect();
    let note = pool.no_fit.as_ref().map(first_reason).unwrap_or_default();
    [
        vec![name.into(), pool.n_matrices.to_string(), pool.n.to_string()],
        ks,
        vec![
            pool.fits.mid80.map_or("-".into(), |f| format!("{:.6}", f.lambda)),
            signed(pool.dk_gaussian),
            note,
        ],
    ]
    .concat()
}

/// One CSV field, quoted when it must be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// One row per tensor; empty cells for values that do not exist.
pub fn csv(report: &ScanReport) -> String {
    let mut out = String::new();
    let mut head: Vec<String> = [
        "name",
        "dtype",
        "shape",
        "n",
        "n_zero",
        "n_nonfinite",
        "kind",
        "class",
        "layer",
        "family",
    ]
    .map(String::from)
    .to_vec();
    for (body, _) in report.trims.iter() {
        for stat in ["k", "lambda", "r2", "ks", "n_used"] {
            head.push(format!("{stat}_{body}"));
        }
    }
    head.extend(["skipped".to_string(), "no_fit".to_string()]);
    out.push_str(&head.join(","));
    out.push('\n');
    for t in &report.tensors {
        let mut row = vec![
            field(&t.name),
            t.dtype.clone(),
            shape(&t.shape),
            t.n.to_string(),
            opt(t.n_zero),
            opt(t.n_nonfinite),
            t.kind.name().into(),
            t.class.name().into(),
            opt(t.layer),
            opt(t.family.map(|f| f.name())),
        ];
        let fits: &PerTrim<Option<WeibullFit>> = &t.fits;
        for (_, fit) in fits.iter() {
            row.push(opt(fit.map(|f| f.k)));
            row.push(opt(fit.map(|f| f.lambda)));
            row.push(opt(fit.map(|f| f.r2)));
            row.push(opt(fit.map(|f| f.ks)));
            row.push(opt(fit.map(|f| f.n_used)));
        }
        row.push(field(t.skipped.as_deref().unwrap_or("")));
        let reasons = t
            .no_fit
            .as_ref()
            .map(|r| r.iter().map(|(b, why)| format!("{b}: {why}")).collect::<Vec<_>>().join("; "));
        row.push(field(&reasons.unwrap_or_default()));
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
