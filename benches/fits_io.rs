//! FITS I/O speed: read and write a 4096² int16 RICE_1 image (the JSOC level-1 case), and
//! read the same image written as float32 tile-compressed (`--dtype f32 --compress rice`:
//! lossless GZIP_2, decoded by cfitsio after `fits/tiles.rs` has checked every tile).
//!
//! `cargo bench --bench fits_io`. The image is a seeded synthetic disk with noise, so it
//! compresses about like a real AIA frame (≈ 13 MB); it is written once to a temporary
//! directory and removed at the end.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use aiaprep::fits::{self, Compression, WriteOptions};
use aiaprep::{AiaMap, Header, Source, Value};
use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array2;

const N: usize = 4096;

fn image() -> AiaMap {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let data = Array2::from_shape_fn((N, N), |(r, c)| {
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
    let mut h = Header::new();
    h.set("TELESCOP", Value::Str("SDO/AIA".into()), None);
    h.set("WAVELNTH", Value::Int(171), None);
    AiaMap::new(data, h, Source::memory())
}

fn bench(c: &mut Criterion) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("aiaprep-bench-fits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let map = image();
    let rice = WriteOptions {
        compress: Compression::Rice,
        ..Default::default()
    };
    let input = dir.join("in.fits");
    fits::write(&map, &input, &rice).unwrap();

    let mut g = c.benchmark_group("fits_4096");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("read_int16_rice", |b| {
        b.iter(|| black_box(fits::read(&input).unwrap()))
    });
    let gzip = dir.join("in_f32.fits");
    let f32_rice = WriteOptions {
        dtype: fits::OutputType::F32,
        ..rice
    };
    fits::write(&map, &gzip, &f32_rice).unwrap();
    g.bench_function("read_f32_gzip2", |b| {
        b.iter(|| black_box(fits::read(&gzip).unwrap()))
    });
    let out = dir.join("out.fits");
    let over = WriteOptions {
        overwrite: true,
        ..rice
    };
    g.bench_function("write_int16_rice", |b| {
        b.iter(|| black_box(fits::write(&map, &out, &over).unwrap()))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
