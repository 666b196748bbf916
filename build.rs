//! Generates two files from `kernels/` into `$OUT_DIR`:
//!
//! * `kernels.rs` — the registry every build has (`crate::kernels`): each `kernels/*.cu`
//!   and header embedded as `(name, source, entry points)`, where the entry points are the
//!   `extern "C" __global__ void NAME(...)` functions of the source (comments ignored);
//! * `launchers.rs` — included by `host/gpu/launch.rs` (feature `cuda` only): per entry
//!   point a typed id (`KernelId`, an index into a per-device function table) and a typed
//!   launcher, one Rust module per `.cu` file (`launch::rl::rl_prepare(dev, cfg, d, u, mask,
//!   n, clip_negative)`). Each parameter's C type becomes a Rust type: `T*` →
//!   `&mut CudaSlice<R>`, `const T*` → `&CudaSlice<R>` (or `Option<&CudaSlice<R>>` when the
//!   parameter is marked `/* nullable */` in the source: `None` passes NULL), a scalar or
//!   struct by value → the Rust value (`int` → `i32`, `ResampleParams` →
//!   `RawResampleParams`, ...; see [`rust_type`]). A C type without a mapping, a pointer to
//!   a pointer, a reference or an unnamed parameter stops the build with a message naming
//!   the kernel and the parameter, so a new kernel cannot be launched with arguments of
//!   silently wrong types.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let mut entries: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut files: Vec<(String, Vec<Kernel>)> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    if let Ok(rd) = fs::read_dir("kernels") {
        let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            println!("cargo:rerun-if-changed={}", p.display());
            let is_cu = p.extension().is_some_and(|e| e == "cu");
            let is_h = p.extension().is_some_and(|e| e == "h" || e == "cuh");
            if !(is_cu || is_h) {
                continue;
            }
            let Some(stem) = p.file_stem().map(|s| s.to_string_lossy().to_string()) else {
                continue;
            };
            let abs = fs::canonicalize(&p).unwrap_or(p.clone());
            let src = fs::read_to_string(&p).unwrap_or_default();
            let kernels = if is_cu {
                parse_kernels(&src, &stem, &mut errors)
            } else {
                Vec::new()
            };
            let name = if is_cu {
                stem.clone()
            } else {
                p.file_name()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or(stem.clone())
            };
            let names = kernels.iter().map(|k| k.name.clone()).collect();
            entries.push((name, abs.display().to_string(), names));
            if is_cu && !kernels.is_empty() {
                files.push((stem, kernels));
            }
        }
    }
    let launchers = launchers(&files, &mut errors);
    if !errors.is_empty() {
        panic!(
            "build.rs: cannot generate the typed kernel launchers:\n  {}",
            errors.join("\n  ")
        );
    }
    let _ = fs::write(Path::new(&out_dir).join("kernels.rs"), registry(&entries));
    let _ = fs::write(Path::new(&out_dir).join("launchers.rs"), launchers);
}

/// `$OUT_DIR/kernels.rs`: the `KERNELS` registry.
fn registry(entries: &[(String, String, Vec<String>)]) -> String {
    let mut code = String::from(
        "/// A kernel source embedded at build time.\n#[derive(Debug, Clone, Copy)]\npub struct KernelSource {\n    /// File stem (`resample` for `kernels/resample.cu`; headers keep their extension).\n    pub name: &'static str,\n    /// The CUDA C source.\n    pub source: &'static str,\n    /// `extern \"C\" __global__` functions defined in the file.\n    pub entry_points: &'static [&'static str],\n}\n\n/// Every file in `kernels/`, sorted by name.\npub static KERNELS: &[KernelSource] = &[\n",
    );
    for (name, path, funcs) in entries {
        let list: Vec<String> = funcs.iter().map(|f| format!("{f:?}")).collect();
        let _ = writeln!(
            code,
            "    KernelSource {{ name: {name:?}, source: include_str!({path:?}), entry_points: &[{}] }},",
            list.join(", ")
        );
    }
    code.push_str("];\n");
    code
}

/// How a parameter is passed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pass {
    /// A scalar or struct by value.
    Value,
    /// `T*`: a device buffer the kernel may write.
    Mut,
    /// `const T*`: a device buffer the kernel only reads.
    Const,
    /// `const T*` marked `/* nullable */`: a buffer or NULL.
    ConstNullable,
}

#[derive(Debug, Clone)]
struct Param {
    /// The C type without qualifiers and `*` (`float`, `long long`, `ResampleParams`).
    c_type: String,
    /// The C name.
    name: String,
    pass: Pass,
}

#[derive(Debug, Clone)]
struct Kernel {
    name: String,
    /// The C declaration, whitespace collapsed, without the body.
    signature: String,
    params: Vec<Param>,
}

/// The marker that makes a `const T*` parameter nullable, as written in the source.
const NULLABLE: &str = "/* nullable */";
/// What [`strip_comments`] turns [`NULLABLE`] into.
const NULLABLE_TOKEN: &str = "__aia_nullable__";

/// The source without comments (a block comment becomes a space), except that the
/// [`NULLABLE`] marker becomes [`NULLABLE_TOKEN`].
fn strip_comments(src: &str) -> String {
    let mut text = String::with_capacity(src.len());
    let mut rest = src;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map(|i| &r[i..]).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("/*") {
            let end = r.find("*/");
            let body = end.map(|i| &r[..i]).unwrap_or(r);
            if body.trim() == "nullable" {
                text.push(' ');
                text.push_str(NULLABLE_TOKEN);
            }
            text.push(' ');
            rest = end.map(|i| &r[i + 2..]).unwrap_or("");
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    text
}

/// The `extern "C" __global__ void NAME(...)` functions of a source with their parameters.
/// Problems (unparsable parameters) are pushed to `errors`.
fn parse_kernels(src: &str, file: &str, errors: &mut Vec<String>) -> Vec<Kernel> {
    let text = strip_comments(src);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let pat = "extern \"C\" __global__ void ";
    let mut out = Vec::new();
    let mut rest = flat.as_str();
    while let Some(i) = rest.find(pat) {
        rest = &rest[i + pat.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after = rest[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('(') {
            continue;
        }
        let Some(close) = after.find(')') else {
            errors.push(format!(
                "kernels/{file}.cu: `{name}`: no `)` closes the parameter list"
            ));
            continue;
        };
        let list = &after[1..close];
        let mut params = Vec::new();
        let trimmed = list.trim();
        if !(trimmed.is_empty() || trimmed == "void") {
            for (k, p) in list.split(',').enumerate() {
                match parse_param(p) {
                    Ok(p) => params.push(p),
                    Err(e) => errors.push(format!(
                        "kernels/{file}.cu: `{name}`, parameter {} (`{}`): {e}",
                        k + 1,
                        p.trim().replace(NULLABLE_TOKEN, NULLABLE)
                    )),
                }
            }
        }
        let signature = format!("{pat}{name}({})", list.trim())
            .replace(&format!(" {NULLABLE_TOKEN}"), &format!(" {NULLABLE}"))
            .replace(NULLABLE_TOKEN, NULLABLE)
            .replace(" ,", ",")
            .replace(" )", ")");
        out.push(Kernel {
            name,
            signature,
            params,
        });
    }
    out
}

/// One C parameter: `const float* __restrict__ x`, `long long n`, `ResampleParams p`.
fn parse_param(p: &str) -> Result<Param, String> {
    let spaced = p.replace('*', " * ").replace('&', " & ");
    let mut stars = 0;
    let mut pointee_const = false;
    let mut nullable = false;
    let mut words: Vec<&str> = Vec::new();
    for tok in spaced.split_whitespace() {
        match tok {
            "*" => stars += 1,
            "&" => return Err("references are not supported (pass a pointer)".into()),
            "const" if stars == 0 => pointee_const = true,
            // `T* const p`: the pointer itself is const, which changes nothing for the caller.
            "const" | "__restrict__" | "__restrict" | "struct" => {}
            t if t == NULLABLE_TOKEN => nullable = true,
            t if t.contains(['[', ']', '(', ')', '=', '<', '>']) => {
                return Err(format!("cannot parse `{t}` (arrays, function pointers, templates and default values are not supported)"));
            }
            t => words.push(t),
        }
    }
    if words.len() < 2 {
        return Err("a parameter needs a type and a name".into());
    }
    let name = words.pop().unwrap_or_default().to_string();
    let c_type = words.join(" ");
    let pass = match (stars, pointee_const, nullable) {
        (0, _, false) => Pass::Value,
        (1, false, false) => Pass::Mut,
        (1, true, false) => Pass::Const,
        (1, true, true) => Pass::ConstNullable,
        (0 | 1, _, true) => {
            return Err(format!(
                "`{NULLABLE}` is for `const T*` parameters (read-only buffers) only"
            ))
        }
        _ => return Err("pointers to pointers are not supported".into()),
    };
    rust_type(&c_type).ok_or_else(|| {
        format!(
            "C type `{c_type}` has no Rust mapping; add it to `rust_type` in build.rs \
             (scalars: float, double, short, int, long long, aia_u8, aia_u32, aia_u64; \
             structs: AiaStats, AiaComplex32, AiaComplex64, FullDiskParams, ResampleParams)"
        )
    })?;
    Ok(Param { c_type, name, pass })
}

/// The Rust type that has the layout of a C type (scalars, and the `#[repr(C)]` mirrors of
/// the kernel structs, whose layouts are pinned by tests on both sides).
fn rust_type(c_type: &str) -> Option<&'static str> {
    Some(match c_type {
        "float" => "f32",
        "double" => "f64",
        "short" => "i16",
        "int" => "i32",
        "long long" => "i64",
        "aia_u8" => "u8",
        "aia_u32" => "u32",
        "aia_u64" => "u64",
        "AiaStats" => "crate::gpu::convert::RawStats",
        "AiaComplex32" => "crate::gpu::fft::Complex32",
        "AiaComplex64" => "crate::gpu::fft::Complex64",
        "FullDiskParams" => "crate::gpu::fulldisk::RawFullDiskParams",
        "ResampleParams" => "crate::gpu::register::RawResampleParams",
        _ => return None,
    })
}

/// `camelCase` or `snake_case` → `snake_case`.
fn snake(s: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// Rust keywords and the launchers' own local names, which parameters must not take.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "dev",
    "cfg",
    "kernel_fn",
    "args",
    "null_ptr",
];

/// A Rust identifier for a C name (snake case; `_` appended to keywords and reserved names).
fn ident(c_name: &str) -> String {
    let s = snake(c_name);
    if RESERVED.contains(&s.as_str()) {
        format!("{s}_")
    } else {
        s
    }
}

/// `$OUT_DIR/launchers.rs`: the entry-point table, the ids and the typed launchers.
fn launchers(files: &[(String, Vec<Kernel>)], errors: &mut Vec<String>) -> String {
    let count: usize = files.iter().map(|(_, k)| k.len()).sum();
    let mut code = String::from(
        "// Generated by build.rs from kernels/*.cu; included by host/gpu/launch.rs.\n\n",
    );
    let _ = writeln!(
        code,
        "/// Number of kernel entry points (the length of every device's function table).\n\
         pub const KERNEL_COUNT: usize = {count};\n"
    );
    code.push_str(
        "/// Every kernel entry point, indexed by [`KernelId`]: file stem, entry name, C declaration.\n\
         static ENTRY_POINTS: [EntryPoint; KERNEL_COUNT] = [\n",
    );
    for (file, kernels) in files {
        for k in kernels {
            let _ = writeln!(
                code,
                "    EntryPoint {{ file: {file:?}, entry: {:?}, signature: {:?} }},",
                k.name, k.signature
            );
        }
    }
    code.push_str("];\n");

    let mut id = 0usize;
    for (file, kernels) in files {
        let module = ident(file);
        if module != *file || !file.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.push(format!(
                "kernels/{file}.cu: the file stem must be a snake_case Rust identifier (it names the launcher module)"
            ));
            continue;
        }
        let _ = write!(
            code,
            "\n/// Typed launchers of the entry points of `kernels/{file}.cu`.\n\
             pub mod {module} {{\n    use super::prelude::*;\n"
        );
        for k in kernels {
            let fn_name = ident(&k.name);
            let const_name = fn_name.trim_end_matches('_').to_ascii_uppercase();
            let _ = write!(
                code,
                "\n    /// Id of `{}` in `kernels/{file}.cu`.\n    pub const {const_name}: KernelId = KernelId({id});\n",
                k.name
            );
            id += 1;
            let mut names: Vec<String> = Vec::new();
            let mut sig = vec![
                "dev: &GpuDevice".to_string(),
                "cfg: LaunchConfig".to_string(),
            ];
            let mut pushes = Vec::new();
            let mut needs_null = false;
            for p in &k.params {
                let name = ident(&p.name);
                if names.contains(&name) {
                    errors.push(format!(
                        "kernels/{file}.cu: `{}`: two parameters are named `{name}` in Rust",
                        k.name
                    ));
                }
                names.push(name.clone());
                let ty = rust_type(&p.c_type).unwrap_or("()");
                match p.pass {
                    Pass::Value => {
                        sig.push(format!("{name}: {ty}"));
                        pushes.push(format!("args.arg(&{name});"));
                    }
                    Pass::Mut => {
                        sig.push(format!("{name}: &mut CudaSlice<{ty}>"));
                        pushes.push(format!("args.arg({name});"));
                    }
                    Pass::Const => {
                        sig.push(format!("{name}: &CudaSlice<{ty}>"));
                        pushes.push(format!("args.arg({name});"));
                    }
                    Pass::ConstNullable => {
                        needs_null = true;
                        sig.push(format!("{name}: Option<&CudaSlice<{ty}>>"));
                        pushes.push(format!(
                            "match {name} {{\n            Some(buffer) => args.arg(buffer),\n            None => args.arg(&null_ptr),\n        }};"
                        ));
                    }
                }
            }
            let params_doc: Vec<String> = k
                .params
                .iter()
                .zip(&names)
                .map(|(p, n)| {
                    let how = match p.pass {
                        Pass::Value => format!("`{}` by value", p.c_type),
                        Pass::Mut => format!("device buffer of `{}` (written)", p.c_type),
                        Pass::Const => format!("device buffer of `{}` (read)", p.c_type),
                        Pass::ConstNullable => {
                            format!("device buffer of `{}` (read), or `None` for NULL", p.c_type)
                        }
                    };
                    format!("    /// * `{n}`: {how}")
                })
                .collect();
            let _ = write!(
                code,
                "\n    /// Launches `{}` of `kernels/{file}.cu` on `dev`'s stream with `cfg`:\n    ///\n    /// ```c\n    /// {}\n    /// ```\n    ///\n{}{}    ///\n    /// The caller passes buffers at least as long as the kernel indexes with the sizes\n    /// given (the types and order of the arguments are the signature's, by construction).\n",
                k.name,
                k.signature,
                params_doc.join("\n"),
                if params_doc.is_empty() { "" } else { "\n" },
            );
            if sig.len() > 7 {
                code.push_str("    #[allow(clippy::too_many_arguments)]\n");
            }
            let _ = write!(
                code,
                "    pub(crate) fn {fn_name}(\n        {},\n    ) -> Result<()> {{\n",
                sig.join(",\n        ")
            );
            if needs_null {
                code.push_str("        let null_ptr: u64 = 0;\n");
            }
            let _ = write!(
                code,
                "        let kernel_fn = dev.kernel({const_name})?;\n        let {}args = dev.stream.launch_builder(kernel_fn);\n",
                if pushes.is_empty() { "" } else { "mut " }
            );
            for p in &pushes {
                let _ = writeln!(code, "        {p}");
            }
            let _ = write!(
                code,
                "        launch_args(args, cfg, {const_name})\n    }}\n"
            );
        }
        code.push_str("}\n");
    }
    code
}
