use aiaprep::fits::{self, Compression, WriteOptions};
use aiaprep::{AiaMap, Header, Source};
use ndarray::Array2;
use std::path::Path;
use std::time::Instant;
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
fn main() {
    let n = 4096usize;
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let a = Array2::from_shape_fn((n, n), |(r, c)| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let (x, y) = (c as f64 - 2048.0, r as f64 - 2048.0);
        let rr = (x * x + y * y).sqrt() / 1600.0;
        let base = if rr < 1.0 {
            800.0 * (1.0 - 0.5 * rr * rr)
        } else {
            50.0 * (-(rr - 1.0) * 5.0).exp()
        };
        (base + (s % 41) as f64 - 20.0) as f32
    });
    let m = AiaMap::new(a, Header::new(), Source::memory());
    let p = Path::new("/tmp/fits_check/big.fits");
    let opts = WriteOptions {
        compress: Compression::Rice,
        overwrite: true,
        ..Default::default()
    };
    fits::write(&m, p, &opts).unwrap();
    let k = 20;
    let (c0, t0) = (cpu(), Instant::now());
    for _ in 0..k {
        std::hint::black_box(fits::read(p).unwrap());
    }
    println!(
        "read : cpu {:.3} s/iter, wall {:.3} s/iter",
        (cpu() - c0) / k as f64,
        t0.elapsed().as_secs_f64() / k as f64
    );
    let (c0, t0) = (cpu(), Instant::now());
    for _ in 0..k {
        std::hint::black_box(fits::write(&m, p, &opts).unwrap());
    }
    println!(
        "write: cpu {:.3} s/iter, wall {:.3} s/iter",
        (cpu() - c0) / k as f64,
        t0.elapsed().as_secs_f64() / k as f64
    );
    let opts1 = WriteOptions {
        compress: Compression::None,
        overwrite: true,
        ..Default::default()
    };
    let q = Path::new("/tmp/fits_check/big_plain.fits");
    let (c0, t0) = (cpu(), Instant::now());
    for _ in 0..k {
        std::hint::black_box(fits::write(&m, q, &opts1).unwrap());
    }
    println!(
        "write plain: cpu {:.3} s/iter, wall {:.3} s/iter",
        (cpu() - c0) / k as f64,
        t0.elapsed().as_secs_f64() / k as f64
    );
    println!(
        "size rice {:.1} MB",
        std::fs::metadata(p).unwrap().len() as f64 / 1e6
    );
}
