//! The real MiniLM-L6 checkpoint (f32, its bf16 copy, its two-shard copy) against a sort-based
//! oracle and the published values. The fixtures come from `scripts/fetch-fixtures.sh`; a
//! missing fixture fails these tests.

mod common;
mod st;
use common::{oracle_fit, OracleFit};
use npmk::checkpoint::Checkpoint;
use npmk::roles::Class;
use npmk::scan::{scan, ScanOptions, ScanReport};
use npmk::{Trim, WeibullFit};
use st::*;

fn report(rel: &str, threads: usize) -> ScanReport {
    let checkpoint = Checkpoint::open(fixture(rel)).unwrap();
    scan(&checkpoint, &ScanOptions { threads, ..ScanOptions::default() })
}

fn k_of(report: &ScanReport, name: &str) -> f64 {
    let t = report.tensors.iter().find(|t| t.name.ends_with(name)).expect(name);
    t.fits.mid80.expect(name).k
}

const BODIES: [(&str, Trim); 3] =
    [("mid80", Trim::MID80), ("mid90", Trim::MID90), ("full", Trim::FULL)];

/// Walks every tensor of `dtype` in a fixture and every body, pairing the scan's fit with the
/// sort oracle's on the same values; `check` sees both fits, and the test fails where only one
/// of the two has a fit. Returns how many pairs were checked.
fn against_the_oracle(
    file: &str,
    dtype: &str,
    mut check: impl FnMut(&RawTensor, &str, &WeibullFit, &OracleFit),
) -> usize {
    let report = report(file, 2);
    let mut checked = 0;
    for t in read_raw(&fixture(file)).iter().filter(|t| t.dtype == dtype) {
        let line = report.tensors.iter().find(|r| r.name == t.name).unwrap();
        let values = t.values();
        for (body, trim) in BODIES {
            let ours = line.fits.iter().find(|(b, _)| *b == body).unwrap().1;
            match (oracle_fit(&values, trim.lo, trim.hi), ours) {
                (Some(o), Some(f)) => {
                    check(t, body, f, &o);
                    checked += 1;
                }
                (None, None) => {}
                (o, f) => panic!("{} {body}: oracle {o:?}, scan {f:?}", t.name),
            }
        }
        assert_eq!(line.n_zero, Some(values.iter().filter(|v| **v == 0.0).count() as u64));
    }
    checked
}

#[test]
fn f32_per_matrix_k_matches_the_sort_oracle() {
    let checked = against_the_oracle("minilm/model.safetensors", "F32", |t, body, f, o| {
        // The unit of fit is a matrix: 1e-4 there. 1-D norm vectors have k up to 35, where the
        // sketch's 2^-8 bins show more (relative 5e-3).
        let tol = if t.shape.len() == 2 { 1e-4 } else { 5e-3 * o.k.max(1.0) };
        assert!((f.k - o.k).abs() < tol, "{} {body}: k {} vs {}", t.name, f.k, o.k);
        let dl = (f.lambda / o.lambda - 1.0).abs();
        assert!(dl < 1e-3, "{} {body}: lambda {} vs {}", t.name, f.lambda, o.lambda);
        assert_eq!(f.n_used, o.n_used, "{} {body}", t.name);
    });
    assert!(checked >= 3 * 100, "only {checked} fits compared");
}

#[test]
fn f32_published_values() {
    let report = report("minilm/model.safetensors", 1);
    for (name, published) in [
        ("encoder.layer.0.attention.self.query.weight", 1.184734),
        ("encoder.layer.0.intermediate.dense.weight", 1.167137),
        ("encoder.layer.1.attention.output.dense.weight", 1.132436),
    ] {
        let k = k_of(&report, name);
        assert!((k - published).abs() < 2e-5, "{name}: k = {k:.7}, published {published}");
    }
}

#[test]
fn bf16_copy_equals_the_oracle_on_bf16_data() {
    let checked = against_the_oracle("minilm-bf16/model.safetensors", "BF16", |t, body, f, o| {
        assert!((f.k - o.k).abs() < 1e-9, "{} {body}: k {} vs {}", t.name, f.k, o.k);
    });
    assert!(checked >= 3 * 100, "only {checked} fits compared");
}

#[test]
fn sharded_copy_gives_exactly_the_single_file_results() {
    let single = report("minilm/model.safetensors", 1);
    let sharded = report("minilm-sharded", 2);
    assert_eq!(sharded.files.len(), 2);
    let json = |r: &ScanReport| {
        let mut v = serde_json::to_value(r).unwrap();
        v["path"] = serde_json::Value::Null;
        v["files"] = serde_json::Value::Null;
        v
    };
    assert_eq!(json(&single), json(&sharded));
    // Through the index file too.
    let via_index = report("minilm-sharded/model.safetensors.index.json", 1);
    assert_eq!(json(&single), json(&via_index));
}

#[test]
fn output_is_identical_for_every_thread_count() {
    let one = serde_json::to_string(&report("minilm/model.safetensors", 1)).unwrap();
    for threads in [2, 3, 8] {
        let many = serde_json::to_string(&report("minilm/model.safetensors", threads)).unwrap();
        assert!(one == many, "{threads} threads give a different report");
    }
}

#[test]
fn pooled_fits_and_kind_medians_are_what_they_claim() {
    let report = report("minilm/model.safetensors", 2);
    let raw = read_raw(&fixture("minilm/model.safetensors"));

    // Pooled transmission = one fit over the concatenated transmission matrices.
    let mut pooled = Vec::new();
    for line in report.tensors.iter().filter(|t| t.class == Class::Transmission) {
        pooled.extend(raw.iter().find(|t| t.name == line.name).unwrap().values());
    }
    assert_eq!(pooled.len(), 6 * (384 * 384 + 2 * 1536 * 384), "6 layers x (o + 2 ffn)");
    let oracle = oracle_fit(&pooled, 0.1, 0.9).unwrap();
    let ours = report.pooled.transmission.fits.mid80.unwrap();
    assert!((ours.k - oracle.k).abs() < 1e-4, "pooled {} vs {}", ours.k, oracle.k);
    assert_eq!(report.pooled.transmission.n_matrices, 18);
    assert_eq!(report.pooled.selection.n_matrices, 12);
    assert_eq!(report.pooled.value.n_matrices, 6);
    assert_eq!(report.pooled.other.n_matrices, 1, "pooler.dense");
    assert_eq!(report.pooled.all.n_matrices, 37, "every included matrix, pooler.dense too");
    assert_eq!(
        report.pooled.all.n,
        report.pooled.selection.n
            + report.pooled.value.n
            + report.pooled.transmission.n
            + report.pooled.other.n
    );

    // Pooling matrices of different scales lowers k below the per-matrix median.
    let q = report.kinds.iter().find(|k| k.kind == npmk::roles::Kind::Q).unwrap();
    assert_eq!(q.n_matrices, 6);
    let mut ks: Vec<f64> = (0..6)
        .map(|l| k_of(&report, &format!("encoder.layer.{l}.attention.self.query.weight")))
        .collect();
    ks.sort_by(f64::total_cmp);
    assert_eq!(q.median_k.mid80, Some(0.5 * (ks[2] + ks[3])));
    assert_eq!(q.dk_gaussian, Some(0.5 * (ks[2] + ks[3]) - npmk::GAUSSIAN_K));
}

#[test]
fn cli_json_csv_table_and_filters_on_the_fixture() {
    let path = fixture("minilm/model.safetensors");
    let run =
        npmk(["scan".as_ref(), path.as_os_str(), "--json".as_ref(), "-j".as_ref(), "2".as_ref()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 104, "every tensor of the file");
    for field in [
        "name",
        "dtype",
        "shape",
        "n",
        "n_zero",
        "n_nonfinite",
        "kind",
        "class",
        "layer",
        "fits",
        "skipped",
    ] {
        assert!(tensors.iter().all(|t| t.get(field).is_some()), "tensors lack {field}");
    }
    let q = tensors
        .iter()
        .find(|t| t["name"] == "encoder.layer.0.attention.self.query.weight")
        .unwrap();
    assert_eq!(
        (q["kind"].as_str(), q["class"].as_str(), q["layer"].as_u64()),
        (Some("q"), Some("selection"), Some(0))
    );
    for stat in ["k", "lambda", "r2", "ks", "n_used"] {
        assert!(q["fits"]["mid80"][stat].is_number(), "{stat}");
    }
    assert_eq!(v["kinds"]["ffn_out"]["n_matrices"], 6);
    assert!(v["kinds"]["q"]["median_k"]["mid90"].is_f64());
    for pool in ["transmission", "selection", "value", "other", "all"] {
        assert!(v["pooled"][pool]["fits"]["mid80"]["k"].is_f64(), "{pool}");
    }
    let pooler = tensors.iter().find(|t| t["name"] == "pooler.dense.weight").unwrap();
    assert_eq!((pooler["kind"].as_str(), pooler["class"].as_str()), (Some("other"), Some("other")));
    let ids = tensors.iter().find(|t| t["name"] == "embeddings.position_ids").unwrap();
    assert!(ids["skipped"].as_str().unwrap().contains("I64"));

    // CSV: a header and one row per tensor.
    let run = npmk([
        "scan".as_ref(),
        path.as_os_str(),
        "--csv".as_ref(),
        "--trim".as_ref(),
        "0.2,0.8".as_ref(),
    ]);
    assert_eq!(run.code, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 105);
    assert!(lines[0].starts_with("name,dtype,shape,n,n_zero,n_nonfinite,kind,class,layer"));
    assert!(lines[0].contains("k_custom"));
    let cols = lines[0].split(',').count();
    assert!(lines.iter().all(|l| l.split(',').count() == cols || l.contains('"')));

    // Filters: only layer 0's matrices are read; the rest are listed as skipped.
    let run = npmk([
        "scan".as_ref(),
        path.as_os_str(),
        "--json".as_ref(),
        "--include".as_ref(),
        r"layer\.0\.".as_ref(),
        "--exclude".as_ref(),
        "LayerNorm|bias".as_ref(),
    ]);
    assert_eq!(run.code, 0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let read: Vec<&str> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["skipped"].is_null())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(read.len(), 6, "{read:?}");
    assert!(read.iter().all(|n| n.starts_with("encoder.layer.0.") && n.ends_with(".weight")));
    assert_eq!(v["pooled"]["all"]["n_matrices"], 6);

    // The table: the three sections, the published value, and no progress bar off a terminal.
    let run = npmk(["scan".as_ref(), path.as_os_str()]);
    assert_eq!(run.code, 0);
    assert!(run.stderr.is_empty(), "stderr: {:?}", run.stderr);
    for section in ["Per tensor", "Per kind", "Pooled"] {
        assert!(run.stdout.contains(section), "{section}");
    }
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("encoder.layer.0.attention.self.query.weight"))
        .unwrap();
    assert!(line.contains("1.1847"), "{line}");
}
