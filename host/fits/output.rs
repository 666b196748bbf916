//! Safe output files: checks before writing, a temporary name in the output directory,
//! and an atomic move into place (no-clobber unless overwriting is asked for).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result, Source};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether two paths name the same existing file (same device and inode on Unix,
/// same canonical path elsewhere).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
}

/// The checks made before any byte is written:
/// - `path` is not `input` (the same file, through any link) → [`Error::WouldOverwriteInput`],
///   even with `overwrite`;
/// - the output directory exists → else [`Error::Io`] naming the directory;
/// - `path` does not exist unless `overwrite` → [`Error::OutputExists`]; an existing
///   directory at `path` is always an [`Error::Io`].
pub(crate) fn preflight(path: &Path, input: Option<&Path>, overwrite: bool) -> Result<()> {
    let file = Source::file(path);
    if let Some(inp) = input {
        if same_file(inp, path) {
            return Err(Error::WouldOverwriteInput { file });
        }
    }
    let dir = parent_dir(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Io {
                file: Source::file(&dir),
                reason: "output directory is not a directory".into(),
            })
        }
        Err(e) => {
            return Err(Error::Io {
                file: Source::file(&dir),
                reason: format!("output directory: {e}"),
            })
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::Io {
            file,
            reason: "output path is a directory".into(),
        }),
        Ok(_) if !overwrite => Err(Error::OutputExists { file }),
        _ => Ok(()),
    }
}

/// The directory a path's file lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary file next to the final output, removed on drop unless committed.
pub(crate) struct TempOutput {
    tmp: PathBuf,
    done: bool,
}

impl TempOutput {
    /// A fresh name `.NAME.tmp-PID-COUNTER` in the output directory (nothing is created).
    pub(crate) fn new(path: &Path) -> Result<TempOutput> {
        let name = path.file_name().ok_or_else(|| Error::Io {
            file: Source::file(path),
            reason: "output path has no file name".into(),
        })?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp_name = format!(
            ".{}.tmp-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            n
        );
        Ok(TempOutput {
            tmp: parent_dir(path).join(tmp_name),
            done: false,
        })
    }

    /// The temporary path to write to.
    pub(crate) fn path(&self) -> &Path {
        &self.tmp
    }

    /// Move the written temporary file to `path`. Without `overwrite` this is a
    /// no-clobber move (a hard link, which fails atomically if `path` exists, then the
    /// temporary name is removed; on a file system without hard links, a check then a
    /// rename); with it, an atomic `rename` over any old file.
    pub(crate) fn commit(mut self, path: &Path, overwrite: bool) -> Result<()> {
        let file = Source::file(path);
        if overwrite {
            std::fs::rename(&self.tmp, path).map_err(|e| Error::Io {
                file: file.clone(),
                reason: format!("cannot move {} into place: {e}", self.tmp.display()),
            })?;
        } else {
            match std::fs::hard_link(&self.tmp, path) {
                Ok(()) => {
                    // The output is in place; failing to remove the temporary name is only
                    // untidy, and Drop tries again.
                    if std::fs::remove_file(&self.tmp).is_err() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::OutputExists { file });
                }
                Err(e) => {
                    // A file system without hard links: check, then rename (a small window
                    // in which another writer could create `path` remains).
                    if std::fs::symlink_metadata(path).is_ok() {
                        return Err(Error::OutputExists { file });
                    }
                    std::fs::rename(&self.tmp, path).map_err(|e2| Error::Io {
                        file,
                        reason: format!(
                            "cannot move {} into place: {e2} (hard link failed: {e})",
                            self.tmp.display()
                        ),
                    })?;
                }
            }
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aiaprep-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn temporary_name_is_hidden_and_unique() {
        let a = TempOutput::new(Path::new("/x/y/out.fits")).unwrap();
        let b = TempOutput::new(Path::new("/x/y/out.fits")).unwrap();
        let name = a.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".out.fits.tmp-"), "{name}");
        assert_eq!(a.path().parent(), Some(Path::new("/x/y")));
        assert_ne!(a.path(), b.path());
        let c = TempOutput::new(Path::new("bare.fits")).unwrap();
        assert_eq!(c.path().parent(), Some(Path::new(".")));
    }

    #[test]
    fn no_clobber_commit_loses_a_race_cleanly() {
        // Another writer creates the output between the checks and the move.
        let d = dir("race");
        let out = d.join("o.fits");
        let t = TempOutput::new(&out).unwrap();
        std::fs::write(t.path(), b"new").unwrap();
        std::fs::write(&out, b"old").unwrap();
        let e = t.commit(&out, false).unwrap_err();
        assert!(matches!(e, Error::OutputExists { .. }), "{e:?}");
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1, "temporary file left behind");
        // With overwrite the new content replaces the old.
        let t = TempOutput::new(&out).unwrap();
        std::fs::write(t.path(), b"new").unwrap();
        t.commit(&out, true).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn preflight_checks() {
        let d = dir("preflight");
        let f = d.join("a.fits");
        std::fs::write(&f, b"x").unwrap();
        assert!(matches!(
            preflight(&f, None, false),
            Err(Error::OutputExists { .. })
        ));
        assert!(preflight(&f, None, true).is_ok());
        assert!(matches!(
            preflight(&f, Some(&f), true),
            Err(Error::WouldOverwriteInput { .. })
        ));
        // A hard link to the input is the input.
        let l = d.join("hard.fits");
        std::fs::hard_link(&f, &l).unwrap();
        assert!(matches!(
            preflight(&l, Some(&f), true),
            Err(Error::WouldOverwriteInput { .. })
        ));
        assert!(matches!(preflight(&d, None, true), Err(Error::Io { .. })));
        let e = preflight(&d.join("missing/x.fits"), None, false).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
