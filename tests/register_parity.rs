//! `register` against aiapy 0.10.2 (`aiapy.calibrate.register`, scipy method) on the
//! fixtures of tests/parity/make_register_fixtures.py: the real 128² level-1 file and
//! synthetic binned full-disk maps (small and 30° roll, NaN clusters), orders 0, 1, 3,
//! `missing` = min, a number and NaN.
//!
//! aiapy's frame may be smaller than ours (4094² for 4096² inputs): the two are aligned by
//! the reference pixel (ours is `(N + 1)/2`). Away from the outer 2-pixel border the values
//! agree to 1e-4 of the data range and the NaN masks are identical.

mod common;

use aiaprep::cpu::register;
use aiaprep::register::{Interpolation, Missing, RegisterOptions};
use aiaprep::{AiaMap, Header, Source};
use common::{fixture, npy};
use ndarray::Array2;

fn load_map(case: &str) -> AiaMap {
    let data = npy::read2(&fixture(&format!("reg_{case}_in.npy"))).mapv(|v| v as f32);
    let text = std::fs::read_to_string(fixture(&format!("reg_{case}_header.txt"))).unwrap();
    AiaMap::new(
        data,
        Header::parse(&text),
        Source::file(format!("reg_{case}_in.npy")),
    )
}

struct Entry {
    file: String,
    case: String,
    order: u32,
    missing: Missing,
    crpix: [f64; 2],
    shape: (usize, usize),
}

fn entries() -> Vec<Entry> {
    std::fs::read_to_string(fixture("reg_meta.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Entry {
                file: f[0].into(),
                case: f[1].into(),
                order: f[2].parse().unwrap(),
                missing: f[3].parse().unwrap(),
                crpix: [f[4].parse().unwrap(), f[5].parse().unwrap()],
                shape: (f[6].parse().unwrap(), f[7].parse().unwrap()),
            }
        })
        .collect()
}

fn interpolation(order: u32) -> Interpolation {
    match order {
        0 => Interpolation::Nearest,
        1 => Interpolation::Linear,
        3 => Interpolation::Spline,
        o => panic!("order {o}"),
    }
}

/// Compare ours with aiapy's; returns (max |Δ|/range, compared pixels, NaN pixels).
fn compare(e: &Entry) -> (f64, usize, usize) {
    let map = load_map(&e.case);
    let opts = RegisterOptions {
        interpolation: interpolation(e.order),
        missing: e.missing,
        check_full_disk: true,
    };
    let ours = register(&map, &opts).unwrap();
    let theirs: Array2<f64> = npy::read2(&fixture(&e.file));
    assert_eq!(theirs.dim(), e.shape);
    let (ny, nx) = ours.data.dim();
    let crpix = [
        ours.header.get_f64("CRPIX1").unwrap(),
        ours.header.get_f64("CRPIX2").unwrap(),
    ];
    assert_eq!(crpix, [(nx as f64 + 1.0) / 2.0, (ny as f64 + 1.0) / 2.0]);
    // aiapy pixel = ours − (our CRPIX − their CRPIX)
    let off = [crpix[0] - e.crpix[0], crpix[1] - e.crpix[1]];
    assert!(
        off.iter().all(|o| o.fract() == 0.0),
        "non-integer offset {off:?}"
    );
    let (ox, oy) = (off[0] as isize, off[1] as isize);
    let inp = &map.data;
    let lo = inp
        .iter()
        .filter(|v| !v.is_nan())
        .fold(f32::INFINITY, |a, &b| a.min(b));
    let hi = inp
        .iter()
        .filter(|v| !v.is_nan())
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let range = (hi - lo) as f64;
    let (ty, tx) = theirs.dim();
    let border = 0isize;
    let (mut worst, mut worst_at, mut count, mut nans) = (0.0f64, (0, 0), 0usize, 0usize);
    let mut mask_diff = Vec::new();
    for y in 0..ny as isize {
        for x in 0..nx as isize {
            let (xa, ya) = (x - ox, y - oy);
            let inside = |v: isize, n: usize, m: usize| {
                v >= border && v < n as isize - border && v + (m as isize - n as isize) >= 0
            };
            if !(x >= border && x < nx as isize - border && y >= border && y < ny as isize - border)
            {
                continue;
            }
            if !(inside(xa, tx, tx) && inside(ya, ty, ty)) {
                continue;
            }
            let a = ours.data[[y as usize, x as usize]] as f64;
            let b = theirs[[ya as usize, xa as usize]];
            if a.is_nan() || b.is_nan() {
                if a.is_nan() != b.is_nan() {
                    mask_diff.push((x, y, a, b));
                }
                nans += 1;
                continue;
            }
            count += 1;
            let d = (a - b).abs() / range;
            if d > worst {
                worst = d;
                worst_at = (x, y);
            }
        }
    }
    assert!(
        mask_diff.is_empty(),
        "{}: {} NaN-mask differences, e.g. {:?}",
        e.file,
        mask_diff.len(),
        &mask_diff[..mask_diff.len().min(8)]
    );
    assert!(
        worst <= 1e-5,
        "{}: max |Δ|/range = {worst:.3e} at {worst_at:?}",
        e.file
    );
    (worst, count, nans)
}

#[test]
fn register_matches_aiapy() {
    let es = entries();
    assert!(es.len() >= 10, "fixtures present");
    let mut seen = std::collections::BTreeSet::new();
    for e in &es {
        let (worst, count, nans) = compare(e);
        seen.insert(e.order);
        println!(
            "{:28} order {} missing {:8}: max |Δ|/range = {:.2e} over {} px ({} NaN)",
            e.file,
            e.order,
            e.missing.to_string(),
            worst,
            count,
            nans
        );
        assert!(count > 1000);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![0, 1, 3]);
}

/// Full-size parity (4096², including aiapy's 4094² case), against oracles made on demand
/// by tests/parity/make_register_4096.py into `$AIAPREP_REG4096` (too large to commit).
#[test]
#[ignore = "needs $AIAPREP_REG4096 from tests/parity/make_register_4096.py"]
fn register_matches_aiapy_4096() {
    let dir =
        std::path::PathBuf::from(std::env::var_os("AIAPREP_REG4096").expect("set AIAPREP_REG4096"));
    for name in ["pad", "unpad"] {
        let data = npy::read2(&dir.join(format!("{name}_in.npy"))).mapv(|v| v as f32);
        let text = std::fs::read_to_string(dir.join(format!("{name}_header.txt"))).unwrap();
        let theirs = npy::read2(&dir.join(format!("{name}_out.npy")));
        let map = AiaMap::new(data, Header::parse(&text), Source::memory());
        let ours = register(&map, &RegisterOptions::default()).unwrap();
        assert_eq!(ours.data.dim(), (4096, 4096));
        let off = (4096 - theirs.dim().0) / 2; // aiapy 4094²: CRPIX 2047.5 vs our 2048.5
        let valid = map.data.iter().filter(|v| !v.is_nan());
        let lo = valid.clone().fold(f32::INFINITY, |a, &b| a.min(b));
        let hi = valid.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let range = (hi - lo) as f64;
        let (mut worst, mut mask_diff) = (0.0f64, 0usize);
        for ((j, i), &b) in theirs.indexed_iter() {
            let a = ours.data[[j + off, i + off]] as f64;
            if a.is_nan() || b.is_nan() {
                mask_diff += (a.is_nan() != b.is_nan()) as usize;
            } else {
                worst = worst.max((a - b).abs() / range);
            }
        }
        println!(
            "{name}: aiapy {:?}: max |Δ|/range = {worst:.2e}, NaN-mask differences {mask_diff}",
            theirs.dim()
        );
        assert!(worst <= 1e-5 && mask_diff == 0);
    }
}
