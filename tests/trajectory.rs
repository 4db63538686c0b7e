//! `npmk trajectory` end to end: the published Pythia-70M trajectory, synthetic runs, bad
//! input, checkpoint directories, and the SVG plot rendered by a real browser.

mod common;
mod st;
use common::SplitMix;
use serde_json::Value;
use st::*;
use std::path::{Path, PathBuf};

/// METHOD.md's reference trajectory (`../shared/reference`), as a monitor-style JSONL.
fn pythia_log(dir: &Path) -> PathBuf {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/pythia70m_pooled_transmission_k_by_step.json");
    let text = std::fs::read_to_string(&reference)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared reference data)", reference.display()));
    let map: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let lines: String =
        map.iter().map(|(step, k)| format!("{{\"step\":{step},\"k\":{k}}}\n")).collect();
    write(dir, "pythia.jsonl", lines.as_bytes())
}

fn json_of(args: &[&std::ffi::OsStr]) -> Value {
    let run = npmk(args);
    assert_eq!(run.code, 0, "npmk failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON on stdout")
}

fn phase(v: &Value, name: &str) -> Option<(u64, u64)> {
    v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| (p["start_step"].as_u64().unwrap(), p["end_step"].as_u64().unwrap()))
}

#[test]
fn pythia_reference_trajectory() {
    let dir = scratch("trajectory-pythia");
    let log = pythia_log(&dir);
    let v = json_of(&["trajectory".as_ref(), log.as_os_str(), "--json".as_ref()]);

    let (p1_start, _) = phase(&v, "P1").expect("a P1");
    assert!((1000..=2000).contains(&p1_start), "P1 starts at {p1_start}");
    assert_eq!(v["extremum"]["kind"], "max");
    assert_eq!(v["extremum"]["step"], 5000);
    assert!((v["extremum"]["k"].as_f64().unwrap() - 1.19292).abs() < 1e-5);
    assert_eq!(v["t_set"], 50000);
    let at_2000 = v["points"].as_array().unwrap().iter().find(|p| p["step"] == 2000).unwrap();
    // Central difference on u = log10(step) with u = 3, 3.30103, 3.47712 around step 2000.
    assert!((at_2000["dk"].as_f64().unwrap() - 0.0846).abs() < 1e-4, "{at_2000}");
    assert!(at_2000["d2k"].is_number());
}

#[test]
fn table_csv_and_plot() {
    let dir = scratch("trajectory-outputs");
    let log = pythia_log(&dir);
    let svg = dir.join("k.svg");
    let run = npmk(["trajectory".as_ref(), log.as_os_str(), "--plot".as_ref(), svg.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("extremum: max k = 1.19292 at step 5000"), "{}", run.stdout);
    assert!(run.stdout.contains("t_set: 50000"));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("P1") && text.contains("NPM-dk"));

    let run = npmk(["trajectory".as_ref(), log.as_os_str(), "--csv".as_ref()]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout.lines().next(), Some("series,step,k,dk,d2k"));
    assert_eq!(run.stdout.lines().count(), 1 + 23);
}

/// The plot must render in a real browser: headless Chromium takes a screenshot, and the
/// screenshot must hold the phase shading and the lines (many distinct colours), not a blank
/// page. Chromium is installed by scripts/install-deps.sh; without it this test fails.
#[test]
fn plot_renders_in_a_browser() {
    let dir = scratch("trajectory-browser");
    let log = pythia_log(&dir);
    let svg = dir.join("k.svg");
    let run = npmk(["trajectory".as_ref(), log.as_os_str(), "--plot".as_ref(), svg.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let png = dir.join("k.png");
    let profile = dir.join("chromium-profile");
    let status = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", svg.display()))
        .output()
        .expect("chromium must be installed (bash scripts/install-deps.sh)");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let colours = png_colour_count(&png);
    assert!(colours > 50, "the screenshot has only {colours} colours: blank?");
}

/// Distinct colours in a PNG, decoded by Python's standard library (zlib) to stay independent
/// of any Rust image crate.
fn png_colour_count(png: &Path) -> usize {
    let script = r#"
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, chunks, width, height, ctype = 8, b'', 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        width, height, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        chunks += body
    pos += 12 + n
raw = zlib.decompress(chunks)
bpp = {2: 3, 6: 4}[ctype]
stride = width * bpp
colours, prev, i = set(), bytearray(stride), 0
for y in range(height):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    for x in range(0, stride, bpp * 7):
        colours.add(bytes(line[x:x + 3]))
print(len(colours))
"#;
    let out =
        std::process::Command::new("python3").arg("-c").arg(script).arg(png).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A synthetic run: flat, then a rise from `onset`, a maximum at `peak`, a settle at `settle`.
fn synthetic(
    steps: &[u64],
    onset: u64,
    peak: u64,
    settle: u64,
    noise: f64,
    seed: u64,
) -> Vec<(u64, f64)> {
    let mut rng = SplitMix(seed);
    let (u_on, u_peak, u_set) =
        ((onset as f64).log10(), (peak as f64).log10(), (settle as f64).log10());
    steps
        .iter()
        .map(|&s| {
            let u = (s as f64).log10();
            let k = if u <= u_on {
                1.15
            } else if u <= u_peak {
                1.15 + 0.045 * (u - u_on) / (u_peak - u_on)
            } else if u <= u_set {
                1.195 - 0.035 * (u - u_peak) / (u_set - u_peak)
            } else {
                1.16
            };
            (s, k + noise * rng.gaussian())
        })
        .collect()
}

fn log_of(dir: &Path, name: &str, points: &[(u64, f64)]) -> PathBuf {
    let lines: String =
        points.iter().map(|(s, k)| format!("{{\"step\":{s},\"k\":{k}}}\n")).collect();
    write(dir, name, lines.as_bytes())
}

#[test]
fn synthetic_runs_recover_their_boundaries() {
    let dir = scratch("trajectory-synthetic");
    let steps: Vec<u64> = (0..=9).map(|e| 1u64 << e).chain((1..=40).map(|i| i * 2000)).collect();
    // Noise of a 16.7M-element pool: sd 1.3/sqrt(n).
    let noise = 1.3 / (16_777_216f64).sqrt();
    // t_set is where the noiseless k enters the delta band around its final value for good.
    let clean = synthetic(&steps, 1024, 8000, 40000, 0.0, 0);
    let band = |k: f64| (k - 1.16).abs() <= npmk::dynamics::DEFAULT_DELTA;
    let entry = clean.iter().rposition(|&(_, k)| !band(k)).map_or(0, |i| i + 1);
    let expected_t_set = clean[entry].0;
    for seed in 0..5 {
        let points = synthetic(&steps, 1024, 8000, 40000, noise, seed);
        let log = log_of(&dir, &format!("run{seed}.jsonl"), &points);
        let v = json_of(&[
            "trajectory".as_ref(),
            log.as_os_str(),
            "--json".as_ref(),
            "--per-decade".as_ref(),
            "0".as_ref(),
        ]);
        let (p1, _) = phase(&v, "P1").expect("P1");
        assert!((512..=2000).contains(&p1), "seed {seed}: P1 at {p1}");
        assert_eq!(v["extremum"]["step"], 8000, "seed {seed}");
        let t_set = v["t_set"].as_u64().unwrap();
        // Within one checkpoint (2000 steps) of the noiseless boundary.
        assert!(
            t_set.abs_diff(expected_t_set) <= 2000,
            "seed {seed}: t_set {t_set}, want {expected_t_set}"
        );
        // Thinned to the default 10 points per decade, the boundaries stay put, to within the
        // coarser spacing.
        let thinned = json_of(&["trajectory".as_ref(), log.as_os_str(), "--json".as_ref()]);
        assert_eq!(thinned["extremum"]["step"], 8000, "seed {seed}");
        let t = thinned["t_set"].as_u64().unwrap();
        assert!(t.abs_diff(expected_t_set) <= 8000, "seed {seed}: thinned t_set {t}");
        assert!(thinned["notes"][0].as_str().unwrap().contains("thinned"));
    }
}

#[test]
fn flat_short_unsorted_and_duplicate_inputs() {
    let dir = scratch("trajectory-edge-cases");
    // Flat: no P1.
    let flat: Vec<(u64, f64)> = (0..12).map(|e| (1u64 << e, 1.2)).collect();
    let v = json_of(&[
        "trajectory".as_ref(),
        log_of(&dir, "flat.jsonl", &flat).as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(phase(&v, "P1").is_none(), "{}", v["phases"]);
    assert!(v["extremum"].is_null());

    // Fewer than three points: a clear message, exit 2.
    let short = log_of(&dir, "short.jsonl", &[(1, 1.2), (2, 1.21)]);
    let run = npmk(["trajectory".as_ref(), short.as_os_str()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("short.jsonl") && run.stderr.contains('3'), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // Unsorted steps are sorted: same answer as the sorted log.
    let mut points =
        synthetic(&[1, 10, 100, 1000, 3000, 10000, 30000, 100000], 100, 3000, 30000, 0.0, 1);
    let sorted = json_of(&[
        "trajectory".as_ref(),
        log_of(&dir, "sorted.jsonl", &points).as_os_str(),
        "--json".as_ref(),
    ]);
    points.reverse();
    let shuffled = json_of(&[
        "trajectory".as_ref(),
        log_of(&dir, "reversed.jsonl", &points).as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(sorted["points"], shuffled["points"]);

    // A duplicated step is an error naming it.
    let dup = log_of(&dir, "dup.jsonl", &[(1, 1.2), (10, 1.21), (10, 1.22), (100, 1.2)]);
    let run = npmk(["trajectory".as_ref(), dup.as_os_str()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("step 10 appears more than once"), "{}", run.stderr);

    // Step 0, steps without a fit and a last line cut short are left out, and said so.
    let mut text = String::from("{\"step\":0,\"k\":1.2}\n{\"step\":5,\"k\":null}\n");
    for (s, k) in [(1, 1.2), (10, 1.21), (100, 1.22), (1000, 1.2)] {
        text.push_str(&format!("{{\"step\":{s},\"k\":{k}}}\n"));
    }
    text.push_str("{\"step\":2000,\"k\":1.2");
    let messy = write(&dir, "messy.jsonl", text.as_bytes());
    let run = npmk(["trajectory".as_ref(), messy.as_os_str(), "--json".as_ref()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["points"].as_array().unwrap().len(), 4);
    let notes = v["notes"].to_string();
    assert!(notes.contains("step 0") && notes.contains("1 steps without a fit"), "{notes}");
    assert!(notes.contains("line 7 is cut short"), "{notes}");
    assert!(run.stderr.contains("note: step 0"), "{}", run.stderr);

    // A missing log is said to be missing; a log comes alone.
    let missing = dir.join("nothing-here.jsonl");
    let run = npmk(["trajectory".as_ref(), missing.as_os_str()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("nothing-here.jsonl") && run.stderr.contains("No such file"),
        "{}",
        run.stderr
    );
    let run = npmk(["trajectory".as_ref(), messy.as_os_str(), messy.as_os_str()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("either one monitor log"), "{}", run.stderr);

    // A line that is not JSON names the file and line.
    let bad = write(&dir, "bad.jsonl", b"{\"step\":1,\"k\":1.2}\nnot json\n");
    let run = npmk(["trajectory".as_ref(), bad.as_os_str()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("bad.jsonl: line 2"), "{}", run.stderr);
}

/// One tiny checkpoint: two 64x64 layers with a step-dependent scale mix.
fn checkpoint_bytes(step: u64) -> Vec<u8> {
    let mut rng = SplitMix(step);
    let mut tensors = Vec::new();
    for name in ["model.layers.0.mlp.up_proj.weight", "model.layers.0.self_attn.q_proj.weight"] {
        let values: Vec<f32> = (0..64 * 64)
            .map(|i| {
                let heavy = (i as u64 % 97) < (step as f64).log10() as u64 * 3;
                (rng.gaussian() * if heavy { 0.05 } else { 0.02 }) as f32
            })
            .collect();
        tensors.push((name, f32_bytes(&values)));
    }
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (name, bytes) in &tensors {
        let start = data.len() as u64;
        data.extend_from_slice(bytes);
        entries.push(entry(name, "F32", &[64, 64], start, data.len() as u64));
    }
    file_bytes(&header(&entries), &data)
}

#[test]
fn checkpoint_directories_give_the_scanned_k() {
    let dir = scratch("trajectory-checkpoints");
    let steps = [1u64, 10, 100, 1000, 10000];
    let run_dir = dir.join("run");
    for (i, &step) in steps.iter().enumerate() {
        // Mixed layouts: step folders and step-named files.
        let name = if i % 2 == 0 {
            format!("checkpoint-{step}/model.safetensors")
        } else {
            format!("model-step{step}.safetensors")
        };
        write(&run_dir, &name, &checkpoint_bytes(step));
    }
    write(&run_dir, "notes.txt", b"not a checkpoint");
    let v = json_of(&["trajectory".as_ref(), run_dir.as_os_str(), "--json".as_ref()]);
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), steps.len());
    for (p, &step) in points.iter().zip(&steps) {
        assert_eq!(p["step"], step);
        let path = if step == 1 || step == 100 || step == 10000 {
            run_dir.join(format!("checkpoint-{step}"))
        } else {
            run_dir.join(format!("model-step{step}.safetensors"))
        };
        let scan = json_of(&["scan".as_ref(), path.as_os_str(), "--json".as_ref()]);
        let k = scan["pooled"]["all"]["fits"]["mid80"]["k"].as_f64().unwrap();
        assert_eq!(p["k"].as_f64().unwrap(), k, "step {step}");
    }
    assert!(v["series"]["selection"]["points"].as_array().unwrap().len() == steps.len());

    // Two checkpoints with the same step: an error naming both.
    write(&run_dir, "step1000/model.safetensors", &checkpoint_bytes(1000));
    let run = npmk(["trajectory".as_ref(), run_dir.as_os_str()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("step 1000 appears twice"), "{}", run.stderr);

    // A custom layout needs --step-regex.
    let custom = dir.join("custom");
    for step in [5u64, 50, 500] {
        write(&custom, &format!("epoch={step}.safetensors"), &checkpoint_bytes(step));
    }
    let run = npmk(["trajectory".as_ref(), custom.as_os_str()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let v = json_of(&[
        "trajectory".as_ref(),
        custom.as_os_str(),
        "--step-regex".as_ref(),
        r"epoch=(\d+)".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(v["points"].as_array().unwrap().len(), 3);
}
