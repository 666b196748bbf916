//! The crate's layering (ARCHITECTURE.md), checked on the sources: every `crate::` path in a
//! top-level module of `host/` names a module of a lower layer (or of its own layer, as long
//! as no circle forms), the backends never reach the engine, pipeline, batch or C ABI or
//! each other, and no circle exists between top-level modules. Comments, doc comments and
//! `#[cfg(test)] mod tests` blocks are not code and are left out.
//!
//! A new top-level module must be given a layer here (the test fails until it is).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core types and buffers",
        &[
            "error", "header", "map", "geometry", "buffers", "lanes", "kernels", "time",
        ],
    ),
    (
        "semantics of each operation",
        &[
            "psf",
            "caltable",
            "deconvolve",
            "degradation",
            "register",
            "int16",
            "normalize",
            "pointing",
            "synth",
            "uncertainty",
        ],
    ),
    ("formats", &["fits", "quicklook"]),
    ("backends", &["cpu", "gpu"]),
    ("engine interface", &["engine"]),
    ("pipeline", &["pipeline"]),
    ("batch", &["batch"]),
    ("C ABI", &["capi"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// Source files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file: without its unit-test module and without comments.
fn code(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names with `crate::…` (also inside
/// `use crate::{a, b::c}` groups) or, in a submodule, `super::…` of its parent's siblings.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// `module → modules it names`, for every top-level module of `host/`.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("host");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let src = std::fs::read_to_string(&f).unwrap();
        let named = named_modules(&code(&src));
        let e = edges.entry(module.clone()).or_default();
        for n in named {
            if n != module && n != "VERSION" && n != "Error" && n != "Result" {
                e.insert(n);
            }
        }
    }
    edges
}

#[test]
fn every_module_has_a_layer_and_only_uses_lower_ones() {
    let edges = edges();
    let mut problems = Vec::new();
    for (from, tos) in &edges {
        let Some(lf) = layer_of(from) else {
            problems.push(format!(
                "module `{from}` has no layer (add it to tests/layers.rs and ARCHITECTURE.md)"
            ));
            continue;
        };
        for to in tos {
            match layer_of(to) {
                None if edges.contains_key(to) => {
                    problems.push(format!("module `{to}` (used by `{from}`) has no layer"))
                }
                None => {} // a re-export at the crate root (Error, Result, …)
                Some(lt) if lt > lf => problems.push(format!(
                    "`{from}` ({}) uses `{to}` ({}), a higher layer",
                    LAYERS[lf].0, LAYERS[lt].0
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn backends_do_not_use_each_other() {
    let edges = edges();
    for (a, b) in [("cpu", "gpu"), ("gpu", "cpu")] {
        assert!(
            !edges.get(a).is_some_and(|e| e.contains(b)),
            "the `{a}` backend uses the `{b}` backend: {:?}",
            edges[a]
        );
    }
}

#[test]
fn no_circle_between_top_level_modules() {
    let edges = edges();
    // depth-first search with colours; a grey node reached again closes a circle
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match colour.get(n).copied().unwrap_or(0) {
            1 => {
                let start = path.iter().position(|p| p == n).unwrap();
                let mut c = path[start..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            2 => return None,
            _ => {}
        }
        colour.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if edges.contains_key(m) {
                if let Some(c) = visit(m, edges, colour, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        colour.insert(n.to_string(), 2);
        None
    }
    let mut colour = BTreeMap::new();
    for n in edges.keys() {
        let mut path = Vec::new();
        if let Some(c) = visit(n, &edges, &mut colour, &mut path) {
            panic!("circle between modules: {}", c.join(" → "));
        }
    }
}

#[test]
fn the_checker_sees_uses_and_ignores_comments() {
    // the parser itself: plain paths, groups, comments and test modules
    let src = "use crate::map::AiaMap;\nuse crate::{error::Error, header};\n// crate::batch\n/// [`crate::pipeline`]\nfn f() { crate::fits::read(p); }\n#[cfg(test)]\nmod tests {\n use crate::capi;\n}\n";
    let got = named_modules(&code(src));
    let want: BTreeSet<String> = ["map", "error", "header", "fits"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}
