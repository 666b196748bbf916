//! Finding and loading the CUDA libraries: the driver (through cudarc), NVRTC and cuFFT
//! (bound here directly), once per process.
//!
//! # Where they are looked for
//! * `AIAPREP_CUDA_LIB_DIR=DIR` ([`LIB_DIR_VAR`]) pins one directory: every `libnvrtc.so*`
//!   and `libcufft.so*` in it are candidates (and nothing else), and a `libcuda.so.1` or
//!   `libcuda.so` in it is loaded before cudarc looks for the driver, so that cudarc uses that
//!   one. Use it to choose between several CUDA installations on one node — e.g. CUDA 12's
//!   libraries for a V100 when CUDA 13's are also on the loader path (CUDA 13 dropped sm_70)
//!   — or to run on the software device of the tests (`scripts/softcuda.sh`).
//! * Otherwise the dynamic loader's normal search (`LD_LIBRARY_PATH`, the `ldconfig` cache,
//!   rpath) by name: `libnvrtc.so`, `.so.13`, `.so.12`, `.so.11.2`, `.so.11`, and
//!   `libcufft.so`, `.so.12`, `.so.11`, `.so.10`. Every name that loads is a candidate.
//!
//! Candidates are kept loaded for the life of the process (the probe runs once per value of
//! the variable, not at every call) and sorted newest first. Which NVRTC and cuFFT a device
//! uses is decided when it is opened ([`super::GpuDevice::open`]): the newest NVRTC that
//! compiles for its architecture and whose major version the driver supports, and the newest
//! cuFFT that creates and runs a small plan on it correctly.
//!
//! NVRTC and cuFFT are called through function tables loaded here rather than through
//! cudarc's bindings, which pick one library by name for the whole process and, for cuFFT,
//! return results as an enum that lacks codes older cuFFT versions can return (10, 12, 15 in
//! the CUDA 13 bindings): here results stay plain integers.

use std::ffi::{c_char, c_int, c_void, CStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::device::Arch;

/// The environment variable that pins the CUDA library directory.
pub const LIB_DIR_VAR: &str = "AIAPREP_CUDA_LIB_DIR";

type Prog = *mut c_void;

/// The NVRTC entry points used.
#[derive(Clone, Copy)]
pub(crate) struct NvrtcFns {
    pub version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int,
    pub num_archs: unsafe extern "C" fn(*mut c_int) -> c_int,
    pub archs: unsafe extern "C" fn(*mut c_int) -> c_int,
    pub create: unsafe extern "C" fn(
        *mut Prog,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> c_int,
    pub compile: unsafe extern "C" fn(Prog, c_int, *const *const c_char) -> c_int,
    pub ptx_size: unsafe extern "C" fn(Prog, *mut usize) -> c_int,
    pub ptx: unsafe extern "C" fn(Prog, *mut c_char) -> c_int,
    pub cubin_size: unsafe extern "C" fn(Prog, *mut usize) -> c_int,
    pub cubin: unsafe extern "C" fn(Prog, *mut c_char) -> c_int,
    pub log_size: unsafe extern "C" fn(Prog, *mut usize) -> c_int,
    pub log: unsafe extern "C" fn(Prog, *mut c_char) -> c_int,
    pub destroy: unsafe extern "C" fn(*mut Prog) -> c_int,
    pub error_string: unsafe extern "C" fn(c_int) -> *const c_char,
}

/// One loaded NVRTC.
pub struct Nvrtc {
    /// The file or name it was loaded from.
    pub path: String,
    /// `(major, minor)`.
    pub version: (i32, i32),
    /// The `sm_XY` numbers it compiles for (e.g. 70, 90).
    pub archs: Vec<i32>,
    pub(crate) f: NvrtcFns,
    _lib: libloading::Library,
}

impl std::fmt::Debug for Nvrtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NVRTC {}.{} ({})",
            self.version.0, self.version.1, self.path
        )
    }
}

/// cuFFT's `cufftResult` as a plain integer, with its name.
pub fn cufft_result_name(r: c_int) -> &'static str {
    match r {
        0 => "CUFFT_SUCCESS",
        1 => "CUFFT_INVALID_PLAN",
        2 => "CUFFT_ALLOC_FAILED",
        3 => "CUFFT_INVALID_TYPE",
        4 => "CUFFT_INVALID_VALUE",
        5 => "CUFFT_INTERNAL_ERROR",
        6 => "CUFFT_EXEC_FAILED",
        7 => "CUFFT_SETUP_FAILED",
        8 => "CUFFT_INVALID_SIZE",
        9 => "CUFFT_UNALIGNED_DATA",
        10 => "CUFFT_INCOMPLETE_PARAMETER_LIST",
        11 => "CUFFT_INVALID_DEVICE",
        12 => "CUFFT_PARSE_ERROR",
        13 => "CUFFT_NO_WORKSPACE",
        14 => "CUFFT_NOT_IMPLEMENTED",
        15 => "CUFFT_LICENSE_ERROR",
        16 => "CUFFT_NOT_SUPPORTED",
        _ => "unknown cufftResult",
    }
}

/// The cuFFT entry points used.
#[derive(Clone, Copy)]
pub(crate) struct CufftFns {
    pub version: unsafe extern "C" fn(*mut c_int) -> c_int,
    pub plan2d: unsafe extern "C" fn(*mut c_int, c_int, c_int, c_int) -> c_int,
    pub set_stream: unsafe extern "C" fn(c_int, *mut c_void) -> c_int,
    pub exec_r2c: unsafe extern "C" fn(c_int, *mut f32, *mut c_void) -> c_int,
    pub exec_c2r: unsafe extern "C" fn(c_int, *mut c_void, *mut f32) -> c_int,
    pub exec_d2z: unsafe extern "C" fn(c_int, *mut f64, *mut c_void) -> c_int,
    pub exec_z2d: unsafe extern "C" fn(c_int, *mut c_void, *mut f64) -> c_int,
    pub destroy: unsafe extern "C" fn(c_int) -> c_int,
}

/// One loaded cuFFT.
pub struct Cufft {
    /// The file or name it was loaded from.
    pub path: String,
    /// `cufftGetVersion`, e.g. 11400 (CUDA 12.x) or 12000 (CUDA 13.0).
    pub version: i32,
    pub(crate) f: CufftFns,
    _lib: libloading::Library,
}

impl std::fmt::Debug for Cufft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cuFFT {} ({})", self.version_string(), self.path)
    }
}

impl Cufft {
    /// `"11.4"` for 11400.
    pub fn version_string(&self) -> String {
        format!("{}.{}", self.version / 1000, self.version % 1000 / 100)
    }
}

/// What the probe found.
pub struct Found {
    /// The pinned directory, if any.
    pub dir: Option<PathBuf>,
    /// `Ok` when the driver library loads, else why not.
    pub driver: Result<(), String>,
    /// Loadable NVRTCs, newest first.
    pub nvrtc: Vec<Arc<Nvrtc>>,
    /// Loadable cuFFTs, newest first.
    pub cufft: Vec<Arc<Cufft>>,
    /// Why candidates that exist could not be used.
    pub problems: Vec<String>,
    _driver: Option<libloading::Library>,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("dir", &self.dir)
            .field("driver", &self.driver)
            .field("nvrtc", &self.nvrtc)
            .field("cufft", &self.cufft)
            .field("problems", &self.problems)
            .finish()
    }
}

impl Found {
    /// Where the libraries were searched, for messages.
    pub fn searched(&self) -> String {
        match &self.dir {
            Some(d) => format!("{LIB_DIR_VAR}={}", d.display()),
            None => format!(
                "the loader's search path (LD_LIBRARY_PATH, the ldconfig cache, rpath; set \
                 {LIB_DIR_VAR} to pin a directory)"
            ),
        }
    }
}

/// Loads a library with the given symbols, copying the function pointers out.
fn open_lib(path: &str) -> Result<libloading::Library, String> {
    // SAFETY: loading a CUDA library runs its initialisers, which is what using it means.
    unsafe { libloading::Library::new(path) }.map_err(|e| format!("{path}: {e}"))
}

macro_rules! sym {
    ($lib:expr, $path:expr, $name:literal) => {
        // SAFETY: the symbol has the C signature of the field it is stored in (NVRTC/cuFFT
        // headers); the library stays loaded as long as the table (kept together).
        *unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
            .map_err(|e| format!("{}: no {}: {e}", $path, $name))?
    };
}

impl Nvrtc {
    fn open(path: &str) -> Result<Nvrtc, String> {
        let lib = open_lib(path)?;
        let f = NvrtcFns {
            version: sym!(lib, path, "nvrtcVersion"),
            num_archs: sym!(lib, path, "nvrtcGetNumSupportedArchs"),
            archs: sym!(lib, path, "nvrtcGetSupportedArchs"),
            create: sym!(lib, path, "nvrtcCreateProgram"),
            compile: sym!(lib, path, "nvrtcCompileProgram"),
            ptx_size: sym!(lib, path, "nvrtcGetPTXSize"),
            ptx: sym!(lib, path, "nvrtcGetPTX"),
            cubin_size: sym!(lib, path, "nvrtcGetCUBINSize"),
            cubin: sym!(lib, path, "nvrtcGetCUBIN"),
            log_size: sym!(lib, path, "nvrtcGetProgramLogSize"),
            log: sym!(lib, path, "nvrtcGetProgramLog"),
            destroy: sym!(lib, path, "nvrtcDestroyProgram"),
            error_string: sym!(lib, path, "nvrtcGetErrorString"),
        };
        let (mut a, mut b) = (0, 0);
        // SAFETY: valid out-pointers.
        if unsafe { (f.version)(&mut a, &mut b) } != 0 {
            return Err(format!("{path}: nvrtcVersion failed"));
        }
        let mut n: c_int = 0;
        // SAFETY: valid out-pointer, then a buffer of the reported size.
        if unsafe { (f.num_archs)(&mut n) } != 0 || n < 0 {
            return Err(format!("{path}: nvrtcGetNumSupportedArchs failed"));
        }
        let mut archs = vec![0 as c_int; n as usize];
        if n > 0 && unsafe { (f.archs)(archs.as_mut_ptr()) } != 0 {
            return Err(format!("{path}: nvrtcGetSupportedArchs failed"));
        }
        Ok(Nvrtc {
            path: path.to_string(),
            version: (a, b),
            archs,
            f,
            _lib: lib,
        })
    }

    /// Whether it compiles for `arch`.
    pub fn supports(&self, arch: Arch) -> bool {
        let (a, b) = arch.capability();
        self.archs.contains(&(a * 10 + b))
    }

    /// The message of a result code.
    pub(crate) fn error(&self, r: c_int) -> String {
        // SAFETY: nvrtcGetErrorString returns a static string (or null).
        let p = unsafe { (self.f.error_string)(r) };
        if p.is_null() {
            format!("NVRTC error {r}")
        } else {
            // SAFETY: a NUL-terminated static string.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }
}

impl Cufft {
    fn open(path: &str) -> Result<Cufft, String> {
        let lib = open_lib(path)?;
        let f = CufftFns {
            version: sym!(lib, path, "cufftGetVersion"),
            plan2d: sym!(lib, path, "cufftPlan2d"),
            set_stream: sym!(lib, path, "cufftSetStream"),
            exec_r2c: sym!(lib, path, "cufftExecR2C"),
            exec_c2r: sym!(lib, path, "cufftExecC2R"),
            exec_d2z: sym!(lib, path, "cufftExecD2Z"),
            exec_z2d: sym!(lib, path, "cufftExecZ2D"),
            destroy: sym!(lib, path, "cufftDestroy"),
        };
        let mut v: c_int = 0;
        // SAFETY: a valid out-pointer.
        let r = unsafe { (f.version)(&mut v) };
        if r != 0 {
            return Err(format!("{path}: cufftGetVersion: {}", cufft_result_name(r)));
        }
        Ok(Cufft {
            path: path.to_string(),
            version: v,
            f,
            _lib: lib,
        })
    }
}

/// Candidate files for `prefix` in `dir` (e.g. `libnvrtc.so*`), excluding `exclude`.
fn in_dir(dir: &Path, prefix: &str, exclude: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix) && !exclude.iter().any(|x| n.starts_with(x)))
                .map(|n| dir.join(n).display().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Loads every candidate, dropping duplicates (two names of one file).
fn load_all<T>(
    names: &[String],
    open: fn(&str) -> Result<T, String>,
    key: fn(&T) -> usize,
    problems: &mut Vec<String>,
    report_missing: bool,
) -> Vec<Arc<T>> {
    let mut out: Vec<Arc<T>> = Vec::new();
    for n in names {
        match open(n) {
            Ok(t) => {
                if !out.iter().any(|o| key(o) == key(&t)) {
                    out.push(Arc::new(t));
                }
            }
            Err(e) => {
                if report_missing || !e.contains("cannot open shared object file") {
                    problems.push(e);
                }
            }
        }
    }
    out
}

fn probe(dir: Option<PathBuf>) -> Found {
    let mut problems = Vec::new();
    let mut driver_lib = None;
    let (nvrtc_names, cufft_names) = match &dir {
        Some(d) => {
            for name in ["libcuda.so.1", "libcuda.so"] {
                let p = d.join(name);
                if p.exists() {
                    // Loaded first, so cudarc's search by name finds this one (the loader
                    // matches an already loaded library by its soname).
                    match open_lib(&p.display().to_string()) {
                        Ok(l) => driver_lib = Some(l),
                        Err(e) => problems.push(e),
                    }
                    break;
                }
            }
            (
                in_dir(d, "libnvrtc", &["libnvrtc-builtins", "libnvrtc_static"]),
                in_dir(d, "libcufft", &["libcufftw", "libcufft_static"]),
            )
        }
        None => (
            [
                "libnvrtc.so",
                "libnvrtc.so.13",
                "libnvrtc.so.12",
                "libnvrtc.so.11.2",
                "libnvrtc.so.11",
            ]
            .map(String::from)
            .to_vec(),
            [
                "libcufft.so",
                "libcufft.so.12",
                "libcufft.so.11",
                "libcufft.so.10",
            ]
            .map(String::from)
            .to_vec(),
        ),
    };
    let in_pinned = dir.is_some();
    let mut nvrtc = load_all(
        &nvrtc_names,
        Nvrtc::open,
        |n| n.f.version as usize,
        &mut problems,
        in_pinned,
    );
    nvrtc.sort_by_key(|n| std::cmp::Reverse(n.version));
    let mut cufft = load_all(
        &cufft_names,
        Cufft::open,
        |c| c.f.version as usize,
        &mut problems,
        in_pinned,
    );
    cufft.sort_by_key(|c| std::cmp::Reverse(c.version));
    // SAFETY: only tries to dlopen the driver by cudarc's candidate names.
    let driver = if unsafe { cudarc::driver::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(format!(
            "cannot load libcuda (the NVIDIA driver) from {}",
            match &dir {
                Some(d) => format!("{} or the loader's search path", d.display()),
                None => "the loader's search path".into(),
            }
        ))
    };
    Found {
        dir,
        driver,
        nvrtc,
        cufft,
        problems,
        _driver: driver_lib,
    }
}

type Cache = Mutex<Vec<(Option<OsString>, Arc<Found>)>>;

/// The libraries of this process for the current value of [`LIB_DIR_VAR`] (probed once
/// per value; the libraries stay loaded).
pub fn found() -> Arc<Found> {
    static CACHE: Cache = Mutex::new(Vec::new());
    let key = std::env::var_os(LIB_DIR_VAR).filter(|v| !v.is_empty());
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, f)) = c.iter().find(|(k, _)| *k == key) {
        return f.clone();
    }
    let f = Arc::new(probe(key.as_ref().map(PathBuf::from)));
    c.push((key, f.clone()));
    f
}

/// The newest NVRTC that compiles for `arch` and whose major version is at most
/// `driver_major` (a module from a newer NVRTC does not load on an older driver), or why
/// there is none.
pub fn nvrtc_for(f: &Found, arch: Arch, driver_major: i32) -> Result<Arc<Nvrtc>, String> {
    if let Some(n) = f
        .nvrtc
        .iter()
        .find(|n| n.supports(arch) && n.version.0 <= driver_major)
    {
        return Ok(n.clone());
    }
    if f.nvrtc.is_empty() {
        let extra = if f.problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.problems.join("; "))
        };
        return Err(format!(
            "cannot load libnvrtc (CUDA NVRTC) from {}{extra}",
            f.searched()
        ));
    }
    let seen: Vec<String> = f
        .nvrtc
        .iter()
        .map(|n| {
            format!(
                "NVRTC {}.{} at {} (targets sm_{}..sm_{})",
                n.version.0,
                n.version.1,
                n.path,
                n.archs.iter().min().unwrap_or(&0),
                n.archs.iter().max().unwrap_or(&0)
            )
        })
        .collect();
    let hint = if arch == Arch::Sm70 {
        "; a V100 needs CUDA 12's NVRTC (CUDA 13 dropped sm_70): point AIAPREP_CUDA_LIB_DIR at a \
         CUDA 12 lib64 directory, or at the lib folder of pip's nvidia-cuda-nvrtc-cu12"
    } else {
        ""
    };
    Err(format!(
        "no NVRTC usable for {arch} with a CUDA {driver_major} driver: found {}{hint}",
        seen.join(", ")
    ))
}
