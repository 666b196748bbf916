//! # aiaprep
//!
//! SDO/AIA level 1 → level 1.5 preparation (pointing, de-rotation to solar north,
//! 0.6″ pixels, Sun centred) and, on request, PSF deconvolution on the level-1 CCD grid
//! first ("level 1.6"). The CPU path is the reference for testing and a fast fallback;
//! the CUDA path (feature `cuda`, on by default) implements the same operations, behind
//! one interface, [`Engine`].
//!
//! Every stage takes and returns an in-memory [`AiaMap`]; reading and writing files are
//! separate calls ([`fits::read`], [`fits::write`]). A whole `prep` of one file is
//! [`pipeline::prep_file`]; of many, [`batch::run`].
//!
//! ```
//! use aiaprep::{select_engines, Backend, DeconvolveOptions, EngineOptions, RegisterOptions};
//! // The engines: a GPU when there is one (Backend::Auto), here the CPU.
//! let engines = select_engines(&EngineOptions { backend: Backend::Cpu, ..Default::default() })?;
//! // A synthetic level-1 frame (a real one: aiaprep::fits::read(path)?).
//! let l1 = aiaprep::synth::level1(&aiaprep::synth::SynthOptions { size: 128, ..Default::default() });
//! // Level 1.6: deconvolve on the level-1 grid, then register to level 1.5.
//! let d = engines.deconvolve.deconvolve(l1.view(), &DeconvolveOptions { iterations: 5, ..Default::default() })?;
//! let l15 = engines.register.register(d.view(), &RegisterOptions::default())?;
//! assert_eq!(l15.header.get_f64("LVL_NUM"), Some(1.5));
//! assert_eq!(l15.header.get_f64("CROTA2"), Some(0.0)); // solar north up
//! # Ok::<(), aiaprep::Error>(())
//! ```
//!
//! The modules form layers, each using only those below it (ARCHITECTURE.md in the
//! repository; checked by `tests/layers.rs`), listed here from the bottom.
//!
//! Units used throughout: pixel coordinates 0-based with centres at integers (FITS
//! `CRPIX` is 1-based); angles in degrees in headers; plate scales in arcsec per pixel.

#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

// Core types and buffers.
pub mod buffers;
pub mod error;
pub mod geometry;
pub mod header;
pub mod kernels;
pub mod lanes;
pub mod map;
pub mod time;

// The semantics of each operation: options, checks, shared rules, output headers.
pub mod caltable;
pub mod deconvolve;
pub mod degradation;
pub mod int16;
pub mod normalize;
pub mod pointing;
pub mod psf;
pub mod register;
pub mod synth;
pub mod uncertainty;

// Formats.
pub mod fits;
pub mod quicklook;

// Backends.
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod gpu;

// The engine interface, one file, many files, the C ABI.
pub mod batch;
pub mod capi;
pub mod engine;
pub mod pipeline;

/// Numeric internals that the crate's own integration tests, benches and fuzz targets
/// (`fuzz/`) hold against independent oracles (CPU resampler, statistics, FFT,
/// Richardson–Lucy ratio, the RICE_1 tile codec, the card value parser; GPU device
/// operations and the NVRTC compile path). Not part of the API: hidden, no stability.
#[doc(hidden)]
pub mod internals {
    pub use crate::cpu::deconvolve::ratio;
    pub use crate::cpu::fft2::Fft2;
    pub use crate::cpu::resample::{apply_deferred_clip, resample};
    pub use crate::cpu::stats::{nan_median_counted, summarize};
    pub use crate::fits::rice::{decode_tile, encode_tile, validate_tile, TileError};
    pub use crate::header::parse_value_field;

    /// GPU internals (feature `cuda`).
    #[cfg(feature = "cuda")]
    pub mod gpu {
        pub use crate::gpu::convert::{f32_to_i16, nanmedian, stats_f32};
        pub use crate::gpu::device::pool_release_threshold;
        pub use crate::gpu::module::{compile, nvrtc_version, supported_archs};
        pub use crate::gpu::psf::psf;
    }
}

pub use deconvolve::{DeconvolveOptions, PsfSource};
pub use engine::{select_engines, Backend, CpuEngine, Engine, EngineOptions, Engines};
pub use error::{Error, Result, Source};
pub use header::{Card, Header, Value};
pub use map::{AiaMap, Geometry};
pub use pipeline::PrepOptions;
pub use psf::PsfOptions;
pub use register::{Interpolation, Missing, RegisterOptions};

/// The crate version, as written into HISTORY cards.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
