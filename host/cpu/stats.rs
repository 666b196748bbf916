//! Whole-image reductions used by register: NaN count, NaN-ignoring min/max, and an exact
//! NaN-ignoring median (numpy `nanmedian` semantics) by a two-pass radix select on the
//! order-preserving bit patterns of `f32` (parallel; no copy of the image).

use rayon::prelude::*;

const CHUNK: usize = 1 << 16;

pub use crate::register::rules::Summary;

/// NaN count, min and max (ignoring NaN) of `data`.
pub fn summarize(data: &[f32]) -> Summary {
    let (nan, min, max) = data
        .par_chunks(CHUNK)
        .map(|c| {
            let mut nan = 0usize;
            let mut lo = f32::INFINITY;
            let mut hi = f32::NEG_INFINITY;
            for &v in c {
                // NaN fails both comparisons; count it separately.
                nan += v.is_nan() as usize;
                lo = if v < lo { v } else { lo };
                hi = if v > hi { v } else { hi };
            }
            (nan, lo, hi)
        })
        .reduce(
            || (0, f32::INFINITY, f32::NEG_INFINITY),
            |a, b| (a.0 + b.0, a.1.min(b.1), a.2.max(b.2)),
        );
    if nan == data.len() {
        Summary {
            nan,
            min: f32::NAN,
            max: f32::NAN,
        }
    } else {
        Summary { nan, min, max }
    }
}

/// [`summarize`] by rows of `nx` values, also returning the indices of the rows that
/// contain NaN (one pass over the image).
pub fn summarize_rows(data: &[f32], nx: usize) -> (Summary, Vec<usize>) {
    if nx == 0 || data.is_empty() {
        return (summarize(data), Vec::new());
    }
    let avx2 = super::simd::available();
    let rows: Vec<(usize, f32, f32)> = data
        .par_chunks(nx)
        .map(|c| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: AVX2 and FMA are available (checked above).
                return unsafe { row_stats_avx2(c) };
            }
            let _ = avx2;
            row_stats(c)
        })
        .collect();
    let mut s = Summary {
        nan: 0,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };
    let mut with_nan = Vec::new();
    for (y, &(nan, lo, hi)) in rows.iter().enumerate() {
        s.nan += nan;
        s.min = s.min.min(lo);
        s.max = s.max.max(hi);
        if nan > 0 {
            with_nan.push(y);
        }
    }
    if s.nan == data.len() {
        s.min = f32::NAN;
        s.max = f32::NAN;
    }
    (s, with_nan)
}

/// NaN count, min and max of a slice, in 8 lanes so that it vectorises.
#[inline(always)]
fn row_stats(c: &[f32]) -> (usize, f32, f32) {
    const L: usize = 8;
    let mut nan = [0u32; L];
    let mut lo = [f32::INFINITY; L];
    let mut hi = [f32::NEG_INFINITY; L];
    let mut chunks = c.chunks_exact(L);
    for ch in &mut chunks {
        for l in 0..L {
            let v = ch[l];
            nan[l] += v.is_nan() as u32;
            lo[l] = if v < lo[l] { v } else { lo[l] };
            hi[l] = if v > hi[l] { v } else { hi[l] };
        }
    }
    let (mut n, mut a, mut b) = (0usize, f32::INFINITY, f32::NEG_INFINITY);
    for l in 0..L {
        n += nan[l] as usize;
        a = a.min(lo[l]);
        b = b.max(hi[l]);
    }
    for &v in chunks.remainder() {
        n += v.is_nan() as usize;
        a = if v < a { v } else { a };
        b = if v > b { v } else { b };
    }
    (n, a, b)
}

/// [`row_stats`] compiled for AVX2.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_stats_avx2(c: &[f32]) -> (usize, f32, f32) {
    row_stats(c)
}

/// Count the values below `lo` and collect those in `[lo, hi]` (NaN: neither).
#[inline(always)]
fn bracket(c: &[f32], lo: f32, hi: f32, inside: &mut Vec<f32>) -> usize {
    const L: usize = 8;
    let mut below = [0u32; L];
    let mut chunks = c.chunks_exact(L);
    for ch in &mut chunks {
        let mut any = false;
        for l in 0..L {
            let v = ch[l];
            below[l] += (v < lo) as u32;
            any |= v >= lo && v <= hi;
        }
        if any {
            inside.extend(ch.iter().copied().filter(|&v| v >= lo && v <= hi));
        }
    }
    let mut n: usize = below.iter().map(|&b| b as usize).sum();
    for &v in chunks.remainder() {
        if v < lo {
            n += 1;
        } else if v <= hi {
            inside.push(v);
        }
    }
    n
}

/// [`bracket`] compiled for AVX2.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bracket_avx2(c: &[f32], lo: f32, hi: f32, inside: &mut Vec<f32>) -> usize {
    bracket(c, lo, hi, inside)
}

/// Order-preserving map of a non-NaN `f32` to `u32` (−0 sorts just below +0).
#[inline(always)]
fn key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

#[inline(always)]
fn unkey(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k & 0x7FFF_FFFF)
    } else {
        f32::from_bits(!k)
    }
}

fn histogram(data: &[f32], bucket: impl Fn(u32) -> Option<usize> + Sync) -> Vec<u64> {
    data.par_chunks(CHUNK * 4)
        .fold(
            || vec![0u32; 1 << 16],
            |mut h, c| {
                for &v in c {
                    if !v.is_nan() {
                        if let Some(b) = bucket(key(v)) {
                            h[b] += 1;
                        }
                    }
                }
                h
            },
        )
        .map(|h| h.into_iter().map(u64::from).collect::<Vec<u64>>())
        .reduce(
            || vec![0u64; 1 << 16],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        )
}

/// Index of the bucket containing rank `k` (0-based) and the rank of that bucket's first
/// element.
fn find(h: &[u64], k: u64) -> (usize, u64) {
    let mut acc = 0u64;
    for (i, &c) in h.iter().enumerate() {
        if acc + c > k {
            return (i, acc);
        }
        acc += c;
    }
    (h.len() - 1, acc)
}

#[cfg(test)] // the unit tests' entry point; the resampler counts the valid pixels itself
/// numpy's `nanmedian` of `data` together with `extra.1` further copies of the value
/// `extra.0` (sunpy's padding, which takes part in its median): the middle value, or the
/// mean of the two middle values for an even count, in `f64`. `None` if there is no
/// non-NaN value.
///
/// Exact. Large images: a strided sample brackets the middle ranks, one parallel pass
/// counts the values below the bracket and collects those inside it (a few percent), and a
/// selection finishes; if the bracket misses (never seen on images), a radix select.
pub fn nan_median(data: &[f32], extra: Option<(f32, usize)>) -> Option<f64> {
    let valid = data
        .par_chunks(CHUNK)
        .map(|c| c.iter().filter(|v| !v.is_nan()).count())
        .sum::<usize>();
    nan_median_counted(data, valid, extra)
}

/// `nan_median` when the number of non-NaN values in `data` is already known.
pub fn nan_median_counted(data: &[f32], valid: usize, extra: Option<(f32, usize)>) -> Option<f64> {
    let extra = extra.filter(|(v, c)| !v.is_nan() && *c > 0);
    let (ev, ec) = extra.unwrap_or((0.0, 0));
    let n = valid.saturating_add(ec);
    if n == 0 {
        return None;
    }
    let (k1, k2) = ((n - 1) / 2, n / 2);
    if ec > valid {
        // The extra copies fill more than half of the ranks: both middle ranks are theirs.
        return Some(ev as f64);
    }
    if data.len() <= 1 << 18 {
        let mut all: Vec<f32> = data.iter().copied().filter(|v| !v.is_nan()).collect();
        return Some(pick(&mut all, 0, ev, ec, k1, k2));
    }
    // Bracket the middle ranks with a strided sample (padding copies in proportion).
    let stride = (data.len() / 65536).max(1);
    let mut sample: Vec<f32> = data
        .iter()
        .step_by(stride)
        .copied()
        .filter(|v| !v.is_nan())
        .collect();
    if ec > 0 && valid > 0 {
        let copies = (ec as f64 * sample.len() as f64 / valid as f64).round() as usize;
        sample.extend(std::iter::repeat_n(ev, copies));
    }
    if sample.is_empty() {
        return radix_median(data, extra);
    }
    sample.sort_unstable_by(f32::total_cmp);
    let ms = sample.len() as f64;
    let margin = 3.0 * ms.sqrt() + 32.0;
    let q1 = k1 as f64 / n as f64 * ms - margin;
    let q2 = k2 as f64 / n as f64 * ms + margin;
    let lo = if q1 < 0.0 {
        f32::NEG_INFINITY
    } else {
        sample[q1 as usize]
    };
    let hi = if q2 >= ms - 1.0 {
        f32::INFINITY
    } else {
        sample[q2.ceil() as usize]
    };
    let avx2 = super::simd::available();
    let (below, mut inside) = data
        .par_chunks(CHUNK)
        .map(|c| {
            let mut inside = Vec::new();
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: AVX2 and FMA are available (checked above).
                let below = unsafe { bracket_avx2(c, lo, hi, &mut inside) };
                return (below, inside);
            }
            (bracket(c, lo, hi, &mut inside), inside)
        })
        .reduce(
            || (0, Vec::new()),
            |mut a, mut b| {
                if a.1.len() < b.1.len() {
                    std::mem::swap(&mut a.1, &mut b.1);
                }
                a.1.extend_from_slice(&b.1);
                (a.0 + b.0, a.1)
            },
        );
    let (mut below, mut ec_in) = (below, 0usize);
    if ec > 0 {
        if ev < lo {
            below += ec;
        } else if ev <= hi {
            ec_in = ec;
        }
    }
    if below > k1 || below + inside.len() + ec_in <= k2 {
        return radix_median(data, extra);
    }
    Some(pick(&mut inside, below, ev, ec_in, k1, k2))
}

/// The mean of ranks `k1` and `k2` (0-based, in the whole population) of the multiset
/// `vals ∪ {ev × ec}`, whose smallest element has rank `base`.
fn pick(vals: &mut [f32], base: usize, ev: f32, ec: usize, k1: usize, k2: usize) -> f64 {
    let below_e = if ec > 0 {
        vals.iter().filter(|&&v| v < ev).count()
    } else {
        0
    };
    let equal_e = if ec > 0 {
        vals.iter().filter(|&&v| v == ev).count()
    } else {
        0
    };
    let mut at = |k: usize| -> f32 {
        let r = k - base;
        if ec == 0 || r < below_e {
            *vals.select_nth_unstable_by(r, f32::total_cmp).1
        } else if r < below_e + equal_e + ec {
            ev
        } else {
            *vals.select_nth_unstable_by(r - ec, f32::total_cmp).1
        }
    };
    let v1 = at(k1);
    let v2 = if k2 == k1 { v1 } else { at(k2) };
    (v1 as f64 + v2 as f64) / 2.0
}

/// [`nan_median`] by a two-pass radix select (three passes for an even count whose middle
/// values fall in different buckets): exact whatever the distribution.
fn radix_median(data: &[f32], extra: Option<(f32, usize)>) -> Option<f64> {
    let extra = extra.filter(|(v, c)| !v.is_nan() && *c > 0);
    let valid = data
        .par_chunks(CHUNK)
        .map(|c| c.iter().filter(|v| !v.is_nan()).count())
        .sum::<usize>();
    let n = valid as u64 + extra.map_or(0, |e| e.1 as u64);
    if n == 0 {
        return None;
    }
    let (k1, k2) = ((n - 1) / 2, n / 2);
    // Pass 1: high 16 bits.
    let mut hi = histogram(data, |k| Some((k >> 16) as usize));
    if let Some((v, c)) = extra {
        hi[(key(v) >> 16) as usize] += c as u64;
    }
    let (b1, base1) = find(&hi, k1);
    let (b2, base2) = find(&hi, k2);
    // Pass 2: low 16 bits within the bucket(s) b1 (and b2).
    let low_hist = |b: usize| -> Vec<u64> {
        let mut lo = histogram(data, |kk| {
            ((kk >> 16) as usize == b).then_some((kk & 0xFFFF) as usize)
        });
        if let Some((v, c)) = extra {
            let kv = key(v);
            if (kv >> 16) as usize == b {
                lo[(kv & 0xFFFF) as usize] += c as u64;
            }
        }
        lo
    };
    let value =
        |b: usize, lo: &[u64], rank: u64| unkey(((b as u32) << 16) | find(lo, rank).0 as u32);
    let lo1 = low_hist(b1);
    let v1 = value(b1, &lo1, k1 - base1);
    let v2 = if b2 == b1 {
        value(b1, &lo1, k2 - base1)
    } else {
        value(b2, &low_hist(b2), k2 - base2)
    };
    Some((v1 as f64 + v2 as f64) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(v: &[f32], extra: Option<(f32, usize)>) -> Option<f64> {
        let mut s: Vec<f64> = v
            .iter()
            .filter(|x| !x.is_nan())
            .map(|&x| x as f64)
            .collect();
        if let Some((e, c)) = extra {
            s.extend(std::iter::repeat_n(e as f64, c));
        }
        if s.is_empty() {
            return None;
        }
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = s.len();
        Some((s[(n - 1) / 2] + s[n / 2]) / 2.0)
    }

    #[test]
    fn median_matches_sort() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [1usize, 2, 3, 10, 1001, 100_000, 300_001, 1_000_000] {
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    let r = rnd();
                    if r % 17 == 0 {
                        f32::NAN
                    } else {
                        ((r >> 20) % 2000) as f32 * 0.37 - 100.0
                    }
                })
                .collect();
            assert_eq!(nan_median(&v, None), naive(&v, None), "n={n}");
            let e = Some((-100.0f32, n / 3 + 1));
            assert_eq!(nan_median(&v, e), naive(&v, e), "n={n} extra");
            let e = Some((5.0f32, n + 3)); // more padding than data
            assert_eq!(nan_median(&v, e), naive(&v, e), "n={n} extra > valid");
            assert_eq!(radix_median(&v, e), naive(&v, e), "n={n} radix");
            // most values tied at the median (integer DN images)
            let t: Vec<f32> = v.iter().map(|x| (x / 50.0).round()).collect();
            assert_eq!(nan_median(&t, None), naive(&t, None), "n={n} ties");
        }
        assert_eq!(nan_median(&[f32::NAN, f32::NAN], None), None);
        assert_eq!(nan_median(&[-0.0, 0.0, -1.5, 2.0], None), Some(0.0));
    }

    #[test]
    fn portable_kernels() {
        // The non-AVX2 code paths, called directly.
        let v: Vec<f32> = (0..1003)
            .map(|i| {
                if i % 97 == 5 {
                    f32::NAN
                } else {
                    ((i * 37) % 101) as f32 - 50.0
                }
            })
            .collect();
        let (n, lo, hi) = row_stats(&v);
        assert_eq!((n, lo, hi), (11, -50.0, 50.0));
        let mut inside = Vec::new();
        let below = bracket(&v, -10.0, 10.0, &mut inside);
        let valid: Vec<f32> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        assert_eq!(below, valid.iter().filter(|&&x| x < -10.0).count());
        assert_eq!(
            inside.len(),
            valid
                .iter()
                .filter(|&&x| (-10.0..=10.0).contains(&x))
                .count()
        );
    }

    #[test]
    fn summary() {
        let s = summarize(&[3.0, f32::NAN, -2.0, 7.5]);
        assert_eq!((s.nan, s.min, s.max), (1, -2.0, 7.5));
        let (r, rows) = summarize_rows(&[3.0, 1.0, f32::NAN, -2.0, 7.5, 0.0, 1.0, f32::NAN], 2);
        assert_eq!((r.nan, r.min, r.max, rows), (2, -2.0, 7.5, vec![1, 3]));
        let s = summarize(&[f32::NAN]);
        assert!(s.min.is_nan() && s.max.is_nan() && s.nan == 1);
    }
}
