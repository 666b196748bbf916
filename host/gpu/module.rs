//! NVRTC compilation of the embedded kernels ([`crate::kernels::KERNELS`]) and the
//! per-device module cache.
//!
//! Each `kernels/NAME.cu` is compiled on first use for the device's [`Arch`], with every
//! embedded header (`common.cuh`, ...) passed to NVRTC as an in-memory header so
//! `#include "common.cuh"` needs no file system. Compiled images are cached process-wide
//! per `(file, arch)` (a `OnceLock<Mutex<HashMap>>`), loaded modules and functions per
//! device. When the device's architecture is one of the fixed targets the cubin (SASS)
//! is loaded — no driver JIT, and it works on any driver new enough for the NVRTC major
//! version; otherwise the PTX of the highest lower target is loaded and JIT-compiled.
//!
//! The NVRTC calls go through `cudarc::nvrtc::sys` directly (not cudarc's
//! `compile_ptx_with_opts`) to pass headers and to get the cubin; every failure comes
//! back as [`Error::Gpu`](crate::Error::Gpu) with NVRTC's log, never a panic.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaFunction, CudaModule};
use cudarc::nvrtc::sys as nv;
use cudarc::nvrtc::Ptx;

use crate::error::Result;
use crate::kernels::{KernelSource, KERNELS};

use super::device::{gpu_err, guard, unavailable, Arch, GpuDevice};

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

fn nvrtc_error(r: nv::nvrtcResult) -> String {
    // SAFETY: nvrtcGetErrorString returns a static string for every result code.
    unsafe {
        let p = nv::nvrtcGetErrorString(r);
        if p.is_null() {
            format!("{r:?}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn check(r: nv::nvrtcResult, what: &str) -> Result<()> {
    if r == nv::nvrtcResult::NVRTC_SUCCESS {
        Ok(())
    } else {
        Err(gpu_err(what, nvrtc_error(r)))
    }
}

fn require_nvrtc() -> Result<()> {
    // SAFETY: only tries to dlopen the library.
    if unsafe { nv::is_culib_present() } {
        Ok(())
    } else {
        Err(unavailable(
            "cannot load libnvrtc (CUDA NVRTC); searched with dlopen: LD_LIBRARY_PATH, the \
             ldconfig cache, rpath"
                .into(),
        ))
    }
}

/// NVRTC version `(major, minor)`.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    require_nvrtc()?;
    guard("nvrtcVersion", || {
        let (mut a, mut b): (c_int, c_int) = (0, 0);
        // SAFETY: two valid out-pointers.
        check(unsafe { nv::nvrtcVersion(&mut a, &mut b) }, "nvrtcVersion")?;
        Ok((a, b))
    })
}

/// The `sm_XX` numbers (e.g. 75, 90) this NVRTC can compile for.
pub fn supported_archs() -> Result<Vec<i32>> {
    require_nvrtc()?;
    guard("nvrtcGetSupportedArchs", || {
        let mut n: c_int = 0;
        // SAFETY: valid out-pointer; then a buffer of the size NVRTC reported.
        check(
            unsafe { nv::nvrtcGetNumSupportedArchs(&mut n) },
            "nvrtcGetNumSupportedArchs",
        )?;
        let mut v = vec![0 as c_int; n.max(0) as usize];
        if !v.is_empty() {
            check(
                unsafe { nv::nvrtcGetSupportedArchs(v.as_mut_ptr()) },
                "nvrtcGetSupportedArchs",
            )?;
        }
        Ok(v)
    })
}

/// RAII owner of an `nvrtcProgram`.
struct Program(nv::nvrtcProgram);
impl Drop for Program {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the program was created by nvrtcCreateProgram and is destroyed once.
            unsafe {
                let _ = nv::nvrtcDestroyProgram(&mut self.0);
            }
        }
    }
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| gpu_err(what, "contains a NUL byte"))
}

/// Compiles one embedded kernel file for `arch` with NVRTC. `extra_options` are passed
/// through (e.g. `-Xptxas=-v` for the register report). Needs NVRTC, not a GPU.
///
/// Errors: [`crate::Error::BackendUnavailable`] without NVRTC; [`crate::Error::Gpu`] with the
/// compile log when NVRTC rejects the source or the target.
pub fn compile(
    kernel: &KernelSource,
    arch: Arch,
    extra_options: &[&str],
) -> Result<CompiledKernel> {
    require_nvrtc()?;
    guard("NVRTC", || compile_inner(kernel, arch, extra_options))
}

fn compile_inner(
    kernel: &KernelSource,
    arch: Arch,
    extra_options: &[&str],
) -> Result<CompiledKernel> {
    let what = format!("compiling kernels/{}.cu for {arch}", kernel.name);
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

    let mut prog = Program(std::ptr::null_mut());
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    check(
        unsafe {
            nv::nvrtcCreateProgram(
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

    let mut opts: Vec<CString> = vec![
        cstring(&format!("--gpu-architecture={}", arch.as_str()), &what)?,
        cstring("--std=c++17", &what)?,
    ];
    for o in extra_options {
        opts.push(cstring(o, &what)?);
    }
    let opt_p: Vec<*const c_char> = opts.iter().map(|c| c.as_ptr()).collect();
    // SAFETY: valid program and option strings.
    let rc = unsafe { nv::nvrtcCompileProgram(prog.0, opt_p.len() as c_int, opt_p.as_ptr()) };
    let log = program_log(&prog);
    if rc != nv::nvrtcResult::NVRTC_SUCCESS {
        return Err(gpu_err(&what, format!("{}\n{log}", nvrtc_error(rc))));
    }

    let mut ptx_len = 0usize;
    // SAFETY: valid program; buffer sized from the reported length.
    check(unsafe { nv::nvrtcGetPTXSize(prog.0, &mut ptx_len) }, &what)?;
    let mut ptx = vec![0u8; ptx_len];
    if ptx_len > 0 {
        check(
            unsafe { nv::nvrtcGetPTX(prog.0, ptx.as_mut_ptr() as *mut c_char) },
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
    if unsafe { nv::nvrtcGetCUBINSize(prog.0, &mut cubin_len) } == nv::nvrtcResult::NVRTC_SUCCESS
        && cubin_len > 0
    {
        cubin = vec![0u8; cubin_len];
        check(
            unsafe { nv::nvrtcGetCUBIN(prog.0, cubin.as_mut_ptr() as *mut c_char) },
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
    let mut n = 0usize;
    // SAFETY: valid program; buffer sized from the reported length.
    unsafe {
        if nv::nvrtcGetProgramLogSize(prog.0, &mut n) != nv::nvrtcResult::NVRTC_SUCCESS || n == 0 {
            return String::new();
        }
        let mut buf = vec![0u8; n];
        if nv::nvrtcGetProgramLog(prog.0, buf.as_mut_ptr() as *mut c_char)
            != nv::nvrtcResult::NVRTC_SUCCESS
        {
            return String::new();
        }
        while buf.last() == Some(&0) {
            buf.pop();
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

type ImageCache = Mutex<HashMap<(&'static str, Arch), Arc<CompiledKernel>>>;

/// Compiles `kernels/NAME.cu` for `arch` once per process.
pub fn compile_cached(name: &str, arch: Arch) -> Result<Arc<CompiledKernel>> {
    static CACHE: OnceLock<ImageCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let kernel = crate::kernels::find(name)
        .ok_or_else(|| gpu_err("kernel registry", format!("no kernels/{name}.cu embedded")))?;
    let key = (kernel.name, arch);
    if let Some(k) = cache.lock().map_err(|_| poisoned())?.get(&key) {
        return Ok(k.clone());
    }
    // Compile outside the lock (other files can compile meanwhile); a race compiles twice.
    let compiled = Arc::new(compile(kernel, arch, &[])?);
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
        let compiled = compile_cached(name, self.arch())?;
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
