//! A per-process scratch file for the targets that read files (cfitsio opens paths): in
//! /dev/shm when there is one, so that the write costs no disk I/O.
use std::path::PathBuf;

pub fn scratch(tag: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("aiaprep-fuzz-{tag}-{}.fits", std::process::id()))
}
