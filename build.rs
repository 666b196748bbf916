//! Embeds every `kernels/*.cu` file into the binary as a generated registry
//! (`$OUT_DIR/kernels.rs`): a list of `(name, source, entry points)`, where the entry
//! points are the `extern "C" __global__` functions found in the source.

use std::fs;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let mut entries: Vec<(String, String, Vec<String>)> = Vec::new();
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
            let funcs = if is_cu {
                entry_points(&src)
            } else {
                Vec::new()
            };
            let name = if is_cu {
                stem
            } else {
                p.file_name()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or(stem)
            };
            entries.push((name, abs.display().to_string(), funcs));
        }
    }
    let mut code = String::from(
        "/// A kernel source embedded at build time.\n#[derive(Debug, Clone, Copy)]\npub struct KernelSource {\n    /// File stem (`resample` for `kernels/resample.cu`; headers keep their extension).\n    pub name: &'static str,\n    /// The CUDA C source.\n    pub source: &'static str,\n    /// `extern \"C\" __global__` functions defined in the file.\n    pub entry_points: &'static [&'static str],\n}\n\n/// Every file in `kernels/`, sorted by name.\npub static KERNELS: &[KernelSource] = &[\n",
    );
    for (name, path, funcs) in &entries {
        let list: Vec<String> = funcs.iter().map(|f| format!("{f:?}")).collect();
        code.push_str(&format!(
            "    KernelSource {{ name: {name:?}, source: include_str!({path:?}), entry_points: &[{}] }},\n",
            list.join(", ")
        ));
    }
    code.push_str("];\n");
    let _ = fs::write(Path::new(&out_dir).join("kernels.rs"), code);
}

/// Names of `extern "C" __global__ void NAME(` functions.
fn entry_points(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let flat = src.split_whitespace().collect::<Vec<_>>().join(" ");
    let pat = "__global__ void ";
    let mut rest = flat.as_str();
    while let Some(i) = rest.find(pat) {
        let before = &rest[..i];
        rest = &rest[i + pat.len()..];
        if !before.trim_end().ends_with("extern \"C\"") {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}
