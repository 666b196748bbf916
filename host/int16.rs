//! The int16 output encoding, shared by the FITS writer and the engines that encode on
//! their device: `stored = round_half_away((physical − BZERO) / BSCALE)`, saturated to
//! ±32767, missing (NaN) → BLANK −32768, with DATAMIN/DATAMAX/DATAMEAN of the values as
//! written (physical units).

use std::time::Duration;

use ndarray::Array2;

/// Statistics of pixels as written, in physical units: DATAMIN, DATAMAX, DATAMEAN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelStats {
    /// Smallest non-missing value (NaN when every pixel is missing).
    pub min: f64,
    /// Largest non-missing value (NaN when every pixel is missing).
    pub max: f64,
    /// Mean of the non-missing values (NaN when every pixel is missing).
    pub mean: f64,
    /// Number of missing (BLANK) pixels.
    pub n_missing: usize,
}

/// int16 pixels already in a file's encoding — as the FITS writer (`fits::write`) converts f32 for
/// `OutputType::I16`: `stored = round_half_away((physical − BZERO) / BSCALE)`, saturated
/// to ±32767, missing → BLANK −32768 — with the statistics of the values as written. The GPU
/// engine produces them on the device (`Engine::prep_int16`, [`Int16Prep`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Int16Pixels {
    /// Stored values, `[row, col]`.
    pub data: Array2<i16>,
    /// `(BSCALE, BZERO)` they were converted with; `None` for (1, 0).
    pub scaling: Option<(f64, f64)>,
    /// DATAMIN/DATAMAX/DATAMEAN.
    pub stats: PixelStats,
}

/// What an engine's `prep_with_uncertainty` returns: the f32 map (the division's header
/// records are the caller's), its uncertainty image, and the deconvolution and register
/// times.
#[derive(Debug, Clone)]
pub struct WithUncertainty {
    /// The map.
    pub map: crate::map::AiaMap,
    /// The 1-σ uncertainty of each pixel, divided like the data.
    pub uncertainty: ndarray::Array2<f32>,
    /// Deconvolution time (zero when it did not run).
    pub deconvolve: std::time::Duration,
    /// Register time.
    pub register: std::time::Duration,
}

/// What an engine's `prep_int16` returns: the output header (level 1.5, with the
/// deconvolution and normalisation records), the encoded pixels, and the time of the
/// deconvolution and of the rest.
#[derive(Debug, Clone)]
pub struct Int16Prep {
    /// The output header.
    pub header: crate::header::Header,
    /// The encoded pixels with their statistics.
    pub pixels: Int16Pixels,
    /// Time of the deconvolution (zero without).
    pub deconvolve: Duration,
    /// Time of register, normalisation and conversion.
    pub register: Duration,
}
