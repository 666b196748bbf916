//! The CUDA C kernel sources in `kernels/`, embedded at build time by `build.rs`.
//! Compiled with NVRTC on first use by the GPU path; the registry exists (possibly empty)
//! in every build, so CPU-only builds can still list and test-compile the kernels.
//!
//! The registry is for compiling and listing (`tests/kernels_nvrtc.rs` compiles every
//! file). The GPU path does not look kernels up in it by name: `build.rs` also parses each
//! entry point's parameter list and generates, for the `cuda` feature, a typed id and a
//! typed launcher per entry point (`crate::gpu::launch`, e.g. `launch::rl::rl_prepare`),
//! in the order of this registry's `entry_points`.

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// The kernel source with this name (file stem), if any.
pub fn find(name: &str) -> Option<&'static KernelSource> {
    KERNELS.iter().find(|k| k.name == name)
}
