//! Geometry of `register` at full size, the full-disk test against sunpy, the output
//! header and the error cases.

mod common;

use aiaprep::cpu::register;
use aiaprep::geometry::{contains_full_disk, full_disk_check, FullDiskFailure};
use aiaprep::register::{Interpolation, Missing, RegisterOptions};
use aiaprep::synth::{header, SynthOptions};
use aiaprep::{AiaMap, Error, Geometry, Header, Source, Value};
use common::fixture;
use ndarray::Array2;

/// `∫ sqrt(R² − u²) du` (an antiderivative), for |u| ≤ R.
fn semicircle_primitive(u: f64, r: f64) -> f64 {
    let u = u.clamp(-r, r);
    0.5 * (u * (r * r - u * u).max(0.0).sqrt() + r * r * (u / r).asin())
}

/// Exact area of `[x0, x1] × [y0, y1]` inside the disk of centre `(xc, yc)`, radius `r`.
fn cell_coverage(x0: f64, x1: f64, y0: f64, y1: f64, xc: f64, yc: f64, r: f64) -> f64 {
    // Breakpoints in x where the clipped chord changes form.
    let mut xs = vec![x0, x1];
    for y in [y0, y1] {
        let d = r * r - (y - yc) * (y - yc);
        if d > 0.0 {
            xs.push(xc - d.sqrt());
            xs.push(xc + d.sqrt());
        }
    }
    xs.push(xc - r);
    xs.push(xc + r);
    xs.retain(|&x| x >= x0 && x <= x1);
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut area = 0.0;
    for w in xs.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b <= a {
            continue;
        }
        let m = 0.5 * (a + b);
        let hm2 = r * r - (m - xc) * (m - xc);
        if hm2 <= 0.0 {
            continue;
        }
        let hm = hm2.sqrt();
        let top_is_circle = yc + hm < y1;
        let bot_is_circle = yc - hm > y0;
        if (if top_is_circle { yc + hm } else { y1 }) <= (if bot_is_circle { yc - hm } else { y0 })
        {
            continue;
        }
        let ih = semicircle_primitive(b - xc, r) - semicircle_primitive(a - xc, r);
        let top = if top_is_circle {
            yc * (b - a) + ih
        } else {
            y1 * (b - a)
        };
        let bot = if bot_is_circle {
            yc * (b - a) - ih
        } else {
            y0 * (b - a)
        };
        area += top - bot;
    }
    area
}

/// Add `value × coverage` of a disk (pixel (i, j) covers [i−½, i+½] × [j−½, j+½]).
fn add_disk(img: &mut Array2<f32>, xc: f64, yc: f64, r: f64, value: f64) {
    let (ny, nx) = img.dim();
    let j0 = ((yc - r - 1.0).floor().max(0.0)) as usize;
    let j1 = ((yc + r + 1.0).ceil() as usize).min(ny - 1);
    for j in j0..=j1 {
        let y = j as f64;
        let dy = (y - yc).abs();
        let half = (r * r - (dy - 0.75).max(0.0).powi(2)).max(0.0).sqrt() + 1.0;
        let i0 = ((xc - half).floor().max(0.0)) as usize;
        let i1 = ((xc + half).ceil() as usize).min(nx - 1);
        for i in i0..=i1 {
            let x = i as f64;
            // Corners fully inside/outside shortcut.
            let far = ((x - xc).abs() + 0.5).hypot(dy + 0.5);
            let near = ((x - xc).abs() - 0.5).max(0.0).hypot((dy - 0.5).max(0.0));
            let c = if far <= r {
                1.0
            } else if near >= r {
                0.0
            } else {
                cell_coverage(x - 0.5, x + 0.5, y - 0.5, y + 0.5, xc, yc, r)
            };
            img[[j, i]] += (value * c) as f32;
        }
    }
}

#[test]
fn coverage_is_exact() {
    // A unit cell well inside, outside, and the total area of a small disk.
    assert!((cell_coverage(-0.5, 0.5, -0.5, 0.5, 0.0, 0.0, 10.0) - 1.0).abs() < 1e-12);
    assert_eq!(cell_coverage(20.0, 21.0, 0.0, 1.0, 0.0, 0.0, 10.0), 0.0);
    let mut img = Array2::<f32>::zeros((64, 64));
    add_disk(&mut img, 31.3, 30.8, 12.7, 1.0);
    let total: f64 = img.iter().map(|&v| v as f64).sum();
    let exact = std::f64::consts::PI * 12.7 * 12.7;
    assert!((total - exact).abs() < 1e-3, "{total} vs {exact}");
    // half-plane cut by a chord through a cell centre: symmetric cell gets 1/2
    let half = cell_coverage(-0.5, 0.5, -0.5, 0.5, 0.0, -1e6, 1e6);
    assert!((half - 0.5).abs() < 1e-6, "{half}");
}

/// A uniform disk (the Sun) centred on the reference pixel of a full frame with the
/// AIA-like offset, plate scale and roll, plus a small disk at a known world offset:
/// after register the Sun is centred on 2047.5 with radius RSUN_OBS/0.6, and the small
/// disk sits at 2047.5 + offset/0.6 (which checks the sense of the roll).
#[test]
fn full_frame_disk_lands_on_the_centre() {
    let opts = SynthOptions::default(); // 4096², CDELT 0.6007, CRPIX 2053.2/2045.7, −0.13°
    let h = header(&opts);
    let mut img = Array2::<f32>::zeros((4096, 4096));
    let (rx, ry) = (opts.crpix[0] - 1.0, opts.crpix[1] - 1.0);
    let r_in = opts.rsun_obs / opts.cdelt;
    add_disk(&mut img, rx, ry, r_in, 1000.0);
    // Small disk at world offset (1100″, 500″): input = ref + R⁻¹·T/CDELT.
    let th = opts.roll_deg.to_radians();
    let (tx, ty) = (1100.0 / opts.cdelt, 500.0 / opts.cdelt);
    let (sx, sy) = (
        rx + th.cos() * tx + th.sin() * ty,
        ry - th.sin() * tx + th.cos() * ty,
    );
    add_disk(&mut img, sx, sy, 30.0, 500.0);
    let map = AiaMap::new(img, h, Source::memory());
    let out = register(&map, &RegisterOptions::default()).unwrap();
    assert_eq!(out.data.dim(), (4096, 4096));

    let (ex, ey) = (2047.5 + 1100.0 / 0.6, 2047.5 + 500.0 / 0.6);
    let (mut s, mut sxw, mut syw) = (0.0f64, 0.0f64, 0.0f64);
    let (mut q, mut qx, mut qy) = (0.0f64, 0.0f64, 0.0f64);
    for ((j, i), &v) in out.data.indexed_iter() {
        assert!(!v.is_nan());
        let v = v as f64;
        let (x, y) = (i as f64, j as f64);
        if (x - ex).hypot(y - ey) < 80.0 {
            q += v;
            qx += v * x;
            qy += v * y;
        } else {
            s += v;
            sxw += v * x;
            syw += v * y;
        }
    }
    let (cx, cy) = (sxw / s, syw / s);
    let radius = (s / 1000.0 / std::f64::consts::PI).sqrt();
    let expected_r = opts.rsun_obs / 0.6;
    println!("Sun centre ({cx:.4}, {cy:.4}), radius {radius:.4} (expected {expected_r:.4})");
    assert!((cx - 2047.5).abs() < 0.02 && (cy - 2047.5).abs() < 0.02);
    assert!((radius - expected_r).abs() < 0.05);
    let (px, py) = (qx / q, qy / q);
    println!("small disk at ({px:.4}, {py:.4}), expected ({ex:.4}, {ey:.4})");
    assert!((px - ex).abs() < 0.02 && (py - ey).abs() < 0.02);
    // Its flux scales with the pixel area, (CDELT/0.6)², up to the spline's undershoot
    // around it, which is clipped at the data minimum 0 (+0.26 %).
    let expected_q = 500.0 * std::f64::consts::PI * 900.0 * (opts.cdelt / 0.6).powi(2);
    assert!((q / expected_q - 1.0).abs() < 5e-3, "{q} vs {expected_q}");
}

fn parse_header(name: &str) -> Header {
    Header::parse(&std::fs::read_to_string(fixture(name)).unwrap())
}

/// Our full-disk test against sunpy's `contains_full_disk` on full frames, a cut-out, an
/// off-disk corner, a Sun centre outside, a disk touching an edge, and off-centre CRVAL.
#[test]
fn full_disk_matches_sunpy() {
    let list = std::fs::read_to_string(fixture("reg_fulldisk.txt")).unwrap();
    let mut n = 0;
    let (mut yes, mut no) = (0, 0);
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let h = parse_header(f[0]);
        let shape = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let expected: bool = f[3].parse().unwrap();
        let g = Geometry::from_header(&h, shape, &Source::memory()).unwrap();
        let ours = full_disk_check(&g);
        assert_eq!(ours.is_ok(), expected, "{}: {:?}", f[0], ours);
        assert_eq!(contains_full_disk(&g), expected);
        n += 1;
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(n >= 8 && yes >= 3 && no >= 4, "{n} cases");
}

#[test]
fn full_disk_failure_reasons() {
    let g = |crpix: [f64; 2], shape: (usize, usize)| {
        let h = header(&SynthOptions::default());
        let mut g = Geometry::from_header(&h, (4096, 4096), &Source::memory()).unwrap();
        g.crpix = crpix;
        g.shape = shape;
        g
    };
    assert!(full_disk_check(&g([2053.2, 2045.7], (4096, 4096))).is_ok());
    // a 1000² cut-out around the disk centre: edges on the disk
    match full_disk_check(&g([500.0, 500.0], (1000, 1000))) {
        Err(FullDiskFailure::EdgeOnDisk { edge, .. }) => assert_eq!(edge, "top"),
        other => panic!("{other:?}"),
    }
    // a corner far off the disk: edges fine, centre outside
    match full_disk_check(&g([3000.0, 3000.0], (200, 200))) {
        Err(FullDiskFailure::CentreOutside {
            pixel: Some((x, y)),
        }) => {
            assert!((x - 2999.0).abs() < 1e-6 && (y - 2999.0).abs() < 1e-6)
        }
        other => panic!("{other:?}"),
    }
}

/// The header after register (real 128² level-1 file).
#[test]
fn output_header() {
    let text = std::fs::read_to_string(fixture("reg_real128_header.txt")).unwrap();
    let mut h = Header::parse(&text);
    h.set_f64("XCEN", 12.0, None);
    h.set_f64("YCEN", -7.0, None);
    h.set_f64("CD1_1", 19.18, None); // ignored (PC absent, CD present → CD wins): remove
    h.remove("CD1_1");
    let data = common::npy::read2(&fixture("reg_real128_in.npy")).mapv(|v| v as f32);
    let map = AiaMap::new(data, h.clone(), Source::file("real128.fits"));
    let out = register(&map, &RegisterOptions::default()).unwrap();
    let o = &out.header;
    let f = |k: &str| o.get_f64(k).unwrap();
    assert_eq!(f("LVL_NUM"), 1.5);
    assert!((f("CDELT1") - 19.2).abs() < 1e-12 && (f("CDELT2") - 19.2).abs() < 1e-12);
    assert_eq!((f("CRPIX1"), f("CRPIX2")), (64.5, 64.5));
    assert_eq!(f("CROTA2"), 0.0);
    for k in ["PC1_1", "PC1_2", "PC2_1", "PC2_2"] {
        assert!(
            !o.contains(k),
            "{k}: CROTA2 and PCi_j are mutually exclusive"
        );
    }
    assert!((f("R_SUN") - h.get_f64("RSUN_OBS").unwrap() / 19.2).abs() < 1e-9);
    assert_eq!(f("XCEN"), h.get_f64("CRVAL1").unwrap());
    assert_eq!(f("YCEN"), h.get_f64("CRVAL2").unwrap());
    assert_eq!(f("CRVAL1"), h.get_f64("CRVAL1").unwrap());
    assert_eq!(o.get("NAXIS1"), Some(&Value::Int(128)));
    assert!(!o.contains("CROTA1") && !o.contains("CD1_1"));
    let hist: Vec<&str> = o
        .cards()
        .iter()
        .filter(|c| c.key == "HISTORY")
        .filter_map(|c| c.value.as_str())
        .collect();
    let last = hist.join("");
    assert!(
        last.contains(&format!(
            "aiaprep {} register: interpolation=spline",
            aiaprep::VERSION
        )) && last.contains("missing=min")
            && last.contains("scale factor")
            && last.contains("roll 0.0194"),
        "{last}"
    );
    // everything else passes through unchanged
    for key in ["T_OBS", "WAVELNTH", "EXPTIME", "DSUN_OBS", "QUALITY", "FSN"] {
        if let Some(c) = h.card(key) {
            assert_eq!(o.card(key), Some(c), "{key}");
        }
    }
    assert_eq!(out.source, map.source);
}

#[test]
fn errors_name_the_file() {
    let text = std::fs::read_to_string(fixture("reg_real128_header.txt")).unwrap();
    let base = Header::parse(&text);
    let data = common::npy::read2(&fixture("reg_real128_in.npy")).mapv(|v| v as f32);
    let src = Source::file("some/dir/x.fits");
    let opts = RegisterOptions::default();

    // Not full disk: a cut-out
    let cut = data.slice(ndarray::s![30..90, 20..100]).to_owned();
    let e = register(&AiaMap::new(cut.clone(), base.clone(), src.clone()), &opts).unwrap_err();
    assert!(matches!(e, Error::NotFullDisk { .. }), "{e}");
    assert!(
        e.to_string().contains("x.fits") && e.to_string().contains("edge"),
        "{e}"
    );
    // ... unless the check is off
    let o2 = RegisterOptions {
        check_full_disk: false,
        ..opts
    };
    let r = register(&AiaMap::new(cut, base.clone(), src.clone()), &o2).unwrap();
    assert_eq!(r.data.dim(), (60, 80));

    // Missing geometry keyword
    let mut h = base.clone();
    h.remove("CRPIX1");
    let e = register(&AiaMap::new(data.clone(), h, src.clone()), &opts).unwrap_err();
    assert!(
        matches!(e, Error::MissingKeyword { ref key, .. } if key == "CRPIX1"),
        "{e}"
    );

    // Absurd plate scale: CDELT1 = 1e-6″ on a binned image → target scale 0
    let mut h = base.clone();
    h.set_f64("CDELT1", 1e-6, None);
    h.set_f64("CDELT2", 1e-6, None);
    let e = register(&AiaMap::new(data.clone(), h, src.clone()), &o2).unwrap_err();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e}");
    assert!(e.to_string().contains("x.fits"));

    // Non-finite missing value
    let o3 = RegisterOptions {
        missing: Missing::Value(f64::INFINITY),
        ..opts
    };
    let e = register(&AiaMap::new(data.clone(), base.clone(), src.clone()), &o3).unwrap_err();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e}");

    // Level 1.5 input is not an error here (the pipeline warns)
    let mut h = base.clone();
    h.set_f64("LVL_NUM", 1.5, None);
    assert!(register(&AiaMap::new(data.clone(), h, src.clone()), &opts).is_ok());

    // Empty image
    let e = register(
        &AiaMap::new(Array2::zeros((0, 0)), base.clone(), src.clone()),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");

    // All interpolations run on the real image and keep its range
    for interpolation in [
        Interpolation::Nearest,
        Interpolation::Linear,
        Interpolation::Spline,
        Interpolation::Keys,
    ] {
        let o = RegisterOptions {
            interpolation,
            ..opts
        };
        let r = register(&AiaMap::new(data.clone(), base.clone(), src.clone()), &o).unwrap();
        let lo = data.iter().fold(f32::INFINITY, |a, &b| a.min(b));
        let hi = data.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        assert!(
            r.data.iter().all(|&v| v >= lo && v <= hi),
            "{interpolation}"
        );
    }
}

/// Degenerate sizes (1 × 1, thin strips, small odd shapes), every interpolation and
/// missing rule, with NaN pixels and a large roll: no panic, the right shape, values
/// within the input range or NaN.
#[test]
fn tiny_and_odd_images() {
    for &(nx, ny) in &[
        (1usize, 1usize),
        (2, 1),
        (1, 3),
        (2, 2),
        (5, 4),
        (7, 9),
        (33, 17),
    ] {
        for &roll in &[0.0, -0.13, 45.0, 180.0] {
            let mut h = Header::new();
            for (k, v) in [
                ("CRPIX1", (nx as f64 + 1.0) / 2.0 + 0.3),
                ("CRPIX2", (ny as f64 + 1.0) / 2.0 - 0.2),
                ("CRVAL1", 0.0),
                ("CRVAL2", 0.0),
                ("CDELT1", 0.6007),
                ("CDELT2", 0.6007),
                ("CROTA2", roll),
                ("RSUN_OBS", 962.0),
                ("DSUN_OBS", 1.49e11),
            ] {
                h.set_f64(k, v, None);
            }
            let data = Array2::from_shape_fn((ny, nx), |(j, i)| {
                if (i * 7 + j * 3) % 5 == 4 {
                    f32::NAN
                } else {
                    (i * 3 + j * 11) as f32 - 4.0
                }
            });
            for interpolation in [
                Interpolation::Nearest,
                Interpolation::Linear,
                Interpolation::Spline,
                Interpolation::Keys,
            ] {
                for missing in [Missing::Min, Missing::Nan, Missing::Value(-100.0)] {
                    let o = RegisterOptions {
                        interpolation,
                        missing,
                        check_full_disk: false,
                    };
                    let m = AiaMap::new(data.clone(), h.clone(), Source::memory());
                    let r = register(&m, &o).unwrap();
                    assert_eq!(r.data.dim(), (ny, nx));
                    let lo = data
                        .iter()
                        .filter(|v| !v.is_nan())
                        .fold(-100.0f32, |a, &b| a.min(b));
                    let hi = data
                        .iter()
                        .filter(|v| !v.is_nan())
                        .fold(f32::MIN, |a, &b| a.max(b));
                    for &v in r.data.iter() {
                        assert!(
                            v.is_nan() || (v >= lo && v <= hi),
                            "{nx}x{ny} {roll} {interpolation} {missing}: {v}"
                        );
                    }
                }
            }
        }
    }
}
