//! The malformed-checkpoint corpus: every file is built here byte by byte, scanned with the
//! `npmk` binary, and must give exit status 2, one line on stderr naming the file (and the
//! tensor), and nothing on stdout. Valid edge cases must succeed.

mod st;
use st::*;
use std::path::Path;

/// Asserts the bad-input contract for `npmk scan <target>`; `file` is the path the message must
/// name, `tensor` the tensor, `says` a phrase of the rule that was broken.
fn rejects(target: &Path, file: &Path, tensor: Option<&str>, says: &str) {
    for format in [&[][..], &["--json"][..], &["--csv"][..]] {
        let mut args: Vec<&std::ffi::OsStr> = vec!["scan".as_ref(), target.as_os_str()];
        args.extend(format.iter().map(|s: &&str| std::ffi::OsStr::new(*s)));
        let run = npmk(&args);
        let err = run.stderr.trim_end();
        assert_eq!(run.code, 2, "{}: exit {} ({err})", target.display(), run.code);
        assert!(run.stdout.is_empty(), "{}: stdout {:?}", target.display(), run.stdout);
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        assert!(err.starts_with("npmk: "), "{err}");
        assert!(err.contains(&file.display().to_string()), "file not named: {err}");
        if let Some(t) = tensor {
            assert!(err.contains(&format!("tensor `{t}`")), "tensor not named: {err}");
        }
        assert!(err.contains(says), "expected {says:?} in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Writes one file and checks that scanning it is rejected.
fn bad_file(test: &str, bytes: &[u8], tensor: Option<&str>, says: &str) {
    let dir = scratch(test);
    let path = write(&dir, "model.safetensors", bytes);
    rejects(&path, &path, tensor, says);
}

fn w(name: &str, start: u64, end: u64) -> String {
    entry(name, "F32", &[(end - start) / 4], start, end)
}

#[test]
fn empty_file() {
    bad_file("empty", b"", None, "empty file");
}

#[test]
fn shorter_than_the_length_prefix() {
    bad_file("short", &[16, 0, 0], None, "shorter than the 8-byte header length");
}

#[test]
fn truncated_inside_the_data() {
    let full = file_bytes(&header(&[w("a", 0, 16), w("b", 16, 32)]), &[0u8; 32]);
    bad_file("truncated-data", &full[..full.len() - 5], Some("b"), "truncated");
}

#[test]
fn header_length_past_the_end() {
    let mut bytes = file_bytes("{}", b"");
    bytes[..8].copy_from_slice(&4096u64.to_le_bytes());
    bad_file("header-past-end", &bytes, None, "past the end");
}

#[test]
fn header_length_above_the_cap_is_refused_before_allocating() {
    for len in [100_000_001u64, 1 << 40, u64::MAX] {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0x80; 32]);
        bad_file("header-cap", &bytes, None, "100 MB cap");
    }
}

#[test]
fn header_not_json() {
    bad_file("not-json", &file_bytes("{\"a\": nope}", b""), None, "not a JSON object");
    bad_file("json-array", &file_bytes("[1, 2]", b""), None, "not a JSON object");
}

#[test]
fn header_not_utf8() {
    let mut bytes = file_bytes("{\"\u{e9}\":1}", b"");
    bytes[10] = 0xff;
    bad_file("not-utf8", &bytes, None, "not UTF-8");
}

#[test]
fn git_lfs_pointer_is_a_failed_download() {
    let pointer = "version https://git-lfs.github.com/spec/v1\n\
                   oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
                   size 90868376\n";
    bad_file("lfs", pointer.as_bytes(), None, "Git-LFS pointer (a failed download?");
}

#[test]
fn html_page_is_a_failed_download() {
    let page = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n";
    bad_file("html", page.as_bytes(), None, "HTML page (a failed download?");
    let page = "\n  <html><body>Access denied</body></html>";
    bad_file("html2", page.as_bytes(), None, "an HTML page");
}

#[test]
fn other_text_is_named_as_text() {
    let text = "Repository not found: please check the model name and try again.\n";
    bad_file("text", text.as_bytes(), None, "a text file");
}

#[test]
fn overlapping_offsets() {
    let h = header(&[w("a", 0, 16), w("b", 8, 24)]);
    bad_file("overlap", &file_bytes(&h, &[0; 24]), Some("b"), "overlaps tensor `a`");
}

#[test]
fn gapped_offsets() {
    let h = header(&[w("a", 0, 16), w("b", 20, 36)]);
    bad_file("gap", &file_bytes(&h, &[0; 36]), Some("b"), "belong to no tensor");
    let h = header(&[w("late", 4, 20)]);
    bad_file("gap-first", &file_bytes(&h, &[0; 20]), Some("late"), "gap in offsets");
}

#[test]
fn out_of_range_offsets() {
    let h = header(&[w("a", 0, 16), entry("big", "F32", &[250], 16, 1016)]);
    bad_file(
        "out-of-range",
        &file_bytes(&h, &[0; 32]),
        Some("big"),
        "past the 32-byte data section",
    );
    let h = header(&[entry("rev", "F32", &[0], 16, 0)]);
    bad_file("reversed", &file_bytes(&h, &[0; 16]), Some("rev"), "end before they start");
}

#[test]
fn shape_products_that_overflow() {
    let h = header(&[entry("huge", "F32", &[1 << 32, 1 << 32], 0, 16)]);
    bad_file("overflow", &file_bytes(&h, &[0; 16]), Some("huge"), "overflows");
    let h = header(&[entry("huge", "F32", &[1 << 62], 0, 16)]);
    bad_file("overflow-bytes", &file_bytes(&h, &[0; 16]), Some("huge"), "overflows");
}

#[test]
fn size_mismatch() {
    let h = header(&[entry("m", "F32", &[2, 2], 0, 8)]);
    bad_file("size", &file_bytes(&h, &[0; 8]), Some("m"), "need 16");
}

#[test]
fn duplicate_names() {
    let h = header(&[w("twice", 0, 16), w("twice", 16, 32)]);
    bad_file("dup", &file_bytes(&h, &[0; 32]), Some("twice"), "appears twice");
}

#[test]
fn trailing_bytes() {
    let h = header(&[w("a", 0, 16)]);
    bad_file("trailing", &file_bytes(&h, &[0; 19]), None, "3 trailing bytes");
}

#[test]
fn unknown_dtype() {
    let h = header(&[entry("q", "F7", &[4], 0, 16)]);
    bad_file("dtype", &file_bytes(&h, &[0; 16]), Some("q"), "unknown dtype `F7`");
}

#[test]
fn malformed_entries_and_metadata() {
    let h = r#"{"a":{"dtype":"F32","data_offsets":[0,16]}}"#;
    bad_file("no-shape", &file_bytes(h, &[0; 16]), Some("a"), "`shape`");
    let h = r#"{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#;
    bad_file("neg-shape", &file_bytes(h, &[0; 16]), Some("a"), "`shape`");
    let h = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}}"#;
    bad_file("one-offset", &file_bytes(h, &[0; 16]), Some("a"), "`data_offsets`");
    let h = r#"{"a":[1,2]}"#;
    bad_file("not-object", &file_bytes(h, b""), Some("a"), "not an object");
    let h = r#"{"__metadata__":{"format":3}}"#;
    bad_file("metadata", &file_bytes(h, b""), None, "__metadata__");
}

#[test]
fn control_characters_in_names_stay_on_one_line() {
    let h = header(&[w("a\\nb", 0, 16), w("a\\nb", 16, 32)]);
    bad_file("newline-name", &file_bytes(&h, &[0; 32]), Some("a\\nb"), "appears twice");
}

/// A small valid shard holding `names`, 4 f32 each.
fn shard(names: &[&str]) -> Vec<u8> {
    let entries: Vec<String> =
        names.iter().enumerate().map(|(i, n)| w(n, 16 * i as u64, 16 * (i as u64 + 1))).collect();
    file_bytes(&header(&entries), &vec![0u8; 16 * names.len()])
}

fn index(map: &[(&str, &str)]) -> Vec<u8> {
    let pairs: Vec<String> = map.iter().map(|(t, s)| format!("\"{t}\": \"{s}\"")).collect();
    format!("{{\"metadata\": {{}}, \"weight_map\": {{{}}}}}", pairs.join(", ")).into_bytes()
}

const INDEX: &str = "model.safetensors.index.json";

#[test]
fn sharded_missing_shard() {
    let dir = scratch("shard-missing");
    write(&dir, "a.safetensors", &shard(&["x"]));
    let idx = write(&dir, INDEX, &index(&[("x", "a.safetensors"), ("y", "b.safetensors")]));
    rejects(&dir, &idx, None, "shard `b.safetensors` is missing");
    rejects(&idx, &idx, None, "is missing");
}

#[test]
fn sharded_tensor_absent_from_its_shard() {
    let dir = scratch("shard-absent");
    write(&dir, "a.safetensors", &shard(&["x"]));
    let idx = write(&dir, INDEX, &index(&[("x", "a.safetensors"), ("y", "a.safetensors")]));
    rejects(&dir, &idx, Some("y"), "absent from shard `a.safetensors`");
}

#[test]
fn sharded_tensor_absent_from_the_index() {
    let dir = scratch("shard-unlisted");
    let a = write(&dir, "a.safetensors", &shard(&["x", "extra"]));
    write(&dir, INDEX, &index(&[("x", "a.safetensors")]));
    rejects(&dir, &a, Some("extra"), "not mapped to it by the index");
    // A tensor in a shard the index maps to another shard.
    let dir = scratch("shard-elsewhere");
    write(&dir, "a.safetensors", &shard(&["x"]));
    let b = write(&dir, "b.safetensors", &shard(&["y", "x"]));
    write(&dir, INDEX, &index(&[("x", "a.safetensors"), ("y", "b.safetensors")]));
    rejects(&dir, &b, Some("x"), "not mapped to it");
}

#[test]
fn sharded_paths_escaping_the_directory() {
    let dir = scratch("shard-escape");
    write(&dir, "outside.safetensors", &shard(&["x"]));
    let inner = dir.join("ckpt");
    for evil in ["../outside.safetensors", "/etc/passwd", "sub/../../outside.safetensors"] {
        let idx = write(&inner, INDEX, &index(&[("x", evil)]));
        rejects(&inner, &idx, Some("x"), "leaves the checkpoint directory");
    }
}

#[test]
fn sharded_bad_shard_is_named() {
    let dir = scratch("shard-bad");
    write(&dir, "a.safetensors", &shard(&["x"]));
    let b = write(&dir, "b.safetensors", b"version https://git-lfs.github.com/spec/v1\n");
    write(&dir, INDEX, &index(&[("x", "a.safetensors"), ("y", "b.safetensors")]));
    rejects(&dir, &b, None, "Git-LFS pointer");
}

#[test]
fn malformed_indexes() {
    let dir = scratch("index-json");
    let idx = write(&dir, INDEX, b"{\"weight_map\": ");
    rejects(&idx, &idx, None, "sharded index is not a JSON object");
    let idx = write(&dir, INDEX, b"{\"metadata\": {}}");
    rejects(&idx, &idx, None, "no `weight_map`");
    let idx = write(&dir, INDEX, b"{\"weight_map\": {\"x\": 3}}");
    rejects(&idx, &idx, Some("x"), "not a file name");
    let idx = write(&dir, INDEX, b"{\"weight_map\": {\"x\": \"a\", \"x\": \"b\"}}");
    rejects(&idx, &idx, Some("x"), "appears twice");
}

#[test]
fn directories_without_one_checkpoint() {
    let dir = scratch("dir-empty");
    write(&dir, "README.md", b"# nothing here\n");
    rejects(&dir, &dir, None, "no .safetensors file or index");
    let run = npmk(["scan".as_ref(), dir.as_os_str()]);
    assert!(run.stderr.contains("use npmk trajectory"), "a run directory hint: {}", run.stderr);
    let dir = scratch("dir-two");
    write(&dir, "a.safetensors", &shard(&["x"]));
    write(&dir, "b.safetensors", &shard(&["y"]));
    rejects(&dir, &dir, None, "2 .safetensors files and no index");
}

#[test]
fn missing_path() {
    let path = scratch("missing").join("nope.safetensors");
    rejects(&path, &path, None, "No such file");
}

// Valid edge cases.

fn scan_json(test: &str, bytes: &[u8]) -> serde_json::Value {
    let dir = scratch(test);
    let path = write(&dir, "model.safetensors", bytes);
    let run = npmk(["scan".as_ref(), path.as_os_str(), "--json".as_ref()]);
    assert_eq!(run.code, 0, "{test}: {}", run.stderr);
    assert!(run.stderr.is_empty(), "{test}: stderr {:?}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn tensor<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["tensors"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()
}

/// 1000 distinct, deterministic values around 0.02.
fn values() -> Vec<f32> {
    (1..=1000).map(|i| 0.02 * ((i as f32) * 0.618).sin()).collect()
}

#[test]
fn empty_header_is_a_valid_empty_checkpoint() {
    let report = scan_json("empty-header", &file_bytes("{}", b""));
    assert_eq!(report["tensors"].as_array().unwrap().len(), 0);
    assert!(report["pooled"]["all"]["fits"]["mid80"].is_null());
    let report = scan_json("meta-only", &file_bytes(r#"{"__metadata__":{"format":"pt"}}   "#, b""));
    assert_eq!(report["tensors"].as_array().unwrap().len(), 0);
}

#[test]
fn zero_size_tensors_and_scalars() {
    let h = header(&[
        entry("empty", "F32", &[0, 4], 0, 0),
        entry("scalar", "F32", &[], 0, 4),
        entry("also_empty", "BF16", &[3, 0], 4, 4),
    ]);
    let report = scan_json("zero-size", &file_bytes(&h, &f32_bytes(&[1.5])));
    let empty = tensor(&report, "empty");
    assert_eq!(empty["n"], 0);
    assert!(empty["fits"]["mid80"].is_null());
    assert!(empty["no_fit"]["mid80"].as_str().unwrap().contains("0 finite non-zero"));
    let scalar = tensor(&report, "scalar");
    assert_eq!((scalar["n"].as_u64(), scalar["class"].as_str()), (Some(1), Some("excluded")));
    assert_eq!(scalar["shape"].as_array().unwrap().len(), 0);
}

#[test]
fn odd_header_length_puts_data_at_any_alignment() {
    let v = values();
    let mut ks = Vec::new();
    for pad in 0..8 {
        let h = format!("{}{}", header(&[entry("w", "F32", &[10, 100], 0, 4000)]), " ".repeat(pad));
        let report = scan_json(&format!("align-{pad}"), &file_bytes(&h, &f32_bytes(&v)));
        ks.push(tensor(&report, "w")["fits"]["mid80"]["k"].as_f64().unwrap());
    }
    assert!(ks.iter().all(|&k| k == ks[0]), "{ks:?}");
    assert!(ks[0] > 0.5 && ks[0] < 2.0);
}

#[test]
fn all_zero_tensor_has_no_fit_and_says_why() {
    let h = header(&[entry("zeros", "F32", &[20, 10], 0, 800)]);
    let bytes = file_bytes(&h, &[0u8; 800]);
    let report = scan_json("zeros", &bytes);
    let t = tensor(&report, "zeros");
    assert_eq!(t["n_zero"], 200);
    assert!(t["fits"]["mid80"].is_null() && t["fits"]["full"].is_null());
    assert!(t["no_fit"]["mid80"].as_str().unwrap().contains("fewer than the 100"));
    assert!(t["skipped"].is_null());
    // The table shows the reason too.
    let dir = scratch("zeros-table");
    let path = write(&dir, "model.safetensors", &bytes);
    let run = npmk(["scan".as_ref(), path.as_os_str()]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("no fit (mid80): 0 finite non-zero elements"), "{}", run.stdout);
}

#[test]
fn nan_and_inf_are_counted_and_reported() {
    let mut v = values();
    v[3] = f32::NAN;
    v[10] = f32::INFINITY;
    v[11] = f32::NEG_INFINITY;
    v[12] = 0.0;
    v[13] = -0.0;
    let h = header(&[entry("w", "F32", &[1000], 0, 4000)]);
    let report = scan_json("nonfinite", &file_bytes(&h, &f32_bytes(&v)));
    let t = tensor(&report, "w");
    assert_eq!((t["n_nan"].as_u64(), t["n_inf"].as_u64()), (Some(1), Some(2)));
    assert_eq!((t["n_nonfinite"].as_u64(), t["n_zero"].as_u64()), (Some(3), Some(2)));
    assert_eq!(t["fits"]["full"]["n_used"], 995);
}

#[test]
fn other_dtypes_are_listed_as_skipped_with_the_reason() {
    let h = header(&[
        entry("ids", "I64", &[2], 0, 16),
        entry("mask", "BOOL", &[4], 16, 20),
        entry("fp8", "F8_E4M3", &[4], 20, 24),
        entry("wide", "F64", &[2], 24, 40),
    ]);
    let report = scan_json("skipped", &file_bytes(&h, &[1u8; 40]));
    for (name, dtype) in [("ids", "I64"), ("mask", "BOOL"), ("fp8", "F8_E4M3"), ("wide", "F64")] {
        let t = tensor(&report, name);
        let why = t["skipped"].as_str().unwrap();
        assert!(why.contains(dtype) && why.contains("not fitted"), "{name}: {why}");
        assert!(t["n_zero"].is_null() && t["fits"]["mid80"].is_null());
    }
}

#[test]
fn f16_and_bf16_tensors_are_read() {
    let v = values();
    let f16: Vec<u8> = v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
    let bf16: Vec<u8> = v.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
    let h = header(&[entry("a", "F16", &[1000], 0, 2000), entry("b", "BF16", &[1000], 2000, 4000)]);
    let report = scan_json("halves", &file_bytes(&h, &[f16, bf16].concat()));
    for name in ["a", "b"] {
        let k = tensor(&report, name)["fits"]["mid80"]["k"].as_f64().unwrap();
        assert!(k > 0.5 && k < 2.0, "{name}: {k}");
    }
}

#[test]
fn usage_errors_exit_64_and_help_lists_exit_codes() {
    let dir = scratch("usage");
    let path = write(&dir, "model.safetensors", &file_bytes("{}", b""));
    for bad in
        [&["--trim", "0.9,0.1"][..], &["--trim", "x"], &["--include", "("], &["--json", "--csv"]]
    {
        let mut args: Vec<&std::ffi::OsStr> = vec!["scan".as_ref(), path.as_os_str()];
        args.extend(bad.iter().map(|s: &&str| std::ffi::OsStr::new(*s)));
        let run = npmk(&args);
        assert_eq!(run.code, 64, "{bad:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    let help = npmk(["scan", "--help"]);
    assert_eq!(help.code, 0);
    for line in ["0   success", "1   internal error", "2   bad input", "64  bad command-line"] {
        assert!(help.stdout.contains(line), "--help lacks {line:?}");
    }
}

#[test]
fn header_lengths_that_look_like_text_are_still_read() {
    // The first length byte is '<' (0x13C), ' ' (0x120) or '\n' (0x10A): all valid files.
    for len in [0x13C_usize, 0x120, 0x10A] {
        let base = header(&[entry("w", "F32", &[1000], 0, 4000)]);
        let h = format!("{base}{}", " ".repeat(len - base.len()));
        let bytes = file_bytes(&h, &f32_bytes(&values()));
        assert_eq!(bytes[0] as usize, len & 0xFF);
        let report = scan_json(&format!("text-like-{len}"), &bytes);
        assert!(tensor(&report, "w")["fits"]["mid80"]["k"].is_f64(), "length {len}");
    }
}

#[test]
fn odd_names_and_empty_filters_are_reported_plainly() {
    // A newline in a tensor name must not break the table's rows.
    let dir = scratch("odd-names");
    let h = header(&[entry("layer\\nweight", "F32", &[1000], 0, 4000)]);
    let path = write(&dir, "model.safetensors", &file_bytes(&h, &f32_bytes(&values())));
    let run = npmk(["scan".as_ref(), path.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = run.stdout.lines().find(|l| l.starts_with("layer")).expect("the tensor's row");
    assert!(row.starts_with("layer\\nweight") && row.contains("F32"), "{row}");

    // A filter that matches nothing still succeeds, but says so.
    let run = npmk(["scan".as_ref(), path.as_os_str(), "--include".as_ref(), "nomatch".as_ref()]);
    assert_eq!(run.code, 0);
    assert!(run.stderr.contains("left no tensor to read"), "{}", run.stderr);
}
