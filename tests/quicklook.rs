//! Quicklooks (host/quicklook): the SDO/AIA colour tables against sunpy's own
//! (`tests/parity/make_colormap_fixtures.py`, sunpy 7.0.5 / matplotlib 3.11.2) and hard values
//! of numpy's rounding; the block average against a naive f64 mean; the stretch, the row flip,
//! missing pixels and the PNG against the formulas of the module docs, evaluated here
//! directly in f64.

mod common;

use aiaprep::quicklook::{
    self, colour_table, colour_table_f64, png_bytes, png_bytes_with, render_rgb, write_png_with,
    QuicklookOptions, Stretch, CHANNELS,
};
use ndarray::Array2;

const SUNPY_CHANNELS: [u32; 10] = [94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500];

/// sunpy's `cmap(np.arange(256) / 255)[:, :3]` for `sdoaia<channel>`.
fn sunpy_table(channel: u32) -> Array2<f64> {
    let t = common::npy::read2(&common::fixture(&format!("cmap_sdoaia{channel}.npy")));
    assert_eq!(t.dim(), (256, 3));
    t
}

#[test]
fn colour_tables_equal_sunpy_bit_for_bit() {
    assert_eq!(CHANNELS, SUNPY_CHANNELS);
    for ch in SUNPY_CHANNELS {
        let ours = colour_table_f64(ch).unwrap();
        let theirs = sunpy_table(ch);
        for k in 0..256 {
            for c in 0..3 {
                assert_eq!(
                    ours[k][c].to_bits(),
                    theirs[[k, c]].to_bits(),
                    "sdoaia{ch}[{k}][{c}]: {} vs sunpy {}",
                    ours[k][c],
                    theirs[[k, c]]
                );
            }
        }
    }
    // Two raw values quoted from sunpy (float32-derived and float64-derived curves).
    let t94 = colour_table_f64(94).unwrap();
    assert_eq!(
        t94[1],
        [
            1.5378702300949953e-05,
            0.041753415018320084,
            0.003921568859368563
        ]
    );
    assert_eq!(
        colour_table_f64(171).unwrap()[128],
        [0.7254901960784313, 0.501960813999176, 0.0]
    );
}

#[test]
fn colour_tables_u8_are_sunpy_times_255_rounded_half_even() {
    for ch in SUNPY_CHANNELS {
        let ours = colour_table(ch).unwrap();
        let theirs = sunpy_table(ch);
        for k in 0..256 {
            for c in 0..3 {
                let want = (theirs[[k, c]] * 255.0).round_ties_even();
                assert_eq!(ours[k][c] as f64, want, "sdoaia{ch}[{k}][{c}]");
            }
        }
    }
    // numpy's (cmap(np.arange(256)/255)[:, :3] * 255).round() at k = 1, 64, 128, 200, 254.
    let rows: [(u32, [[u8; 3]; 5]); 10] = [
        (
            94,
            [
                [0, 11, 1],
                [16, 91, 64],
                [64, 142, 128],
                [157, 203, 200],
                [253, 254, 254],
            ],
        ),
        (
            131,
            [
                [0, 1, 1],
                [0, 92, 92],
                [15, 185, 185],
                [151, 255, 255],
                [253, 255, 255],
            ],
        ),
        (
            171,
            [
                [1, 1, 0],
                [92, 64, 0],
                [185, 128, 0],
                [255, 200, 39],
                [255, 254, 251],
            ],
        ),
        (
            193,
            [
                [16, 1, 0],
                [128, 64, 16],
                [181, 128, 64],
                [226, 200, 157],
                [254, 254, 253],
            ],
        ),
        (
            211,
            [
                [16, 1, 11],
                [128, 64, 91],
                [181, 128, 142],
                [226, 200, 203],
                [254, 254, 254],
            ],
        ),
        (
            304,
            [
                [1, 0, 0],
                [92, 0, 0],
                [185, 15, 0],
                [255, 151, 39],
                [255, 253, 251],
            ],
        ),
        (
            335,
            [
                [0, 1, 16],
                [16, 64, 128],
                [64, 128, 181],
                [157, 200, 226],
                [253, 254, 254],
            ],
        ),
        (
            1600,
            [
                [11, 11, 0],
                [91, 91, 16],
                [142, 142, 64],
                [203, 203, 157],
                [254, 254, 253],
            ],
        ),
        (
            1700,
            [
                [16, 1, 1],
                [128, 64, 64],
                [181, 128, 128],
                [226, 200, 200],
                [254, 254, 254],
            ],
        ),
        (
            4500,
            [
                [1, 1, 0],
                [64, 64, 0],
                [128, 128, 0],
                [200, 200, 20],
                [254, 254, 126],
            ],
        ),
    ];
    for (ch, want) in rows {
        let t = colour_table(ch).unwrap();
        for (k, w) in [1, 64, 128, 200, 254].into_iter().zip(want) {
            assert_eq!(t[k], w, "sdoaia{ch}[{k}]");
        }
        assert_eq!(t[0], [0, 0, 0], "sdoaia{ch}[0]");
        let top = if ch == 4500 {
            [255, 255, 128]
        } else {
            [255; 3]
        };
        assert_eq!(t[255], top, "sdoaia{ch}[255]");
    }
    // The 4500 blue hits exact halves 52.5, 54.5, …, 76.5 at k = 217…229: ties go to even
    // (half away from zero would give 53, 55, …, 77).
    let t = colour_table(4500).unwrap();
    let blue: Vec<u8> = t[217..=229].iter().map(|rgb| rgb[2]).collect();
    assert_eq!(blue, (52..=76).step_by(2).collect::<Vec<u8>>());
}

#[test]
fn channels_without_a_table_are_grey() {
    for ch in [0, 1, 6173, 1599, 170, 5000] {
        assert!(colour_table(ch).is_none() && colour_table_f64(ch).is_none());
    }
    let a = Array2::from_shape_fn((8, 8), |(j, i)| (j * 8 + i) as f32);
    let opts = QuicklookOptions {
        channel: Some(6173),
        ..QuicklookOptions::default()
    };
    let r = render_rgb(a.view(), &opts);
    assert!(!r.colour);
    assert_eq!(r.pixels.len(), 64);
    assert!(
        render_rgb(
            a.view(),
            &QuicklookOptions {
                channel: Some(193),
                ..opts
            }
        )
        .colour
    );
}

/// SplitMix64 (a fixed, seeded stream for the test images).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An `ny × nx` image: values `exp(U(0, 9)) − 20` (−19 … ~8100, most near the bottom, as a
/// solar image) rounded to multiples of 1/64, so any f64 sum of up to 2^20 of them is exact
/// whatever the order; a fraction `nan` of the pixels missing.
fn test_image(ny: usize, nx: usize, seed: u64, nan: f64) -> Array2<f32> {
    let mut rng = Rng(seed);
    Array2::from_shape_fn((ny, nx), |_| {
        let v = ((9.0 * rng.uniform()).exp() - 20.0) * 64.0;
        if rng.uniform() < nan {
            f32::NAN
        } else {
            (v.round() / 64.0) as f32
        }
    })
}

/// The naive block mean: pixel `[b, c]` = f64 mean of the finite values of the `f × f` block
/// at `[b·f, c·f]` (cut at the edges), NaN if none. FITS orientation.
fn naive_block_mean(a: &Array2<f32>, f: usize) -> Array2<f32> {
    let (ny, nx) = a.dim();
    Array2::from_shape_fn((ny.div_ceil(f), nx.div_ceil(f)), |(b, c)| {
        let (mut s, mut n) = (0f64, 0usize);
        for j in b * f..(b * f + f).min(ny) {
            for i in c * f..(c * f + f).min(nx) {
                if a[[j, i]].is_finite() {
                    s += a[[j, i]] as f64;
                    n += 1;
                }
            }
        }
        if n == 0 {
            f32::NAN
        } else {
            (s / n as f64) as f32
        }
    })
}

#[test]
fn downsample_is_the_nan_ignoring_block_mean() {
    let mut a = test_image(61, 83, 20_250_115, 0.15);
    // One block entirely missing (rows 8..12, columns 4..8 at f = 4), one infinite pixel.
    a.slice_mut(ndarray::s![8..12, 4..8]).fill(f32::NAN);
    a[[0, 1]] = f32::INFINITY;
    assert!(a.iter().filter(|v| v.is_finite()).any(|&v| v != 0.0));
    for f in [1, 2, 4, 5, 7, 100] {
        let ours = quicklook::downsample(a.view(), f);
        let want = naive_block_mean(&a, f);
        assert_eq!(ours.dim(), want.dim(), "f = {f}");
        for ((idx, o), w) in ours.indexed_iter().zip(want.iter()) {
            assert!(
                o.to_bits() == w.to_bits() || (o.is_nan() && w.is_nan()),
                "f = {f}, {idx:?}: {o} vs {w}"
            );
        }
    }
    assert!(quicklook::downsample(a.view(), 4)[[2, 1]].is_nan());
    // A non-contiguous view (every other column) reduces as its copy does.
    let strided = a.slice(ndarray::s![.., ..;2]);
    let ours = quicklook::downsample(strided, 3);
    let want = naive_block_mean(&strided.to_owned(), 3);
    assert!(ours
        .iter()
        .zip(&want)
        .all(|(o, w)| o.to_bits() == w.to_bits() || (o.is_nan() && w.is_nan())));
}

/// The bin (0…=255) of every display pixel (top row first) by the module's formulas in f64,
/// or None for a missing pixel, with whether it lies within 1e-6 of a bin edge (either bin
/// is then accepted), plus the clip levels, the width and the height.
struct Expected {
    bins: Vec<Option<(usize, bool)>>,
    lo: f32,
    hi: f32,
    width: usize,
    height: usize,
}

fn expected(a: &Array2<f32>, size: usize, stretch: Stretch) -> Expected {
    let (ny, nx) = a.dim();
    let f = if size == 0 {
        1
    } else {
        ny.max(nx).div_ceil(size)
    };
    let red = naive_block_mean(a, f);
    let (h, w) = red.dim();
    assert!(
        h * w <= quicklook::SAMPLE_LIMIT,
        "the oracle takes every pixel"
    );
    let mut finite: Vec<f32> = red.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(f32::total_cmp);
    let m = finite.len();
    let pick = |q: f64| finite[((m - 1) as f64 * q).round() as usize];
    let (lo, hi) = (pick(0.005), pick(0.999));
    let (lo64, hi64) = (lo as f64, hi as f64);
    let g = |v: f64| -> f64 {
        match stretch {
            Stretch::Asinh => {
                let x = (v - lo64) / (hi64 - lo64);
                (x / 0.01).asinh() / (1.0f64 / 0.01).asinh()
            }
            Stretch::Log => {
                let b = lo64.max(hi64 / 1000.0);
                (v.max(b).log10() - b.log10()) / (hi64.log10() - b.log10())
            }
        }
    };
    let mut bins = Vec::with_capacity(h * w);
    for r in 0..h {
        for c in 0..w {
            let v = red[[h - 1 - r, c]];
            bins.push(v.is_finite().then(|| {
                let x = 256.0 * g(v as f64);
                let k = x.floor().clamp(0.0, 255.0) as usize;
                let edge = x > 0.5 && x < 255.5 && (x - x.round()).abs() < 1e-6;
                (k, edge)
            }));
        }
    }
    Expected {
        bins,
        lo,
        hi,
        width: w,
        height: h,
    }
}

/// Whether bin `got` is what `want` allows.
fn bin_ok(got: usize, want: Option<(usize, bool)>) -> bool {
    match want {
        None => got == 0,
        Some((k, false)) => got == k,
        Some((k, true)) => got.abs_diff(k) <= 1,
    }
}

#[test]
fn stretch_follows_the_formula_and_maps_the_clip_levels_to_0_and_255() {
    let a = test_image(300, 241, 7_041_975, 0.05);
    for (size, stretch) in [
        (100, Stretch::Asinh),
        (100, Stretch::Log),
        (0, Stretch::Asinh),
        (0, Stretch::Log),
    ] {
        let opts = QuicklookOptions {
            size,
            stretch,
            channel: None,
        };
        let r = render_rgb(a.view(), &opts);
        let e = expected(&a, size, stretch);
        assert_eq!((r.width, r.height), (e.width, e.height));
        assert!(!r.colour);
        let bottom = match stretch {
            Stretch::Asinh => e.lo,
            Stretch::Log => (e.lo as f64).max(e.hi as f64 / 1000.0) as f32,
        };
        assert_eq!(r.range, (bottom, e.hi), "{opts:?}");
        assert!(e.lo < e.hi);
        let (mut at_lo, mut at_hi, mut mid) = (0, 0, 0);
        let mut hist = [0usize; 256];
        for (i, (&got, &want)) in r.pixels.iter().zip(&e.bins).enumerate() {
            assert!(
                bin_ok(got as usize, want),
                "{opts:?} pixel {i}: {got} vs {want:?}"
            );
            hist[got as usize] += 1;
            if let Some((k, _)) = want {
                at_lo += (k == 0) as usize;
                at_hi += (k == 255) as usize;
                mid += (k > 0 && k < 255) as usize;
            }
        }
        // The clip levels themselves are pixels of the image: lo → 0, hi → 255.
        let values: Vec<f32> = match size {
            0 => (0..a.nrows())
                .rev()
                .flat_map(|j| a.row(j).to_vec())
                .collect(),
            _ => {
                let red = quicklook::downsample(a.view(), quicklook::factor(300, 241, size));
                (0..red.nrows())
                    .rev()
                    .flat_map(|j| red.row(j).to_vec())
                    .collect()
            }
        };
        for (v, &p) in values.iter().zip(&r.pixels) {
            if *v == e.lo || *v == bottom {
                assert_eq!(p, 0, "{opts:?}: the low clip level {v}");
            }
            if *v >= e.hi {
                assert_eq!(p, 255, "{opts:?}: at or above the high clip level {v}");
            }
            if *v < e.lo {
                assert_eq!(p, 0, "{opts:?}: below the low clip level {v}");
            }
        }
        assert!(values.contains(&e.lo) && values.contains(&e.hi));
        assert!(
            at_lo > 0 && at_hi > 0 && mid > r.pixels.len() / 3,
            "{opts:?}"
        );
        assert!(
            hist.iter().filter(|&&n| n > 0).count() > 200,
            "{opts:?} uses the range"
        );
    }
}

#[test]
fn solar_north_is_up() {
    // Data row j holds j + 1: row 0 (the bottom of the FITS image) is the dimmest.
    let a = Array2::from_shape_fn((20, 30), |(j, _)| j as f32 + 1.0);
    for size in [0, 15] {
        let opts = QuicklookOptions {
            size,
            ..QuicklookOptions::default()
        };
        let r = render_rgb(a.view(), &opts);
        let w = r.width;
        assert_eq!((w, r.height), if size == 0 { (30, 20) } else { (15, 10) });
        let rows: Vec<&[u8]> = r.pixels.chunks(w).collect();
        assert!(
            rows[0].iter().all(|&p| p == 255),
            "top row is the last data row"
        );
        assert!(
            rows[r.height - 1].iter().all(|&p| p == 0),
            "bottom row is data row 0"
        );
        assert!(
            rows.windows(2).all(|p| p[0][0] > p[1][0]),
            "brighter towards the top"
        );
    }
}

#[test]
fn missing_pixels_are_black() {
    // Values 100…199 with one missing pixel and, at f = 2, one missing block and one block
    // with a single finite pixel.
    let mut a = Array2::from_shape_fn((10, 10), |(j, i)| 100.0 + (j * 10 + i) as f32);
    a[[9, 9]] = f32::NAN; // top-right at full size
    for (j, i) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2)] {
        a[[j, i]] = f32::NAN;
    }
    let t = colour_table(304).unwrap();
    let full = render_rgb(
        a.view(),
        &QuicklookOptions {
            size: 0,
            stretch: Stretch::Asinh,
            channel: Some(304),
        },
    );
    assert!(full.colour && full.pixels.len() == 300);
    assert_eq!(&full.pixels[27..30], &[0, 0, 0], "NaN at [9, 9]");
    assert_eq!(
        &full.pixels[24..27],
        &t[255],
        "[9, 8] is the brightest finite pixel"
    );
    let half = render_rgb(
        a.view(),
        &QuicklookOptions {
            size: 5,
            stretch: Stretch::Asinh,
            channel: Some(304),
        },
    );
    assert_eq!((half.width, half.height), (5, 5));
    let px = |r: usize, c: usize| &half.pixels[(r * 5 + c) * 3..(r * 5 + c) * 3 + 3];
    assert_eq!(px(4, 0), &[0, 0, 0], "block [0, 0] has no finite pixel");
    // Block [1, 1] keeps a[3, 3] = 133 alone: brighter than block [1, 0] (mean 125.5).
    assert_ne!(px(3, 1), &[0, 0, 0]);
    assert!(px(3, 1)[0] > px(3, 0)[0] || px(3, 1)[1] > px(3, 0)[1]);
    // No finite pixel at all: all black, no range.
    let none = Array2::from_elem((4, 4), f32::NAN);
    let r = render_rgb(none.view(), &QuicklookOptions::default());
    assert!(r.pixels.iter().all(|&p| p == 0) && r.range.0.is_nan() && r.range.1.is_nan());
}

#[test]
fn rgb_png_decodes_to_the_colour_table() {
    let a = test_image(160, 96, 1_234_567, 0.02);
    let size = 40; // f = 4: 40 × 24
    let opts = QuicklookOptions {
        size,
        stretch: Stretch::Asinh,
        channel: Some(171),
    };
    let bytes = png_bytes_with(a.view(), &opts).unwrap();
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let info = dec.info();
    assert_eq!((info.width, info.height), (24, 40));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let frame = dec.next_frame(&mut buf).unwrap();
    let img = &buf[..frame.buffer_size()];
    assert_eq!(img.len(), 24 * 40 * 3);

    // Every unambiguous pixel is sunpy's sdoaia171 entry of its bin; and one chosen pixel.
    let sunpy = sunpy_table(171);
    let rgb = |k: usize| -> [u8; 3] {
        [0, 1, 2].map(|c| (sunpy[[k, c]] * 255.0).round_ties_even() as u8)
    };
    let e = expected(&a, size, Stretch::Asinh);
    let mut checked = 0;
    for (i, want) in e.bins.iter().enumerate() {
        let got = &img[3 * i..3 * i + 3];
        match want {
            None => assert_eq!(got, &[0, 0, 0], "pixel {i} missing"),
            Some((k, false)) => {
                assert_eq!(got, &rgb(*k), "pixel {i}, bin {k}");
                checked += 1;
            }
            Some((_, true)) => {}
        }
    }
    assert!(checked > 900);
    // Display pixel (row 10, column 7) = block [29, 7] of the FITS image.
    let (k, _) = e.bins[10 * 24 + 7].unwrap();
    assert!(k > 0 && k < 255, "a mid-range pixel (bin {k})");
    assert_eq!(&img[3 * (10 * 24 + 7)..][..3], &rgb(k));
    // The bytes are the rendered pixels.
    assert_eq!(img, render_rgb(a.view(), &opts).pixels.as_slice());
}

#[test]
fn defaults_are_1024_pixels_asinh_grey() {
    let d = QuicklookOptions::default();
    assert_eq!(
        d,
        QuicklookOptions {
            size: 1024,
            stretch: Stretch::Asinh,
            channel: None
        }
    );
    // 2100 × 1000 → f = 3 → 700 × 334, greyscale.
    let a = test_image(1000, 2100, 99, 0.0);
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes(a.view()).unwrap()))
        .read_info()
        .unwrap();
    assert_eq!((dec.info().width, dec.info().height), (700, 334));
    assert_eq!(dec.info().color_type, png::ColorType::Grayscale);
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    dec.next_frame(&mut buf).unwrap();
    assert_eq!(buf, render_rgb(a.view(), &d).pixels);
}

#[test]
fn write_png_with_writes_the_file_or_names_it_in_the_error() {
    let a = test_image(50, 40, 5, 0.1);
    let opts = QuicklookOptions {
        size: 0,
        stretch: Stretch::Log,
        channel: Some(94),
    };
    let dir = std::env::temp_dir().join(format!("aiaprep-quicklook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("q.png");
    write_png_with(a.view(), &p, &opts).unwrap();
    assert_eq!(
        std::fs::read(&p).unwrap(),
        png_bytes_with(a.view(), &opts).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let bad = dir.join("missing").join("q.png");
    match write_png_with(a.view(), &bad, &opts) {
        Err(aiaprep::Error::Io { file, reason }) => {
            assert_eq!(file.path(), Some(bad.as_path()));
            assert!(reason.contains("PNG"), "{reason}");
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[test]
fn an_image_without_pixels_is_an_error_not_a_panic() {
    for (ny, nx) in [(0, 5), (5, 0), (0, 0)] {
        let a = Array2::<f32>::zeros((ny, nx));
        for size in [0, 1024] {
            let opts = QuicklookOptions {
                size,
                channel: Some(171),
                ..QuicklookOptions::default()
            };
            let r = render_rgb(a.view(), &opts);
            assert!(r.pixels.is_empty() && r.range.0.is_nan());
            assert!(matches!(
                png_bytes_with(a.view(), &opts),
                Err(aiaprep::Error::Io { .. })
            ));
        }
    }
}
