//! # aiaprep
//!
//! SDO/AIA level 1 → level 1.5 preparation (pointing, de-rotation to solar north,
//! 0.6″ pixels, Sun centred) and, on request, PSF deconvolution on the level-1 CCD grid
//! first ("level 1.6"). The CPU path here is the reference for testing and a fast
//! fallback; the CUDA path (feature `cuda`) implements the same operations.
//!
//! Every stage takes and returns an in-memory [`AiaMap`]; reading and writing files are
//! separate calls ([`fits::read`], [`fits::write`]).
//!
//! Units used throughout: pixel coordinates 0-based with centres at integers (FITS
//! `CRPIX` is 1-based); angles in degrees in headers; plate scales in arcsec per pixel.

#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod batch;
pub mod buffers;
pub mod capi;
pub mod cpu;
pub mod deconvolve;
pub mod engine;
pub mod error;
pub mod fits;
pub mod geometry;
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod header;
pub mod int16;
pub mod kernels;
pub mod lanes;
pub mod map;
pub mod normalize;
pub mod pipeline;
pub mod pointing;
pub mod psf;
pub mod quicklook;
pub mod register;
pub mod synth;

pub use error::{Error, Result, Source};
pub use header::{Card, Header, Value};
pub use map::{AiaMap, Geometry};

/// The crate version, as written into HISTORY cards.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
