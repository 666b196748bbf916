//! Exposure normalisation: DN → DN/s.
//!
//! aiapy's old `normalize_exposure` (removed in aiapy 0.8) divided the data by `EXPTIME`
//! and set `EXPTIME = 1`, `BUNIT = 'ct / s'` (semantics.md §5.2); SolarSoft `aia_prep
//! /normalize` does the same division. Here the unit is written as `BUNIT = 'DN/s'` (AIA's
//! own `PIXLUNIT` is `'DN'`), which sunpy reads as `DN / s`.
//!
//! For int16 output of normalised data, [`int16_scaling`] gives the `BSCALE`/`BZERO` that
//! store the original DN values as the integers, so no precision is lost by normalising.

use ndarray::{Array2, ArrayView2, Zip};

use crate::error::{Error, Result};
use crate::header::{Header, Value};
use crate::map::{AiaMap, MapView};

/// The unit written to `BUNIT` (and `PIXLUNIT`, when present) by [`normalize_exposure`].
pub const NORMALIZED_UNIT: &str = "DN/s";

/// Header statistics keywords that are in DN and are divided by the exposure too
/// (`DATASKEW`/`DATAKURT` are scale-free, `DATAVALS`/`MISSVALS` are counts).
const DN_STATISTICS: [&str; 14] = [
    "DATAMIN", "DATAMAX", "DATAMEDN", "DATAMEAN", "DATARMS", "DATACENT", "DATAP01", "DATAP10",
    "DATAP25", "DATAP75", "DATAP90", "DATAP95", "DATAP98", "DATAP99",
];

/// Header keyword with the exposure time (s) the data were divided by (`EXPTIME` before
/// normalisation); written by [`normalize_exposure`], read by [`original_exptime`].
pub const KEY_ORIGINAL_EXPTIME: &str = "OEXPTIME";

/// The exposure time (s) an exposure-normalised header was divided by (`OEXPTIME`), if the
/// header records one that is finite and > 0. `None` for headers that were not normalised
/// by [`normalize_exposure`].
pub fn original_exptime(h: &Header) -> Option<f64> {
    h.get_f64(KEY_ORIGINAL_EXPTIME)
        .filter(|t| t.is_finite() && *t > 0.0)
}

/// The exposure time `EXPTIME` of a map in seconds, checked.
///
/// Errors: [`Error::MissingKeyword`] if absent; [`Error::BadKeyword`] if not a number, not
/// finite or ≤ 0.
pub fn exposure_time<'a>(map: impl Into<MapView<'a>>) -> Result<f64> {
    let map = map.into();
    let v = crate::map::required(map.header, map.source, "EXPTIME")?;
    match v.as_f64() {
        Some(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(Error::BadKeyword {
            file: map.source.clone(),
            key: "EXPTIME".into(),
            reason: format!("exposure must be a finite number > 0 s ({v:?})"),
        }),
    }
}

/// Divide the data by the exposure time, in place; returns the original `EXPTIME` (s).
///
/// Pixels: `v / EXPTIME` computed in f64 and rounded once to f32; NaN (missing) stays NaN.
/// Header: `BUNIT = 'DN/s'` (and `PIXLUNIT` if present), `EXPTIME = 1.0` (s), `OEXPTIME` =
/// the original exposure (s, [`KEY_ORIGINAL_EXPTIME`]), the DN-valued
/// statistics keywords (`DATAMIN`, `DATAMAX`, `DATAMEAN`, `DATAMEDN`, `DATARMS`, `DATACENT`,
/// `DATAPnn`) divided by the exposure as well, and a HISTORY card
/// `aiaprep <version> normalize_exposure: data divided by EXPTIME = <t> s (DN -> DN/s)`.
///
/// Errors: as [`exposure_time`]; the map is unchanged then.
pub fn normalize_exposure_in_place(map: &mut AiaMap) -> Result<f64> {
    let t = exposure_time(&*map)?;
    divide_in_place(&mut map.data, t);
    normalized_header(&mut map.header, t);
    Ok(t)
}

/// The header records of exposure normalisation by `t` seconds (the pixels are divided
/// elsewhere, e.g. on the GPU): BUNIT (and PIXLUNIT) DN/s, DN statistics keywords divided,
/// EXPTIME = 1, OEXPTIME = `t`, a HISTORY card.
pub fn normalized_header(h: &mut crate::header::Header, t: f64) {
    h.set(
        "BUNIT",
        Value::Str(NORMALIZED_UNIT.into()),
        Some("data normalised by the exposure time"),
    );
    if h.contains("PIXLUNIT") {
        h.set("PIXLUNIT", Value::Str(NORMALIZED_UNIT.into()), None);
    }
    divide_statistics(h, t);
    h.set_f64("EXPTIME", 1.0, None);
    h.set_f64(
        KEY_ORIGINAL_EXPTIME,
        t,
        Some("[s] EXPTIME the data were divided by"),
    );
    h.push_history(&format!(
        "aiaprep {} normalize_exposure: data divided by EXPTIME = {} s (DN -> DN/s)",
        crate::VERSION,
        crate::header::format_float(t)
    ));
}

/// Divide the DN-valued statistics keywords of `h` (`DATAMIN`, `DATAMAX`, `DATAMEAN`,
/// `DATAMEDN`, `DATARMS`, `DATACENT`, `DATAPnn`) by `d`, as the data are divided.
pub fn divide_statistics(h: &mut crate::header::Header, d: f64) {
    for key in DN_STATISTICS {
        if let Some(v) = h.get_f64(key).filter(|v| v.is_finite()) {
            h.set_f64(key, v / d, None);
        }
    }
}

/// Exposure-normalised copy of a map (DN/s); see [`normalize_exposure_in_place`] for what
/// changes. Errors: `EXPTIME` missing ([`Error::MissingKeyword`]), or ≤ 0 / not finite
/// ([`Error::BadKeyword`]).
///
/// ```
/// let l1 = aiaprep::synth::level1(&aiaprep::synth::SynthOptions { size: 64, ..Default::default() });
/// let n = aiaprep::normalize::normalize_exposure(&l1)?; // DN → DN/s
/// assert_eq!(n.header.get_f64("EXPTIME"), Some(1.0));
/// assert_eq!(n.header.get_f64("OEXPTIME"), Some(2.0));
/// # Ok::<(), aiaprep::Error>(())
/// ```
pub fn normalize_exposure<'a>(map: impl Into<MapView<'a>>) -> Result<AiaMap> {
    let map = map.into();
    // Check first so that a bad map costs nothing.
    let t = exposure_time(map)?;
    let data = divided(map.data, t);
    let mut header = map.header.clone();
    normalized_header(&mut header, t);
    Ok(AiaMap::new(data, header, map.source.clone()))
}

/// One pixel of a division: `v / d` in f64, rounded once to f32; NaN stays NaN.
fn divide(v: f32, d: f64) -> f32 {
    (f64::from(v) / d) as f32
}

/// Divide pixels by `d` in place (exposure normalisation, degradation correction, or both
/// at once), each pixel as `v / d` in f64 rounded once to f32; NaN stays NaN.
pub fn divide_in_place(data: &mut Array2<f32>, d: f64) {
    Zip::from(data).par_for_each(|v| *v = divide(*v, d));
}

/// [`divide_in_place`] into a new array.
pub fn divided(data: ArrayView2<f32>, d: f64) -> Array2<f32> {
    Zip::from(&data).par_map_collect(|v| divide(*v, d))
}

/// `(BSCALE, BZERO)` for writing exposure-normalised data (DN/s) as int16 without losing
/// the precision of the DN image: `BSCALE = 1 / EXPTIME`, `BZERO = 0`, so the stored
/// integer is `round(value · EXPTIME)`, i.e. the DN value. The quantum is therefore
/// 1 DN / EXPTIME (in DN/s) and the representable range ±32767 DN / EXPTIME (−32768 is
/// reserved for BLANK).
///
/// `original_exptime` is the exposure in seconds *before* normalisation (the value returned
/// by [`normalize_exposure_in_place`], or [`original_exptime`] of the normalised header). A non-finite or
/// non-positive exposure gives `(1.0, 0.0)` (no scaling); [`normalize_exposure`] has already
/// rejected such maps.
pub fn int16_scaling(original_exptime: f64) -> (f64, f64) {
    if original_exptime.is_finite() && original_exptime > 0.0 {
        (1.0 / original_exptime, 0.0)
    } else {
        (1.0, 0.0)
    }
}
