//! The C ABI: the checked-in header is what cbindgen generates, and a C program built
//! against the library gives the same result as the Rust API.

mod common;
mod device;

use std::path::{Path, PathBuf};
use std::process::Command;

use aiaprep::cpu::register;
use aiaprep::map::AiaMap;
use aiaprep::register::RegisterOptions;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `include/aiaprep.h` must be current. Regenerate with `AIAPREP_BLESS=1 cargo test --test capi`.
#[test]
fn header_is_current() {
    let mut out = Vec::new();
    let cfg = cbindgen::Config::from_file(root().join("cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_config(cfg)
        .with_src(root().join("host").join("capi.rs"))
        .generate()
        .expect("cbindgen")
        .write(&mut out);
    let path = root().join("include").join("aiaprep.h");
    if std::env::var_os("AIAPREP_BLESS").is_some() {
        std::fs::write(&path, &out).unwrap();
    }
    let have = std::fs::read(&path).unwrap_or_default();
    assert!(
        have == out,
        "include/aiaprep.h is stale: run AIAPREP_BLESS=1 cargo test --test capi"
    );
}

/// target/<profile>/deps/, where this test binary is (…/deps/capi-HASH) and where cargo puts
/// the cdylib when it builds the library for the tests (it is not copied up to
/// target/<profile>/ unless the library itself is a build target).
fn target_deps_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

/// The folder holding libaiaprep.so (asserted built) and a fresh temporary folder for the
/// `tag` example (separate per example so that the tests do not race).
fn cdylib_and_tmpdir(tag: &str) -> (PathBuf, PathBuf) {
    let dir = target_deps_dir();
    let lib = dir.join("libaiaprep.so");
    assert!(
        lib.exists(),
        "{} not built (crate-type cdylib)",
        lib.display()
    );
    let tmp = std::env::temp_dir().join(format!("aiaprep-capi-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    (dir, tmp)
}

/// The compiler arguments that link `exe` against libaiaprep.so in `dir` (with an rpath,
/// so the program runs as built).
fn link_args(dir: &Path, exe: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "-L".into(),
        dir.into(),
        "-laiaprep".into(),
        format!("-Wl,-rpath,{}", dir.display()).into(),
        "-o".into(),
        exe.into(),
    ]
}

/// A command running `exe`, a program linked by [`link_args`], against the library just
/// built: cargo's test runner puts target/<profile>/ on `LD_LIBRARY_PATH`, which the
/// loader searches before the rpath, and a `libaiaprep.so` left there by an earlier
/// `cargo build` would be a stale one.
fn program(exe: &Path) -> Command {
    let dir = target_deps_dir();
    let mut path = std::ffi::OsString::from(&dir);
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        path.push(":");
        path.push(old);
    }
    let mut c = Command::new(exe);
    c.env("LD_LIBRARY_PATH", path);
    c
}

/// Runs a `prep INPUT OUTPUT` program built against the C ABI (examples/c/prep.c or
/// examples/fortran/prep.f90) on the real 128² AIA 171 file and checks its first output line
/// (`aiaprep VERSION: NXxNY CRPIX1=… CDELT1=… LVL_NUM=… mean=…`), its output file and its
/// failure path against the Rust API. Returns its whole stdout and the Rust API's result.
fn check_prep_program(exe: &Path, tmp: &Path) -> (String, AiaMap) {
    let input = common::data("aia_171_level1_128px.fits");
    let output = tmp.join("out_lev15.fits");
    let r = program(exe).arg(&input).arg(&output).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8_lossy(&r.stdout).to_string();
    let line = stdout.lines().next().unwrap_or_default().to_string();

    // The same through the Rust API.
    let m = aiaprep::fits::read(&input).unwrap();
    let reg = register(&m, &RegisterOptions::default()).unwrap();
    let (nx, ny) = reg.shape_xy();
    let vals: Vec<f64> = reg
        .data
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| v as f64)
        .collect();
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    let field = |k: &str| -> f64 {
        let s = line.split(&format!("{k}=")).nth(1).unwrap();
        s.split_whitespace().next().unwrap().parse().unwrap()
    };
    // The exact layout of the C program's printf (the Fortran program reproduces it).
    let prefix = format!(
        "aiaprep {}: {nx}x{ny} CRPIX1={:.3} CDELT1={:.6} LVL_NUM=1.5 mean=",
        env!("CARGO_PKG_VERSION"),
        (nx as f64 + 1.0) / 2.0,
        reg.header.get_f64("CDELT1").unwrap()
    );
    assert!(line.starts_with(&prefix), "{line}\nwanted {prefix}…");
    assert_eq!(field("CRPIX1"), (nx as f64 + 1.0) / 2.0, "{line}");
    assert!(
        (field("CDELT1") - reg.header.get_f64("CDELT1").unwrap()).abs() < 1e-6,
        "{line}"
    );
    assert_eq!(field("LVL_NUM"), 1.5, "{line}");
    assert!(
        (field("mean") - mean).abs() <= 1e-6 * mean.abs().max(1.0),
        "{line} vs {mean}"
    );
    // And the file it wrote reads back as the same image (int16-rounded).
    let back = aiaprep::fits::read(&output).unwrap();
    let max_diff = back
        .data
        .iter()
        .zip(reg.data.iter())
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff <= 0.5 + 1e-3, "int16 rounding only: {max_diff}");

    // A failure: the library's message reaches the program and the exit status is non-zero.
    let r = program(exe)
        .arg(tmp.join("missing.fits"))
        .arg(tmp.join("x.fits"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("missing.fits"), "{err}");
    (stdout, reg)
}

#[test]
fn c_program_matches_rust_api() {
    let (dir, tmp) = cdylib_and_tmpdir("c");
    let exe = tmp.join("prep_c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .arg("-std=c99")
        .arg("-Wall")
        .arg("-Werror")
        .arg(root().join("examples/c/prep.c"))
        .arg("-I")
        .arg(root().join("include"))
        .args(link_args(&dir, &exe))
        .status()
        .expect("run cc");
    assert!(st.success(), "cc failed");

    check_prep_program(&exe, &tmp);
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// tests/c/abi_errors.c: the error paths of every exported function through the C ABI (NULL
/// for each pointer argument, undeclared enum and option values, zero/overflowing/misaligned
/// caller pixels, missing, non-FITS, truncated and non-AIA files, missing keywords, outputs
/// that exist, are the input or cannot be created), each with its documented status, a
/// message and a NULL `out`; and one success path. Also run under valgrind by
/// scripts/memcheck.sh.
#[test]
fn c_error_paths_return_the_documented_statuses() {
    let (dir, tmp) = cdylib_and_tmpdir("c-errors");
    let exe = tmp.join("abi_errors");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
        .arg(root().join("tests/c/abi_errors.c"))
        .arg("-I")
        .arg(root().join("include"))
        .args(link_args(&dir, &exe))
        .arg("-lm")
        .status()
        .expect("run cc");
    assert!(st.success(), "cc failed on tests/c/abi_errors.c");

    let work = tmp.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let r = program(&exe)
        .arg(common::data(""))
        .arg(&work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stdout}{stderr}");
    // "abi_errors: N checks, 0 failed": all of them ran.
    let checks: usize = stdout
        .strip_prefix("abi_errors: ")
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {stdout}"));
    assert!(checks >= 200, "only {checks} checks ran: {stdout}");
    assert!(stdout.contains(" checks, 0 failed"), "{stdout}");
    // It cleans up after itself: nothing left in its folder.
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The Fortran compiler: `FC` if set, else `gfortran` on `PATH`, else the one that
/// `scripts/fortran-toolchain.sh` unpacks into `.fortran/` (no root needed on Debian).
fn fortran_compiler() -> Option<PathBuf> {
    if let Some(fc) = std::env::var_os("FC").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(fc));
    }
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("gfortran"))
            .find(|c| c.is_file())
    });
    on_path.or_else(|| {
        let local = root().join(".fortran").join("bin").join("gfortran");
        local.is_file().then_some(local)
    })
}

/// examples/fortran/prep.f90 (iso_c_binding interfaces to the C ABI) built with gfortran gives
/// the same line, file and failure behaviour as the Rust API, plus a string keyword read
/// through `aiaprep_map_get_str`. Skipped (with a line on stderr) when there is no gfortran,
/// unless `AIAPREP_REQUIRE_FORTRAN=1` (CI after scripts/fortran-toolchain.sh), where it fails.
#[test]
fn fortran_program_matches_rust_api() {
    let Some(fc) = fortran_compiler() else {
        assert!(
            std::env::var("AIAPREP_REQUIRE_FORTRAN").as_deref() != Ok("1"),
            "AIAPREP_REQUIRE_FORTRAN=1 but no Fortran compiler: FC unset, no gfortran on PATH, \
             no .fortran/bin/gfortran (run scripts/fortran-toolchain.sh)"
        );
        eprintln!(
            "fortran_program_matches_rust_api skipped: no gfortran \
             (run scripts/fortran-toolchain.sh)"
        );
        return;
    };
    let (dir, tmp) = cdylib_and_tmpdir("fortran");
    let exe = tmp.join("prep_f");
    // gfortran flags; -J keeps the module file (aiaprep.mod) out of the working directory.
    let st = Command::new(&fc)
        .args([
            "-std=f2018",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fimplicit-none",
        ])
        .arg("-J")
        .arg(&tmp)
        .arg(root().join("examples/fortran/prep.f90"))
        .args(link_args(&dir, &exe))
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", fc.display()));
    assert!(st.success(), "{} failed on prep.f90", fc.display());

    let (stdout, reg) = check_prep_program(&exe, &tmp);
    // The second line: a string keyword through a caller-owned character buffer.
    let t_obs = reg.header.get_str("T_OBS").unwrap();
    assert!(!t_obs.is_empty());
    assert_eq!(
        stdout.lines().nth(1),
        Some(format!("T_OBS={t_obs}").as_str()),
        "{stdout}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The C ABI on the CUDA backend (the C program above runs `AIAPREP_BACKEND_AUTO`, which is
/// the test device here): results match the Rust API's CPU path, and after every call the
/// caller's thread has the CUDA context it had before (none), whatever aiaprep bound.
#[cfg(feature = "cuda")]
#[test]
fn c_abi_on_the_gpu_restores_the_callers_context_cuda() {
    use aiaprep::capi::*;
    use cudarc::driver::sys;
    use std::ptr::null_mut;
    if !device::require() {
        return;
    }
    std::thread::spawn(|| {
        let current = || -> sys::CUcontext {
            let mut c: sys::CUcontext = null_mut();
            // SAFETY: valid out-pointer; cuInit first so the query is valid.
            unsafe {
                sys::cuInit(0).result().unwrap();
                sys::cuCtxGetCurrent(&mut c).result().unwrap();
            }
            c
        };
        let ok = AiaprepStatus::AiaprepOk;
        let input =
            std::ffi::CString::new(common::data("aia_171_level1_128px.fits").to_str().unwrap())
                .unwrap();
        let mut ctx = null_mut();
        let (mut map, mut reg, mut dec) = (null_mut(), null_mut(), null_mut());
        // SAFETY: valid out-pointers and handles, as the C header documents.
        unsafe {
            assert_eq!(
                aiaprep_context_new(AiaprepBackend::AiaprepBackendCuda as i32, &mut ctx),
                ok
            );
            assert!(
                current().is_null(),
                "aiaprep_context_new left its context current"
            );
            assert_eq!(aiaprep_read(input.as_ptr(), &mut map), ok);
            assert_eq!(aiaprep_register(ctx, map, std::ptr::null(), &mut reg), ok);
            assert!(
                current().is_null(),
                "aiaprep_register left its context current"
            );
            assert_eq!(aiaprep_deconvolve(ctx, map, std::ptr::null(), &mut dec), ok);
            assert!(
                current().is_null(),
                "aiaprep_deconvolve left its context current"
            );
            let (mut nx, mut ny) = (0usize, 0usize);
            assert_eq!(aiaprep_map_dims(reg, &mut nx, &mut ny), ok);
            let got = std::slice::from_raw_parts(aiaprep_map_data(reg), nx * ny);
            let m = aiaprep::fits::read(&common::data("aia_171_level1_128px.fits")).unwrap();
            let want = register(&m, &RegisterOptions::default()).unwrap();
            for (g, w) in got.iter().zip(want.data.iter()) {
                assert_eq!(g.is_nan(), w.is_nan());
                if !w.is_nan() {
                    assert!((g - w).abs() <= 1e-3f32.max(5e-7 * w.abs()), "{g} vs {w}");
                }
            }
            aiaprep_map_free(dec);
            aiaprep_map_free(reg);
            aiaprep_map_free(map);
            aiaprep_context_free(ctx);
            assert!(
                current().is_null(),
                "aiaprep_context_free left a context current"
            );
        }
    })
    .join()
    .unwrap();
}

#[test]
fn degradation_through_the_c_abi_matches_aiapy() {
    use aiaprep::capi::*;
    use std::ffi::CString;
    use std::ptr::null_mut;
    let ok = AiaprepStatus::AiaprepOk;
    let input = CString::new(common::data("aia_171_level1_128px.fits").to_str().unwrap()).unwrap();
    let table = root().join("tests/data/calibration/aia_V8_20171210_050627_response_table.txt");
    let table = CString::new(table.to_str().unwrap()).unwrap();
    // aiapy's factor for this map (tests/parity/make_degradation_fixtures.py).
    let text =
        std::fs::read_to_string(root().join("tests/parity/fixtures/degradation_map.txt")).unwrap();
    let want: f64 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (mut map, mut out) = (null_mut(), null_mut());
    let mut factor = 0.0f64;
    // SAFETY: valid out-pointers and handles, as the C header documents.
    unsafe {
        assert_eq!(aiaprep_read(input.as_ptr(), &mut map), ok);
        assert_eq!(
            aiaprep_correct_degradation(map, table.as_ptr(), &mut factor, &mut out),
            ok
        );
        assert!(((factor - want) / want).abs() < 1e-14, "{factor} vs {want}");
        let (mut nx, mut ny) = (0usize, 0usize);
        assert_eq!(aiaprep_map_dims(out, &mut nx, &mut ny), ok);
        let got = std::slice::from_raw_parts(aiaprep_map_data(out), nx * ny);
        let input_px = std::slice::from_raw_parts(aiaprep_map_data(map), nx * ny);
        for (g, v) in got.iter().zip(input_px) {
            assert_eq!(*g, (f64::from(*v) / want) as f32);
        }
        // A table that does not exist: a typed status and no output.
        let missing = CString::new("/nonexistent/table.txt").unwrap();
        let mut o2 = null_mut();
        assert_eq!(
            aiaprep_correct_degradation(map, missing.as_ptr(), std::ptr::null_mut(), &mut o2),
            AiaprepStatus::AiaprepErrIo
        );
        assert!(o2.is_null());
        aiaprep_map_free(out);
        aiaprep_map_free(map);
    }
}

#[test]
fn uncertainty_through_the_c_abi_is_the_libraries() {
    use aiaprep::capi::*;
    use std::ffi::CString;
    use std::ptr::null_mut;
    let ok = AiaprepStatus::AiaprepOk;
    let input = CString::new(common::data("aia_171_level1_128px.fits").to_str().unwrap()).unwrap();
    let (mut map, mut out, mut bad) = (null_mut(), null_mut(), null_mut());
    let m = aiaprep::fits::read(&common::data("aia_171_level1_128px.fits")).unwrap();
    let table = aiaprep::uncertainty::ErrorTable::default_v3();
    let e = table.channel(171).unwrap();
    let mut o = aiaprep_error_options_default();
    o.include_chianti = 1;
    let eo = aiaprep::uncertainty::ErrorOptions {
        include_chianti: true,
        ..Default::default()
    };
    // SAFETY: valid out-pointers and handles, as the C header documents.
    unsafe {
        assert_eq!(aiaprep_read(input.as_ptr(), &mut map), ok);
        assert_eq!(
            aiaprep_estimate_error(map, std::ptr::null(), &o, &mut out),
            ok
        );
        let (mut nx, mut ny) = (0usize, 0usize);
        assert_eq!(aiaprep_map_dims(out, &mut nx, &mut ny), ok);
        let got = std::slice::from_raw_parts(aiaprep_map_data(out), nx * ny);
        for (g, c) in got.iter().zip(m.data.iter()) {
            let want = aiaprep::uncertainty::estimate_error(f64::from(*c), &e, &eo) as f32;
            assert!(
                g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                "{g} vs {want}"
            );
        }
        // EVE and pre-flight together: an argument error, no output.
        o.include_eve = 1;
        o.include_preflight = 1;
        assert_eq!(
            aiaprep_estimate_error(map, std::ptr::null(), &o, &mut bad),
            AiaprepStatus::AiaprepErrArgument
        );
        assert!(bad.is_null());
        aiaprep_map_free(out);
        aiaprep_map_free(map);
    }
}
