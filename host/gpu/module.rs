//! NVRTC compilation of the embedded kernels ([`crate::kernels::KERNELS`]) and the
//! per-device module cache.
//!
//! Each `kernels/NAME.cu` is compiled on first use for the device's [`Arch`], with every
//! embedded header (`common.cuh`, ...) passed to NVRTC as an in-memory header so
//! `#include "common.cuh"` needs no file system. Compiled images are cached process-wide
//! per `(file, arch, NVRTC)` (a `OnceLock<Mutex<HashMap>>`), loaded modules and functions per
//! device. When the device's architecture is one of the fixed targets the cubin (SASS)
//! is loaded — no driver JIT, and it works on any driver new enough for the NVRTC major
//! version; otherwise the PTX of the highest lower target is loaded and JIT-compiled.
//!
//! The NVRTC calls go through the function table of the NVRTC chosen for the device
//! ([`super::libraries`]; not cudarc's `compile_ptx_with_opts`) to pass headers and to get
//! the cubin; every failure comes back as [`Error::Gpu`](crate::Error::Gpu) with NVRTC's
//! log, never a panic. Compiled images are cached per `(file, arch, NVRTC)`.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CString};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaFunction, CudaModule};
use cudarc::nvrtc::Ptx;

use crate::error::Result;
use crate::kernels::{KernelSource, KERNELS};

use super::device::{gpu_err, guard, unavailable, Arch, GpuDevice};
use super::libraries::{found, Nvrtc};

/// Options every kernel is compiled with (besides the target).
///
/// `--fmad=false`: no contraction of `a * b + c` into fused multiply-adds. The CPU path
/// (Rust never contracts) computes the register geometry `ref + (m00·dx + m01·dy)`, the
/// interpolation weights and the mask taps with separately rounded operations; with FMAs
/// the GPU's coordinates could differ in the last bit and flip exact ties — `c <= n − 1` at
/// the frame edge, `floor(x + 0.5)` for nearest, a bilinear mask weight of exactly 0 —
/// against the CPU's, breaking "identical NaN masks". Register and the element-wise RL
/// steps are memory-bound, so the separate roundings cost nothing measurable.
pub const COMPILE_OPTIONS: [&str; 2] = ["--std=c++17", "--fmad=false"];

/// The result of compiling one kernel file for one target.
#[derive(Debug, Clone)]
pub struct CompiledKernel {
    /// File stem (`resample`).
    pub name: &'static str,
    /// Target it was compiled for.
    pub arch: Arch,
    /// PTX text (without the trailing NUL).
    pub ptx: String,
    /// SASS for `arch` (empty if NVRTC produced none).
    pub cubin: Vec<u8>,
    /// NVRTC's log (warnings; `-Xptxas -v` register/spill report when asked for).
    pub log: String,
}

fn check(nv: &Nvrtc, r: c_int, what: &str) -> Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(gpu_err(what, nv.error(r)))
    }
}

/// The newest NVRTC found (see [`super::libraries`]).
fn newest() -> Result<Arc<Nvrtc>> {
    let f = found();
    f.nvrtc.first().cloned().ok_or_else(|| {
        unavailable(format!(
            "cannot load libnvrtc (CUDA NVRTC) from {}",
            f.searched()
        ))
    })
}

/// Version `(major, minor)` of the newest NVRTC found.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    Ok(newest()?.version)
}

/// The `sm_XX` numbers (e.g. 75, 90) the newest NVRTC found can compile for.
pub fn supported_archs() -> Result<Vec<i32>> {
    Ok(newest()?.archs.clone())
}

/// RAII owner of an `nvrtcProgram`.
struct Program<'a>(*mut std::ffi::c_void, &'a Nvrtc);
impl Drop for Program<'_> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the program was created by nvrtcCreateProgram and is destroyed once.
            unsafe {
                let _ = (self.1.f.destroy)(&mut self.0);
            }
        }
    }
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| gpu_err(what, "contains a NUL byte"))
}

/// Compiles one embedded kernel file for `arch` with the newest NVRTC that targets it.
/// `extra_options` are passed through (e.g. `-Xptxas=-v` for the register report). Needs
/// NVRTC, not a GPU.
///
/// Errors: [`crate::Error::BackendUnavailable`] without a suitable NVRTC;
/// [`crate::Error::Gpu`] with the compile log when NVRTC rejects the source.
pub fn compile(
    kernel: &KernelSource,
    arch: Arch,
    extra_options: &[&str],
) -> Result<CompiledKernel> {
    let f = found();
    let nv = f
        .nvrtc
        .iter()
        .find(|n| n.supports(arch))
        .cloned()
        .ok_or_else(|| {
            unavailable(format!(
                "no NVRTC from {} compiles for {arch} (found {:?})",
                f.searched(),
                f.nvrtc
            ))
        })?;
    compile_with(&nv, kernel, arch, extra_options)
}

/// [`compile`] with a given NVRTC.
pub fn compile_with(
    nv: &Nvrtc,
    kernel: &KernelSource,
    arch: Arch,
    extra_options: &[&str],
) -> Result<CompiledKernel> {
    guard("NVRTC", || compile_inner(nv, kernel, arch, extra_options))
}

fn compile_inner(
    nv: &Nvrtc,
    kernel: &KernelSource,
    arch: Arch,
    extra_options: &[&str],
) -> Result<CompiledKernel> {
    let what = format!(
        "compiling kernels/{}.cu for {arch} with NVRTC {}.{}",
        kernel.name, nv.version.0, nv.version.1
    );
    let src = cstring(kernel.source, &what)?;
    let name = cstring(&format!("{}.cu", kernel.name), &what)?;
    let headers: Vec<&KernelSource> = KERNELS
        .iter()
        .filter(|k| k.entry_points.is_empty() && k.name.contains('.'))
        .collect();
    let h_src: Vec<CString> = headers
        .iter()
        .map(|h| cstring(h.source, &what))
        .collect::<Result<_>>()?;
    let h_name: Vec<CString> = headers
        .iter()
        .map(|h| cstring(h.name, &what))
        .collect::<Result<_>>()?;
    let h_src_p: Vec<*const c_char> = h_src.iter().map(|c| c.as_ptr()).collect();
    let h_name_p: Vec<*const c_char> = h_name.iter().map(|c| c.as_ptr()).collect();

    let mut prog = Program(std::ptr::null_mut(), nv);
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    check(
        nv,
        unsafe {
            (nv.f.create)(
                &mut prog.0,
                src.as_ptr(),
                name.as_ptr(),
                h_src_p.len() as c_int,
                if h_src_p.is_empty() {
                    std::ptr::null()
                } else {
                    h_src_p.as_ptr()
                },
                if h_name_p.is_empty() {
                    std::ptr::null()
                } else {
                    h_name_p.as_ptr()
                },
            )
        },
        &what,
    )?;

    let mut opts: Vec<CString> = vec![cstring(
        &format!("--gpu-architecture={}", arch.as_str()),
        &what,
    )?];
    for o in COMPILE_OPTIONS.iter().chain(extra_options) {
        opts.push(cstring(o, &what)?);
    }
    let opt_p: Vec<*const c_char> = opts.iter().map(|c| c.as_ptr()).collect();
    // SAFETY: valid program and option strings.
    let rc = unsafe { (nv.f.compile)(prog.0, opt_p.len() as c_int, opt_p.as_ptr()) };
    let log = program_log(&prog);
    if rc != 0 {
        return Err(gpu_err(&what, format!("{}\n{log}", nv.error(rc))));
    }

    let mut ptx_len = 0usize;
    // SAFETY: valid program; buffer sized from the reported length.
    check(nv, unsafe { (nv.f.ptx_size)(prog.0, &mut ptx_len) }, &what)?;
    let mut ptx = vec![0u8; ptx_len];
    if ptx_len > 0 {
        check(
            nv,
            unsafe { (nv.f.ptx)(prog.0, ptx.as_mut_ptr() as *mut c_char) },
            &what,
        )?;
    }
    while ptx.last() == Some(&0) {
        ptx.pop();
    }
    let ptx = String::from_utf8(ptx).map_err(|_| gpu_err(&what, "PTX is not UTF-8"))?;

    let mut cubin_len = 0usize;
    let mut cubin = Vec::new();
    // SAFETY: as above; a zero size means NVRTC produced no cubin (virtual target).
    if unsafe { (nv.f.cubin_size)(prog.0, &mut cubin_len) } == 0 && cubin_len > 0 {
        cubin = vec![0u8; cubin_len];
        check(
            nv,
            unsafe { (nv.f.cubin)(prog.0, cubin.as_mut_ptr() as *mut c_char) },
            &what,
        )?;
    }
    Ok(CompiledKernel {
        name: static_name(kernel),
        arch,
        ptx,
        cubin,
        log,
    })
}

fn static_name(kernel: &KernelSource) -> &'static str {
    KERNELS
        .iter()
        .find(|k| k.name == kernel.name)
        .map(|k| k.name)
        .unwrap_or("<unknown>")
}

fn program_log(prog: &Program) -> String {
    let nv = prog.1;
    let mut n = 0usize;
    // SAFETY: valid program; buffer sized from the reported length.
    unsafe {
        if (nv.f.log_size)(prog.0, &mut n) != 0 || n == 0 {
            return String::new();
        }
        let mut buf = vec![0u8; n];
        if (nv.f.log)(prog.0, buf.as_mut_ptr() as *mut c_char) != 0 {
            return String::new();
        }
        while buf.last() == Some(&0) {
            buf.pop();
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

type ImageCache = Mutex<HashMap<(&'static str, Arch, String), Arc<CompiledKernel>>>;

/// Compiles `kernels/NAME.cu` for `arch` with `nv` once per process.
pub fn compile_cached(nv: &Nvrtc, name: &str, arch: Arch) -> Result<Arc<CompiledKernel>> {
    static CACHE: OnceLock<ImageCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let kernel = crate::kernels::find(name)
        .ok_or_else(|| gpu_err("kernel registry", format!("no kernels/{name}.cu embedded")))?;
    let key = (kernel.name, arch, nv.path.clone());
    if let Some(k) = cache.lock().map_err(|_| poisoned())?.get(&key) {
        return Ok(k.clone());
    }
    // Compile outside the lock (other files can compile meanwhile); a race compiles twice.
    let compiled = Arc::new(compile_with(nv, kernel, arch, &[])?);
    let mut guard = cache.lock().map_err(|_| poisoned())?;
    Ok(guard.entry(key).or_insert(compiled).clone())
}

fn poisoned() -> crate::Error {
    gpu_err("kernel cache", "a thread panicked while holding the lock")
}

/// Modules and functions loaded into one device's context.
#[derive(Default)]
pub(crate) struct ModuleCache {
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<(&'static str, String), CudaFunction>>,
}

impl GpuDevice {
    /// Compiles (once per process) and loads (once per context) every kernel file, so that
    /// a device that cannot run them is refused at open rather than at the first image.
    pub(crate) fn load_all_kernels(&self) -> Result<()> {
        for k in KERNELS.iter().filter(|k| !k.entry_points.is_empty()) {
            self.module(k.name)?;
        }
        Ok(())
    }

    /// The loaded function `entry` of `kernels/FILE.cu` (compiled and loaded on first use).
    pub fn function(&self, file: &str, entry: &str) -> Result<CudaFunction> {
        let kernel = crate::kernels::find(file)
            .ok_or_else(|| gpu_err("kernel registry", format!("no kernels/{file}.cu embedded")))?;
        let key = (kernel.name, entry.to_string());
        if let Some(f) = self
            .modules
            .functions
            .lock()
            .map_err(|_| poisoned())?
            .get(&key)
        {
            return Ok(f.clone());
        }
        let module = self.module(kernel.name)?;
        let f = guard("cuModuleGetFunction", || {
            // cudarc's load_function does not bind the context, and cuModuleGetFunction
            // works in the calling thread's current one (INVALID_CONTEXT without).
            self.ctx
                .bind_to_thread()
                .map_err(|e| gpu_err("cuCtxSetCurrent", e))?;
            module
                .load_function(entry)
                .map_err(|e| gpu_err(&format!("loading {entry} from kernels/{file}.cu"), e))
        })?;
        self.modules
            .functions
            .lock()
            .map_err(|_| poisoned())?
            .insert(key, f.clone());
        Ok(f)
    }

    fn module(&self, name: &'static str) -> Result<Arc<CudaModule>> {
        if let Some(m) = self
            .modules
            .modules
            .lock()
            .map_err(|_| poisoned())?
            .get(name)
        {
            return Ok(m.clone());
        }
        let compiled = compile_cached(&self.nvrtc, name, self.arch())?;
        let image = if self.exact_arch() && !compiled.cubin.is_empty() {
            Ptx::from_binary(compiled.cubin.clone())
        } else {
            Ptx::from_src(compiled.ptx.clone())
        };
        let m = guard("cuModuleLoadData", || {
            self.ctx.load_module(image).map_err(|e| {
                gpu_err(
                    &format!(
                        "loading kernels/{name}.cu ({}) into the context",
                        self.arch()
                    ),
                    format!(
                        "{e} (a PTX/driver version mismatch means the driver is older than \
                         the NVRTC that compiled it)"
                    ),
                )
            })
        })?;
        self.modules
            .modules
            .lock()
            .map_err(|_| poisoned())?
            .insert(name, m.clone());
        Ok(m)
    }
}
