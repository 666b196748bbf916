//! The CPU implementations (rayon-parallel): resampling, B-spline prefilter, PSF model,
//! 2-D real FFTs and Richardson–Lucy deconvolution.

pub mod deconvolve;
pub mod fft2;
pub(crate) mod mask;
pub mod psf;
pub mod register;
pub mod resample;
pub(crate) mod simd;
pub(crate) mod spline;
pub mod stats;

pub use deconvolve::deconvolve;
pub use register::register;
