//! The CUDA C kernel sources in `kernels/`, embedded at build time by `build.rs`.
//! Compiled with NVRTC on first use by the GPU path; the registry exists (possibly empty)
//! in every build, so CPU-only builds can still list and test-compile the kernels.

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// The kernel source with this name (file stem), if any.
pub fn find(name: &str) -> Option<&'static KernelSource> {
    KERNELS.iter().find(|k| k.name == name)
}
