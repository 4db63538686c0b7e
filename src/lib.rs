//! npmk: the Weibull shape k of neural-network weight magnitudes (NPM-k).
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "alloc")]
pub mod dynamics;
