//! The CPU implementations (rayon-parallel): resampling, B-spline prefilter, PSF model,
//! 2-D real FFTs and Richardson–Lucy deconvolution. The public surface is what a caller of
//! the CPU path needs — [`register()`], [`deconvolve()`] (with its OTF and cache), the
//! PSF model ([`psf`]); the numeric kernels are crate-private.

pub mod deconvolve;
pub(crate) mod fft2;
pub(crate) mod mask;
pub mod psf;
pub mod register;
pub(crate) mod resample;
pub(crate) mod simd;
pub(crate) mod spline;
pub(crate) mod stats;
pub mod uncertainty;

pub use deconvolve::deconvolve;
pub use register::register;
