//! The values sunpy's register rules derive from an input before any pixel is resampled
//! (sunpy's `GenericMap.rotate` and scipy's `affine_transform`; see `crate::cpu::resample`):
//! the `missing` value, the padding, whether NaN pixels need the median fill, and the
//! clipping range — the one place these formulas live, used by both backends.

use crate::register::Missing;

/// NaN count and NaN-ignoring extrema of an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of NaN pixels.
    pub nan: usize,
    /// Smallest non-NaN value (NaN if there is none).
    pub min: f32,
    /// Largest non-NaN value (NaN if there is none).
    pub max: f32,
}

/// How the clipping range (sunpy §6.4) is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClipRule {
    /// Known before resampling, `(lower, upper)` in DN: clamp every interpolated value.
    Known(f32, f32),
    /// Depends on the output's extrema (a user `missing` outside the data range and no
    /// padding): computed after resampling and masking with [`deferred_clip_range`].
    Deferred {
        /// The `missing` value, DN.
        missing: f64,
        /// NaN-ignoring minimum of the input, DN.
        in_min: f64,
        /// NaN-ignoring maximum of the input, DN.
        in_max: f64,
    },
}

/// The values sunpy's rules derive from the input before any pixel is resampled — the
/// one place these formulas live, shared by the CPU resampler and the GPU engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// The `missing` value (DN): the data minimum for [`Missing::Min`], the value for
    /// [`Missing::Value`], NaN for [`Missing::Nan`]. It fills sunpy's padding and every
    /// output position outside the padded input.
    pub missing: f64,
    /// Number of padding pixels (`(nx + 2 px)(ny + 2 py) − nx ny`, saturating).
    pub padded_pixels: usize,
    /// NaN pixels of the (padded) input must be replaced by the NaN-ignoring median: there
    /// are NaN input pixels, or the padding is NaN (`missing` NaN and padding present).
    pub need_fill: bool,
    /// The median counts the padding (`padded_pixels` copies of `missing`), as sunpy's
    /// `nanmedian` of the padded image does when `missing` is a number.
    pub fill_counts_padding: bool,
    /// The clipping range.
    pub clip: ClipRule,
}

impl Rules {
    /// The rules for an `nx × ny` input whose NaN count and NaN-ignoring extrema are
    /// `summary` (at least one pixel not NaN), resampled with `missing` and sunpy's
    /// padding `pad = [px, py]` (pixels on each side).
    pub fn new(
        summary: &Summary,
        missing: Missing,
        pad: [usize; 2],
        nx: usize,
        ny: usize,
    ) -> Rules {
        let m = match missing {
            Missing::Min => summary.min as f64,
            Missing::Value(v) => v,
            Missing::Nan => f64::NAN,
        };
        let padded_pixels = nx
            .saturating_add(pad[0].saturating_mul(2))
            .saturating_mul(ny.saturating_add(pad[1].saturating_mul(2)))
            .saturating_sub(nx * ny);
        // sunpy replaces NaN by the nanmedian of the padded image (padding included when
        // it is a number; when missing is NaN the padding is NaN and needs the fill too).
        let need_fill = summary.nan > 0 || (m.is_nan() && padded_pixels > 0);
        let fill_counts_padding = !m.is_nan() && padded_pixels > 0;
        let clip = if m.is_nan() {
            ClipRule::Known(summary.min, summary.max)
        } else {
            let (mut lo, mut hi) = (summary.min as f64, summary.max as f64);
            if padded_pixels > 0 {
                lo = lo.min(m);
                hi = hi.max(m);
            }
            if m >= lo && m <= hi {
                ClipRule::Known(lo as f32, hi as f32)
            } else {
                ClipRule::Deferred {
                    missing: m,
                    in_min: lo,
                    in_max: hi,
                }
            }
        };
        Rules {
            missing: m,
            padded_pixels,
            need_fill,
            fill_counts_padding,
            clip,
        }
    }
}

/// The range of sunpy's clipping when `missing` lies outside the input range (§6.4):
/// `lower = nanmin(max(missing, out_min), in_min)`, `upper = nanmax(min(missing, out_max),
/// in_max)`, where `out_min`/`out_max` are the NaN-ignoring extrema of the resampled output
/// (DN) — the one formula, used by the CPU resampler and by the GPU engine on its
/// device statistics.
pub fn deferred_clip_range(
    m: f64,
    out_min: f32,
    out_max: f32,
    in_min: f64,
    in_max: f64,
) -> (f64, f64) {
    let nanmin2 = |a: f64, b: f64| {
        if a.is_nan() {
            b
        } else if b.is_nan() {
            a
        } else {
            a.min(b)
        }
    };
    let nanmax2 = |a: f64, b: f64| {
        if a.is_nan() {
            b
        } else if b.is_nan() {
            a
        } else {
            a.max(b)
        }
    };
    (
        nanmin2(m.max(out_min as f64), in_min),
        nanmax2(m.min(out_max as f64), in_max),
    )
}
