//! The emulated device and the faults to inject.
//!
//! The installation (driver version, device model) comes from the `libcuda.so` shim of the
//! device directory, which calls [`softcuda_configure_driver`] from its constructor before
//! anything else runs. Everything else comes from environment variables read once, at the
//! first driver call:
//!
//! | variable | meaning |
//! |---|---|
//! | `SOFTCUDA_DEVICES=N` | number of devices (default 1) |
//! | `SOFTCUDA_MEMORY=BYTES` | device memory (default: the model's), e.g. `2G`, `512M` |
//! | `SOFTCUDA_NO_POOLS=1` | no stream-ordered allocator (`MEMORY_POOLS_SUPPORTED` = 0) |
//! | `SOFTCUDA_CHAOS=SEED` | random delays (0–2 ms) before each stream operation |
//! | `SOFTCUDA_DELAY_US=N` | a fixed delay before each stream operation (a slow device) |
//! | `SOFTCUDA_THREADS=N` | worker threads that run kernel blocks (default: the cores) |
//! | `SOFTCUDA_FAULT=LIST` | comma-separated faults, below |
//! | `SOFTCUDA_CACHE=DIR` | where compiled kernel modules are cached |
//! | `SOFTCUDA_CXX=CMD` | the host C++ compiler of the emulated NVRTC (default `c++`) |
//!
//! Faults: `oom@N` (the N-th device allocation, 1-based, fails with out of memory; `oom@N+`:
//! every one from the N-th on),
//! `launch@N` (the N-th kernel launch fails on the device: sticky `LAUNCH_FAILED`),
//! `cufft=CODE` (every cuFFT plan creation returns `CODE`, e.g. 15),
//! `nvrtc` (the compiler fails every program with an internal error).

use std::sync::OnceLock;

/// A device model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// `cuDeviceGetName`.
    pub name: &'static str,
    /// Compute capability.
    pub cc: (i32, i32),
    /// Device memory in bytes.
    pub memory: u64,
    /// Streaming multiprocessors (an attribute only).
    pub sms: i32,
}

/// NVIDIA H200 (sm_90), as presented.
pub const H200: Model = Model {
    name: "NVIDIA H200 (softcuda, emulated)",
    cc: (9, 0),
    memory: 143_771_336_704,
    sms: 132,
};

/// Tesla V100-SXM2-16GB (sm_70), as presented.
pub const V100: Model = Model {
    name: "Tesla V100-SXM2-16GB (softcuda, emulated)",
    cc: (7, 0),
    memory: 17_179_869_184,
    sms: 80,
};

/// Faults to inject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// The n-th device allocation (1-based) fails.
    pub oom_at: Option<u64>,
    /// Every device allocation from the n-th on fails.
    pub oom_from: Option<u64>,
    /// The n-th kernel launch (1-based) fails on the device.
    pub launch_at: Option<u64>,
    /// cuFFT plan creation returns this code.
    pub cufft_plan: Option<i32>,
    /// NVRTC fails every compilation.
    pub nvrtc: bool,
}

/// Everything configurable.
#[derive(Debug, Clone)]
pub struct Config {
    pub driver_version: i32,
    pub model: Model,
    pub devices: i32,
    pub pools: bool,
    pub chaos: Option<u64>,
    pub delay_us: u64,
    pub threads: usize,
    pub faults: Faults,
}

static DRIVER: OnceLock<(i32, Model)> = OnceLock::new();
static CONFIG: OnceLock<Config> = OnceLock::new();

/// Called by the `libcuda.so` shim's constructor: the driver version (e.g. 12020 for CUDA
/// 12.2) and the device model (`"h200"` or `"v100"`).
#[no_mangle]
pub unsafe extern "C" fn softcuda_configure_driver(version: i32, model: *const libc::c_char) {
    let name = if model.is_null() {
        String::new()
    } else {
        std::ffi::CStr::from_ptr(model)
            .to_string_lossy()
            .into_owned()
    };
    let m = match name.as_str() {
        "v100" => V100,
        _ => H200,
    };
    let _ = DRIVER.set((version, m));
}

/// Parses `2G`, `512M`, `64K` or plain bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'G' | 'g' => (&s[..s.len() - 1], 1u64 << 30),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'K' | 'k' => (&s[..s.len() - 1], 1 << 10),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

fn parse_faults(s: &str) -> Faults {
    let mut f = Faults::default();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        if let Some(n) = item.strip_prefix("oom@").and_then(|n| n.strip_suffix('+')) {
            f.oom_from = n.parse().ok();
        } else if let Some(n) = item.strip_prefix("oom@") {
            f.oom_at = n.parse().ok();
        } else if let Some(n) = item.strip_prefix("launch@") {
            f.launch_at = n.parse().ok();
        } else if let Some(c) = item.strip_prefix("cufft=") {
            f.cufft_plan = c.parse().ok();
        } else if item == "nvrtc" {
            f.nvrtc = true;
        } else {
            crate::diag::report(&format!("SOFTCUDA_FAULT: unknown fault '{item}' ignored"));
        }
    }
    f
}

/// The configuration (read once).
pub fn get() -> &'static Config {
    CONFIG.get_or_init(|| {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let (driver_version, mut model) = DRIVER.get().cloned().unwrap_or((13000, H200));
        if let Some(m) = env("SOFTCUDA_MEMORY").and_then(|v| parse_bytes(&v)) {
            model.memory = m;
        }
        let threads = env("SOFTCUDA_THREADS")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            })
            .max(1);
        Config {
            driver_version,
            model,
            // the unit tests give each test that leaves a sticky error a device of its own
            devices: env("SOFTCUDA_DEVICES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(if cfg!(test) { 16 } else { 1 })
                .max(0),
            pools: env("SOFTCUDA_NO_POOLS").is_none(),
            chaos: env("SOFTCUDA_CHAOS").and_then(|v| v.parse().ok()),
            delay_us: env("SOFTCUDA_DELAY_US")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            threads,
            faults: env("SOFTCUDA_FAULT")
                .map(|v| parse_faults(&v))
                .unwrap_or_default(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_faults_parse() {
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("x"), None);
        let f = parse_faults("oom@3, launch@7,cufft=15,nvrtc");
        assert_eq!(f.oom_at, Some(3));
        assert_eq!(parse_faults("oom@5+").oom_from, Some(5));
        assert_eq!(f.launch_at, Some(7));
        assert_eq!(f.cufft_plan, Some(15));
        assert!(f.nvrtc);
    }
}
