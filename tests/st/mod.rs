//! Test helpers for checkpoint files: hand-built safetensors bytes, a scratch directory, the
//! `npmk` binary, and an independent little reader for the fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A safetensors file: 8-byte length, the header text as given, then the data.
pub fn file_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// One header entry.
pub fn entry(name: &str, dtype: &str, shape: &[u64], start: u64, end: u64) -> String {
    format!(
        r#""{name}":{{"dtype":"{dtype}","shape":{},"data_offsets":[{start},{end}]}}"#,
        serde_json::to_string(shape).unwrap()
    )
}

/// A header object from entries.
pub fn header(entries: &[String]) -> String {
    format!("{{{}}}", entries.join(","))
}

/// f32 values as little-endian bytes.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npmk-tests").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What a run of `npmk` produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `npmk` with arguments.
pub fn npmk<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_npmk")).args(args).output().unwrap();
    Run {
        code: out.status.code().expect("npmk was killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The fixture at `fixtures/<rel>`; fails the test (never skips) when it is missing.
pub fn fixture(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel);
    assert!(
        path.exists(),
        "fixture {} is missing: run scripts/fetch-fixtures.sh first",
        path.display()
    );
    path
}

/// A tensor read by the test's own reader.
pub struct RawTensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

impl RawTensor {
    /// Values as f64 (F32 and BF16 only).
    pub fn values(&self) -> Vec<f64> {
        match self.dtype.as_str() {
            "F32" => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            "BF16" => self
                .data
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) as f64)
                .collect(),
            other => panic!("no values for dtype {other}"),
        }
    }
}

/// Reads a safetensors file without npmk: header by serde_json, data by offsets.
pub fn read_raw(path: &Path) -> Vec<RawTensor> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out = Vec::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let offsets: Vec<usize> = info["data_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        out.push(RawTensor {
            name,
            dtype: info["dtype"].as_str().unwrap().to_string(),
            shape: info["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect(),
            data: data[offsets[0]..offsets[1]].to_vec(),
        });
    }
    out
}
