//! Image-buffer recycling in batches (`buffers::{recycle_images, take_f32,
//! recycle_f32}`): a recycled buffer still holds the previous image's pixels, so every
//! user of `take_f32` must write every element. These tests hand the pool buffers full of
//! a sentinel, check that they are the ones reused (same address), and that the results
//! equal those computed in fresh, zeroed buffers — bit for bit.
//!
//! The pool is process-wide: the tests of this file take one lock so that they do not take
//! each other's buffers.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use aiaprep::batch::{self, BatchOptions, NoProgress, Status};
use aiaprep::buffers::{recycle_f32, recycle_images, take_f32};
use aiaprep::fits::{self, Compression, WriteOptions};
use aiaprep::pipeline::{self, PrepOptions};
use aiaprep::register::{Interpolation, RegisterOptions};
use aiaprep::synth::{self, SynthOptions};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aiaprep-recycle-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A dirty buffer of `len` values (a sentinel, with NaN and ±∞ sprinkled in), handed to
/// the pool; returns its address.
fn plant_dirty(len: usize) -> *const f32 {
    let v: Vec<f32> = (0..len)
        .map(|i| match i % 7 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => -1.0e30,
            _ => 12345.5,
        })
        .collect();
    let p = v.as_ptr();
    recycle_f32(v);
    p
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// 1024² with missing pixels and a roll of 25°: out-of-frame fill, missing-pixel marks and
/// the interior all occur.
fn level1(seed: u64, size: usize) -> aiaprep::AiaMap {
    synth::level1(&SynthOptions {
        size,
        seed,
        n_missing: 400,
        roll_deg: 25.0,
        ..SynthOptions::default()
    })
}

#[test]
fn register_writes_every_pixel_of_a_recycled_buffer() {
    let _s = serial();
    let map = level1(31, 1024);
    for interpolation in [
        Interpolation::Nearest,
        Interpolation::Linear,
        Interpolation::Spline,
        Interpolation::Keys,
    ] {
        let opts = RegisterOptions {
            interpolation,
            ..RegisterOptions::default()
        };
        let fresh = aiaprep::cpu::register(&map, &opts).unwrap();
        let len = fresh.data.len();
        assert!(fresh.data.iter().any(|v| v.is_nan()) && fresh.data.iter().any(|v| *v > 0.0));
        let guard = recycle_images();
        let planted = plant_dirty(len);
        let reused = aiaprep::cpu::register(&map, &opts).unwrap();
        assert_eq!(
            reused.data.as_ptr(),
            planted,
            "{interpolation:?}: the planted buffer was not reused"
        );
        assert!(
            same_bits(
                reused.data.as_slice().unwrap(),
                fresh.data.as_slice().unwrap()
            ),
            "{interpolation:?}: a pixel kept the recycled buffer's contents"
        );
        drop(guard);
    }
}

#[test]
fn read_fills_a_recycled_buffer() {
    let _s = serial();
    let dir = tmpdir("read");
    let map = level1(32, 1024);
    let path = dir.join("in.fits");
    let w = WriteOptions {
        compress: Compression::Rice,
        ..WriteOptions::default()
    };
    fits::write(&map, &path, &w).unwrap();
    let fresh = fits::read(&path).unwrap();
    assert!(fresh.data.iter().any(|v| v.is_nan()));
    let guard = recycle_images();
    let planted = plant_dirty(fresh.data.len());
    let reused = fits::read(&path).unwrap();
    assert_eq!(
        reused.data.as_ptr(),
        planted,
        "the planted buffer was not reused"
    );
    assert!(same_bits(
        reused.data.as_slice().unwrap(),
        fresh.data.as_slice().unwrap()
    ));
    drop(guard);
    // Without a guard nothing is kept: a buffer handed back is freed, the next is fresh.
    plant_dirty(fresh.data.len());
    assert!(take_f32(fresh.data.len()).iter().all(|&v| v == 0.0));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A batch of different sizes (buffers reused for smaller images, across stages and
/// threads) writes the same pixels as preparing each file alone.
#[test]
fn batch_with_recycling_equals_single_file_preps() {
    let _s = serial();
    let dir = tmpdir("batch");
    let sizes = [1280usize, 1024, 1152, 1024, 1280, 1088];
    let ins: Vec<PathBuf> = sizes
        .iter()
        .enumerate()
        .map(|(k, &size)| {
            let p = dir.join(format!("aia_{k:02}.fits"));
            let w = WriteOptions {
                compress: Compression::Rice,
                ..WriteOptions::default()
            };
            fits::write(&level1(40 + k as u64, size), &p, &w).unwrap();
            p
        })
        .collect();
    let engines = aiaprep::engine::select_engines(&aiaprep::engine::EngineOptions {
        backend: aiaprep::engine::Backend::Cpu,
        register_on_cpu: false,
        ..Default::default()
    })
    .unwrap();
    let opts = PrepOptions {
        write: WriteOptions {
            compress: Compression::Rice,
            ..WriteOptions::default()
        },
        ..PrepOptions::default()
    };
    let out_batch = dir.join("batch");
    let out_single = dir.join("single");
    std::fs::create_dir_all(&out_batch).unwrap();
    std::fs::create_dir_all(&out_single).unwrap();
    let bopts = BatchOptions {
        decode_threads: 2,
        encode_threads: 2,
        compute_workers: Some(2),
        queue_depth: 1,
    };
    let summary = batch::run(
        &ins,
        &out_batch,
        &opts,
        &engines,
        &bopts,
        &NoProgress,
        &AtomicBool::new(false),
    );
    assert_eq!(
        summary.count(Status::Done),
        ins.len(),
        "{:?}",
        summary.records
    );
    for input in &ins {
        let single = pipeline::output_path(input, &out_single);
        pipeline::prep_file(input, &single, &opts, &engines).unwrap();
        let a = fits::read(&pipeline::output_path(input, &out_batch)).unwrap();
        let b = fits::read(&single).unwrap();
        assert_eq!(a.data.dim(), b.data.dim());
        assert!(
            same_bits(a.data.as_slice().unwrap(), b.data.as_slice().unwrap()),
            "{}: batch and single-file outputs differ",
            input.display()
        );
    }
    // The pool is freed with the batch: a buffer handed back now is not kept.
    plant_dirty(1 << 20);
    assert!(take_f32(1 << 20).iter().all(|&v| v == 0.0));
    std::fs::remove_dir_all(&dir).unwrap();
}
