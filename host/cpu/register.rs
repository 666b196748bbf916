//! The CPU body of `register` (level 1 → 1.5): the shared [`crate::register::plan`], the
//! resampler (`super::resample`) and the shared header rule.

use crate::error::Result;
use crate::map::{AiaMap, MapView};
use crate::register::{level15_header, plan, Plan, RegisterOptions};

use super::resample::resample;

/// Register a level-1 map to level 1.5 (module docs) on the CPU. Returns a new map of the
/// same shape: [`plan`], then [`resample`], then
/// [`level15_header`].
///
/// Errors: those of [`plan`].
///
/// ```
/// use aiaprep::cpu::register;
/// use aiaprep::register::{Interpolation, RegisterOptions};
/// // A binned synthetic level-1 frame (256², CDELT 9.61″, roll −0.13°).
/// let l1 = aiaprep::synth::level1(&aiaprep::synth::SynthOptions { size: 256, ..Default::default() });
/// let l15 = register(&l1, &RegisterOptions { interpolation: Interpolation::Spline, ..Default::default() })?;
/// assert_eq!(l15.header.get_f64("CRPIX1"), Some(128.5)); // Sun centre on (N+1)/2, 1-based
/// assert_eq!(l15.header.get_f64("CROTA2"), Some(0.0)); // solar north up
/// assert_eq!(l15.header.get_f64("LVL_NUM"), Some(1.5));
/// # Ok::<(), aiaprep::Error>(())
/// ```
pub fn register<'a>(map: impl Into<MapView<'a>>, opts: &RegisterOptions) -> Result<AiaMap> {
    let map = map.into();
    Ok(register_planned(map, &plan(map, opts)?, opts))
}

/// [`register()`] with the map's plan already made ([`plan`], e.g. at load): resample and
/// header only; nothing here can fail.
pub fn register_planned<'a>(
    map: impl Into<MapView<'a>>,
    plan: &Plan,
    opts: &RegisterOptions,
) -> AiaMap {
    let map = map.into();
    let r = resample(
        map.data.view(),
        &plan.transform,
        opts.interpolation,
        opts.missing,
    );
    let h = level15_header(map.header, plan, opts, r.missing);
    AiaMap::new(r.data, h, map.source.clone())
}
