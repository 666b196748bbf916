//! A thin, checked wrapper over the raw cfitsio calls (`fitsio::sys`) this module needs.
//!
//! Every call goes through [`Fits::check`], which turns a nonzero cfitsio status into
//! [`Error::Fits`] naming the file, the operation, cfitsio's status text (`ffgerr`) and
//! the messages cfitsio left on its error stack (`ffgmsg`). The handle is closed on drop.
//!
//! Files are opened and created with the "disk file" variants (`ffdkopn`, `ffdkinit`),
//! which do not interpret cfitsio's extended file-name syntax: a path such as
//! `a[1].fits` means that file, nothing else. The disk open still inflates a file that
//! starts with a compression magic (gzip, zip, …) into memory, unbounded, so such files are
//! refused before cfitsio opens them (`whole_file_compression`).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::ptr;

use fitsio::sys;

use crate::error::{Error, Result, Source};
use crate::header::{parse_value_field, Value};

/// cfitsio data-type codes used here.
pub(crate) const TSHORT: c_int = sys::TSHORT as c_int;
pub(crate) const TFLOAT: c_int = sys::TFLOAT as c_int;
pub(crate) const TDOUBLE: c_int = sys::TDOUBLE as c_int;
pub(crate) const TBYTE: c_int = sys::TBYTE as c_int;

/// How cfitsio reads a table column ([`Fits::column_form`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ColumnForm {
    /// cfitsio's type code; negative for a variable-length array (`1PB`: −[`TBYTE`]).
    pub typecode: c_int,
    /// `TSCALn` and `TZEROn`, as cfitsio applies them to the stored values.
    pub scale: f64,
    pub zero: f64,
}
const END_OF_FILE: c_int = sys::END_OF_FILE as c_int;
const KEY_NO_EXIST: c_int = sys::KEY_NO_EXIST as c_int;
const FILE_NOT_CREATED: c_int = sys::FILE_NOT_CREATED as c_int;
const WRITE_ERROR: c_int = sys::WRITE_ERROR as c_int;

/// cfitsio's text for a status code (`ffgerr`; a few codes it has no text for are named
/// here).
pub(crate) fn status_text(status: c_int) -> String {
    if status == 415 {
        return "compressed tile does not exist (truncated or damaged file?)".into();
    }
    let mut buf = [0 as c_char; 96];
    // SAFETY: ffgerr writes at most FLEN_STATUS (31) bytes including the NUL.
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    // SAFETY: buf is NUL-terminated (zero-initialised, ffgerr writes a C string).
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .trim()
        .to_string()
}

/// Pop cfitsio's error-message stack (oldest first), at most a few messages.
fn drain_messages() -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..64 {
        let mut buf = [0 as c_char; 96];
        // SAFETY: ffgmsg writes at most FLEN_ERRMSG (81) bytes including the NUL.
        let n = unsafe { sys::ffgmsg(buf.as_mut_ptr()) };
        if n == 0 {
            break;
        }
        // SAFETY: as above, a NUL-terminated string.
        let s: String = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_bytes()
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '?'
                }
            })
            .collect();
        let s = s.trim().to_string();
        if !s.is_empty() && out.len() < 6 {
            out.push(s);
        }
    }
    out
}

/// Build the error for a failed cfitsio call: [`Error::Io`] when the operating system
/// refused to create or write the file (cfitsio `FILE_NOT_CREATED`, `WRITE_ERROR`),
/// [`Error::Fits`] otherwise.
pub(crate) fn fits_error(file: &Source, what: &str, status: c_int) -> Error {
    let msgs = drain_messages();
    let mut reason = format!("{what}: {} (cfitsio status {status})", status_text(status));
    if !msgs.is_empty() {
        reason.push_str(": ");
        reason.push_str(&msgs.join("; "));
    }
    if status == FILE_NOT_CREATED || status == WRITE_ERROR {
        return Error::Io {
            file: file.clone(),
            reason,
        };
    }
    Error::Fits {
        file: file.clone(),
        reason,
    }
}

fn c_path(path: &Path, file: &Source) -> Result<CString> {
    let s = path.to_str().ok_or_else(|| Error::Io {
        file: file.clone(),
        reason: "path is not valid UTF-8 (cfitsio needs a C string)".into(),
    })?;
    CString::new(s).map_err(|_| Error::Io {
        file: file.clone(),
        reason: "path contains a NUL byte".into(),
    })
}

fn c_str(s: &str, file: &Source) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Fits {
        file: file.clone(),
        reason: format!("text contains a NUL byte: {s:?}"),
    })
}

/// Close an in-memory scratch file after replacing its current header by the
/// header of an empty image (`BITPIX = 8`, `NAXIS = 0`, no data).
///
/// `ffclos` re-parses the current header and resizes the file to the data size it
/// claims. The header `fits_img_decompress_header` writes is copied from the
/// input (`ZPCOUNT`, `ZGCOUNT`, `ZNAXISn`, `ZTENSION` become `PCOUNT`, `GCOUNT`,
/// `NAXISn`, `XTENSION`), so closing it as written would let a hostile file ask for
/// gigabytes, past the read limits (fuzzing finding 12). Errors are drained: the
/// header has already been read, and a failed close of a memory file loses nothing.
///
/// # Safety
/// `tmp` must be an open cfitsio handle on a `mem://` file; it is closed here.
unsafe fn close_emptied(tmp: *mut sys::fitsfile) {
    let mut status = 0;
    let mut nexist: c_int = 0;
    let mut nmore: c_int = 0;
    // SAFETY: open handle (caller's promise), out-pointers to locals. Records
    // are deleted from the last, so none is shifted.
    unsafe {
        sys::ffghsp(tmp, &mut nexist, &mut nmore, &mut status);
        for keypos in (1..=nexist).rev() {
            sys::ffdrec(tmp, keypos, &mut status);
        }
        sys::ffphprll(tmp, 1, 8, 0, ptr::null_mut(), 0, 1, 0, &mut status);
    }
    let mut closed = 0;
    // SAFETY: open handle; not used after this.
    unsafe { sys::ffclos(tmp, &mut closed) };
    if status != 0 || closed != 0 {
        drain_messages();
    }
}

/// A header record for an error message: `?` for each byte that is not printable ASCII,
/// trailing blanks dropped.
fn printable(record: &[u8]) -> String {
    String::from_utf8_lossy(record)
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Whether cfitsio's `ffprec` writes `record` (the way `fits_img_decompress_header` copies
/// a compressed image's records): it replaces bytes outside printable ASCII by blanks,
/// upper-cases the name (up to an `=`, or 8 characters), and then requires the first 8
/// characters to be A-Z, 0-9, `-` or `_`, blanks only after them (`fftkey`). cfitsio's
/// header copy does not stop where a record is refused: it goes on to a loop over a count it
/// never set, up to 2³¹ iterations (finding 20: seconds of CPU, a minute under the
/// sanitizer), so such a record is refused before the copy starts.
fn cfitsio_copies_record(record: &[u8]) -> bool {
    let mut card = [b' '; 80];
    let len = record
        .iter()
        .take(80)
        .position(|&b| b == 0)
        .unwrap_or(record.len().min(80));
    for (c, &b) in card.iter_mut().zip(&record[..len]) {
        *c = if (b' '..=b'~').contains(&b) { b } else { b' ' };
    }
    let commentary = [&b"COMMENT "[..], b"HISTORY ", b"        ", b"CONTINUE"]
        .iter()
        .any(|k| card[..8].eq_ignore_ascii_case(k));
    let keylength = match card.iter().position(|&b| b == b'=') {
        Some(n) if !commentary => n,
        _ => 8,
    };
    let mut spaces = false;
    for (i, &b) in card[..8].iter().enumerate() {
        let b = if i < keylength {
            b.to_ascii_uppercase()
        } else {
            b
        };
        if b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_' {
            if spaces {
                return false;
            }
        } else if b == b' ' {
            spaces = true;
        } else {
            return false;
        }
    }
    true
}

/// The header of the current HDU of `fptr` as one string of 80-character records
/// (`ffhdr2str`).
fn header_string(fptr: *mut sys::fitsfile, file: &Source) -> Result<String> {
    let mut status = 0;
    let mut out: *mut c_char = ptr::null_mut();
    let mut nkeys: c_int = 0;
    // SAFETY: an open handle; cfitsio allocates `out`, freed below with fffree.
    unsafe {
        sys::ffhdr2str(
            fptr,
            0,
            ptr::null_mut(),
            0,
            &mut out,
            &mut nkeys,
            &mut status,
        )
    };
    if status != 0 || out.is_null() {
        if !out.is_null() {
            let mut s2 = 0;
            // SAFETY: allocated by cfitsio.
            unsafe { sys::fffree(out as *mut c_void, &mut s2) };
        }
        return Err(fits_error(file, "read header", status));
    }
    // SAFETY: cfitsio returns a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    let mut s2 = 0;
    // SAFETY: allocated by cfitsio.
    unsafe { sys::fffree(out as *mut c_void, &mut s2) };
    Ok(s)
}

/// An open cfitsio file. Closed (errors ignored) on drop; use [`Fits::close`] to see
/// errors from flushing a written file.
pub(crate) struct Fits {
    ptr: *mut sys::fitsfile,
    /// The file named in errors.
    pub(crate) file: Source,
}

/// The image an HDU holds: dimensions and storage type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageInfo {
    /// `NAXIS1` (columns, fastest-varying).
    pub nx: usize,
    /// `NAXIS2` (rows).
    pub ny: usize,
    /// The stored `BITPIX` (for tile-compressed HDUs, `ZBITPIX`).
    pub bitpix: c_int,
    /// Whether the HDU is a tile-compressed image.
    pub compressed: bool,
}

impl Fits {
    /// Open an existing file read-only, without extended file-name parsing. A file
    /// compressed as a whole, and a first header cfitsio would mishandle, are refused
    /// before cfitsio opens the file ([`Error::Fits`]).
    pub(crate) fn open_readonly(path: &Path) -> Result<Fits> {
        let file = Source::file(path);
        let name = c_path(path, &file)?;
        // cfitsio parses the first HDU's header as it opens the file, and takes it for a
        // table if its first card says so (a file need not start with SIMPLE for it):
        // check it as every later header is checked before cfitsio moves there.
        if let Ok(mut f) = std::fs::File::open(path) {
            let len = f.metadata().map_or(0, |m| m.len());
            let head = header_blocks(len, 0, |at, n| read_at(&mut f, at, n));
            if let Some(kind) = whole_file_compression(&head) {
                return Err(Error::Fits {
                    file,
                    reason: format!(
                        "the file is compressed as a whole ({kind}), which cfitsio would \
                         inflate into memory unchecked and unbounded by the read limit; \
                         decompress it first (tile-compressed FITS, as JSOC serves AIA, \
                         reads as it is)"
                    ),
                });
            }
            check_table_header(&file, 1, &head)?;
        }
        let mut ptr = ptr::null_mut();
        let mut status = 0;
        // SAFETY: valid C string, out-pointer to a local.
        unsafe { sys::ffdkopn(&mut ptr, name.as_ptr(), sys::READONLY as c_int, &mut status) };
        if status != 0 {
            if !ptr.is_null() {
                let mut s2 = 0;
                // SAFETY: ptr came from ffdkopn.
                unsafe { sys::ffclos(ptr, &mut s2) };
            }
            return Err(fits_error(&file, "open", status));
        }
        Ok(Fits { ptr, file })
    }

    /// Create a new file at `path` (fails if it exists), without extended file-name
    /// parsing. Errors name `shown` (the final output, when `path` is a temporary name).
    pub(crate) fn create(path: &Path, shown: &Path) -> Result<Fits> {
        let file = Source::file(shown);
        let name = c_path(path, &file)?;
        let mut ptr = ptr::null_mut();
        let mut status = 0;
        // SAFETY: valid C string, out-pointer to a local.
        unsafe { sys::ffdkinit(&mut ptr, name.as_ptr(), &mut status) };
        if status != 0 {
            if !ptr.is_null() {
                let mut s2 = 0;
                // SAFETY: ptr came from ffdkinit.
                unsafe { sys::ffclos(ptr, &mut s2) };
            }
            return Err(fits_error(&file, "create", status));
        }
        Ok(Fits { ptr, file })
    }

    fn check(&self, status: c_int, what: &str) -> Result<()> {
        if status == 0 {
            Ok(())
        } else {
            Err(fits_error(&self.file, what, status))
        }
    }

    /// Close, flushing buffers; reports write errors.
    pub(crate) fn close(mut self) -> Result<()> {
        let p = std::mem::replace(&mut self.ptr, ptr::null_mut());
        let mut status = 0;
        // SAFETY: p is an open handle (taken out of self so Drop does not close it again).
        unsafe { sys::ffclos(p, &mut status) };
        self.check(status, "close")
    }

    /// Find the first HDU that holds a 2-D image with data (trailing axes of length 1
    /// allowed) and make it current. `Err(n)` inside the `Ok` when the file ends after
    /// `n` HDUs without one.
    pub(crate) fn find_image(&mut self) -> Result<std::result::Result<ImageInfo, c_int>> {
        let mut hdu: c_int = 1;
        loop {
            if hdu > 1 {
                self.check_next_header(hdu)?;
            }
            let mut hdutype: c_int = 0;
            let mut status = 0;
            // SAFETY: open handle, out-pointers to locals.
            unsafe { sys::ffmahd(self.ptr, hdu, &mut hdutype, &mut status) };
            if status == END_OF_FILE && hdu > 1 {
                drain_messages();
                return Ok(Err(hdu - 1));
            }
            self.check(status, &format!("move to HDU {hdu}"))?;
            if hdutype == sys::IMAGE_HDU as c_int {
                if let Some(info) = self.image_info()? {
                    // Opening a tile-compressed HDU leaves notes on cfitsio's message stack
                    // ("could not find column ZZERO", …) although it succeeded: drop them,
                    // so that a later error's message does not carry them.
                    drain_messages();
                    return Ok(Ok(info));
                }
            }
            hdu += 1;
        }
    }

    /// `n` bytes of the file from byte `start`, through cfitsio's handle or, where it
    /// refuses (a block the file ends inside), directly; `None` when neither can.
    fn peek(&mut self, start: u64, n: usize) -> Option<Vec<u8>> {
        if let Ok(b) = self.read_bytes(start, n) {
            return Some(b);
        }
        drain_messages();
        read_at(&mut std::fs::File::open(self.file.path()?).ok()?, start, n)
    }

    /// Before cfitsio moves to HDU `hdu` (the one after the current HDU): read its header
    /// ourselves and check it with [`check_table_header`]. A header that cannot be read
    /// here is left to cfitsio to report.
    fn check_next_header(&mut self, hdu: c_int) -> Result<()> {
        let Ok((_, _, start)) = self.hdu_address() else {
            return Ok(());
        };
        let len = self
            .file
            .path()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        let head = header_blocks(len, start, |at, n| self.peek(at, n));
        check_table_header(&self.file, hdu, &head)
    }

    fn image_info(&mut self) -> Result<Option<ImageInfo>> {
        let mut status = 0;
        let mut naxis: c_int = 0;
        // SAFETY: open handle, out-pointer to a local.
        unsafe { sys::ffgidm(self.ptr, &mut naxis, &mut status) };
        self.check(status, "read NAXIS")?;
        if !(2..=999).contains(&naxis) {
            return Ok(None);
        }
        let mut naxes = vec![0 as sys::LONGLONG; naxis as usize];
        // SAFETY: naxes has naxis elements.
        unsafe { sys::ffgiszll(self.ptr, naxis, naxes.as_mut_ptr(), &mut status) };
        self.check(status, "read NAXISn")?;
        if naxes[0] <= 0 || naxes[1] <= 0 || naxes[2..].iter().any(|&n| n != 1) {
            return Ok(None);
        }
        let mut bitpix: c_int = 0;
        // SAFETY: open handle, out-pointer to a local.
        unsafe { sys::ffgidt(self.ptr, &mut bitpix, &mut status) };
        self.check(status, "read BITPIX")?;
        // SAFETY: open handle.
        let compressed = unsafe { sys::fits_is_compressed_image(self.ptr, &mut status) } != 0;
        self.check(status, "check for tile compression")?;
        let too_big = || Error::Fits {
            file: self.file.clone(),
            reason: format!("image {} x {} is too large", naxes[0], naxes[1]),
        };
        let nx = usize::try_from(naxes[0]).map_err(|_| too_big())?;
        let ny = usize::try_from(naxes[1]).map_err(|_| too_big())?;
        nx.checked_mul(ny).ok_or_else(too_big)?;
        Ok(Some(ImageInfo {
            nx,
            ny,
            bitpix,
            compressed,
        }))
    }

    /// Byte offset (from the start of the file) of the end of the current HDU's data unit,
    /// as its header declares it (cfitsio `ffghadll`).
    pub(crate) fn data_end(&mut self) -> Result<u64> {
        Ok(self.hdu_address()?.2)
    }

    /// `len` bytes of the file from byte `start` (from the start of the file), read through
    /// this handle: cfitsio reads a large span straight into the buffer, past its own
    /// record cache. A file that ends before `start + len` is [`Error::Fits`].
    pub(crate) fn read_bytes(&mut self, start: u64, len: usize) -> Result<Vec<u8>> {
        extern "C" {
            // cfitsio's byte-level read at the current position (buffers.c; exported by
            // the library, declared in its internal header fitsio2.h).
            fn ffgbyt(
                fptr: *mut sys::fitsfile,
                nbytes: sys::LONGLONG,
                buffer: *mut c_void,
                status: *mut c_int,
            ) -> c_int;
        }
        let (Ok(pos), Ok(n)) = (sys::LONGLONG::try_from(start), sys::LONGLONG::try_from(len))
        else {
            return Err(Error::Fits {
                file: self.file.clone(),
                reason: format!("byte range {start} + {len} too large"),
            });
        };
        let mut out: Vec<u8> = Vec::with_capacity(len);
        let mut status = 0;
        // SAFETY: open handle; REPORT_EOF (0) makes a position past the end an error.
        unsafe { sys::ffmbyt(self.ptr, pos, 0, &mut status) };
        self.check(status, "seek to the data unit")?;
        // SAFETY: open handle; `out` has capacity for `len` bytes, which cfitsio writes in
        // full when it returns status 0.
        unsafe { ffgbyt(self.ptr, n, out.as_mut_ptr() as *mut c_void, &mut status) };
        self.check(status, "read the data unit")?;
        // SAFETY: status 0: all `len` bytes were written.
        unsafe { out.set_len(len) };
        Ok(out)
    }

    /// Byte offsets (from the start of the file) of the current HDU's header, data unit and
    /// the end of the data unit, as its header declares them (cfitsio `ffghadll`).
    pub(crate) fn hdu_address(&mut self) -> Result<(u64, u64, u64)> {
        let (mut head, mut data, mut end): (sys::LONGLONG, sys::LONGLONG, sys::LONGLONG) =
            (0, 0, 0);
        let mut status = 0;
        // SAFETY: open handle, out-pointers to locals.
        unsafe { sys::ffghadll(self.ptr, &mut head, &mut data, &mut end, &mut status) };
        self.check(status, "read the HDU address")?;
        let off = |v: sys::LONGLONG| {
            u64::try_from(v).map_err(|_| Error::Fits {
                file: self.file.clone(),
                reason: format!("negative HDU offset {v}"),
            })
        };
        Ok((off(head)?, off(data)?, off(end)?))
    }

    /// The current HDU's header as 80-character records; a tile-compressed HDU is
    /// converted to the header of the equivalent uncompressed image.
    ///
    /// This is cfitsio's `ffcnvthdr2str`, done by hand for one reason: that function
    /// decompresses the header into an in-memory FITS file and closes it, and on close
    /// cfitsio zero-fills the (never used) data unit — 32 MB for a 4096² int16 image,
    /// ≈ 20 ms, 13 % of a whole read. Here the in-memory copy's `NAXIS` is set to 0
    /// after the records are taken, so closing it writes no data.
    pub(crate) fn header_records(&mut self) -> Result<String> {
        let mut status = 0;
        // SAFETY: open handle.
        let compressed = unsafe { sys::fits_is_compressed_image(self.ptr, &mut status) } != 0;
        self.check(status, "check for tile compression")?;
        if !compressed {
            return header_string(self.ptr, &self.file);
        }
        // cfitsio copies the table's records into the image header with `ffprec`; where it
        // refuses one, it then loops over a count it never set (finding 20).
        if let Some(r) = self
            .record_bytes()?
            .into_iter()
            .find(|r| !cfitsio_copies_record(r))
        {
            return Err(Error::Fits {
                file: self.file.clone(),
                reason: format!(
                    "the compressed image's header has a keyword cfitsio cannot copy \
                     (only A-Z, 0-9, '-' and '_', then blanks, in columns 1-8): '{}'",
                    printable(&r)
                ),
            });
        }
        let mut tmp: *mut sys::fitsfile = ptr::null_mut();
        let name = c_str("mem://", &self.file)?;
        // SAFETY: out-pointer to a local, C string.
        unsafe { sys::ffinit(&mut tmp, name.as_ptr(), &mut status) };
        if status != 0 || tmp.is_null() {
            return Err(fits_error(
                &self.file,
                "create in-memory header copy",
                status,
            ));
        }
        // SAFETY: both handles are open.
        unsafe { sys::fits_img_decompress_header(self.ptr, tmp, &mut status) };
        let result = if status != 0 {
            Err(fits_error(&self.file, "convert compressed header", status))
        } else {
            header_string(tmp, &self.file)
        };
        // SAFETY: tmp is open and closed exactly once here.
        unsafe { close_emptied(tmp) };
        result
    }

    /// Set the scaling cfitsio applies when reading or writing pixels of the current
    /// HDU (`ffpscl`); `(1, 0)` turns scaling off.
    pub(crate) fn set_scaling(&mut self, bscale: f64, bzero: f64) -> Result<()> {
        let mut status = 0;
        // SAFETY: open handle.
        unsafe { sys::ffpscl(self.ptr, bscale, bzero, &mut status) };
        self.check(status, "set scaling")
    }

    /// Read all `out.len()` pixels of the current image as `T` (cfitsio type code
    /// `datatype`), replacing undefined pixels by `*null` when `null` is given.
    /// Returns whether any undefined pixel was found.
    ///
    /// # Safety
    /// `T` must be the Rust type of cfitsio's `datatype`.
    pub(crate) unsafe fn read_pixels<T>(
        &mut self,
        datatype: c_int,
        null: Option<T>,
        out: &mut [T],
    ) -> Result<bool> {
        let mut status = 0;
        let mut anynul: c_int = 0;
        let mut nul = null;
        let nulptr = match nul.as_mut() {
            Some(n) => n as *mut T as *mut c_void,
            None => ptr::null_mut(),
        };
        // SAFETY: out has out.len() elements of the type datatype names (caller's promise).
        unsafe {
            sys::ffgpv(
                self.ptr,
                datatype,
                1,
                out.len() as sys::LONGLONG,
                nulptr,
                out.as_mut_ptr() as *mut c_void,
                &mut anynul,
                &mut status,
            )
        };
        self.check(status, "read pixels")?;
        Ok(anynul != 0)
    }

    /// Rows (tiles) and columns of the current HDU's table (a tile-compressed image is a
    /// binary table underneath).
    pub(crate) fn table_shape(&mut self) -> Result<(i64, c_int)> {
        let mut status = 0;
        let (mut ncols, mut nrows): (c_int, sys::LONGLONG) = (0, 0);
        // SAFETY: open handle, out-pointers to locals.
        unsafe {
            sys::ffgncl(self.ptr, &mut ncols, &mut status);
            sys::ffgnrwll(self.ptr, &mut nrows, &mut status);
        }
        self.check(status, "read the tile table's shape")?;
        Ok((nrows, ncols))
    }

    /// The heap of the current binary table: its start (from the start of the file) and the
    /// bytes from there to the end of the data unit, as the header declares them (`THEAP`,
    /// default `NAXIS1 × NAXIS2`; `PCOUNT`).
    pub(crate) fn heap_range(&mut self) -> Result<(u64, u64)> {
        let (rows, _) = self.table_shape()?;
        let (_, start, end) = self.hdu_address()?;
        let table = self.key_i64("NAXIS1")?.unwrap_or(0).saturating_mul(rows);
        let theap = self.key_i64("THEAP")?.unwrap_or(table);
        let theap = u64::try_from(theap).unwrap_or(u64::MAX);
        let heap_start = start.saturating_add(theap);
        Ok((heap_start, end.saturating_sub(heap_start)))
    }

    /// How cfitsio reads column `col` (1-based) of the current table: its type code
    /// (`ffgtclll`: `TBYTE` is 11, `TSHORT` 21, ...; negative for a variable-length array)
    /// and the scale and offset it applies to the stored values (`TSCALn`, `TZEROn` as
    /// cfitsio parsed them: 1 and 0 when absent).
    pub(crate) fn column_form(&mut self, col: c_int) -> Result<ColumnForm> {
        let (mut typecode, mut repeat, mut width): (c_int, sys::LONGLONG, sys::LONGLONG) =
            (0, 0, 0);
        let (mut scale, mut zero) = (1.0f64, 0.0f64);
        let mut status = 0;
        // SAFETY: open handle, out-pointers to locals; ffgbclll writes only the outputs
        // whose pointers are not null.
        unsafe {
            sys::ffgtclll(
                self.ptr,
                col,
                &mut typecode,
                &mut repeat,
                &mut width,
                &mut status,
            );
            sys::ffgbclll(
                self.ptr,
                col,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                &mut scale,
                &mut zero,
                ptr::null_mut(),
                ptr::null_mut(),
                &mut status,
            );
        }
        self.check(status, &format!("read the type of column {col}"))?;
        Ok(ColumnForm {
            typecode,
            scale,
            zero,
        })
    }

    /// The variable-length array descriptor of `row` in column `col` (both 1-based):
    /// (elements, byte offset in the heap), as stored (`ffgdesll`; not checked).
    pub(crate) fn descriptor(&mut self, col: c_int, row: i64) -> Result<(i64, i64)> {
        let (mut len, mut off): (sys::LONGLONG, sys::LONGLONG) = (0, 0);
        let mut status = 0;
        // SAFETY: open handle, out-pointers to locals (cfitsio checks col and row).
        unsafe { sys::ffgdesll(self.ptr, col, row, &mut len, &mut off, &mut status) };
        self.check(status, &format!("read the descriptor of tile {row}"))?;
        Ok((len, off))
    }

    /// For a tile-compressed image: check that every variable-length array descriptor of
    /// every column points inside the table's heap, before cfitsio decodes tiles — cfitsio
    /// allocates a tile's compressed bytes from its descriptor's length before it reads
    /// them, so a forged length (2³² − 1, say) would be a 4 GB allocation. One `ffgdesll`
    /// per tile and column (only the cfitsio path needs this: the crate's RICE decoder
    /// bounds every tile by the data it has read).
    pub(crate) fn check_descriptors(&mut self) -> Result<()> {
        let (nrows, ncols) = self.table_shape()?;
        let (_, heap) = self.heap_range()?;
        let heap = i64::try_from(heap).unwrap_or(i64::MAX);
        for col in 1..=ncols {
            let typecode = self.column_form(col)?.typecode;
            if typecode >= 0 {
                continue;
            }
            // Bytes per element of the array (cfitsio type codes); 8 for any other.
            let elem: i64 = match -typecode {
                1 | 11 | 12 | 14 | 16 => 1,
                20 | 21 => 2,
                30 | 31 | 41 | 42 => 4,
                163 => 16,
                _ => 8,
            };
            for row in 1..=nrows {
                let (len, off) = self.descriptor(col, row)?;
                let inside = len >= 0
                    && off >= 0
                    && len
                        .checked_mul(elem)
                        .and_then(|b| b.checked_add(off))
                        .is_some_and(|last| last <= heap);
                if !inside {
                    return Err(Error::Fits {
                        file: self.file.clone(),
                        reason: format!(
                            "tile {row}, column {col}: its descriptor ({len} elements at heap offset {off}) lies outside the {}-byte heap",
                            heap.max(0)
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Ask for tile compression of the next image created (`fits_set_compression_type`;
    /// `ctype` is `RICE_1`, `GZIP_2`, ...). `lossless_float` sets the quantisation level to
    /// 0, which makes cfitsio store floating-point pixels losslessly.
    pub(crate) fn set_compression(&mut self, ctype: c_int, lossless_float: bool) -> Result<()> {
        let mut status = 0;
        // SAFETY: open handle.
        unsafe { sys::fits_set_compression_type(self.ptr, ctype, &mut status) };
        self.check(status, "set compression type")?;
        if lossless_float {
            // SAFETY: open handle.
            unsafe { sys::fits_set_quantize_level(self.ptr, 0.0, &mut status) };
            self.check(status, "set quantisation level")?;
        }
        Ok(())
    }

    /// Create an image HDU of `nx` × `ny` pixels with this `BITPIX` (writes the
    /// structural keywords; with compression requested, an empty primary HDU first).
    pub(crate) fn create_image(&mut self, bitpix: c_int, nx: usize, ny: usize) -> Result<()> {
        let mut naxes = [nx as sys::LONGLONG, ny as sys::LONGLONG];
        let mut status = 0;
        // SAFETY: open handle, naxes has 2 elements.
        unsafe { sys::ffcrimll(self.ptr, bitpix, 2, naxes.as_mut_ptr(), &mut status) };
        self.check(status, "create image")
    }

    /// The records now in the current header (80 characters each).
    pub(crate) fn current_records(&mut self) -> Result<Vec<String>> {
        Ok(self
            .record_bytes()?
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect())
    }

    /// The records of the current HDU's header as cfitsio reads them (`ffgrec`): the bytes
    /// of each, up to 80 and up to a NUL.
    fn record_bytes(&mut self) -> Result<Vec<Vec<u8>>> {
        let mut status = 0;
        let mut nexist: c_int = 0;
        let mut nmore: c_int = 0;
        // SAFETY: open handle, out-pointers to locals.
        unsafe { sys::ffghsp(self.ptr, &mut nexist, &mut nmore, &mut status) };
        self.check(status, "count header records")?;
        let mut out = Vec::with_capacity(nexist.max(0) as usize);
        for i in 1..=nexist {
            let mut buf = [0 as c_char; 96];
            // SAFETY: ffgrec writes at most FLEN_CARD (81) bytes.
            unsafe { sys::ffgrec(self.ptr, i, buf.as_mut_ptr(), &mut status) };
            self.check(status, "read header record")?;
            // SAFETY: NUL-terminated.
            out.push(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_bytes().to_vec());
        }
        Ok(out)
    }

    /// Append one 80-character record (`ffprec`).
    pub(crate) fn write_record(&mut self, record: &str) -> Result<()> {
        let r = c_str(record, &self.file)?;
        let mut status = 0;
        // SAFETY: open handle, C string.
        unsafe { sys::ffprec(self.ptr, r.as_ptr(), &mut status) };
        self.check(
            status,
            &format!("write header card {:?}", record.trim_end()),
        )
    }

    /// Replace the first card with this keyword by `record`, or append it (`ffucrd`).
    pub(crate) fn update_record(&mut self, key: &str, record: &str) -> Result<()> {
        let k = c_str(key, &self.file)?;
        let r = c_str(record, &self.file)?;
        let mut status = 0;
        // SAFETY: open handle, C strings (ffucrd copies the card).
        unsafe { sys::ffucrd(self.ptr, k.as_ptr(), r.as_ptr(), &mut status) };
        self.check(
            status,
            &format!("write header card {:?}", record.trim_end()),
        )
    }

    /// Delete every card with this keyword (no error if there is none).
    pub(crate) fn delete_key(&mut self, key: &str) -> Result<()> {
        let k = c_str(key, &self.file)?;
        loop {
            let mut status = 0;
            // SAFETY: open handle, C string.
            unsafe { sys::ffdkey(self.ptr, k.as_ptr(), &mut status) };
            if status == KEY_NO_EXIST {
                drain_messages();
                return Ok(());
            }
            self.check(status, &format!("delete keyword {key}"))?;
        }
    }

    /// An integer keyword of the current HDU's own header (for a tile-compressed image,
    /// the table's: `ZTILE1`, `ZVAL1`, ...); `None` when absent.
    pub(crate) fn key_i64(&mut self, key: &str) -> Result<Option<i64>> {
        let k = c_str(key, &self.file)?;
        let mut v: sys::LONGLONG = 0;
        let mut status = 0;
        // SAFETY: open handle, C string, out-pointer to a local; no comment wanted.
        unsafe { sys::ffgkyjj(self.ptr, k.as_ptr(), &mut v, ptr::null_mut(), &mut status) };
        if status == KEY_NO_EXIST {
            drain_messages();
            return Ok(None);
        }
        self.check(status, &format!("read keyword {key}"))?;
        Ok(Some(v))
    }

    /// The value of keyword `key` of the current HDU's own header (for a tile-compressed
    /// image, the table's), typed by the crate's card parser; `None` when absent.
    pub(crate) fn keyword(&mut self, key: &str) -> Result<Option<Value>> {
        Ok(self
            .key_text(key, sys::ffgkey)?
            .map(|v| parse_value_field(&v).0))
    }

    /// A string keyword of the current HDU's own header; `None` when absent.
    pub(crate) fn key_str(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self
            .key_text(key, sys::ffgkys)?
            .map(|v| v.trim_end().to_string()))
    }

    /// The text `read` (`ffgkey`: the value field; `ffgkys`: a string value) gives for
    /// keyword `key`; `None` when absent.
    fn key_text(
        &mut self,
        key: &str,
        read: unsafe extern "C" fn(
            *mut sys::fitsfile,
            *const c_char,
            *mut c_char,
            *mut c_char,
            *mut c_int,
        ) -> c_int,
    ) -> Result<Option<String>> {
        let k = c_str(key, &self.file)?;
        // FLEN_VALUE is 71: a value fits with its NUL.
        let mut buf = [0 as c_char; 72];
        let mut status = 0;
        // SAFETY: open handle, C string, a buffer of FLEN_VALUE + 1 bytes; no comment.
        unsafe {
            read(
                self.ptr,
                k.as_ptr(),
                buf.as_mut_ptr(),
                ptr::null_mut(),
                &mut status,
            )
        };
        if status == KEY_NO_EXIST {
            drain_messages();
            return Ok(None);
        }
        self.check(status, &format!("read keyword {key}"))?;
        // SAFETY: cfitsio NUL-terminates the value within the buffer.
        let v = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        Ok(Some(v.to_string_lossy().into_owned()))
    }

    /// The number (1-based) of the table column named `name`.
    pub(crate) fn column(&mut self, name: &str) -> Result<c_int> {
        let n = c_str(name, &self.file)?;
        let mut col: c_int = 0;
        let mut status = 0;
        // SAFETY: open handle; cfitsio only reads the template (the pointer is *mut in
        // the binding but the string is not modified); out-pointer to a local.
        unsafe {
            sys::ffgcno(
                self.ptr,
                sys::CASEINSEN as c_int,
                n.as_ptr() as *mut std::ffi::c_char,
                &mut col,
                &mut status,
            )
        };
        self.check(status, &format!("find column {name}"))?;
        Ok(col)
    }

    /// Write `bytes` as the variable-length byte array of `row` (1-based) in column `col`
    /// (cfitsio `ffpclb`: appended to the heap, descriptor set).
    pub(crate) fn write_column_bytes(
        &mut self,
        col: c_int,
        row: usize,
        bytes: &[u8],
    ) -> Result<()> {
        let mut status = 0;
        // SAFETY: open handle; cfitsio reads bytes.len() bytes and does not write through
        // the pointer (the binding's *mut notwithstanding).
        unsafe {
            sys::ffpclb(
                self.ptr,
                col,
                row as sys::LONGLONG,
                1,
                bytes.len() as sys::LONGLONG,
                bytes.as_ptr() as *mut u8,
                &mut status,
            )
        };
        self.check(status, "write a compressed tile")
    }

    /// Write all pixels of the current image from `data` (cfitsio type `datatype`).
    ///
    /// # Safety
    /// `T` must be the Rust type of cfitsio's `datatype`.
    pub(crate) unsafe fn write_pixels<T>(&mut self, datatype: c_int, data: &[T]) -> Result<()> {
        let mut status = 0;
        // SAFETY: data has data.len() elements of the type datatype names (caller's
        // promise); cfitsio does not write through the array pointer.
        unsafe {
            sys::ffppr(
                self.ptr,
                datatype,
                1,
                data.len() as sys::LONGLONG,
                data.as_ptr() as *mut c_void,
                &mut status,
            )
        };
        self.check(status, "write pixels")
    }
}

/// `n` bytes of `f` from byte `at`, read directly; `None` when they cannot be.
fn read_at(f: &mut std::fs::File, at: u64, n: usize) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(at)).ok()?;
    let mut b = vec![0u8; n];
    f.read_exact(&mut b).ok()?;
    Some(b)
}

/// The compression cfitsio takes a file for from its first two bytes (`file_is_compressed`,
/// `mem_compress_open`), if any. cfitsio inflates such a file whole into memory before it
/// parses a header, first allocating the size the file declares (up to 4 GiB: a gzip
/// file's last four bytes, a zip file's bytes 22–25), then as much as the stream inflates
/// to; none of that passes the read limit (finding 22). No FITS file starts with these
/// bytes (it starts with `SIMPLE` or `XTENSION`). `first` is padded with NULs past the
/// file's end, and no magic ends in one.
fn whole_file_compression(first: &[u8]) -> Option<&'static str> {
    match first.get(..2)? {
        [0x1f, 0x8b] => Some("gzip"),
        b"PK" => Some("zip"),
        [0x1f, 0x1e] => Some("pack"),
        [0x1f, 0x9d] => Some("compress (LZW)"),
        [0x1f, 0xa0] => Some("LZH"),
        b"BZ" => Some("bzip2"),
        _ => None,
    }
}

/// The bytes of the header that starts at byte `start` of a file of `len` bytes, read with
/// `read(at, n)`: the 80-byte cards of its blocks up to the one with its `END` card
/// (cfitsio parses a header cut short too), at most 1000 blocks (36 000 cards). A card the
/// file ends inside is padded with NULs, as cfitsio reads it (its bytes, then zeros: a
/// value there may run to the end of the file, finding 19). Empty when nothing can be
/// read.
fn header_blocks(
    len: u64,
    start: u64,
    mut read: impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Vec<u8> {
    const BLOCK: u64 = 2880;
    let mut head: Vec<u8> = Vec::new();
    for b in 0..1000u64 {
        let at = start + b * BLOCK;
        let n = len.saturating_sub(at).min(BLOCK) as usize;
        if n == 0 {
            break;
        }
        let Some(block) = read(at, n) else {
            break;
        };
        let ended = block
            .chunks_exact(80)
            .any(|c| c.starts_with(b"END") && c[3..].iter().all(|&x| x == b' '));
        head.extend_from_slice(&block[..n]);
        head.resize(head.len().div_ceil(80) * 80, 0);
        if ended || n < BLOCK as usize {
            break;
        }
    }
    head
}

/// A card's keyword name and value field as cfitsio reads them (`ffgknm`, `ffpsvc`), the
/// card taken as a C string (up to a NUL). The name: after `HIERARCH `, what precedes the
/// `=`, blanks trimmed; otherwise the characters before the first blank, `=` or NUL (so
/// `ZTILE2=0` names ZTILE2). The value field: after `= ` in columns 9–10 or, failing that,
/// after the first `=` anywhere on the card; none for COMMENT, HISTORY, END, CONTINUE and
/// blank names, or without an `=`.
fn cfitsio_card(card: &[u8]) -> (String, Option<&[u8]>) {
    let card = &card[..card.iter().position(|&b| b == 0).unwrap_or(card.len())];
    let eq = card.iter().position(|&b| b == b'=');
    if let Some(rest) = card.strip_prefix(b"HIERARCH ") {
        let Some(eq) = eq else {
            return ("HIERARCH".to_string(), None);
        };
        let name = String::from_utf8_lossy(&rest[..eq - 9]).trim().to_string();
        return (name, Some(&card[eq + 1..]));
    }
    let end = card
        .iter()
        .position(|&b| b == b' ' || b == b'=')
        .unwrap_or(card.len());
    let name = String::from_utf8_lossy(&card[..end]).into_owned();
    let head = &card[..card.len().min(8)];
    let valueless = card.len() < 9
        || [
            &b"COMMENT "[..],
            b"HISTORY ",
            b"END     ",
            b"CONTINUE",
            b"        ",
        ]
        .contains(&head);
    let value = if valueless {
        None
    } else if card.get(8..10) == Some(&b"= "[..]) {
        Some(&card[10..])
    } else {
        eq.map(|i| &card[i + 1..])
    };
    (name, value)
}

/// The sizes of cfitsio's value and comment buffers (`FLEN_VALUE`, `FLEN_COMMENT`):
/// `ffpsvc` copies a card's value and comment into buffers of these many bytes wherever
/// cfitsio reads a keyword.
const FLEN_VALUE: usize = 71;
const FLEN_COMMENT: usize = 73;

/// How many bytes cfitsio's `ffpsvc` writes into its value and its comment buffer for
/// `card` (what it copies and the NUL after it; 0 where it copies nothing), the card taken
/// as a C string. With the value indicator in columns 9–10 both fit their buffers; with an
/// `=` further left (`A='…'`, `A=1 …`) a string, a complex value, a token or the comment
/// after the value may run to the card's end, and `ffpsvc` does not bound its copies
/// (finding 19: stack-buffer overflows).
fn cfitsio_copies(card: &[u8]) -> (usize, usize) {
    let card = &card[..card.iter().position(|&b| b == 0).unwrap_or(card.len())];
    let n = card.len();
    let Some(field) = cfitsio_card(card).1 else {
        // No value: the comment is the card from column 9.
        return (0, if n > 8 { n - 8 + 1 } else { 0 });
    };
    let mut ii = n - field.len();
    ii += card[ii..].iter().take_while(|&&b| b == b' ').count();
    if ii == n {
        return (0, 0); // no value, and no comment
    }
    let value = match card[ii] {
        b'/' => {
            ii += 1;
            0
        }
        b'\'' => {
            // ffpsvc's copy: value[jj] = card[ii] on, a doubled quote copied as two, up to
            // the closing quote (then a NUL after it) or the card's end (then a quote and a
            // NUL at index 69 at most, after what the loop wrote).
            let (mut jj, mut top) = (1, 0);
            ii += 1;
            let mut closed = None;
            while ii < n {
                if card[ii] == b'\'' {
                    if card.get(ii + 1) == Some(&b'\'') {
                        top = top.max(jj);
                        ii += 1;
                        jj += 1;
                    } else {
                        closed = Some(top.max(jj + 1) + 1);
                        ii += 1;
                        break;
                    }
                }
                top = top.max(jj);
                ii += 1;
                jj += 1;
            }
            closed.unwrap_or(top.max(jj.min(69) + 1) + 1)
        }
        b'(' => match card[ii..].iter().position(|&b| b == b')') {
            Some(close) => {
                ii += close + 1;
                close + 2
            }
            None => return (0, 0), // refused before any copy
        },
        _ => {
            let token = card[ii..]
                .iter()
                .position(|&b| b == b' ' || b == b'/')
                .unwrap_or(n - ii);
            ii += token;
            token + 1
        }
    };
    ii += card[ii..].iter().take_while(|&&b| b == b' ').count();
    if ii >= 80 {
        return (value, 0);
    }
    if card.get(ii) == Some(&b'/') {
        ii += 1;
        if card.get(ii) == Some(&b' ') {
            ii += 1;
        }
    }
    (value, n - ii + 1)
}

/// Whether cfitsio reads keyword `name` (as [`cfitsio_card`] names it; any case) as an
/// integer somewhere as it opens an HDU or decodes tiles, or the crate does through it: the
/// structural keywords of images and tables, and the integer keywords of tile compression
/// (`ZPCOUNT` and `ZGCOUNT` become `PCOUNT` and `GCOUNT` in the image header cfitsio
/// makes). Other keywords, which cfitsio reads only as the caller asks, keep any value.
fn cfitsio_reads_as_integer(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    matches!(
        name.as_str(),
        "BITPIX"
            | "PCOUNT"
            | "GCOUNT"
            | "TFIELDS"
            | "THEAP"
            | "BLANK"
            | "ZBITPIX"
            | "ZBLANK"
            | "ZDITHER0"
            | "ZPCOUNT"
            | "ZGCOUNT"
    ) || ["NAXIS", "TNULL", "TBCOL", "ZNAXIS", "ZTILE", "ZVAL"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The value of a number or logical as cfitsio's `ffpsvc` takes it from a value field
/// (as [`cfitsio_card`] finds it): after leading blanks (spaces only), the bytes up to
/// the next blank or `/`. So `"  \r  1"` is `"\r"`, which cfitsio fails to convert,
/// leaving 0 where it wanted a tile size (fuzzing finding 13).
fn value_token(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ').unwrap_or(v.len());
    let v = &v[start..];
    &v[..v
        .iter()
        .position(|&b| b == b' ' || b == b'/')
        .unwrap_or(v.len())]
}

/// A plain integer value: a [`value_token`] of digits only (at most 18).
fn plain_int_value(v: &[u8]) -> Option<u64> {
    let t = value_token(v);
    (!t.is_empty() && t.len() <= 18 && t.iter().all(u8::is_ascii_digit))
        .then(|| std::str::from_utf8(t).ok()?.parse().ok())
        .flatten()
}

/// Whether cfitsio takes a header whose first card is `card` for a table (ASCII or binary)
/// and so parses it with `ffainit`/`ffbinit` (`ffrhdu`): `XTENSION` in its first 8
/// characters (`ffrhdu` takes those as the name, so `XTENSIONS= …` is one too) and, as
/// [`cfitsio_card`] reads the value, quotes and leading blanks dropped, a table's name (so
/// `XTENSION ='BINTABLE'` is one). Errs towards "a table": a value that merely starts with a
/// table's name (cfitsio wants it whole) counts too, and so is checked.
fn cfitsio_reads_a_table(card: &[u8]) -> bool {
    if !card.starts_with(b"XTENSION") {
        return false;
    }
    let Some(value) = cfitsio_card(card).1 else {
        return false;
    };
    let value = String::from_utf8_lossy(value);
    let name = value.trim_start().trim_start_matches('\'').trim_start();
    ["TABLE", "BINTABLE", "A3DTABLE", "3DTABLE"]
        .iter()
        .any(|t| name.starts_with(t))
}

/// Check the header `head` (of HDU `hdu`, 1-based, of `file`) before cfitsio parses it: in
/// any header, that no card's value or comment would overflow cfitsio's buffers as it
/// parses it ([`cfitsio_copies`]); for a table (as [`cfitsio_reads_a_table`] decides),
/// what cfitsio would otherwise trust:
///
/// - the mandatory cards the standard puts first, which cfitsio reads by position
///   (`BITPIX = 8`, `NAXIS = 2`, `NAXIS1`, `NAXIS2`, `PCOUNT`, `GCOUNT = 1`, `TFIELDS`
///   ≤ 999; plain integers, printable ASCII). cfitsio's own check of some of them
///   (`ffgttb`) compares where it means to assign, so on a bad value it goes on with an
///   unset `TFIELDS` and allocates its column descriptors from it (found by the
///   `psf_file` fuzz target: requests of 10¹⁴ descriptors);
/// - for a tile-compressed image (`ZIMAGE = T`), `ZNAXIS` and every `ZNAXISn` and
///   `ZTILEn` (plain integers; axes and tiles ≥ 1 pixel: `ZTILE1` defaults to `ZNAXIS1`)
///   and, with RICE, `ZVAL1` and `ZVAL2` (≥ 1):
///   cfitsio divides by the tile size and the block size when it opens the HDU (zeros
///   were divisions by zero, SIGFPE, found the same way).
///
/// A header of less than one card passes (cfitsio reports it).
fn check_table_header(file: &Source, hdu: c_int, head: &[u8]) -> Result<()> {
    if head.len() < 80 {
        return Ok(());
    }
    let cards: Vec<&[u8]> = head.chunks_exact(80).collect();
    let blank = [b' '; 80];
    let card = |i: usize| cards.get(i).copied().unwrap_or(&blank);
    let shown = printable;
    let bad = |reason: String| Error::Fits {
        file: file.clone(),
        reason: format!("HDU {hdu}: {reason}"),
    };
    // Any header, one pass over its cards (each parsed once, as cfitsio parses it):
    for (i, c) in cards.iter().enumerate() {
        let (value, comment) = cfitsio_copies(c);
        // no value or comment cfitsio would copy past its buffers (finding 19);
        if value > FLEN_VALUE || comment > FLEN_COMMENT {
            return Err(bad(format!(
                "card {} has a value or comment longer than FITS allows (70 and 72 \
                 characters; its value indicator is left of column 9): '{}'",
                i + 1,
                shown(c)
            )));
        }
        // no keyword cfitsio reads as an integer with a value of 29 characters or more
        // (finding 21: where such a value does not convert, cfitsio's message about it
        // overflows its 81-byte buffer, `ffc2j`).
        if value > 29 && cfitsio_reads_as_integer(&cfitsio_card(c).0) {
            return Err(bad(format!(
                "card {} has a value longer than an integer may be (28 characters): '{}'",
                i + 1,
                shown(c)
            )));
        }
    }
    if !cfitsio_reads_a_table(card(0)) {
        return Ok(());
    }
    // The standard's mandatory cards of a table, in order, with their ranges.
    for (i, key, range, what) in [
        (1, "BITPIX", 8..=8, "8"),
        (2, "NAXIS", 2..=2, "2"),
        (3, "NAXIS1", 0..=u64::MAX, "≥ 0"),
        (4, "NAXIS2", 0..=u64::MAX, "≥ 0"),
        (5, "PCOUNT", 0..=u64::MAX, "≥ 0"),
        (6, "GCOUNT", 1..=1, "1"),
        (7, "TFIELDS", 0..=999, "from 0 to 999"),
    ] {
        let c = card(i);
        let ok = &c[..10] == format!("{key:<8}= ").as_bytes()
            && c.iter().all(|&b| (b' '..=b'~').contains(&b))
            && plain_int_value(&c[10..]).is_some_and(|v| range.contains(&v));
        if !ok {
            return Err(bad(format!(
                "card {} of a table header must be {key} (an integer {what}), not '{}'",
                i + 1,
                shown(c)
            )));
        }
    }
    // A tile-compressed image's axes and tiles (checked in any table: a duplicate
    // ZIMAGE card could make it one for cfitsio).
    // ZNAXIS, and every ZNAXISn and ZTILEn card (all of them: cfitsio may find a later
    // duplicate first); with RICE, every ZVAL1 and ZVAL2 (block size and bytes a pixel,
    // which cfitsio divides by as it opens the HDU).
    let rice = cards.iter().any(|c| {
        let (key, value) = cfitsio_card(c);
        key == "ZCMPTYPE"
            && value.is_some_and(|v| {
                String::from_utf8_lossy(v)
                    .to_ascii_uppercase()
                    .contains("RICE")
            })
    });
    for c in &cards {
        // Keys as cfitsio finds them by name (`ffgknm`): `ZTILE2=0` and `HIERARCH ZTILE2 = 0`
        // are ZTILE2 to it.
        let (key, value) = cfitsio_card(c);
        let key = key.to_ascii_uppercase();
        let (min, max) = if rice && (key == "ZVAL1" || key == "ZVAL2") {
            (1, 1 << 20)
        } else if key == "ZNAXIS" {
            (0, 999)
        } else if let Some(n) = key.strip_prefix("ZNAXIS") {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            // ≥ 1: without ZTILE1, cfitsio takes ZNAXIS1 for the tile width and divides by
            // it (finding 16).
            (1, u64::MAX)
        } else if let Some(n) = key.strip_prefix("ZTILE") {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            (1, u64::MAX)
        } else {
            continue;
        };
        if !value
            .and_then(plain_int_value)
            .is_some_and(|v| (min..=max).contains(&v))
        {
            return Err(bad(format!(
                "{key} must be an integer from {min}{}, not '{}'",
                if max == u64::MAX {
                    String::new()
                } else {
                    format!(" to {max}")
                },
                shown(c)
            )));
        }
    }
    Ok(())
}

impl Drop for Fits {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            let mut status = 0;
            // SAFETY: an open handle not yet closed.
            unsafe { sys::ffclos(self.ptr, &mut status) };
            if status != 0 {
                drain_messages();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("data")
            .join(name)
    }

    /// cfitsio's own `ffcnvthdr2str`, for comparison.
    fn cfitsio_converted(f: &mut Fits) -> String {
        let mut status = 0;
        let mut out: *mut c_char = ptr::null_mut();
        let mut nkeys: c_int = 0;
        unsafe {
            sys::ffcnvthdr2str(
                f.ptr,
                0,
                ptr::null_mut(),
                0,
                &mut out,
                &mut nkeys,
                &mut status,
            );
        }
        assert_eq!(status, 0);
        let s = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        unsafe { sys::fffree(out as *mut c_void, &mut status) };
        s
    }

    #[test]
    fn header_conversion_equals_cfitsio_ffcnvthdr2str() {
        for name in ["rice_int16_64x48.fits", "aia_171_level1_128px.fits"] {
            let mut f = Fits::open_readonly(&data(name)).unwrap();
            let info = f.find_image().unwrap().unwrap();
            assert_eq!(info.compressed, name.starts_with("rice"));
            let ours = f.header_records().unwrap();
            assert_eq!(ours, cfitsio_converted(&mut f), "{name}");
            assert!(ours.contains("BITPIX  ="));
            if info.compressed {
                assert!(!ours.contains("ZIMAGE"));
            }
        }
    }

    /// cfitsio's `ffpsvc` on `card` (a NUL appended) into `value` and `comm`, which must hold
    /// more than a card (81 bytes); its status.
    fn cfitsio_psvc(card: &[u8], value: &mut [c_char], comm: &mut [c_char]) -> c_int {
        assert!(card.len() <= 80 && value.len() > 80 && comm.len() > 80);
        let mut c = card.to_vec();
        c.push(0);
        let mut status = 0;
        // SAFETY: `c` is NUL-terminated; both outputs hold more than the card's bytes, all
        // ffpsvc can copy.
        unsafe {
            sys::ffpsvc(
                c.as_mut_ptr().cast(),
                value.as_mut_ptr(),
                comm.as_mut_ptr(),
                &mut status,
            )
        };
        drain_messages();
        status
    }

    /// `cfitsio_copies_record` accepts exactly the records cfitsio's own `ffprec` writes, on
    /// 4000 seeded records: standard and free-format names, lowercase, digits, `-`, `_`,
    /// embedded blanks, `=` before column 9, punctuation, control and non-ASCII bytes,
    /// a NUL, the commentary names in any case.
    #[test]
    fn records_are_copied_as_cfitsio_copies_them() {
        let names = [
            "NAXIS1", "date-obs", "LVL_NUM", "A B", "LVL^NUM", "A=1", "COMMENT", "comment",
            "HISTORY", "CONTINUE", "", "ZTILE2", "x.y", "HIERARCH", "T_OBS", "\u{7f}AB",
        ];
        let tails = ["= 1", " = 'x'", "=2", "", "  / c", "= 'a=b'", "x = 3"];
        let mut next = draws(0x5851_f42d_4c95_7f2du64);
        let mut f: *mut sys::fitsfile = ptr::null_mut();
        let mut status = 0;
        let name = CString::new("mem://").unwrap();
        // SAFETY: out-pointer to a local, C string; then an open handle.
        unsafe {
            sys::ffinit(&mut f, name.as_ptr(), &mut status);
            sys::ffphprll(f, 1, 8, 0, ptr::null_mut(), 0, 1, 1, &mut status);
        }
        assert_eq!(status, 0);
        let (mut yes, mut no) = (0, 0);
        for _ in 0..4000 {
            let mut card = names[next(names.len())].as_bytes().to_vec();
            if next(2) == 0 && card.len() < 8 {
                card.resize(8, b' ');
            }
            card.extend_from_slice(tails[next(tails.len())].as_bytes());
            card.resize(80, b' ');
            match next(10) {
                0 => card[next(8)] = 0,
                1 => card[next(8)] = [b'\t', 0xe9, b'~', b'a'][next(4)],
                _ => {}
            }
            let ours = cfitsio_copies_record(&card);
            let mut c = card.clone();
            c.push(0);
            let mut status = 0;
            // SAFETY: open handle; `c` is NUL-terminated.
            unsafe { sys::ffprec(f, c.as_ptr().cast(), &mut status) };
            drain_messages();
            assert_eq!(
                ours,
                status == 0,
                "{:?}: {status}",
                String::from_utf8_lossy(&card)
            );
            if ours {
                yes += 1;
            } else {
                no += 1;
            }
        }
        let mut s2 = 0;
        // SAFETY: open handle, closed once.
        unsafe { sys::ffclos(f, &mut s2) };
        assert!(yes > 500 && no > 500, "{yes} copied, {no} refused");
    }

    /// Seeded draws below `n` (xorshift64).
    fn draws(mut state: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        }
    }

    /// `cfitsio_copies` is the number of bytes cfitsio's own `ffpsvc` writes into its value
    /// and its comment buffer (measured in 256-byte buffers filled with a sentinel), on
    /// 4000 seeded cards: value indicators in columns 9–10 and left of them, `HIERARCH`,
    /// valueless keys, tokens, strings closed, unclosed and with doubled quotes, complex
    /// values with and without their `)`, comments after them, of every length to the
    /// card's end, some cut by a NUL. Both sides of FLEN_VALUE and FLEN_COMMENT occur.
    #[test]
    fn value_copies_are_sized_as_cfitsio_copies_them() {
        let heads = [
            "KEY     = ",
            "A=",
            "AB=",
            "A =",
            "LONGKEY=",
            "HIERARCH X=",
            "HIERARCH LONG.KEY = ",
            "COMMENT ",
            "CONTINUE",
            "",
        ];
        let mut next = draws(0x9e37_79b9_7f4a_7c15u64);
        let (mut over, mut under) = ([0; 2], [0; 2]);
        for _ in 0..4000 {
            let mut card = heads[next(heads.len())].as_bytes().to_vec();
            card.extend(std::iter::repeat_n(b' ', next(3)));
            let body = next(80);
            match next(4) {
                0 => card.push(b'\''),
                1 => card.push(b'('),
                _ => {}
            }
            // Half the cards are letters only: values that run to the card's end.
            let spread = if next(2) == 0 { 12 } else { 1000 };
            for _ in 0..body {
                card.push(match next(spread) {
                    0 => b'\'',
                    1 => b' ',
                    2 => b'/',
                    3 => b')',
                    _ => b'a' + next(26) as u8,
                });
            }
            card.truncate(80);
            card.resize(80, b' ');
            if next(8) == 0 {
                let at = next(80);
                card[at] = 0; // a C string ends there
            }
            let (value, comment) = cfitsio_copies(&card);
            let mut v = [0x7f as c_char; 256];
            let mut comm = [0x7f as c_char; 256];
            cfitsio_psvc(&card, &mut v, &mut comm);
            // ffpsvc first writes a NUL at value[0] and comm[0], whatever follows.
            let written = |b: &[c_char]| b.iter().rposition(|&b| b != 0x7f).map_or(0, |i| i + 1);
            let shown = String::from_utf8_lossy(&card);
            assert_eq!(value.max(1), written(&v), "value of {shown:?}");
            assert_eq!(comment.max(1), written(&comm), "comment of {shown:?}");
            for (i, (bytes, limit)) in [(value, FLEN_VALUE), (comment, FLEN_COMMENT)]
                .into_iter()
                .enumerate()
            {
                if bytes > limit {
                    over[i] += 1;
                } else if bytes > 1 {
                    under[i] += 1;
                }
            }
        }
        for i in 0..2 {
            assert!(
                over[i] > 100 && under[i] > 100,
                "{over:?} over, {under:?} within"
            );
        }
    }

    /// `cfitsio_card` names a card and finds its value as cfitsio's own `ffgknm` and
    /// `ffpsvc` do, and `plain_int_value` reads the integer cfitsio reads, on 4000 seeded
    /// cards built from keys, value indicators in and out of columns 9–10, `HIERARCH`,
    /// valueless keys, NUL bytes and control characters in values.
    #[test]
    fn cards_are_read_as_cfitsio_reads_them() {
        let keys = [
            "ZTILE2",
            "ZVAL1",
            "XTENSION",
            "NAXIS1",
            "COMMENT",
            "HISTORY",
            "END",
            "CONTINUE",
            "HIERARCH ZTILE2",
            "HIERARCH  A B",
            "",
            "Z",
            "ZTILE12345",
            "A=1",
        ];
        let seps = ["= ", "=", " = ", "  =  ", "", " ", "  "];
        let values = [
            "0",
            "16",
            " 12 / a comment",
            "-1",
            "1.5",
            "",
            "T",
            "7/x",
            "      \r     1",
            "\t16",
            "+5",
            "3\r",
        ];
        let mut next = draws(0x2545_f491_4f6c_dd1du64);
        for _ in 0..4000 {
            let key = keys[next(keys.len())];
            let mut card = key.as_bytes().to_vec();
            // Pad the name to column 8 most of the time, as the standard writes it.
            if next(3) > 0 && card.len() < 8 {
                card.resize(8, b' ');
            }
            card.extend_from_slice(seps[next(seps.len())].as_bytes());
            card.extend_from_slice(values[next(values.len())].as_bytes());
            card.resize(80, b' ');
            if next(8) == 0 {
                let at = next(80);
                card[at] = 0;
            }
            let (name, value) = cfitsio_card(&card);
            let mut c = card.clone();
            c.push(0);
            let (mut n, mut v, mut comm) =
                ([0 as c_char; 81], [0 as c_char; 81], [0 as c_char; 81]);
            let (mut len, mut status) = (0, 0);
            // SAFETY: `c` is NUL-terminated; `n` holds FLEN_KEYWORD.
            unsafe { sys::ffgknm(c.as_mut_ptr().cast(), n.as_mut_ptr(), &mut len, &mut status) };
            drain_messages();
            if status == 0 {
                status = cfitsio_psvc(&card, &mut v, &mut comm);
            }
            let shown = String::from_utf8_lossy(&card).into_owned();
            // SAFETY: cfitsio NUL-terminates its outputs.
            let theirs = |b: &[c_char]| {
                unsafe { std::ffi::CStr::from_ptr(b.as_ptr()) }
                    .to_string_lossy()
                    .into_owned()
            };
            if status != 0 {
                continue; // a value cfitsio refuses (an unterminated string): not compared
            }
            assert_eq!(name, theirs(&n), "name of {shown:?}");
            // cfitsio's value of a number or logical: the token up to a blank or `/`.
            let token = value.map_or(&[][..], value_token);
            assert_eq!(
                String::from_utf8_lossy(token),
                theirs(&v),
                "value of {shown:?}"
            );
            // What the table check takes for a plain integer is what cfitsio reads.
            if let Some(n) = value.and_then(plain_int_value) {
                assert_eq!(theirs(&v).parse::<u64>().ok(), Some(n), "{shown:?}");
            }
        }
    }
}
