//! # npmk: the weight skeleton of neural networks
//!
//! npmk measures the Weibull shape parameter k of the weight-magnitude distribution |w| of
//! neural-network matrices (the NPM-k method): per matrix, per kind of matrix and pooled, at one
//! checkpoint or at every training step.
//!
//! The core is a [`Sketch`]: a fixed 512 KiB histogram of |w| that ingests bf16, f16 and f32
//! weights in one SIMD pass, merges by adding counts, and yields the probability-plot estimate
//! of k ([`Sketch::fit`]) in time proportional to its occupied bins. For bf16 data it is exact.
//!
//! ```
//! use npmk::{Sketch, Trim};
//!
//! let mut sketch = Sketch::new_boxed();
//! let weights: Vec<f32> = (1..=10_000).map(|i| (i as f32 * 0.618).sin() * 0.02).collect();
//! sketch.push_f32(&weights);
//! let fit = sketch.fit(Trim::MID80).unwrap();
//! assert!(fit.k > 0.5 && fit.k < 2.0);
//! ```
//!
//! ## Features
//!
//! * `std` (default): checkpoint reading, reports, training dynamics; implies `alloc`.
//! * `alloc`: boxed sketches and byte serialization into a `Vec`.
//! * `cli` (default): the `npmk` command-line tool.
//! * `force-scalar`: build without the SIMD path (the environment variable
//!   `NPMK_FORCE_SCALAR=1` does the same at run time).
//!
//! Without default features the core (sketch, kernel, fit, codec) is `no_std` and allocates
//! nothing.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "std")]
pub mod checkpoint;
pub mod codec;
pub mod compat;
#[cfg(feature = "alloc")]
pub mod dynamics;
pub mod fit;
mod kernel;
pub mod layout;
mod ranks;
pub mod roles;
#[cfg(feature = "std")]
pub mod scan;
mod sketch;

pub use fit::{NoFit, Trim, WeibullFit};
pub use kernel::{simd_level, Path};
pub use sketch::{Counts, Dtype, InconsistentState, LengthError, Sketch};

/// The Weibull shape of a half-normal (Gaussian) matrix under the mid-80 fit: the anchor that
/// trained matrices are read against.
pub const GAUSSIAN_K: f64 = 1.205434;
