//! The emulated NVRTC: compiles a CUDA C program (with its in-memory headers) with the host
//! C++ compiler under `kernels/emulate.h` into a shared object, with one wrapper per
//! `extern "C" __global__` entry point that unpacks `kernelParams` by the kernel's own
//! parameter types (template deduction in emulate.h's `AIA_EMU_ENTRY`).
//!
//! Like NVRTC it needs no device; like NVRTC it refuses options it does not know
//! (`NVRTC_ERROR_INVALID_OPTION`) and architectures its version does not support (CUDA 13
//! dropped sm_70 and older). `--fmad` is honoured: with `--fmad=true` (NVRTC's default) the
//! host compiler may contract `a * b + c` into FMAs (`-ffp-contract=fast`, with `-mfma`
//! when the CPU has FMA), as the GPU does. Results are cached by a hash of everything that
//! went in (`SOFTCUDA_CACHE`, else `kernel-cache/` beside this library), so a test suite
//! compiles each kernel file once.
//!
//! The "PTX" it returns is a short text naming the shared object, with `.target` and one
//! `.entry NAME(` per kernel; the "cubin" is the same text after a magic (see
//! [`crate::exec::parse_image`]). Neither is real PTX: only this driver can load them.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The emulate.h this library was built with.
const EMULATE_H: &str = include_str!("../../kernels/emulate.h");

pub const SUCCESS: c_int = 0;
pub const OUT_OF_MEMORY: c_int = 1;
pub const INVALID_INPUT: c_int = 3;
pub const INVALID_PROGRAM: c_int = 4;
pub const INVALID_OPTION: c_int = 5;
pub const COMPILATION: c_int = 6;
pub const INTERNAL_ERROR: c_int = 11;

/// The architectures (`XY` of sm_XY) NVRTC of a major version compiles for.
pub fn supported_archs(major: i32) -> &'static [i32] {
    match major {
        ..=12 => &[50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90],
        _ => &[75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121],
    }
}

struct Program {
    src: String,
    name: String,
    headers: Vec<(String, String)>,
    log: String,
    ptx: Vec<u8>,
    cubin: Vec<u8>,
}

fn programs() -> &'static Mutex<HashMap<usize, Program>> {
    static P: OnceLock<Mutex<HashMap<usize, Program>>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashMap::new()))
}

fn next_handle() -> usize {
    static N: Mutex<usize> = Mutex::new(0x100);
    let mut n = N.lock().unwrap_or_else(|e| e.into_inner());
    *n += 16;
    *n
}

unsafe fn cstr(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

/// `nvrtcCreateProgram`.
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_create(
    prog: *mut usize,
    src: *const c_char,
    name: *const c_char,
    n_headers: c_int,
    headers: *const *const c_char,
    include_names: *const *const c_char,
) -> c_int {
    if prog.is_null() {
        return INVALID_INPUT;
    }
    let Some(src) = cstr(src) else {
        return INVALID_INPUT;
    };
    let mut hs = Vec::new();
    for i in 0..n_headers.max(0) as usize {
        if headers.is_null() || include_names.is_null() {
            return INVALID_INPUT;
        }
        let (Some(h), Some(n)) = (cstr(*headers.add(i)), cstr(*include_names.add(i))) else {
            return INVALID_INPUT;
        };
        hs.push((n, h));
    }
    let h = next_handle();
    programs().lock().unwrap_or_else(|e| e.into_inner()).insert(
        h,
        Program {
            src,
            name: cstr(name).unwrap_or_else(|| "default_program".into()),
            headers: hs,
            log: String::new(),
            ptx: Vec::new(),
            cubin: Vec::new(),
        },
    );
    *prog = h;
    SUCCESS
}

/// `nvrtcDestroyProgram`.
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_destroy(prog: *mut usize) -> c_int {
    if prog.is_null() {
        return INVALID_PROGRAM;
    }
    let removed = programs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&*prog);
    *prog = 0;
    if removed.is_some() {
        SUCCESS
    } else {
        INVALID_PROGRAM
    }
}

/// What one compilation was asked for.
#[derive(Debug, Default, PartialEq)]
struct Options {
    /// `XY`, and whether it is a real (`sm_`) target.
    arch: (i32, bool),
    fmad: bool,
    ptxas_verbose: bool,
    defines: Vec<String>,
    includes: Vec<String>,
}

fn parse_bool(v: &str, opt: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!(
            "nvrtc: error: invalid value '{v}' for option {opt}"
        )),
    }
}

fn parse_options(major: i32, opts: &[String]) -> Result<Options, String> {
    let mut o = Options {
        arch: (if major >= 13 { 75 } else { 52 }, false),
        fmad: true,
        ..Options::default()
    };
    let value = |opt: &str, long: &str, short: &str| -> Option<String> {
        opt.strip_prefix(long)
            .or_else(|| opt.strip_prefix(short))
            .map(|v| v.trim_start_matches('=').to_string())
    };
    for opt in opts {
        let opt = opt.trim();
        if let Some(v) = value(opt, "--gpu-architecture", "-arch") {
            let (real, num) = if let Some(n) = v.strip_prefix("sm_") {
                (true, n)
            } else if let Some(n) = v.strip_prefix("compute_") {
                (false, n)
            } else {
                return Err(format!(
                    "nvrtc: error: invalid value for --gpu-architecture (-arch): {v}"
                ));
            };
            let n: i32 = num.trim_end_matches(['a', 'f']).parse().map_err(|_| {
                format!("nvrtc: error: invalid value for --gpu-architecture (-arch): {v}")
            })?;
            if !supported_archs(major).contains(&n) {
                return Err(format!(
                    "nvrtc: error: invalid value for --gpu-architecture (-arch): {v} (not supported by \
                     NVRTC {major})"
                ));
            }
            o.arch = (n, real);
        } else if let Some(v) = value(opt, "--fmad", "-fmad") {
            o.fmad = parse_bool(&v, "--fmad")?;
        } else if let Some(v) = value(opt, "--std", "-std") {
            if !["c++03", "c++11", "c++14", "c++17", "c++20"].contains(&v.as_str()) {
                return Err(format!(
                    "nvrtc: error: invalid value '{v}' for option --std"
                ));
            }
        } else if let Some(v) = value(opt, "--ptxas-options", "-Xptxas") {
            o.ptxas_verbose |= v.split(',').any(|x| x == "-v" || x == "--verbose");
        } else if let Some(v) = value(opt, "--define-macro", "-D") {
            o.defines.push(v);
        } else if let Some(v) = value(opt, "--include-path", "-I") {
            o.includes.push(v);
        } else if let Some(v) = value(opt, "--ftz", "-ftz")
            .or_else(|| value(opt, "--prec-div", "-prec-div"))
            .or_else(|| value(opt, "--prec-sqrt", "-prec-sqrt"))
        {
            parse_bool(&v, opt)?;
        } else if [
            "--device-debug",
            "-G",
            "--generate-line-info",
            "-lineinfo",
            "-default-device",
            "--disable-warnings",
            "-w",
            "--restrict",
            "-restrict",
            "--extra-device-vectorization",
            "-extra-device-vectorization",
        ]
        .contains(&opt)
        {
        } else {
            return Err(format!("nvrtc: error: unrecognized option {opt}"));
        }
    }
    Ok(o)
}

/// The source without comments (each replaced by a space or the newline that ended it).
fn strip_comments(src: &str) -> String {
    let mut text = String::with_capacity(src.len());
    let mut rest = src;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map(|i| &r[i..]).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map(|i| &r[i + 2..]).unwrap_or("");
            text.push(' ');
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    text
}

/// `extern "C" __global__ void NAME(` entry points of a source (comments removed).
pub fn entry_points(src: &str) -> Vec<String> {
    let text = strip_comments(src);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let pat = "extern \"C\" __global__ void ";
    let mut s = flat.as_str();
    while let Some(i) = s.find(pat) {
        s = &s[i + pat.len()..];
        let name: String = s
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && s[name.len()..].trim_start().starts_with('(') {
            out.push(name);
        }
    }
    out
}

/// The static `__shared__` declarations of a source, as `(declaration, name)`: e.g.
/// `("AiaStats part[AIA_BLOCK]", "part")`; `extern __shared__` (dynamic) ones are not
/// static.
pub fn shared_declarations(src: &str) -> Vec<(String, String)> {
    let text = strip_comments(src);
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(i) = text[pos..].find("__shared__") {
        let at = pos + i;
        pos = at + "__shared__".len();
        if text[..at].trim_end().ends_with("extern") {
            continue;
        }
        let Some(end) = text[pos..].find(';') else {
            break;
        };
        let decl = text[pos..pos + end].trim().to_string();
        let head = decl.split('[').next().unwrap_or("").trim_end();
        let name: String = head
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !name.is_empty() && !decl.contains('=') && !decl.contains('(') {
            out.push((decl, name));
        }
    }
    out
}

/// The most static shared memory a block may use (bytes), as ptxas enforces.
pub const MAX_STATIC_SHARED: u64 = 48 * 1024;

/// 128-bit FNV-1a (two lanes) of the parts, as hex.
fn hash(parts: &[&[u8]]) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for p in parts {
        for &x in p.iter().chain(&[0xffu8]) {
            a = (a ^ x as u64).wrapping_mul(0x100_0000_01b3);
            b = (b ^ x as u64).wrapping_mul(0x100_0000_01b3).rotate_left(5);
        }
    }
    format!("{a:016x}{b:016x}")
}

/// The directory of this library (for the default cache).
fn library_dir() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr of a function of this library.
    let ok = unsafe { libc::dladdr(softcuda_nvrtc_create as *const libc::c_void, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return None;
    }
    let f = unsafe { CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned();
    std::fs::canonicalize(f)
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SOFTCUDA_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    library_dir()
        .map(|d| d.join("kernel-cache"))
        .unwrap_or_else(|| std::env::temp_dir().join("softcuda-kernel-cache"))
}

fn compiler() -> Vec<String> {
    std::env::var("SOFTCUDA_CXX")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_else(|| vec!["c++".to_string()])
}

fn host_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

fn safe_name(n: &str) -> String {
    let s: String = n
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("p{s}")
    } else {
        s
    }
}

/// Compiles (or finds in the cache) the shared object; returns its path and the log.
fn build(p: &Program, o: &Options) -> Result<(PathBuf, String), String> {
    let cxx = compiler();
    let mut flags: Vec<String> = [
        "-std=c++17",
        "-O2",
        "-fPIC",
        "-shared",
        "-pthread",
        "-U_FORTIFY_SOURCE",
        "-fno-strict-aliasing",
        "-w",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if o.fmad {
        flags.push("-ffp-contract=fast".into());
        if cfg!(target_arch = "x86_64") && host_has_fma() {
            flags.push("-mfma".into());
        }
    } else {
        flags.push("-ffp-contract=off".into());
    }
    for d in &o.defines {
        flags.push(format!("-D{d}"));
    }
    let entries = entry_points(&p.src);
    let mut wrapper =
        String::from("#define AIA_EMULATE_DEVICE 1\n#include \"__softcuda_emulate.h\"\n");
    wrapper.push_str(&format!("#include \"{}\"\n", safe_name(&p.name)));
    wrapper.push_str("AIA_EMU_MODULE_BEGIN\n");
    for e in &entries {
        wrapper.push_str(&format!("AIA_EMU_ENTRY({e})\n"));
    }
    wrapper.push_str("AIA_EMU_MODULE_END\n");
    // Static shared memory: the declarations re-made at namespace scope, their sizes
    // summed (for the whole module: a bound on any one kernel's).
    let decls = shared_declarations(&p.src);
    let mut probe = String::from("namespace aia_emu_shared_probe {\n");
    let mut sum = String::from("0ULL");
    for (k, (decl, name)) in decls.iter().enumerate() {
        probe.push_str(&format!("namespace p{k} {{ {decl}; }}\n"));
        sum.push_str(&format!(" + sizeof(aia_emu_shared_probe::p{k}::{name})"));
    }
    probe.push_str(&format!(
        "}}\nextern \"C\" __attribute__((visibility(\"default\"))) unsigned long long \
         aia_emu_static_shared_bytes(void) {{ return {sum}; }}\n"
    ));
    let plain = wrapper.clone();
    wrapper.push_str(&probe);
    let mut parts: Vec<&[u8]> = vec![
        EMULATE_H.as_bytes(),
        p.src.as_bytes(),
        p.name.as_bytes(),
        wrapper.as_bytes(),
    ];
    let mut headers = p.headers.clone();
    headers.sort();
    for (n, h) in &headers {
        parts.push(n.as_bytes());
        parts.push(h.as_bytes());
    }
    let joined_flags = format!("{cxx:?} {flags:?} {:?}", o.includes);
    parts.push(joined_flags.as_bytes());
    let key = hash(&parts);
    let dir = cache_dir();
    let so = dir.join(format!("{key}.so"));
    if so.exists() {
        return Ok((so, String::new()));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    static SERIAL: Mutex<u64> = Mutex::new(0);
    let n = {
        let mut s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        *s += 1;
        *s
    };
    let tmp = dir.join(format!("tmp-{key}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let write = |name: &str, text: &str| -> Result<(), String> {
        let path = tmp.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("__softcuda_emulate.h", EMULATE_H)?;
    write(&safe_name(&p.name), &p.src)?;
    for (n, h) in &p.headers {
        if n.contains("..") || n.starts_with('/') {
            return Err(format!("header name {n:?} is not a relative path"));
        }
        write(n, h)?;
    }
    let out_tmp = dir.join(format!("{key}.so.tmp-{}-{n}", std::process::id()));
    let compile = |source: &str| -> Result<(bool, String), String> {
        write("__softcuda_module.cpp", source)?;
        let mut cmd = Command::new(&cxx[0]);
        cmd.args(&cxx[1..]).args(&flags).arg("-I").arg(&tmp);
        for i in &o.includes {
            cmd.arg("-I").arg(i);
        }
        cmd.arg(tmp.join("__softcuda_module.cpp"))
            .arg("-o")
            .arg(&out_tmp);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run the host C++ compiler {:?}: {e}", cxx[0]))?;
        let log = String::from_utf8_lossy(&out.stderr).replace(&format!("{}/", tmp.display()), "");
        Ok((out.status.success(), log))
    };
    // With the shared-memory probes; if they do not compile (an unusual declaration), the
    // module without them (its static shared memory is then not checked).
    let mut res = compile(&wrapper);
    if matches!(res, Ok((false, _))) && !decls.is_empty() {
        if let Ok((true, log)) = compile(&plain) {
            res = Ok((true, log));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let (ok, log) = res?;
    if !ok {
        let _ = std::fs::remove_file(&out_tmp);
        return Err(log);
    }
    std::fs::rename(&out_tmp, &so).map_err(|e| format!("{}: {e}", so.display()))?;
    Ok((so, log))
}

/// `nvrtcCompileProgram` of an NVRTC `major.minor`.
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_compile(
    major: c_int,
    minor: c_int,
    prog: usize,
    n_opts: c_int,
    opts: *const *const c_char,
) -> c_int {
    let mut list = Vec::new();
    for i in 0..n_opts.max(0) as usize {
        if opts.is_null() {
            return INVALID_INPUT;
        }
        match cstr(*opts.add(i)) {
            Some(s) => list.push(s),
            None => return INVALID_INPUT,
        }
    }
    let mut progs = programs().lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = progs.get_mut(&prog) else {
        return INVALID_PROGRAM;
    };
    p.ptx.clear();
    p.cubin.clear();
    if crate::config::get().faults.nvrtc {
        p.log = "softcuda: injected fault: NVRTC internal error\n".into();
        return INTERNAL_ERROR;
    }
    let o = match parse_options(major, &list) {
        Ok(o) => o,
        Err(e) => {
            p.log = format!("{e}\n");
            return INVALID_OPTION;
        }
    };
    // Compile without holding the program table (other programs may compile meanwhile).
    let snapshot = Program {
        src: p.src.clone(),
        name: p.name.clone(),
        headers: p.headers.clone(),
        log: String::new(),
        ptx: Vec::new(),
        cubin: Vec::new(),
    };
    drop(progs);
    let result = build(&snapshot, &o);
    let mut progs = programs().lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = progs.get_mut(&prog) else {
        return INVALID_PROGRAM;
    };
    match result {
        Err(log) => {
            p.log = log;
            COMPILATION
        }
        Ok((so, log)) => {
            if let Some(bytes) = crate::exec::static_shared_bytes(&so.display().to_string()) {
                if bytes > MAX_STATIC_SHARED {
                    p.log = format!(
                        "ptxas error   : the kernels use too much shared data ({bytes:#x} bytes, \
                         {MAX_STATIC_SHARED:#x} max)\n"
                    );
                    return COMPILATION;
                }
            }
            let entries = entry_points(&p.src);
            let kind = if o.arch.1 { "sm" } else { "compute" };
            let mut text = format!(
                "//\n// Generated by softcuda's emulated NVRTC {major}.{minor}: host code under \
                 kernels/emulate.h, not PTX\n//\n// softcuda-module: {}\n// softcuda-nvrtc: \
                 {major}.{minor}\n\n.version 8.0\n.target {kind}_{}\n.address_size 64\n",
                so.display(),
                o.arch.0
            );
            let mut plog = log;
            for e in &entries {
                text.push_str(&format!("\n.visible .entry {e}(\n)\n{{\n}}\n"));
                if o.ptxas_verbose {
                    plog.push_str(&format!(
                        "ptxas info    : Compiling entry function '{e}' for 'sm_{}'\nptxas info    : \
                         Function properties for {e}\n    0 bytes stack frame, 0 bytes spill stores, 0 \
                         bytes spill loads\nptxas info    : Used 0 registers (softcuda: emulated)\n",
                        o.arch.0
                    ));
                }
            }
            p.ptx = text.clone().into_bytes();
            p.ptx.push(0);
            if o.arch.1 {
                p.cubin = crate::exec::CUBIN_MAGIC.to_vec();
                p.cubin.extend_from_slice(text.as_bytes());
                p.cubin.push(0);
            }
            p.log = plog;
            SUCCESS
        }
    }
}

unsafe fn copy_out(
    prog: usize,
    pick: fn(&Program) -> &[u8],
    size: *mut usize,
    buf: *mut c_char,
) -> c_int {
    let progs = programs().lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = progs.get(&prog) else {
        return INVALID_PROGRAM;
    };
    let data = pick(p);
    if !size.is_null() {
        *size = data.len();
    }
    if !buf.is_null() {
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf as *mut u8, data.len());
    }
    SUCCESS
}

fn ptx_of(p: &Program) -> &[u8] {
    &p.ptx
}
fn cubin_of(p: &Program) -> &[u8] {
    &p.cubin
}

/// `nvrtcGetPTXSize` (including the NUL).
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_ptx_size(prog: usize, size: *mut usize) -> c_int {
    copy_out(prog, ptx_of, size, std::ptr::null_mut())
}
/// `nvrtcGetPTX`.
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_ptx(prog: usize, buf: *mut c_char) -> c_int {
    copy_out(prog, ptx_of, std::ptr::null_mut(), buf)
}
/// `nvrtcGetCUBINSize` (0 for a virtual `compute_XY` target).
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_cubin_size(prog: usize, size: *mut usize) -> c_int {
    copy_out(prog, cubin_of, size, std::ptr::null_mut())
}
/// `nvrtcGetCUBIN`.
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_cubin(prog: usize, buf: *mut c_char) -> c_int {
    copy_out(prog, cubin_of, std::ptr::null_mut(), buf)
}
/// `nvrtcGetProgramLogSize` (including the NUL).
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_log_size(prog: usize, size: *mut usize) -> c_int {
    let progs = programs().lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = progs.get(&prog) else {
        return INVALID_PROGRAM;
    };
    if !size.is_null() {
        *size = p.log.len() + 1;
    }
    SUCCESS
}
/// `nvrtcGetProgramLog`.
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_log(prog: usize, buf: *mut c_char) -> c_int {
    let progs = programs().lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = progs.get(&prog) else {
        return INVALID_PROGRAM;
    };
    if !buf.is_null() {
        std::ptr::copy_nonoverlapping(p.log.as_ptr(), buf as *mut u8, p.log.len());
        *buf.add(p.log.len()) = 0;
    }
    SUCCESS
}

/// The architectures of NVRTC `major`: count, and the list when `out` is not null.
#[no_mangle]
pub unsafe extern "C" fn softcuda_nvrtc_archs(
    major: c_int,
    n: *mut c_int,
    out: *mut c_int,
) -> c_int {
    let a = supported_archs(major);
    if !n.is_null() {
        *n = a.len() as c_int;
    }
    if !out.is_null() {
        std::ptr::copy_nonoverlapping(a.as_ptr(), out, a.len());
    }
    SUCCESS
}

/// `nvrtcGetErrorString`.
#[no_mangle]
pub extern "C" fn softcuda_nvrtc_error_string(code: c_int) -> *const c_char {
    let s: &'static [u8] = match code {
        SUCCESS => b"NVRTC_SUCCESS\0",
        OUT_OF_MEMORY => b"NVRTC_ERROR_OUT_OF_MEMORY\0",
        INVALID_INPUT => b"NVRTC_ERROR_INVALID_INPUT\0",
        INVALID_PROGRAM => b"NVRTC_ERROR_INVALID_PROGRAM\0",
        INVALID_OPTION => b"NVRTC_ERROR_INVALID_OPTION\0",
        COMPILATION => b"NVRTC_ERROR_COMPILATION\0",
        INTERNAL_ERROR => b"NVRTC_ERROR_INTERNAL_ERROR\0",
        _ => b"NVRTC_ERROR unknown\0",
    };
    s.as_ptr() as *const c_char
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_like_nvrtc() {
        let o = |v: &[&str], major| {
            parse_options(major, &v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let ok = o(
            &["--gpu-architecture=sm_70", "--std=c++17", "--fmad=false"],
            12,
        )
        .unwrap();
        assert_eq!(ok.arch, (70, true));
        assert!(!ok.fmad);
        assert!(o(&["--gpu-architecture=sm_90"], 13).unwrap().fmad);
        // CUDA 13 dropped Volta
        assert!(o(&["--gpu-architecture=sm_70"], 13)
            .unwrap_err()
            .contains("not supported"));
        assert!(o(&["-arch=compute_80"], 12).unwrap().arch == (80, false));
        assert!(o(&["--frobnicate"], 12)
            .unwrap_err()
            .contains("unrecognized option"));
        assert!(o(&["--fmad=maybe"], 12).is_err());
        assert!(o(&["-Xptxas=-v"], 12).unwrap().ptxas_verbose);
    }

    #[test]
    fn shared_declarations_are_found() {
        let src = "__shared__ float a[256];\n// __shared__ int no[3];\nextern __shared__ float dyn[];\nvoid f() { __shared__ AiaStats part[AIA_BLOCK]; }";
        assert_eq!(
            shared_declarations(src),
            vec![
                ("float a[256]".to_string(), "a".to_string()),
                ("AiaStats part[AIA_BLOCK]".to_string(), "part".to_string())
            ]
        );
    }

    #[test]
    fn entry_points_skip_comments() {
        let src = "// extern \"C\" __global__ void no(\n/* extern \"C\" __global__ void nope( */\nextern \"C\" __global__ void yes(int a) {}\nextern  \"C\"\n__global__ void also (float* x) {}\n__global__ void cxx(int) {}";
        assert_eq!(entry_points(src), vec!["yes", "also"]);
    }
}
