//! Typed errors. Every error that can come from a file, a user or a driver names the
//! file (or `<memory>` for maps that were never read from disk) and the reason.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a map or table came from: a file path, or memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source(pub Option<PathBuf>);

impl Source {
    /// A source with no file (a map built in memory).
    pub fn memory() -> Source {
        Source(None)
    }
    /// A source that is a file.
    pub fn file(p: impl AsRef<Path>) -> Source {
        Source(Some(p.as_ref().to_path_buf()))
    }
    /// The path, if any.
    pub fn path(&self) -> Option<&Path> {
        self.0.as_deref()
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(p) => write!(f, "{}", p.display()),
            None => f.write_str("<memory>"),
        }
    }
}

impl From<&Path> for Source {
    fn from(p: &Path) -> Source {
        Source::file(p)
    }
}

/// The crate's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, read, written or renamed.
    #[error("{file}: {reason}")]
    Io { file: Source, reason: String },
    /// Not a FITS file, truncated, or an HDU cfitsio cannot decode.
    #[error("{file}: not a readable FITS image: {reason}")]
    Fits { file: Source, reason: String },
    /// A FITS file that is not an AIA image (wrong INSTRUME/TELESCOP, no 2-D image, ...).
    #[error("{file}: not an AIA image: {reason}")]
    NotAia { file: Source, reason: String },
    /// A keyword the pipeline needs is absent.
    #[error("{file}: missing keyword {key}")]
    MissingKeyword { file: Source, key: String },
    /// A keyword is present but not a finite number (or otherwise unusable).
    #[error("{file}: keyword {key} is invalid: {reason}")]
    BadKeyword {
        file: Source,
        key: String,
        reason: String,
    },
    /// The image does not contain the whole solar disk (sunpy's `contains_full_disk`).
    #[error("{file}: not a full-disk image: {reason}")]
    NotFullDisk { file: Source, reason: String },
    /// An output file already exists and overwriting was not asked for.
    #[error("{file}: output exists (pass --overwrite to replace it)")]
    OutputExists { file: Source },
    /// The output path is one of the inputs.
    #[error("{file}: refusing to write over an input file")]
    WouldOverwriteInput { file: Source },
    /// An option value is out of range or inconsistent.
    #[error("{file}: invalid option: {reason}")]
    InvalidOption { file: Source, reason: String },
    /// No PSF model for this channel (1600, 1700, 4500 or unknown).
    #[error("{file}: no PSF model for channel {channel}")]
    NoPsfModel { file: Source, channel: String },
    /// Two arrays whose shapes must agree do not.
    #[error("{file}: shape mismatch: {reason}")]
    Shape { file: Source, reason: String },
    /// A PSF that is all zero, negative or non-finite.
    #[error("{file}: unusable PSF: {reason}")]
    BadPsf { file: Source, reason: String },
    /// A pointing table that cannot be used; `line` is 1-based when known.
    #[error("{file}{}: pointing table: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Pointing {
        file: Source,
        line: Option<usize>,
        reason: String,
    },
    /// A calibration table (degradation correction, error table) that cannot be used;
    /// `line` is 1-based and `column` the column's name, when known.
    #[error("{file}{}: {what}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default(), column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
    Table {
        file: Source,
        /// What the table is ("correction table", "error table").
        what: &'static str,
        line: Option<usize>,
        column: Option<String>,
        reason: String,
    },
    /// A file whose header declares an image or data unit that would need more memory than
    /// the read limit ([`crate::fits::ReadLimits`]); nothing was allocated.
    #[error("{file}: {what} would need {bytes} bytes, over the read limit of {limit} bytes (raise it with ReadLimits::max_bytes, prep --max-input-mib)")]
    TooLarge {
        file: Source,
        /// What the header declares ("a 100000 x 100000 image as f32", ...).
        what: String,
        /// The bytes it would need.
        bytes: u64,
        /// The limit in force (bytes).
        limit: u64,
    },
    /// The requested backend is not available (no driver, no NVRTC, no device, ...).
    #[error("backend unavailable: {reason}")]
    BackendUnavailable { reason: String },
    /// A GPU operation failed (driver, NVRTC, cuFFT, out of device memory, ...).
    #[error("{file}: GPU: {reason}")]
    Gpu { file: Source, reason: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The source named by this error, if any.
    pub fn file(&self) -> Option<&Source> {
        match self {
            Error::Io { file, .. }
            | Error::Fits { file, .. }
            | Error::NotAia { file, .. }
            | Error::MissingKeyword { file, .. }
            | Error::BadKeyword { file, .. }
            | Error::NotFullDisk { file, .. }
            | Error::OutputExists { file }
            | Error::WouldOverwriteInput { file }
            | Error::InvalidOption { file, .. }
            | Error::NoPsfModel { file, .. }
            | Error::Shape { file, .. }
            | Error::BadPsf { file, .. }
            | Error::Pointing { file, .. }
            | Error::Table { file, .. }
            | Error::TooLarge { file, .. }
            | Error::Gpu { file, .. } => Some(file),
            Error::BackendUnavailable { .. } => None,
        }
    }

    /// Why a backend is unavailable, as one line for "falling back to the CPU" messages:
    /// the reason of [`Error::BackendUnavailable`], else the whole message.
    pub fn reason(&self) -> String {
        match self {
            Error::BackendUnavailable { reason } => reason.clone(),
            other => other.to_string(),
        }
    }

    /// This error naming `file` where it names `<memory>` (errors from lower layers, e.g.
    /// the GPU operations, that did not know which file the pixels came from).
    pub fn in_file(mut self, file: &Source) -> Error {
        let slot = match &mut self {
            Error::Io { file, .. }
            | Error::Fits { file, .. }
            | Error::NotAia { file, .. }
            | Error::MissingKeyword { file, .. }
            | Error::BadKeyword { file, .. }
            | Error::NotFullDisk { file, .. }
            | Error::OutputExists { file }
            | Error::WouldOverwriteInput { file }
            | Error::InvalidOption { file, .. }
            | Error::NoPsfModel { file, .. }
            | Error::Shape { file, .. }
            | Error::BadPsf { file, .. }
            | Error::Pointing { file, .. }
            | Error::Table { file, .. }
            | Error::TooLarge { file, .. }
            | Error::Gpu { file, .. } => Some(file),
            Error::BackendUnavailable { .. } => None,
        };
        if let Some(f) = slot {
            if f.0.is_none() {
                *f = file.clone();
            }
        }
        self
    }
}
