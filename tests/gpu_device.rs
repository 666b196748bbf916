//! The GPU path below the engine, on the test device (`tests/device/mod.rs`: the software
//! CUDA device unless `AIAPREP_TEST_DEVICE=real`):
//!
//! * cuFFT layouts against numpy.fft fixtures (`tests/parity/make_fft_fixtures.py`), so a
//!   layout misunderstanding shared by aiaprep and the software cuFFT cannot hide;
//! * what `GpuDevice::open` checks and chooses, and the memory pool's bound;
//! * races between streams are refused by the software device (so the parity tests, which
//!   pass, show that aiaprep synchronises its lanes);
//! * installations and faults, each in a `prep` child process on a software device
//!   directory assembled for it (a process loads one driver): cuFFT missing, NVRTC failing,
//!   a V100 with CUDA 12 and 13 visible, a V100 with only CUDA 13, cuFFT result codes
//!   CUDA 13's headers lack, out of device memory at every allocation, a failed launch,
//!   an illegal address in a kernel. `--backend auto` must fall back to the CPU **at open**
//!   with the reason; `--backend cuda` must fail with it; a failure on an image must be a
//!   typed error naming the file, with no partial output and no panic.
//!
//! Tests named `*_cuda` run on a device; the fault tests need the software device and say
//! SKIP on a real GPU.

#![cfg(feature = "cuda")]

mod common;
mod device;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use aiaprep::gpu::{Complex32, Complex64, FftKind, GpuDevice};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aiaprep-gpudev-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The device of this process (shared by the tests).
fn dev() -> Arc<GpuDevice> {
    static DEV: std::sync::OnceLock<Arc<GpuDevice>> = std::sync::OnceLock::new();
    DEV.get_or_init(|| {
        let d = GpuDevice::open(0).unwrap_or_else(|e| panic!("opening the test device: {e}"));
        eprintln!("{}", d.describe());
        Arc::new(d)
    })
    .clone()
}

// ------------------------------------------------------------------ cuFFT vs numpy

const FFT_SHAPES: [(usize, usize); 5] = [(8, 6), (5, 7), (6, 9), (16, 16), (33, 20)];

/// R2C/D2Z give numpy's rfft2 (rows × (cols/2 + 1), unnormalised) and C2R/Z2D invert it
/// up to the factor rows·cols, for even and odd sizes.
#[test]
fn fft_layouts_match_numpy_cuda() {
    if !device::require() {
        return;
    }
    let d = dev();
    let st = d.stream().clone();
    for (rows, cols) in FFT_SHAPES {
        let x = common::npy::read2(&common::fixture(&format!("fft_{rows}x{cols}_in.npy")));
        let want = common::npy::read_f64(&common::fixture(&format!("fft_{rows}x{cols}_rfft2.npy")));
        let m = cols / 2 + 1;
        assert_eq!(want.shape(), &[rows, m, 2], "fixture layout");
        let want: Vec<(f64, f64)> = want
            .as_slice()
            .unwrap()
            .chunks(2)
            .map(|c| (c[0], c[1]))
            .collect();
        let xs: Vec<f64> = x.iter().copied().collect();
        let scale = want.iter().map(|c| c.0.hypot(c.1)).fold(0.0, f64::max);
        let n = (rows * cols) as f64;

        // f64
        let d_in = st.clone_htod(&xs).unwrap();
        let mut d_spec = st.alloc_zeros::<Complex64>(rows * m).unwrap();
        d.fft_plan(rows, cols, FftKind::D2Z)
            .unwrap()
            .d2z(&d_in, &mut d_spec)
            .unwrap();
        let got: Vec<Complex64> = st.clone_dtoh(&d_spec).unwrap();
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g.re - w.0).abs() <= 1e-12 * scale && (g.im - w.1).abs() <= 1e-12 * scale,
                "D2Z {rows}x{cols} [{}, {}]: {g:?} vs numpy {w:?}",
                k / m,
                k % m
            );
        }
        let mut d_back = st.alloc_zeros::<f64>(rows * cols).unwrap();
        d.fft_plan(rows, cols, FftKind::Z2D)
            .unwrap()
            .z2d(&mut d_spec, &mut d_back)
            .unwrap();
        let back: Vec<f64> = st.clone_dtoh(&d_back).unwrap();
        for (g, w) in back.iter().zip(&xs) {
            assert!(
                (g - w * n).abs() <= 1e-9 * n * 100.0,
                "Z2D {rows}x{cols}: {g} vs {}",
                w * n
            );
        }

        // f32 (the fixture values are f32 values)
        let xf: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
        let d_in = st.clone_htod(&xf).unwrap();
        let mut d_spec = st.alloc_zeros::<Complex32>(rows * m).unwrap();
        d.fft_plan(rows, cols, FftKind::R2C)
            .unwrap()
            .r2c(&d_in, &mut d_spec)
            .unwrap();
        let got: Vec<Complex32> = st.clone_dtoh(&d_spec).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.re as f64 - w.0).abs() <= 2e-6 * scale
                    && (g.im as f64 - w.1).abs() <= 2e-6 * scale,
                "R2C {rows}x{cols}: {g:?} vs numpy {w:?}"
            );
        }
        let mut d_back = st.alloc_zeros::<f32>(rows * cols).unwrap();
        d.fft_plan(rows, cols, FftKind::C2R)
            .unwrap()
            .c2r(&mut d_spec, &mut d_back)
            .unwrap();
        let back: Vec<f32> = st.clone_dtoh(&d_back).unwrap();
        for (g, w) in back.iter().zip(&xs) {
            assert!(
                (*g as f64 - w * n).abs() <= 2e-6 * 100.0 * n,
                "C2R {rows}x{cols}: {g} vs {}",
                w * n
            );
        }
    }
    eprintln!("PARITY cuFFT layouts = numpy.fft.rfft2/irfft2 for {FFT_SHAPES:?}");
}

// ------------------------------------------------------------------ open and the pool

/// Open compiled and loaded every kernel, and chose an NVRTC that targets the device and a
/// cuFFT that ran on it.
#[test]
fn open_checks_and_chooses_libraries_cuda() {
    if !device::require() {
        return;
    }
    let d = dev();
    let (maj, min) = d.compute_capability();
    assert!(
        d.nvrtc()
            .archs
            .contains(&(d.arch().capability().0 * 10 + d.arch().capability().1)),
        "{:?} cannot target {}",
        d.nvrtc(),
        d.arch()
    );
    assert!(d.nvrtc().version.0 <= d.driver_version() / 1000);
    assert!(d.cufft().version / 1000 < d.driver_version() / 1000);
    // Every entry point of the registry has a typed id, and each loads.
    let entries: usize = aiaprep::kernels::KERNELS
        .iter()
        .map(|k| k.entry_points.len())
        .sum();
    assert_eq!(aiaprep::gpu::KernelId::all().len(), entries);
    for id in aiaprep::gpu::KernelId::all() {
        d.load_kernel(id)
            .unwrap_or_else(|err| panic!("{id}: {err}"));
    }
    let desc = d.describe();
    assert!(desc.contains("NVRTC") && desc.contains("cuFFT"), "{desc}");
    eprintln!("device {maj}.{min}: {desc}");
}

/// After work and a synchronisation, the default pool keeps at most its release threshold
/// of freed memory (not everything: cuFFT work areas and other users of the device need it).
#[test]
fn pool_keeps_at_most_its_threshold_cuda() {
    use cudarc::driver::sys;
    if !device::require() {
        return;
    }
    let engine =
        aiaprep::engine::shared_gpu_engine(&aiaprep::engine::EngineOptions::from_env().unwrap())
            .unwrap();
    let d = engine.device();
    let map = aiaprep::synth::level1(&aiaprep::synth::SynthOptions {
        size: 512,
        n_missing: 10,
        ..Default::default()
    });
    engine
        .deconvolve_register(
            &map,
            &aiaprep::deconvolve::DeconvolveOptions {
                iterations: 2,
                ..Default::default()
            },
            &aiaprep::register::plan(&map, &Default::default()).unwrap(),
            &aiaprep::register::RegisterOptions::default(),
        )
        .unwrap();
    d.synchronize().unwrap();
    d.context().bind_to_thread().unwrap();
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    // SAFETY: valid out-pointers, a device of the current context.
    unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, d.context().cu_device()) }
        .result()
        .unwrap();
    let get = |a: sys::CUmemPool_attribute| -> u64 {
        let mut v = 0u64;
        // SAFETY: these attributes are cuuint64_t.
        unsafe { sys::cuMemPoolGetAttribute(pool, a, (&mut v as *mut u64).cast()) }
            .result()
            .unwrap();
        v
    };
    let threshold = get(sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD);
    let total = d.memory().unwrap().1 as u64;
    assert_eq!(
        threshold,
        aiaprep::internals::gpu::pool_release_threshold(total)
    );
    assert!(threshold < total / 4, "threshold {threshold} of {total}");
    let reserved = get(sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
    let used = get(sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT);
    assert!(
        reserved.saturating_sub(used) <= threshold,
        "the pool keeps {} bytes of freed memory, threshold {threshold}",
        reserved - used
    );
}

// ------------------------------------------------------------------ races

/// A buffer written on one stream and read on another with no synchronisation in between
/// is refused by the software device (CUDA_ERROR_ILLEGAL_STATE); with the writer's stream
/// synchronised first it is fine. This is what makes the passing multi-lane tests mean
/// something.
#[test]
fn unsynchronised_streams_are_refused_by_the_software_device_cuda() {
    if !device::require() {
        return;
    }
    if !device::is_soft() {
        eprintln!("SKIP: race detection is a property of the software device");
        return;
    }
    let a = dev();
    let b = a.new_lane().unwrap();
    let n = 1000usize;
    let mut buf = a.stream().alloc_zeros::<f32>(n).unwrap();
    a.stream().memcpy_htod(&vec![1.5f32; n], &mut buf).unwrap();
    // read on lane B while lane A may still be writing
    let mut out = b.stream().alloc_zeros::<f32>(n).unwrap();
    let e = b.stream().memcpy_dtod(&buf, &mut out).unwrap_err();
    assert!(format!("{e:?}").contains("ILLEGAL_STATE"), "{e:?}");
    // synchronised: fine
    a.synchronize().unwrap();
    b.stream().memcpy_dtod(&buf, &mut out).unwrap();
    let v: Vec<f32> = b.stream().clone_dtoh(&out).unwrap();
    assert!(v.iter().all(|&x| x == 1.5));
}

// ------------------------------------------------------------------ installations and faults

/// A device directory (in a scratch directory removed when this is dropped).
struct Installation(PathBuf);

impl std::ops::Deref for Installation {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        if let Some(p) = self.0.parent() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// A device directory assembled from the software device's libraries: `links` are
/// `(name in the directory, file in target/softcuda/lib)`; `None` (the test is skipped)
/// without the software device.
fn installation(tag: &str, links: &[(&str, &str)]) -> Option<Installation> {
    if !device::require() {
        return None;
    }
    let real = std::env::var(device::TEST_DEVICE_VAR).is_ok_and(|v| v == "real");
    if real || !device::is_soft() {
        eprintln!("SKIP: needs the software device (installations and faults are emulated)");
        return None;
    }
    let lib = PathBuf::from(device::build_softcuda("h200").unwrap())
        .parent()
        .unwrap()
        .join("lib");
    let dir = tmpdir(tag).join("cuda");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, file) in links {
        std::os::unix::fs::symlink(lib.join(file), dir.join(name)).unwrap();
    }
    Some(Installation(dir))
}

const H200: [(&str, &str); 3] = [
    ("libcuda.so", "libcuda-13000-h200.so"),
    ("libnvrtc.so", "libnvrtc-13.0.so"),
    ("libcufft.so", "libcufft-12.0.so"),
];

/// `prep` on `dir` with `env`; inputs: `n` synthetic 256² RICE files.
fn prep(
    dir: &Path,
    env: &[(&str, &str)],
    backend: &str,
    extra: &[&str],
    n: usize,
) -> (Output, PathBuf) {
    let work = dir.parent().unwrap().to_path_buf();
    let ins = work.join("in");
    if !ins.exists() {
        common::synth_inputs(&work, n, 256, 300, 15);
    }
    let out = work.join(format!("out-{backend}-{}", extra.join("").replace('-', "")));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let mut c = common::prep_command();
    c.arg(&ins)
        .args(["--out-dir", s(&out), "--backend", backend, "--report"])
        .arg(out.join("report.json"))
        .args(extra)
        .env("AIAPREP_CUDA_LIB_DIR", dir)
        .env_remove("SOFTCUDA_FAULT");
    for (k, v) in env {
        c.env(k, v);
    }
    (c.output().unwrap(), out)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Outputs written (final names only; no temporary files).
fn outputs(out: &Path) -> Vec<PathBuf> {
    let v: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .collect();
    let tmp: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    v
}

/// `--backend auto` runs on the CPU and says why; `--backend cuda` fails with the reason.
fn assert_falls_back_at_open(dir: &Path, env: &[(&str, &str)], reason: &str) {
    let (o, out) = prep(dir, env, "auto", &[], 2);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("backend: cpu") && t.contains("no GPU"), "{t}");
    assert!(t.contains(reason), "auto: reason '{reason}' missing: {t}");
    assert_eq!(outputs(&out).len(), 2, "{t}");
    let (o, out) = prep(dir, env, "cuda", &[], 2);
    let t = text(&o);
    assert_ne!(o.status.code(), Some(0), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(t.contains(reason), "cuda: reason '{reason}' missing: {t}");
    assert!(outputs(&out).is_empty(), "{t}");
}

#[test]
fn missing_cufft_falls_back_at_open_cuda() {
    let Some(dir) = installation("nocufft", &H200[..2]) else {
        return;
    };
    assert_falls_back_at_open(&dir, &[], "cannot load libcufft");
}

#[test]
fn failing_nvrtc_falls_back_at_open_cuda() {
    let Some(dir) = installation("nvrtcfail", &H200) else {
        return;
    };
    assert_falls_back_at_open(
        &dir,
        &[("SOFTCUDA_FAULT", "nvrtc")],
        "kernels do not compile",
    );
}

/// cuFFT result codes that cudarc's CUDA 13 enum lacks (10, 12, 15) are reported by name,
/// without undefined behaviour.
#[test]
fn cufft_codes_unknown_to_cuda13_are_typed_errors_cuda() {
    let Some(dir) = installation("cufftcodes", &H200) else {
        return;
    };
    for (code, name) in [
        ("10", "CUFFT_INCOMPLETE_PARAMETER_LIST"),
        ("12", "CUFFT_PARSE_ERROR"),
        ("15", "CUFFT_LICENSE_ERROR"),
    ] {
        let fault = format!("cufft={code}");
        assert_falls_back_at_open(&dir, &[("SOFTCUDA_FAULT", fault.as_str())], name);
    }
}

/// A V100 node with CUDA 12 and CUDA 13 libraries visible: CUDA 13's NVRTC cannot target
/// sm_70 and its cuFFT has no Volta kernels (and the 12.2 driver loads no CUDA 13 module):
/// open picks CUDA 12's.
#[test]
fn v100_uses_cuda12_when_cuda13_is_also_visible_cuda() {
    let Some(dir) = installation(
        "v100mixed",
        &[
            ("libcuda.so", "libcuda-12020-v100.so"),
            ("libnvrtc.so.13", "libnvrtc-13.0.so"),
            ("libnvrtc.so.12", "libnvrtc-12.9.so"),
            ("libcufft.so.12", "libcufft-12.0.so"),
            ("libcufft.so.11", "libcufft-11.4.so"),
        ],
    ) else {
        return;
    };
    let (o, out) = prep(&dir, &[], "cuda", &["--deconvolve", "--iterations", "3"], 2);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("V100") && t.contains("NVRTC 12.9") && t.contains("cuFFT 11.4"),
        "{t}"
    );
    assert_eq!(outputs(&out).len(), 2);
    // and with a CUDA 13 driver on the same V100, still CUDA 12's NVRTC (13 lacks sm_70)
    let Some(dir13) = installation(
        "v100mixed13",
        &[
            ("libcuda.so", "libcuda-13000-v100.so"),
            ("libnvrtc.so.13", "libnvrtc-13.0.so"),
            ("libnvrtc.so.12", "libnvrtc-12.9.so"),
            ("libcufft.so.12", "libcufft-12.0.so"),
            ("libcufft.so.11", "libcufft-11.4.so"),
        ],
    ) else {
        return;
    };
    let (o, _) = prep(&dir13, &[], "cuda", &[], 2);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("NVRTC 12.9") && t.contains("cuFFT 11.4"), "{t}");
}

/// A V100 with only CUDA 13's libraries: refused at open, saying what to do.
#[test]
fn v100_with_only_cuda13_is_refused_at_open_cuda() {
    let Some(dir) = installation(
        "v100cuda13",
        &[
            ("libcuda.so", "libcuda-13000-v100.so"),
            ("libnvrtc.so", "libnvrtc-13.0.so"),
            ("libcufft.so", "libcufft-12.0.so"),
        ],
    ) else {
        return;
    };
    assert_falls_back_at_open(&dir, &[], "CUDA 13 dropped sm_70");
}

/// Out of device memory from each allocation in turn on (a single failure is absorbed by
/// the retry after trimming the pool): at open the backend fails (`cuda`); later, the
/// images fail with typed errors naming the files, and no partial output is left. Never a
/// panic.
#[test]
fn out_of_device_memory_is_a_typed_error_cuda() {
    let Some(dir) = installation("oom", &H200) else {
        return;
    };
    let mut at_open = 0;
    let mut in_image = 0;
    for n in [1, 3, 6, 9, 12, 15, 20, 30, 45] {
        let fault = format!("oom@{n}+");
        let (o, out) = prep(
            &dir,
            &[
                ("SOFTCUDA_FAULT", fault.as_str()),
                ("AIAPREP_GPU_STREAMS", "1"),
            ],
            "cuda",
            &["--deconvolve", "--iterations", "2"],
            2,
        );
        let t = text(&o);
        assert!(!t.contains("panicked"), "{fault}: {t}");
        if o.status.code() == Some(0) {
            assert_eq!(outputs(&out).len(), 2, "{fault}: {t}");
            continue;
        }
        assert!(
            t.contains("out of memory")
                || t.contains("OUT_OF_MEMORY")
                || t.contains("out of device memory"),
            "{fault}: {t}"
        );
        if t.contains("backend") && t.contains("failed") {
            // an image failed: named, the other processed or failed the same way
            in_image += 1;
            assert!(
                t.contains("aia_0"),
                "{fault}: the failing file is not named: {t}"
            );
            let report = std::fs::read_to_string(out.join("report.json")).unwrap();
            assert!(report.contains("\"failed\": "), "{report}");
        } else {
            at_open += 1;
        }
        for p in outputs(&out) {
            // whatever was written is complete
            aiaprep::fits::read(&p).unwrap_or_else(|e| panic!("{fault}: {}: {e}", p.display()));
        }
    }
    assert!(
        at_open > 0 && in_image > 0,
        "open failures {at_open}, image failures {in_image}"
    );
}

/// A launch that fails on the device leaves the context unusable (as on a GPU): the images
/// fail with typed errors naming them, no output is written, nothing panics.
#[test]
fn failed_launch_is_a_typed_error_cuda() {
    let Some(dir) = installation("launch", &H200) else {
        return;
    };
    let (o, out) = prep(&dir, &[("SOFTCUDA_FAULT", "launch@3")], "cuda", &[], 2);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(t.contains("LAUNCH_FAILED") && t.contains("aia_0"), "{t}");
    assert!(outputs(&out).is_empty(), "{t}");
}

/// An OTF made on one lane is complete before another lane reads it: two compute workers
/// with a lane each deconvolve images of one channel at once on a slow device (every
/// operation delayed, so the worker that did not make the OTF reaches its first read of it
/// while the maker's lane is still busy). Without the maker's synchronisation the software
/// device reports the race and the images fail.
#[test]
fn otf_is_complete_before_another_lane_reads_it_cuda() {
    let Some(dir) = installation("otflanes", &H200) else {
        return;
    };
    let (o, out) = prep(
        &dir,
        &[("SOFTCUDA_DELAY_US", "3000"), ("AIAPREP_GPU_STREAMS", "2")],
        "cuda",
        &["--deconvolve", "--iterations", "2", "--jobs", "2"],
        4,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(!t.contains("race"), "{t}");
    assert_eq!(outputs(&out).len(), 4, "{t}");
}

/// A driver without stream-ordered allocation (`MEMORY_POOLS_SUPPORTED` = 0: cudarc then
/// allocates and frees synchronously, and there is no pool to bound) works the same.
#[test]
fn devices_without_memory_pools_work_cuda() {
    let Some(dir) = installation("nopools", &H200) else {
        return;
    };
    let (o, out) = prep(
        &dir,
        &[("SOFTCUDA_NO_POOLS", "1")],
        "cuda",
        &[
            "--deconvolve",
            "--iterations",
            "3",
            "--gpu-streams",
            "2",
            "--jobs",
            "2",
        ],
        3,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert_eq!(outputs(&out).len(), 3, "{t}");
}

/// Several devices: `AIAPREP_GPU_INDEX` picks one; an index beyond them falls back (auto)
/// or fails (cuda) with the reason.
#[test]
fn the_device_index_picks_among_several_cuda() {
    let Some(dir) = installation("twodevices", &H200) else {
        return;
    };
    let env = [("SOFTCUDA_DEVICES", "2"), ("AIAPREP_GPU_INDEX", "1")];
    let (o, out) = prep(&dir, &env, "cuda", &[], 2);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("cuda:1"), "{t}");
    assert_eq!(outputs(&out).len(), 2, "{t}");
    assert_falls_back_at_open(
        &dir,
        &[("SOFTCUDA_DEVICES", "2"), ("AIAPREP_GPU_INDEX", "2")],
        "CUDA device 2 requested but 2 visible",
    );
}
