//! Kernel modules and launches.
//!
//! A module is a host shared object made by the emulated NVRTC ([`crate::nvrtc`]) from the
//! kernel source under `kernels/emulate.h`; it exports the block runner and, per entry
//! point, the kinds and sizes of its parameters (`aia_emu_*`, see emulate.h). A launch copies
//! the argument values (as the driver does at `cuLaunchKernel`), checks every pointer
//! argument against the allocation table, and runs the grid's blocks in parallel on a
//! worker pool (`SOFTCUDA_THREADS`), the threads of each block on one worker — directly, or
//! as fibers once the block calls `__syncthreads`. A fault inside a kernel (a read or write
//! past a buffer into its guard page, a use of freed memory) stops the launch and leaves the
//! context with `CUDA_ERROR_ILLEGAL_ADDRESS`, as on a GPU; so does a write into the few
//! bytes of slack after a buffer, found by the canary check after the launch.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;

use crate::state;

/// `aia_dim3` / `dim3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dim3 {
    pub x: u32,
    pub y: u32,
    pub z: u32,
}

impl Dim3 {
    pub fn count(&self) -> u64 {
        self.x as u64 * self.y as u64 * self.z as u64
    }
}

/// `AiaEmuParam`: one kernel parameter.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Param {
    pub size: u32,
    pub align: u32,
    /// 0 by value, 1 pointer to const, 2 pointer to non-const.
    pub kind: i32,
}

/// `AiaEmuFault`.
#[repr(C)]
pub struct Fault {
    pub kind: i32,
    pub addr: u64,
    pub block: u64,
    pub thread: u32,
    pub message: [c_char; 256],
}

type AbiFn = unsafe extern "C" fn() -> i32;
type CountFn = unsafe extern "C" fn() -> i32;
type NameFn = unsafe extern "C" fn(i32) -> *const c_char;
type ParamsFn = unsafe extern "C" fn(i32, *mut Param, i32) -> i32;
type RunFn = unsafe extern "C" fn(
    i32,
    *mut *mut c_void,
    Dim3,
    Dim3,
    u64,
    u64,
    *const i32,
    *mut Fault,
) -> i32;

/// An entry point.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub params: Vec<Param>,
}

/// A loaded module.
pub struct Module {
    pub path: String,
    pub entries: Vec<Entry>,
    /// Static `__shared__` bytes of the module's kernels (a bound on any one kernel's);
    /// `None` when not known.
    pub static_shared: Option<u64>,
    run: RunFn,
}

/// The static shared memory of a compiled module (loads it; modules stay loaded).
pub fn static_shared_bytes(path: &str) -> Option<u64> {
    Module::load(path).ok().and_then(|m| m.static_shared)
}

/// What a module image says about itself.
#[derive(Debug, PartialEq)]
pub struct Image {
    pub path: String,
    /// `(major, minor)` of the target.
    pub target: (i32, i32),
    /// A cubin (SASS for exactly `target`) rather than PTX.
    pub cubin: bool,
    /// NVRTC major version that compiled it.
    pub nvrtc_major: i32,
}

/// Magic at the start of a softcuda "cubin".
pub const CUBIN_MAGIC: &[u8] = b"\x7fSOFTCUDA-CUBIN\n";

/// Parses an image given to `cuModuleLoadData` (a NUL-terminated text, after the magic
/// for a cubin). `Err` says why it cannot be loaded.
///
/// # Safety
/// `image` points to a NUL-terminated buffer (PTX) or a buffer starting with
/// [`CUBIN_MAGIC`] followed by a NUL-terminated text, or real PTX/ELF data.
pub unsafe fn parse_image(image: *const c_void) -> Result<Image, String> {
    let p = image as *const u8;
    // Compares byte by byte, stopping at the first difference (so never past a NUL).
    let starts_with = |magic: &[u8]| magic.iter().enumerate().all(|(i, &b)| *p.add(i) == b);
    if starts_with(b"\x7fELF") {
        return Err(
            "an ELF cubin from a real NVIDIA compiler cannot run on the software device".into(),
        );
    }
    let cubin = starts_with(CUBIN_MAGIC);
    let text = CStr::from_ptr(if cubin { p.add(CUBIN_MAGIC.len()) } else { p } as *const c_char)
        .to_string_lossy()
        .into_owned();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
    };
    let Some(path) = field("// softcuda-module:") else {
        return Err(
            "not a softcuda image (real PTX cannot run on the software device; compile with \
             its NVRTC)"
                .into(),
        );
    };
    let target = field(".target")
        .and_then(|t| {
            let n: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
            n.parse::<i32>().ok()
        })
        .ok_or("image without a .target line")?;
    let nvrtc_major = field("// softcuda-nvrtc:")
        .and_then(|v| v.split('.').next().and_then(|m| m.parse().ok()))
        .ok_or("image without the NVRTC version")?;
    Ok(Image {
        path,
        target: (target / 10, target % 10),
        cubin,
        nvrtc_major,
    })
}

impl Module {
    /// Loads the shared object of an image.
    pub fn load(path: &str) -> Result<Module, String> {
        let c = CString::new(path).map_err(|_| "module path with a NUL byte".to_string())?;
        // SAFETY: dlopen of a module this emulator compiled; never closed (its signal handler
        // may be installed).
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if h.is_null() {
            // SAFETY: dlerror returns a thread-local message or null.
            let e = unsafe { libc::dlerror() };
            let msg = if e.is_null() {
                "unknown error".into()
            } else {
                unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
            };
            return Err(format!("cannot load {path}: {msg}"));
        }
        let sym = |name: &str| -> Result<*mut c_void, String> {
            let n = CString::new(name).map_err(|_| "bad symbol".to_string())?;
            // SAFETY: a valid handle and name.
            let s = unsafe { libc::dlsym(h, n.as_ptr()) };
            if s.is_null() {
                Err(format!("{path}: no {name} (not a softcuda module)"))
            } else {
                Ok(s)
            }
        };
        // SAFETY: the symbols have the signatures of emulate.h's module ABI.
        unsafe {
            let abi: AbiFn = std::mem::transmute(sym("aia_emu_abi_version")?);
            if abi() != 1 {
                return Err(format!("{path}: module ABI {} (want 1)", abi()));
            }
            let count: CountFn = std::mem::transmute(sym("aia_emu_entry_count")?);
            let name: NameFn = std::mem::transmute(sym("aia_emu_entry_name")?);
            let params: ParamsFn = std::mem::transmute(sym("aia_emu_entry_params")?);
            let run: RunFn = std::mem::transmute(sym("aia_emu_run")?);
            let mut entries = Vec::new();
            for i in 0..count() {
                let n = name(i);
                if n.is_null() {
                    return Err(format!("{path}: entry {i} without a name"));
                }
                let k = params(i, std::ptr::null_mut(), 0);
                let mut v = vec![Param::default(); k.max(0) as usize];
                params(i, v.as_mut_ptr(), k);
                entries.push(Entry {
                    name: CStr::from_ptr(n).to_string_lossy().into_owned(),
                    params: v,
                });
            }
            let shared = CString::new("aia_emu_static_shared_bytes")
                .ok()
                .and_then(|n| {
                    let f = libc::dlsym(h, n.as_ptr());
                    (!f.is_null()).then(|| {
                        let f: unsafe extern "C" fn() -> u64 = std::mem::transmute(f);
                        f()
                    })
                });
            Ok(Module {
                path: path.to_string(),
                entries,
                static_shared: shared,
                run,
            })
        }
    }

    pub fn entry(&self, name: &str) -> Option<i32> {
        self.entries
            .iter()
            .position(|e| e.name == name)
            .map(|i| i as i32)
    }
}

/// A launch, with its own copy of the arguments.
pub struct Launch {
    pub module: std::sync::Arc<Module>,
    pub entry: i32,
    pub name: String,
    pub grid: Dim3,
    pub block: Dim3,
    /// Argument values, 16-byte aligned each.
    pub storage: Vec<Box<[u128]>>,
    /// The allocations its pointer arguments point into (checked for canaries after).
    pub touched: Vec<u64>,
    /// An injected launch failure.
    pub fail: bool,
}

fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = crate::config::get().threads;
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("softcuda-sm-{i}"))
            .stack_size(8 << 20)
            .build()
            .unwrap_or_else(|_| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .unwrap_or_else(|e| panic!("softcuda: no worker thread: {e}"))
            })
    })
}

/// Runs a launch on the worker pool.
pub fn run(l: &Launch) -> Result<(), (i32, String)> {
    if l.fail {
        return Err((
            crate::cu::LAUNCH_FAILED,
            format!("injected fault: launch of {} fails on the device", l.name),
        ));
    }
    let mut ptrs: Vec<*mut c_void> = l
        .storage
        .iter()
        .map(|b| b.as_ptr() as *mut c_void)
        .collect();
    let params = ptrs.as_mut_ptr() as usize;
    let blocks = l.grid.count();
    let workers = crate::config::get().threads as u64;
    let chunks = blocks.min(workers * 8).max(1);
    let abort = AtomicI32::new(0);
    let first_fault: Mutex<Option<String>> = Mutex::new(None);
    let run = l.module.run;
    pool().install(|| {
        (0..chunks).into_par_iter().for_each(|c| {
            if abort.load(Ordering::Relaxed) != 0 {
                return;
            }
            let lo = blocks * c / chunks;
            let hi = blocks * (c + 1) / chunks;
            let mut fault = Fault {
                kind: 0,
                addr: 0,
                block: 0,
                thread: 0,
                message: [0; 256],
            };
            // SAFETY: the module's runner with the launch's own argument copies (alive for
            // the whole call), dimensions checked at cuLaunchKernel, and a fault record.
            let rc = unsafe {
                run(
                    l.entry,
                    params as *mut *mut c_void,
                    l.grid,
                    l.block,
                    lo,
                    hi - lo,
                    abort.as_ptr(),
                    &mut fault,
                )
            };
            if rc == -1 {
                abort.store(1, Ordering::Relaxed);
                let mut f = first_fault.lock().unwrap_or_else(|e| e.into_inner());
                if f.is_none() {
                    *f = Some(
                        "the block runner refused the launch (bad entry, block size or \
                               range, or no fiber stack)"
                            .to_string(),
                    );
                }
            } else if rc == 1 {
                abort.store(1, Ordering::Relaxed);
                // SAFETY: the runner NUL-terminates the message.
                let msg = unsafe { CStr::from_ptr(fault.message.as_ptr()) }
                    .to_string_lossy()
                    .into_owned();
                let mut f = first_fault.lock().unwrap_or_else(|e| e.into_inner());
                if f.is_none() {
                    *f = Some(format!(
                        "{msg} [address {:#x}: {}]",
                        fault.addr,
                        state::lock().table.why_not(fault.addr as usize)
                    ));
                }
            }
        })
    });
    drop(ptrs);
    if let Some(msg) = first_fault.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err((
            crate::cu::ILLEGAL_ADDRESS,
            format!("illegal address in kernel {}: {msg}", l.name),
        ));
    }
    let st = state::lock();
    for id in &l.touched {
        if let Some(a) = st.table.allocs.get(id) {
            if let Err(off) = a.map.check_canaries() {
                return Err((
                    crate::cu::ILLEGAL_ADDRESS,
                    format!(
                        "illegal address in kernel {}: it wrote byte {off} of {} (outside the \
                         buffer)",
                        l.name,
                        a.describe()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_parse() {
        let ptx = b"// softcuda-module: /tmp/x.so\n// softcuda-nvrtc: 12.9\n.version 8.0\n.target sm_70\n\0";
        let im = unsafe { parse_image(ptx.as_ptr() as *const c_void) }.unwrap();
        assert_eq!(
            im,
            Image {
                path: "/tmp/x.so".into(),
                target: (7, 0),
                cubin: false,
                nvrtc_major: 12
            }
        );
        let mut cubin = CUBIN_MAGIC.to_vec();
        cubin.extend_from_slice(
            b"// softcuda-module: /m.so\n// softcuda-nvrtc: 13.0\n.target sm_90\n\0",
        );
        let im = unsafe { parse_image(cubin.as_ptr() as *const c_void) }.unwrap();
        assert!(im.cubin && im.target == (9, 0) && im.nvrtc_major == 13);
        let real = b".version 8.0\n.target sm_90\n\0";
        assert!(unsafe { parse_image(real.as_ptr() as *const c_void) }.is_err());
    }
}
