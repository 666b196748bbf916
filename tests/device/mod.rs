//! The CUDA device the GPU tests (`*_cuda`) run on.
//!
//! A test binary that includes this module (`mod device;`) sets its device up before `main`
//! (an `.init_array` constructor, so no test of the binary — GPU or CPU — runs before the
//! choice is made, and the choice is the same for all of them):
//!
//! * `AIAPREP_TEST_DEVICE=real`: the machine's own CUDA installation (a GPU machine; what
//!   `scripts/gpu-check.sh run` sets);
//! * `AIAPREP_CUDA_LIB_DIR` already set: that installation, as for any aiaprep run;
//! * otherwise the software device (`scripts/softcuda.sh`, built here with cargo and cc on
//!   first use; `AIAPREP_TEST_DEVICE=v100` picks its V100 + CUDA 12 profile, default the
//!   H200 + CUDA 13 one): `AIAPREP_CUDA_LIB_DIR` is set to it for this process and the
//!   programs it starts. Everything it runs is emulated; its timings mean nothing.
//!
//! [`require`] is called by every GPU test first: `true` when a device is set up; when the
//! software device cannot be built it fails the test under CI (`CI` set) and otherwise
//! prints `SKIP` with the reason and returns `false`.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

/// Picks the test device: `real`, `h200` (default) or `v100`.
pub const TEST_DEVICE_VAR: &str = "AIAPREP_TEST_DEVICE";
/// aiaprep's variable for the CUDA library directory.
pub const LIB_DIR_VAR: &str = "AIAPREP_CUDA_LIB_DIR";

static SETUP: OnceLock<Result<String, String>> = OnceLock::new();

/// Builds the software device `profile` and returns its directory.
pub fn build_softcuda(profile: &str) -> Result<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/softcuda.sh"))
        .args(["dir", profile])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run scripts/softcuda.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/softcuda.sh dir {profile} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !Path::new(&dir).join("libcuda.so").exists() {
        return Err(format!(
            "scripts/softcuda.sh printed {dir:?}, not a device directory"
        ));
    }
    Ok(dir)
}

/// The device choice (made once, before `main`).
pub fn setup() -> &'static Result<String, String> {
    SETUP.get_or_init(|| {
        let want = std::env::var(TEST_DEVICE_VAR).unwrap_or_default();
        if want == "real" {
            return Ok("the machine's CUDA installation".into());
        }
        if let Some(d) = std::env::var_os(LIB_DIR_VAR).filter(|v| !v.is_empty()) {
            return Ok(format!("{LIB_DIR_VAR}={}", d.to_string_lossy()));
        }
        let profile = if want.is_empty() {
            "h200"
        } else {
            want.as_str()
        };
        let dir = build_softcuda(profile)?;
        // Before main: no other thread exists yet.
        std::env::set_var(LIB_DIR_VAR, &dir);
        Ok(format!("the software device {dir} (emulated)"))
    })
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static SET_UP_BEFORE_MAIN: extern "C" fn() = {
    extern "C" fn before_main() {
        let _ = setup();
    }
    before_main
};

/// Whether GPU tests can run here (see the module docs).
pub fn require() -> bool {
    match setup() {
        Ok(what) => {
            eprintln!("GPU tests on {what}");
            true
        }
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but the test device cannot be set up: {e}");
            }
            eprintln!("SKIP: no test device: {e}");
            false
        }
    }
}

/// Whether the tests run on the software device.
pub fn is_soft() -> bool {
    std::env::var(LIB_DIR_VAR)
        .map(|d| d.contains("softcuda"))
        .unwrap_or(false)
}
