//! sunpy's SDO/AIA colour maps (`sdoaia94` … `sdoaia4500`, sunpy 7.0.5 on matplotlib 3.11),
//! computed from their formulas.
//!
//! sunpy builds each map from IDL colour table 3 ("Red Temperature", `r0`, `g0`, `b0`) and
//! four float32 curves (`c0` … `c3`), one curve per colour, per channel
//! (`sunpy.visualization.colormaps.color_tables.aia_color_table`); matplotlib turns the 256
//! control points into its lookup table. Every float32 rounding step of numpy's arithmetic is
//! repeated here (no fused multiply-add; `f32::sqrt` is correctly rounded, as numpy's), so
//! [`colour_table_f64`] is sunpy's `cmap(np.arange(256) / 255)[:, :3]` bit for bit and
//! [`colour_table`] is that table × 255 rounded half to even (numpy's `round`). The tests
//! hold both against sunpy's own tables (`tests/parity/make_colormap_fixtures.py`).

/// Number of entries of a colour table.
const N: usize = 256;

/// The channels (Å) that have a colour table.
pub const CHANNELS: [u32; 10] = crate::map::AIA_CHANNELS;

/// One colour's 256 control points, as sunpy computes them.
#[derive(Clone, Copy)]
enum Curve {
    /// A float32 curve (`c0` … `c3`): divided by 255 in float32, then widened.
    F32(fn(usize) -> f32),
    /// A float64 curve (IDL table 3, and its blue halved for 4500): divided by 255 in f64.
    F64(fn(usize) -> f64),
}

/// IDL colour table 3, red: `min(255, ⌊255 i / 176⌋)`.
fn r0(i: usize) -> f64 {
    ((255 * i) / 176).min(255) as f64
}

/// IDL colour table 3, green: 0 up to 120, then `⌊255 (i − 120) / 135⌋`.
fn g0(i: usize) -> f64 {
    if i <= 120 {
        0.0
    } else {
        ((255 * (i - 120)) / 135) as f64
    }
}

/// IDL colour table 3, blue: 0 up to 190, then `⌊255 (i − 190) / 65⌋`.
fn b0(i: usize) -> f64 {
    if i <= 190 {
        0.0
    } else {
        ((255 * (i - 190)) / 65) as f64
    }
}

/// Half of [`b0`] (the 4500 Å blue), in f64: 0, 1.5, 3.5, … 127.5.
fn b0_half(i: usize) -> f64 {
    b0(i) / 2.0
}

/// `c0 = i` (float32).
fn c0(i: usize) -> f32 {
    i as f32
}

/// `c1 = f32(f64(sqrt_f32(i)) · sqrt_f64(255))`: numpy's float32 square root times the
/// float64 scalar `np.sqrt(255.0)`, rounded back to float32.
fn c1(i: usize) -> f32 {
    ((i as f32).sqrt() as f64 * 255f64.sqrt()) as f32
}

/// `c2 = f32(i² / 255)` (integer square, float64 division).
fn c2(i: usize) -> f32 {
    ((i * i) as f64 / 255.0) as f32
}

/// `c3 = ((c1 + c2 / 2) · 255) / (max c1 + max c2 / 2)`, every step in float32. `c1` and
/// `c2` are non-decreasing (each rounding step is monotone), so their maxima are their last
/// entries (255 and 255, so the denominator is 382.5).
fn c3(i: usize) -> f32 {
    let den = c1(N - 1) + c2(N - 1) / 2.0;
    ((c1(i) + c2(i) / 2.0) * 255.0) / den
}

/// The (red, green, blue) curves of a channel; `None` for a channel without a table.
fn curves(channel: u32) -> Option<[Curve; 3]> {
    use Curve::{F32, F64};
    Some(match channel {
        94 => [F32(c2), F32(c3), F32(c0)],
        131 => [F64(g0), F64(r0), F64(r0)],
        171 => [F64(r0), F32(c0), F64(b0)],
        193 => [F32(c1), F32(c0), F32(c2)],
        211 => [F32(c1), F32(c0), F32(c3)],
        304 => [F64(r0), F64(g0), F64(b0)],
        335 => [F32(c2), F32(c0), F32(c1)],
        1600 => [F32(c3), F32(c3), F32(c2)],
        1700 => [F32(c1), F32(c0), F32(c0)],
        4500 => [F32(c0), F32(c0), F64(b0_half)],
        _ => return None,
    })
}

/// The control points `y = curve / 255` of one colour (sunpy's `create_cdict`).
fn control_points(curve: Curve) -> [f64; N] {
    let mut y = [0.0; N];
    for (i, y) in y.iter_mut().enumerate() {
        *y = match curve {
            Curve::F32(f) => (f(i) / 255.0) as f64,
            Curve::F64(f) => f(i) / 255.0,
        };
    }
    y
}

/// matplotlib's `_create_lookup_table(256, [(x, y, y)…], gamma = 1)` for control points at
/// `x = linspace(0, 1, 256)`: entry k lies on control point k, so the interpolation weight is
/// exactly 1 and entry k is `1·(y[k] − y[k−1]) + y[k−1]`, clipped to [0, 1] (written out as
/// matplotlib computes it; for these curves it equals `y[k]`).
fn lookup_table(y: &[f64; N]) -> [f64; N] {
    let mut lut = [0.0; N];
    lut[0] = y[0];
    lut[N - 1] = y[N - 1];
    for k in 1..N - 1 {
        let dist = 1.0;
        lut[k] = dist * (y[k] - y[k - 1]) + y[k - 1];
    }
    lut.map(|v: f64| v.clamp(0.0, 1.0))
}

/// sunpy's `sdoaia<channel>` colour map as its 256 (red, green, blue) entries in [0, 1]:
/// `cm.cmlist['sdoaia<channel>'](np.arange(256) / 255)[:, :3]`, bit for bit. Channels (Å):
/// 94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500; any other channel → `None`.
pub fn colour_table_f64(channel: u32) -> Option<[[f64; 3]; N]> {
    let [r, g, b] = curves(channel)?.map(|c| lookup_table(&control_points(c)));
    let mut out = [[0.0; 3]; N];
    for (k, rgb) in out.iter_mut().enumerate() {
        *rgb = [r[k], g[k], b[k]];
    }
    Some(out)
}

/// The 8-bit form of [`colour_table_f64`]: each entry × 255 rounded to the nearest integer,
/// ties to even (numpy's `(cmap(np.arange(256) / 255)[:, :3] * 255).round()`; the 4500 Å
/// blue has exact halves, e.g. 52.5 → 52). Entry k is the colour of a value whose normalised
/// stretch falls in bin k. Any channel without a table → `None`.
pub fn colour_table(channel: u32) -> Option<[[u8; 3]; N]> {
    // Entries are in [0, 1], so × 255 rounded lies in 0…=255 and the cast is exact.
    colour_table_f64(channel).map(|t| t.map(|rgb| rgb.map(|v| (v * 255.0).round_ties_even() as u8)))
}
