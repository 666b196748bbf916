//! The state of an output directory: complete outputs (resume) and temporary files left by
//! writers that no longer run.

use std::path::Path;

use crate::fits;

/// Remove temporary files left in `out_dir` by writers that no longer run (a batch killed
/// with SIGKILL, or a second Ctrl-C): names `.NAME.tmp-PID-N` whose process `PID` is gone
/// (checked through `/proc`; elsewhere nothing is removed). Returns how many were removed.
pub fn remove_stale_temporaries(out_dir: &Path) -> usize {
    if !Path::new("/proc/self").exists() {
        return 0;
    }
    let Ok(rd) = std::fs::read_dir(out_dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with('.') {
            continue;
        }
        let Some((_, rest)) = name.rsplit_once(".tmp-") else {
            continue;
        };
        let Some((pid, count)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_err() || count.parse::<u64>().is_err() {
            continue;
        }
        let alive = Path::new("/proc").join(pid).exists();
        if !alive && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// True when `path` holds a complete level-1.5 file: it opens, its image HDU says
/// `LVL_NUM = 1.5`, and the file is as long as its header says its data are.
pub fn is_complete_output(path: &Path) -> bool {
    fits::is_complete_level15(path)
}
