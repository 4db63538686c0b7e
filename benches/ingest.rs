//! Single-core ingestion throughput per dtype, beside the memory ceiling.
//!
//! For each dtype, N(0, 0.02) weights are pushed into a sketch from a cache-resident buffer
//! (1 MiB) and from one far larger than the last-level cache (1 GiB by default; set
//! `NPMK_BENCH_LARGE_MIB` to change it). In the same run, `read` sums the same bytes as u64
//! words with SIMD: the rate at which this core can stream them at all. The fit is timed too.
//! `scripts/bench-table.py` turns criterion's estimates into the README's table.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use npmk::{Dtype, Path, Sketch, Trim};
use std::hint::black_box;

/// Little-endian bytes of `bytes / dtype.size()` N(0, 0.02) weights, from a fixed seed.
fn gaussian_bytes(dtype: Dtype, bytes: usize) -> Vec<u8> {
    let mut state = 0x5EED_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(bytes);
    while out.len() + 8 <= bytes {
        // Box-Muller: two Gaussians per pair of uniforms.
        let (u, v) = (next().max(1e-300), next());
        let r = (-2.0 * u.ln()).sqrt() * 0.02;
        for g in
            [r * (2.0 * std::f64::consts::PI * v).cos(), r * (2.0 * std::f64::consts::PI * v).sin()]
        {
            match dtype {
                Dtype::F32 => out.extend_from_slice(&(g as f32).to_le_bytes()),
                Dtype::F16 => out.extend_from_slice(&half::f16::from_f64(g).to_le_bytes()),
                Dtype::BF16 => out.extend_from_slice(&half::bf16::from_f64(g).to_le_bytes()),
            }
        }
    }
    out.truncate(bytes - bytes % 8);
    out
}

/// The memory ceiling: a SIMD-friendly sum of the buffer as u64 words.
fn plain_read(bytes: &[u8]) -> u64 {
    // SAFETY: u64 has no invalid bit patterns; align_to yields an aligned middle part.
    let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
    let mut lanes = [0u64; 8];
    for chunk in words.chunks_exact(8) {
        for (acc, w) in lanes.iter_mut().zip(chunk) {
            *acc = acc.wrapping_add(*w);
        }
    }
    let rest = words.chunks_exact(8).remainder().iter().fold(0u64, |a, w| a.wrapping_add(*w));
    lanes.iter().fold(rest, |a, w| a.wrapping_add(*w)) + head.len() as u64 + tail.len() as u64
}

fn sizes() -> Vec<(&'static str, usize)> {
    let large_mib: usize =
        std::env::var("NPMK_BENCH_LARGE_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    vec![("1MiB", 1 << 20), ("large", large_mib << 20)]
}

fn ingest(c: &mut Criterion) {
    eprintln!("npmk SIMD level: {}", npmk::simd_level());
    for (label, bytes) in sizes() {
        let mut group = c.benchmark_group(format!("ingest/{label}"));
        group.sample_size(if bytes > (64 << 20) { 10 } else { 50 });
        for dtype in [Dtype::BF16, Dtype::F16, Dtype::F32] {
            let data = gaussian_bytes(dtype, bytes);
            group.throughput(Throughput::Bytes(data.len() as u64));
            group.bench_with_input(BenchmarkId::new("read", dtype.name()), &data, |b, d| {
                b.iter(|| black_box(plain_read(black_box(d))))
            });
            let mut sketch = Sketch::new_boxed();
            for (name, path) in [("simd", Path::Simd), ("scalar", Path::Scalar)] {
                group.bench_with_input(BenchmarkId::new(name, dtype.name()), &data, |b, d| {
                    // Counts only accumulate: clearing 512 KiB per iteration would be timed.
                    b.iter(|| sketch.push_le_bytes_on(dtype, black_box(d), path).unwrap())
                });
            }
        }
        group.finish();
    }
}

fn fit(c: &mut Criterion) {
    let mut group = c.benchmark_group("fit");
    for dtype in [Dtype::BF16, Dtype::F32] {
        let mut sketch = Sketch::new_boxed();
        sketch.push_le_bytes(dtype, &gaussian_bytes(dtype, 64 << 20)).unwrap();
        for (name, trim) in [("mid80", Trim::MID80), ("full", Trim::FULL)] {
            group.bench_function(BenchmarkId::new(name, dtype.name()), |b| {
                b.iter(|| black_box(sketch.fit(black_box(trim)).unwrap()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, ingest, fit);
criterion_main!(benches);
