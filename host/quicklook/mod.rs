//! Quicklook PNGs of a map: downsampled, robustly stretched, in sunpy's SDO/AIA colours.
//!
//! A quicklook of an `ny × nx` image (`data[[row, column]]`, FITS order: row 0 is the bottom)
//! is made in four steps ([`render_rgb`]):
//!
//! 1. **Size.** With `size > 0`, the image is reduced by the integer factor
//!    `f = max(1, ⌈max(nx, ny) / size⌉)` — the smallest factor for which the longest side fits
//!    in `size` pixels — to `⌈ny / f⌉ × ⌈nx / f⌉` pixels, each the mean (in f64, stored as
//!    f32) of the finite pixels of its `f × f` block ([`downsample`]). Blocks of the last row
//!    and column may be cut short by the image edge; they average what they hold. A block with
//!    no finite pixel is missing. `size = 0` keeps the full size. 4096² → 1024² at the
//!    default `size = 1024`.
//! 2. **Clip levels.** `lo` and `hi` are the [`LOW_PERCENTILE`] (0.5 %) and
//!    [`HIGH_PERCENTILE`] (99.9 %) of the finite values of the reduced image, nearest rank
//!    (element `round((m − 1)·q)` of the `m` sorted values) of a strided sample: every `s`-th
//!    pixel in row-major order, `s = 1` up to [`SAMPLE_LIMIT`] pixels, else
//!    `⌊pixels / SAMPLE_LIMIT⌋` made odd (so a power-of-two width is not sampled in the same
//!    columns every row).
//! 3. **Stretch** `g(v)` from the clip levels to [0, 1] ([`Stretch`]): `Asinh` (the default,
//!    sunpy's AIA plot stretch, astropy's `AsinhStretch(0.01)`) is
//!    `asinh(x / a) / asinh(1 / a)` with `x = (v − lo) / (hi − lo)` and softening
//!    `a` = [`ASINH_SOFTENING`] = 0.01; `Log` is
//!    `(log10 v − log10 b) / (log10 hi − log10 b)` from the floor `b = max(lo, hi / 10³)`
//!    ([`LOG_DECADES`] = 3). A value goes to bin `k = min(⌊256·g(v)⌋, 255)`, clipped to
//!    0…=255 — matplotlib's rule for a normalised value, so `lo` (and below) is 0 and `hi`
//!    (and above) 255. Computed exactly as the number of thresholds
//!    `T_k = g⁻¹(k / 256)` (k = 1…255, evaluated in f64) that `v` reaches. When the range is
//!    empty (`hi ≤ lo`, or for `Log` `hi ≤ 0`) every value above `hi` is 255 and the rest 0.
//! 4. **Colour.** With a channel that has a colour table ([`colour_table`]: sunpy's
//!    `sdoaia<channel>`), bin k is that table's entry k (RGB, 8 bits); otherwise bin k is the
//!    grey level k. Missing (non-finite) pixels are black. Solar north is up: the PNG's first
//!    row is the image's last row.
//!
//! The rows of the output are computed in parallel (rayon). PNG encoding uses
//! `png::Compression::Fast` (fdeflate) with the Paeth filter on every row (within 2 % of
//! the adaptive filter's size at 1024², in four fifths of its time).

mod colour;

pub use colour::{colour_table, colour_table_f64, CHANNELS};

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result, Source};

/// Lower clip level, percent of the finite values (maps to bin 0).
pub const LOW_PERCENTILE: f64 = 0.5;
/// Upper clip level, percent of the finite values (maps to bin 255).
pub const HIGH_PERCENTILE: f64 = 99.9;
/// The softening `a` of [`Stretch::Asinh`], as a fraction of the clip range (astropy's
/// `AsinhStretch(a)`; sunpy shows AIA maps with `a = 0.01`).
pub const ASINH_SOFTENING: f64 = 0.01;
/// Decades shown by [`Stretch::Log`]: its floor is `max(lo, hi / 10^LOG_DECADES)`.
pub const LOG_DECADES: f64 = 3.0;
/// Largest number of pixels whose clip levels are taken from every pixel; larger images are
/// sampled (module docs, step 2).
pub const SAMPLE_LIMIT: usize = 1 << 18;

/// How values between the clip levels become brightness (module docs, step 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stretch {
    /// `log10`, from `max(lo, hi / 1000)` to `hi`.
    Log,
    /// `asinh(x / 0.01) / asinh(1 / 0.01)` of the clip-normalised value `x` (sunpy's stretch
    /// for AIA maps): linear near `lo`, logarithmic above.
    #[default]
    Asinh,
}

/// What a quicklook looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuicklookOptions {
    /// Longest side of the PNG, pixels: the image is block-averaged by the smallest integer
    /// factor that fits it (module docs, step 1). 0 = full size. Default 1024.
    pub size: usize,
    /// The stretch between the clip levels. Default [`Stretch::Asinh`].
    pub stretch: Stretch,
    /// The AIA channel (Å) whose colour table to use; `None`, or a channel without a table
    /// (see [`CHANNELS`]), gives a greyscale PNG. Default `None`.
    pub channel: Option<u32>,
}

impl Default for QuicklookOptions {
    fn default() -> Self {
        QuicklookOptions {
            size: 1024,
            stretch: Stretch::default(),
            channel: None,
        }
    }
}

/// A rendered quicklook: 8-bit pixels, rows top (solar north) first.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `height × width` pixels, row by row: RGB triplets when `colour`, else grey levels.
    pub pixels: Vec<u8>,
    /// Whether `pixels` is RGB (a colour table was used) rather than grey.
    pub colour: bool,
    /// The values (data units, e.g. DN) at the bottom and top of the stretch: the clip
    /// levels `(lo, hi)` for `Asinh`, `(max(lo, hi / 1000), hi)` for `Log`; NaN when the
    /// image has no finite pixel.
    pub range: (f32, f32),
}

/// The block-averaging factor for an `ny × nx` image and a longest side of `size` pixels
/// (0 = full size): `max(1, ⌈max(nx, ny) / size⌉)`.
pub fn factor(ny: usize, nx: usize, size: usize) -> usize {
    if size == 0 {
        1
    } else {
        ny.max(nx).div_ceil(size).max(1)
    }
}

/// `data` reduced by `factor` (values below 1 are taken as 1): `⌈ny / f⌉ × ⌈nx / f⌉`
/// pixels, pixel `[b, c]` the mean of the finite pixels of `data[[b·f .. (b+1)·f,
/// c·f .. (c+1)·f]]` (cut at the edges), NaN when it has none. Same orientation as `data`.
pub fn downsample(data: ArrayView2<f32>, factor: usize) -> Array2<f32> {
    let f = factor.max(1);
    let (ny, nx) = data.dim();
    let mut out = Array2::<f32>::zeros((ny.div_ceil(f), nx.div_ceil(f)));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(b, row)| block_row(data, f, b, row));
    out
}

/// Row `j` of `data` as a slice (borrowed when contiguous).
fn row_of<'a>(data: ArrayView2<'a, f32>, j: usize) -> Cow<'a, [f32]> {
    let row: ArrayView1<'a, f32> = data.index_axis_move(Axis(0), j);
    match row.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(row.to_vec()),
    }
}

/// Block row `b` of [`downsample`] into `out` (`⌈nx / f⌉` values): the finite pixels of
/// the block's rows are first summed down each column (f64; a loop the compiler vectorises),
/// then across each block's columns.
fn block_row(data: ArrayView2<f32>, f: usize, b: usize, mut out: ArrayViewMut1<f32>) {
    let (ny, nx) = data.dim();
    let mut sum = vec![0f64; nx];
    let mut count = vec![0u32; nx];
    for j in b * f..((b + 1) * f).min(ny) {
        let row = row_of(data, j);
        for ((s, n), &v) in sum.iter_mut().zip(count.iter_mut()).zip(row.iter()) {
            let ok = v.is_finite();
            *s += if ok { v as f64 } else { 0.0 };
            *n += ok as u32;
        }
    }
    for ((o, s), n) in out.iter_mut().zip(sum.chunks(f)).zip(count.chunks(f)) {
        let n: u32 = n.iter().sum();
        *o = if n > 0 {
            (s.iter().sum::<f64>() / n as f64) as f32
        } else {
            f32::NAN
        };
    }
}

/// The sampling step for an image of `n` pixels (module docs, step 2).
fn sample_step(n: usize) -> usize {
    if n <= SAMPLE_LIMIT {
        1
    } else {
        (n / SAMPLE_LIMIT) | 1
    }
}

/// `(lo, hi)`: the clip percentiles (nearest rank) of `sample` (finite values, reordered);
/// `None` when it is empty.
fn clip_levels(sample: &mut [f32]) -> Option<(f32, f32)> {
    let m = sample.len();
    if m == 0 {
        return None;
    }
    let rank = |pct: f64| (((m - 1) as f64) * pct / 100.0).round() as usize;
    let (ilo, ihi) = (rank(LOW_PERCENTILE), rank(HIGH_PERCENTILE));
    let (below, hi, _) = sample.select_nth_unstable_by(ihi, f32::total_cmp);
    let hi = *hi;
    let lo = if ilo < ihi {
        *below.select_nth_unstable_by(ilo, f32::total_cmp).1
    } else {
        hi
    };
    Some((lo, hi))
}

/// The smallest f32 at or above `t`.
fn f32_at_or_above(t: f64) -> f32 {
    let x = t as f32;
    if (x as f64) < t {
        x.next_up()
    } else {
        x
    }
}

/// Bin thresholds `th[k] = T_k` (k = 1…255; `th[0]` unused) of `stretch` between the clip
/// levels, as f32 (a finite f32 `v` reaches `T_k` exactly when `v ≥ th[k]`), and the
/// [`Rendered::range`].
fn thresholds(stretch: Stretch, lo: f32, hi: f32) -> ([f32; 256], (f32, f32)) {
    let (lo64, hi64) = (lo as f64, hi as f64);
    let mut th = [f32::NEG_INFINITY; 256];
    // th[k] from g⁻¹, the inverse of the stretch on [0, 1).
    let fill = |th: &mut [f32; 256], g_inv: &dyn Fn(f64) -> f64| {
        for (k, t) in th.iter_mut().enumerate().skip(1) {
            *t = f32_at_or_above(g_inv(k as f64 / 256.0));
        }
    };
    match stretch {
        Stretch::Asinh if hi64 > lo64 => {
            let (span, a) = (hi64 - lo64, ASINH_SOFTENING);
            let top = (1.0 / a).asinh();
            fill(&mut th, &|y| lo64 + span * a * (y * top).sinh());
            return (th, (lo, hi));
        }
        Stretch::Log => {
            let floor = lo64.max(hi64 / 10f64.powf(LOG_DECADES));
            if hi64 > 0.0 && hi64 > floor {
                let (l0, l1) = (floor.log10(), hi64.log10());
                fill(&mut th, &|y| 10f64.powf(l0 + y * (l1 - l0)));
                return (th, (floor as f32, hi));
            }
        }
        Stretch::Asinh => {}
    }
    // An empty range: a step at hi.
    th[1..].fill(hi.next_up());
    (th, (hi, hi))
}

/// The bin (0…=255) of a finite `v`: how many of `th[1..=255]` it reaches (`th` is
/// non-decreasing), by an eight-step branch-free binary search. The reference for
/// [`Bins::bin`].
#[cfg(test)]
fn bin(th: &[f32; 256], v: f32) -> usize {
    let mut i = 0usize;
    for half in [128, 64, 32, 16, 8, 4, 2, 1] {
        // i + half ≤ 255 always; the mask only lets the compiler see it.
        i += if v >= th[(i + half) & 255] { half } else { 0 };
    }
    i
}

/// Number of intervals of the uniform index of [`Bins`].
const INDEX: usize = 1 << 14;

/// The bins of a stretch: the thresholds, with a uniform index over `[th[1], th[255]]` that
/// gives the bin of each interval's left edge, so that a value's bin is one look-up plus (at
/// most a few) steps to the neighbouring bins — the number of thresholds it reaches, as a
/// binary search would give, several times faster.
struct Bins {
    th: [f32; 256],
    /// `th[1]`, and `INDEX / (th[255] − th[1])` (0 when that range is empty or not finite:
    /// every value then starts from bin 0).
    t0: f32,
    scale: f32,
    /// The bin of the left edge of each interval.
    start: Box<[u8; INDEX]>,
}

impl Bins {
    fn new(th: [f32; 256]) -> Bins {
        let t0 = th[1];
        let span = th[255] - t0;
        let scale = INDEX as f32 / span;
        let mut start = Box::new([0u8; INDEX]);
        if !(span > 0.0 && span.is_finite() && scale.is_finite() && scale > 0.0) {
            return Bins {
                th,
                t0,
                scale: 0.0,
                start,
            };
        }
        let mut k = 0usize;
        for (i, s) in start.iter_mut().enumerate() {
            let edge = t0 + i as f32 / scale;
            while k < 255 && edge >= th[k + 1] {
                k += 1;
            }
            *s = k as u8;
        }
        Bins {
            th,
            t0,
            scale,
            start,
        }
    }

    /// The bin of a finite `v`: the largest k with `th[k] ≤ v` (0 if none).
    #[inline]
    fn bin(&self, v: f32) -> usize {
        // A saturating cast: below th[1] (or NaN, with an empty range) → 0, far above →
        // INDEX − 1.
        let i = (((v - self.t0) * self.scale) as usize).min(INDEX - 1);
        let mut k = self.start[i] as usize;
        // The index is only a starting point: step to the bin whose thresholds bracket v.
        while k > 0 && v < self.th[k] {
            k -= 1;
        }
        while k < 255 && v >= self.th[k + 1] {
            k += 1;
        }
        k
    }
}

/// Render `data` (FITS order, row 0 at the bottom) as a quicklook (module docs).
pub fn render_rgb(data: ArrayView2<f32>, opts: &QuicklookOptions) -> Rendered {
    let (ny, nx) = data.dim();
    let f = factor(ny, nx, opts.size);
    let (h, w) = (ny.div_ceil(f), nx.div_ceil(f));
    let n = h * w;
    // The reduced image in display order (top row first); None at full size.
    let reduced: Option<Vec<f32>> = (f > 1).then(|| {
        let mut v = vec![0f32; n];
        v.par_chunks_mut(w.max(1))
            .enumerate()
            .for_each(|(r, row)| block_row(data, f, h - 1 - r, ArrayViewMut1::from(row)));
        v
    });
    let display_row = |r: usize| -> Cow<'_, [f32]> {
        match &reduced {
            Some(v) => Cow::Borrowed(&v[r * w..(r + 1) * w]),
            None => row_of(data, ny - 1 - r),
        }
    };

    let mut sample: Vec<f32> = (0..n)
        .into_par_iter()
        .step_by(sample_step(n))
        .map(|k| match &reduced {
            Some(v) => v[k],
            None => data[[ny - 1 - k / w, k % w]],
        })
        .filter(|v| v.is_finite())
        .collect();
    let (th, range) = match clip_levels(&mut sample) {
        Some((lo, hi)) => thresholds(opts.stretch, lo, hi),
        None => ([f32::INFINITY; 256], (f32::NAN, f32::NAN)),
    };
    let bins = Bins::new(th);

    let table = opts.channel.and_then(colour_table);
    let depth = if table.is_some() { 3 } else { 1 };
    let mut pixels = vec![0u8; n * depth];
    if n > 0 {
        // Per row: the bins (MISSING for a non-finite pixel) into a small buffer, then
        // through the table (entry MISSING is black); an RGB pixel is written as 4 bytes,
        // the 4th overwritten by the next pixel (one store instead of three).
        const MISSING: u16 = 256;
        let mut lut = [[0u8; 4]; 257];
        for (k, e) in lut.iter_mut().take(256).enumerate() {
            *e = match &table {
                Some(t) => [t[k][0], t[k][1], t[k][2], 0],
                None => [k as u8; 4],
            };
        }
        pixels
            .par_chunks_mut(w * depth)
            .enumerate()
            .for_each(|(r, out)| {
                let src = display_row(r);
                let ks: Vec<u16> = src
                    .iter()
                    .map(|&v| {
                        if v.is_finite() {
                            bins.bin(v) as u16
                        } else {
                            MISSING
                        }
                    })
                    .collect();
                if depth == 3 {
                    let (head, last) = ks.split_at(w - 1);
                    for (i, &k) in head.iter().enumerate() {
                        out[3 * i..3 * i + 4].copy_from_slice(&lut[k as usize]);
                    }
                    out[3 * (w - 1)..].copy_from_slice(&lut[last[0] as usize][..3]);
                } else {
                    for (o, &k) in out.iter_mut().zip(&ks) {
                        *o = lut[k as usize][0];
                    }
                }
            });
    }
    Rendered {
        width: w,
        height: h,
        pixels,
        colour: table.is_some(),
        range,
    }
}

/// Write the quicklook of `data` (see [`render_rgb`]) as a PNG file at `path`, replacing it
/// if it exists: 8-bit RGB with a colour table, else 8-bit greyscale. Errors: [`Error::Io`]
/// naming `path` (the file cannot be written, or `data` has no pixels).
pub fn write_png_with(data: ArrayView2<f32>, path: &Path, opts: &QuicklookOptions) -> Result<()> {
    let source = Source::file(path);
    let io = |e: &dyn std::fmt::Display| Error::Io {
        file: source.clone(),
        reason: format!("cannot write PNG: {e}"),
    };
    let f = File::create(path).map_err(|e| io(&e))?;
    let mut w = BufWriter::new(f);
    encode(&render_rgb(data, opts), &mut w, &source)?;
    w.flush().map_err(|e| io(&e))
}

/// The quicklook of `data` (see [`render_rgb`]) as the bytes of a PNG file, for callers that
/// show it rather than save it (a notebook, a web page). Errors: [`Error::Io`] (in memory)
/// when `data` has no pixels.
pub fn png_bytes_with(data: ArrayView2<f32>, opts: &QuicklookOptions) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode(&render_rgb(data, opts), &mut out, &Source::memory())?;
    Ok(out)
}

/// [`write_png_with`] with [`QuicklookOptions::default`] (greyscale, 1024 pixels, asinh).
pub fn write_png(data: ArrayView2<f32>, path: &Path) -> Result<()> {
    write_png_with(data, path, &QuicklookOptions::default())
}

/// [`png_bytes_with`] with [`QuicklookOptions::default`] (greyscale, 1024 pixels, asinh).
pub fn png_bytes(data: ArrayView2<f32>) -> Result<Vec<u8>> {
    png_bytes_with(data, &QuicklookOptions::default())
}

/// Encode `img` as an 8-bit PNG (RGB or greyscale) into `w`. An image with no pixels
/// cannot be a PNG: [`Error::Io`] naming `file`.
fn encode(img: &Rendered, w: impl Write, file: &Source) -> Result<()> {
    let io = |e: &dyn std::fmt::Display| Error::Io {
        file: file.clone(),
        reason: format!("cannot write PNG: {e}"),
    };
    let dim = |n: usize| u32::try_from(n).map_err(|_| io(&format!("{n} pixels is too large")));
    let mut enc = png::Encoder::new(w, dim(img.width)?, dim(img.height)?);
    enc.set_color(if img.colour {
        png::ColorType::Rgb
    } else {
        png::ColorType::Grayscale
    });
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    enc.set_filter(png::Filter::Paeth);
    let mut w = enc.write_header().map_err(|e| io(&e))?;
    w.write_image_data(&img.pixels).map_err(|e| io(&e))?;
    w.finish().map_err(|e| io(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_fits_the_longest_side() {
        assert_eq!(factor(4096, 4096, 1024), 4);
        assert_eq!(factor(4096, 4096, 1000), 5); // 820 × 820
        assert_eq!(factor(100, 30, 1024), 1);
        assert_eq!(factor(4096, 4096, 0), 1);
        for (ny, nx, size) in [(4096, 4096, 1000), (1025, 7, 1024), (333, 999, 100)] {
            let f = factor(ny, nx, size);
            assert!(ny.max(nx).div_ceil(f) <= size);
            assert!(ny.max(nx).div_ceil(f - 1) > size, "{f} is not the smallest");
        }
    }

    #[test]
    fn bins_follow_the_thresholds() {
        for stretch in [Stretch::Asinh, Stretch::Log] {
            let (th, (bottom, top)) = thresholds(stretch, 2.0, 5000.0);
            assert!(th[1..].windows(2).all(|p| p[0] <= p[1]));
            assert_eq!(bin(&th, bottom), 0);
            assert_eq!(bin(&th, f32::MIN), 0);
            assert_eq!(bin(&th, top), 255);
            assert_eq!(bin(&th, f32::INFINITY), 255);
            for k in 1..256 {
                assert!(bin(&th, th[k]) >= k);
                assert!(bin(&th, th[k].next_down()) < k);
            }
        }
        // An empty range is a step at hi.
        let (th, range) = thresholds(Stretch::Asinh, 7.0, 7.0);
        assert_eq!(range, (7.0, 7.0));
        assert_eq!((bin(&th, 7.0), bin(&th, 7.0f32.next_up())), (0, 255));
        let (th, _) = thresholds(Stretch::Log, -3.0, -1.0);
        assert_eq!((bin(&th, -1.0), bin(&th, 0.0)), (0, 255));
    }

    #[test]
    fn the_index_gives_the_binary_search_bin() {
        for (stretch, lo, hi) in [
            (Stretch::Asinh, 2.0, 5000.0),
            (Stretch::Log, -30.0, 16000.0),
            (Stretch::Asinh, -1e-3, 1e-3),
            (Stretch::Asinh, 7.0, 7.0),
        ] {
            let (th, _) = thresholds(stretch, lo, hi);
            let bins = Bins::new(th);
            assert_eq!(bins.scale == 0.0, lo == hi);
            // Every threshold and its neighbours, and a dense sweep past both ends.
            let mut values: Vec<f32> = th[1..]
                .iter()
                .flat_map(|&t| [t.next_down(), t, t.next_up()])
                .collect();
            let (a, b) = (lo as f64 - 0.1 * (hi - lo) as f64, hi as f64 * 1.1 + 1.0);
            values.extend((0..200_000).map(|i| (a + (b - a) * i as f64 / 200_000.0) as f32));
            values.extend([f32::MIN, f32::MAX, f32::INFINITY, f32::NEG_INFINITY, 0.0]);
            for v in values {
                assert_eq!(bins.bin(v), bin(&th, v), "{stretch:?} ({lo}, {hi}): {v}");
            }
        }
    }

    #[test]
    fn writes_a_png_that_decodes() {
        let a = Array2::<f32>::from_shape_fn((20, 30), |(j, i)| (j * 30 + i) as f32 + 1.0);
        let dir = std::env::temp_dir().join(format!("aiaprep-ql-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("q.png");
        write_png(a.view(), &p).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(File::open(&p).unwrap()));
        let r = dec.read_info().unwrap();
        assert_eq!((r.info().width, r.info().height), (30, 20));
        assert_eq!(r.info().color_type, png::ColorType::Grayscale);
        std::fs::remove_dir_all(&dir).unwrap();
        // An unwritable path is an Io error naming it.
        let bad = dir.join("no").join("such.png");
        match write_png(a.view(), &bad) {
            Err(Error::Io { file, .. }) => assert_eq!(file.path(), Some(bad.as_path())),
            other => panic!("{other:?}"),
        }
    }
}
