//! [`CpuEngine`]: the CPU backend ([`crate::cpu`]) behind the [`Engine`] interface.

use super::Engine;
use crate::deconvolve::DeconvolveOptions;
use crate::error::Result;
use crate::map::{AiaMap, MapView};
use crate::register::{Plan, RegisterOptions};

/// The CPU implementation of [`Engine`] (rayon-parallel inside each image); the PSF,
/// full-disk test and int16 encoding are the trait's defaults (the CPU references).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuEngine;

impl Engine for CpuEngine {
    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }
    fn deconvolve(&self, map: MapView<'_>, opts: &DeconvolveOptions) -> Result<AiaMap> {
        crate::cpu::deconvolve(map, opts)
    }
    fn register_planned(
        &self,
        map: MapView<'_>,
        plan: &Plan,
        opts: &RegisterOptions,
    ) -> Result<AiaMap> {
        Ok(crate::cpu::register::register_planned(map, plan, opts))
    }
}
