//! Every kernel file in `kernels/` compiles under NVRTC for sm_70, sm_80 and sm_90 — the
//! real compile path of the GPU backend (`aiaprep::gpu::module::compile`), with no GPU.
//!
//! Needs NVRTC at run time (`libnvrtc.so.12` or `.13`, found by dlopen). Locally:
//!
//! ```text
//! python3 -m venv .venv-nvrtc && .venv-nvrtc/bin/pip install nvidia-cuda-nvrtc-cu12
//! LD_LIBRARY_PATH=$(echo .venv-nvrtc/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib) \
//!     cargo test --features cuda --test kernels_nvrtc
//! ```
//!
//! or `bash scripts/ci-nvrtc.sh`. Without NVRTC the tests print a reason and return —
//! except when `AIAPREP_REQUIRE_NVRTC` is set (as `scripts/ci-nvrtc.sh` does), where a
//! missing NVRTC is a failure. (Not `CI`: the plain `cargo test` of a CI run has no NVRTC on
//! its library path; the NVRTC step comes after it.) sm_70 is skipped (with a
//! message) when the NVRTC found is CUDA 13, which dropped Volta.

#![cfg(feature = "cuda")]

use aiaprep::gpu::Arch;
use aiaprep::internals::gpu::{compile, nvrtc_version, supported_archs};
use aiaprep::kernels::KERNELS;

/// `true` when NVRTC is loadable; otherwise skip (or fail when `AIAPREP_REQUIRE_NVRTC` is set).
fn nvrtc_or_skip() -> bool {
    match nvrtc_version() {
        Ok(v) => {
            eprintln!("NVRTC {}.{}", v.0, v.1);
            true
        }
        Err(e) => {
            if std::env::var_os("AIAPREP_REQUIRE_NVRTC").is_some() {
                panic!("AIAPREP_REQUIRE_NVRTC is set but NVRTC cannot be loaded: {e}");
            }
            eprintln!("SKIP: NVRTC not available: {e}");
            false
        }
    }
}

fn check_arch(arch: Arch) {
    if !nvrtc_or_skip() {
        return;
    }
    let supported = supported_archs().expect("nvrtcGetSupportedArchs");
    let (maj, min) = arch.capability();
    if !supported.contains(&(maj * 10 + min)) {
        let (a, b) = nvrtc_version().unwrap();
        assert!(
            arch == Arch::Sm70 && a >= 13,
            "NVRTC {a}.{b} cannot target {arch} (supports {supported:?})"
        );
        eprintln!("SKIP {arch}: NVRTC {a}.{b} dropped it (use CUDA 12 NVRTC for V100)");
        return;
    }
    let files: Vec<_> = KERNELS
        .iter()
        .filter(|k| !k.entry_points.is_empty())
        .collect();
    let names: Vec<&str> = files.iter().map(|k| k.name).collect();
    for want in ["convert", "fulldisk", "psf", "resample", "rl"] {
        assert!(
            names.contains(&want),
            "kernels/{want}.cu not embedded: {names:?}"
        );
    }
    for k in files {
        let c = compile(k, arch, &["-Xptxas=-v"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            c.ptx.contains(&format!(".target {}", arch.as_str())),
            "{}: PTX for the wrong target",
            k.name
        );
        for ep in k.entry_points {
            assert!(
                c.ptx.contains(&format!(".entry {ep}(")),
                "{}: entry point {ep} missing from the PTX",
                k.name
            );
        }
        assert!(!c.cubin.is_empty(), "{}: no cubin for {arch}", k.name);
        // no register spills in any kernel
        for line in c.log.lines().filter(|l| l.contains("spill")) {
            assert!(
                line.contains("0 bytes spill stores, 0 bytes spill loads"),
                "{} ({arch}) spills: {line}",
                k.name
            );
        }
        let regs: Vec<&str> = c.log.lines().filter(|l| l.contains("Used ")).collect();
        eprintln!(
            "{} {arch}: {} entry points; {}",
            k.name,
            k.entry_points.len(),
            regs.join(" | ")
        );
    }
}

#[test]
fn kernels_compile_for_sm70() {
    check_arch(Arch::Sm70);
}

#[test]
fn kernels_compile_for_sm80() {
    check_arch(Arch::Sm80);
}

#[test]
fn kernels_compile_for_sm90() {
    check_arch(Arch::Sm90);
}

#[test]
fn compile_errors_come_back_with_the_log() {
    if !nvrtc_or_skip() {
        return;
    }
    let bad = aiaprep::kernels::KernelSource {
        name: "broken",
        source: "#include \"common.cuh\"\nextern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }\n",
        entry_points: &["k"],
    };
    let e = compile(&bad, Arch::Sm80, &[]).expect_err("must not compile");
    let msg = e.to_string();
    assert!(msg.contains("undefined_name"), "log missing from: {msg}");
    assert!(matches!(e, aiaprep::Error::Gpu { .. }));
}
