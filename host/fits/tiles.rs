//! The tiles of a tile-compressed image, checked before cfitsio decodes them.
//!
//! cfitsio trusts a tile's bytes in ways that cost the process (RELIABILITY.md, findings 2
//! and 14), so every image the crate leaves to cfitsio (see [`super::rice`] for the ones it
//! decodes itself) is first checked here, tile by tile, under cfitsio's own reading of the
//! compression keywords (`ZCMPTYPE` compared exactly, as cfitsio compares it):
//!
//! - **RICE_1** (`'RICE_1'`, or `'RICE_ONE'`, cfitsio's other name for it): its decoder reads
//!   past a tile whose code overruns; every tile must pass [`super::rice::validate_tile`]
//!   with the block and pixel sizes cfitsio will use.
//! - **GZIP_1, GZIP_2**: a tile that does not inflate, or inflates to a size cfitsio does
//!   not expect, makes cfitsio return without freeing the tile's compressed bytes — a leak
//!   of up to a tile's size per file read. Every tile must inflate to the size cfitsio
//!   writes for the image's `ZBITPIX` (1, 2, 4 bytes a pixel for 8, 16, 32 and −32; 4 or 8
//!   for −64, quantised or not).
//! - **`GZIP_COMPRESSED_DATA`**: a floating-point tile stored losslessly beside the other
//!   tiles (any `ZCMPTYPE`) leaks the same way when it inflates short; it must inflate to 4
//!   (−32) or 8 (−64) bytes a pixel.
//! - **NOCOMPRESS**: cfitsio has no decoder for it and leaks any tile it is asked for; a
//!   non-empty tile is refused.
//! - **HCOMPRESS_1, PLIO_1**: refused (finding 15). Their decoders take no length for the
//!   tile's bytes and trust the sizes the bytes state (`fits_hdecompress` writes the image
//!   size its stream declares into a buffer of the tile's size; `pl_l2pi` reads the line list
//!   for the length it declares), and HCOMPRESS leaks on a bad code; no check short of
//!   decoding could bound them. Neither algorithm is used for AIA data; such a file can be
//!   decompressed first (`funpack`).
//!
//! Whatever the algorithm, the tile columns cfitsio reads (`COMPRESSED_DATA`, and
//! `GZIP_COMPRESSED_DATA` where it would read one) must be what the tiled-image convention
//! prescribes, unscaled variable-length byte arrays (`1PB`, `1QB`; finding 17): cfitsio
//! reads a tile's bytes converted from the column's type and `TSCALn`/`TZEROn` (from an
//! `X` column, whose elements are bits, a tile's bytes run on into the next rows'), so for
//! any other column its decoder would get bytes other than the ones checked here.
//!
//! A tile whose `COMPRESSED_DATA` is empty is read from an `UNCOMPRESSED_DATA` column where
//! the table has one: cfitsio reads as many values as its descriptor states into a buffer
//! of the largest tile's pixels, so each such tile must hold exactly its own pixels
//! (finding 18, a heap overflow).
//!
//! BZIP2_1 is left to cfitsio (its public build has no bzip2 decoder: it refuses the tile
//! and frees what it allocated).
//!
//! Tiles are inflated by cfitsio's own `uncompress2mem_from_mem` — its bundled zlib, the
//! call it makes when it decodes — into a buffer one byte larger than the largest size
//! allowed, which it may not grow: a check accepts exactly the tiles cfitsio then decodes
//! without a leak, and a tile that would inflate further (a compression bomb) costs no more
//! than that buffer. Checking costs one more inflate of each tile, only on the cfitsio path;
//! the tiles are checked in parallel (BENCHMARKS.md: a 4096² float32 GZIP_2 file).

use std::ffi::{c_char, c_int, c_void};

use rayon::prelude::*;

use crate::error::{Error, Result};

use super::cfitsio::{Fits, TBYTE};

extern "C" {
    /// cfitsio (`zcompress.c`): inflate the gzip member at `inmemptr` into `*buffptr`
    /// (`*buffsize` bytes), growing it with `mem_realloc` when that is not null; the bytes
    /// written go to `*filesize` on success. Status 414 on any failure.
    fn uncompress2mem_from_mem(
        inmemptr: *mut c_char,
        inmemsize: usize,
        buffptr: *mut *mut c_char,
        buffsize: *mut usize,
        mem_realloc: Option<unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void>,
        filesize: *mut usize,
        status: *mut c_int,
    ) -> c_int;

    /// cfitsio (`zcompress.c`): gzip `inmemsize` bytes into `*buffptr` (as the GZIP_1 codec
    /// stores a tile); the tests' encoder.
    #[cfg(test)]
    fn compress2mem_from_mem(
        inmemptr: *mut c_char,
        inmemsize: usize,
        buffptr: *mut *mut c_char,
        buffsize: *mut usize,
        mem_realloc: Option<unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void>,
        filesize: *mut usize,
        status: *mut c_int,
    ) -> c_int;
}

/// How cfitsio decodes the tiles of an HDU (`ZCMPTYPE`, compared as cfitsio compares it).
#[derive(Clone, Copy, PartialEq)]
enum Codec {
    Rice,
    Gzip,
    /// Algorithms whose tiles are refused: why.
    Refused(&'static str),
    /// BZIP2_1 (left to cfitsio), or a name cfitsio refuses.
    Other,
}

impl Codec {
    fn from_name(name: &str) -> Codec {
        match name {
            "RICE_1" | "RICE_ONE" => Codec::Rice,
            "GZIP_1" | "GZIP_2" => Codec::Gzip,
            "NOCOMPRESS" => Codec::Refused("cfitsio has no decoder for them"),
            "HCOMPRESS_1" | "PLIO_1" => Codec::Refused(
                "cfitsio's decoder for them does not bound its reads and writes by the tile \
                 (decompress the file first, e.g. with funpack)",
            ),
            _ => Codec::Other,
        }
    }
}

/// Check every tile cfitsio would decode in the current HDU (a tile-compressed image whose
/// descriptors [`Fits::check_descriptors`] has checked). Errors are [`Error::Fits`] naming
/// the file, the algorithm and the tile (1-based row).
pub(crate) fn check_for_cfitsio(f: &mut Fits) -> Result<()> {
    let Some(layout) = Layout::read(f)? else {
        return Ok(());
    };
    let (heap_start, heap_len) = f.heap_range()?;
    let heap_len = usize::try_from(heap_len).map_err(|_| layout.bad("heap too large".into()))?;
    let heap = f.read_bytes(heap_start, heap_len)?;
    let checks = layout.tile_checks(f, &heap)?;
    // The first refused tile, in row order. The descriptors were read through cfitsio's
    // handle, one tile at a time; the tiles are checked in parallel (each check is
    // independent and as costly as cfitsio's own decode of the tile, which runs on one
    // thread).
    let refused = checks
        .par_iter()
        .filter_map(|c| layout.refusal(c).map(|why| (c.row, why)))
        .min_by_key(|(row, _)| *row);
    match refused {
        Some((_, why)) => Err(layout.bad(why)),
        None => Ok(()),
    }
}

/// A tile-compressed image as cfitsio will decode it: what [`Layout::read`] takes from the
/// compression keywords, under cfitsio's reading of them.
struct Layout {
    file: crate::error::Source,
    /// `ZCMPTYPE`, as written.
    name: String,
    codec: Codec,
    /// RICE_1: the block size and bytes a pixel cfitsio will use.
    rice: Option<(usize, usize)>,
    /// The bytes a pixel a GZIP_1/GZIP_2 tile may inflate to (for `ZBITPIX`).
    gzip_sizes: &'static [usize],
    /// The same for a tile in the `GZIP_COMPRESSED_DATA` column (none: cfitsio refuses the
    /// tile itself, and frees it).
    column_sizes: &'static [usize],
    /// Image and tile sizes in pixels (`ZNAXISn`, `ZTILEn`).
    nx: usize,
    ny: usize,
    tx: usize,
    ty: usize,
    /// Column numbers of `COMPRESSED_DATA` and of the column cfitsio reads a tile from
    /// when its `COMPRESSED_DATA` is empty: `UNCOMPRESSED_DATA` where the table has one,
    /// else `GZIP_COMPRESSED_DATA`.
    col: c_int,
    uncompressed_col: Option<c_int>,
    gzip_col: Option<c_int>,
}

/// One tile to check: its 1-based row, its pixels, its bytes and how.
struct TileCheck<'h> {
    row: i64,
    pixels: usize,
    bytes: &'h [u8],
    check: Check,
}

impl Layout {
    /// The layout of the current HDU, or `None` when there is no tile cfitsio would decode
    /// unchecked: not a compressed image, keywords cfitsio refuses the HDU for, or an
    /// algorithm left to cfitsio with neither an `UNCOMPRESSED_DATA` nor a
    /// `GZIP_COMPRESSED_DATA` column. Errors: sizes that are not positive, a RICE_1 block
    /// size that is not, a tile column that is not unscaled bytes.
    fn read(f: &mut Fits) -> Result<Option<Layout>> {
        let Some(name) = f.key_str("ZCMPTYPE")? else {
            return Ok(None);
        };
        let codec = Codec::from_name(&name);
        let file = f.file.clone();
        let bad = |reason: String| Error::Fits {
            file: file.clone(),
            reason,
        };
        let (Some(nx), Some(ny)) = (f.key_i64("ZNAXIS1")?, f.key_i64("ZNAXIS2")?) else {
            return Ok(None); // cfitsio refuses the HDU itself
        };
        // RICE_1: the block size and pixel size cfitsio will use (ZVAL1, and ZVAL2 or 4 —
        // its reading of the keywords, the swap of very old files included).
        let mut rice = None;
        if codec == Codec::Rice {
            let Some(mut nblock) = f.key_i64("ZVAL1")? else {
                return Ok(None); // cfitsio refuses the HDU itself
            };
            let old = f.key_str("ZNAME2")?.as_deref().map(str::trim) == Some("NOISEBIT");
            let mut bytepix = if old { None } else { f.key_i64("ZVAL2")? }.unwrap_or(4);
            if nblock < 16 && bytepix > 8 {
                std::mem::swap(&mut nblock, &mut bytepix);
            }
            if nblock <= 0 {
                return Err(bad(format!("RICE_1 block size {nblock}")));
            }
            rice = Some((nblock as usize, bytepix as usize));
        }
        let zbitpix = f.key_i64("ZBITPIX")?.unwrap_or(0);
        let tx = f.key_i64("ZTILE1")?.unwrap_or(nx);
        let ty = f.key_i64("ZTILE2")?.unwrap_or(1);
        let size = |v: i64| usize::try_from(v).ok().filter(|&v| v > 0);
        let (Some(nx), Some(ny), Some(tx), Some(ty)) = (size(nx), size(ny), size(tx), size(ty))
        else {
            return Err(bad(format!(
                "image {nx} x {ny} in tiles of {tx} x {ty} pixels"
            )));
        };
        let Ok(col) = f.column("COMPRESSED_DATA") else {
            return Ok(None);
        };
        // cfitsio reads a tile whose COMPRESSED_DATA is empty from UNCOMPRESSED_DATA when
        // the table has that column, else from GZIP_COMPRESSED_DATA.
        let uncompressed_col = f.column("UNCOMPRESSED_DATA").ok();
        let gzip_col = match uncompressed_col {
            Some(_) => None,
            None => f.column("GZIP_COMPRESSED_DATA").ok(),
        };
        if codec == Codec::Other && gzip_col.is_none() && uncompressed_col.is_none() {
            return Ok(None);
        }
        // cfitsio reads a tile's bytes with a conversion to bytes from the column's type
        // and scaling (an `X` column's elements are bits: a tile's bytes then run on into
        // the next rows'), so the bytes its decoder gets are the heap bytes checked here
        // only for the column the standard prescribes: unscaled bytes.
        for (c, what) in [
            (Some(col), "COMPRESSED_DATA"),
            (gzip_col, "GZIP_COMPRESSED_DATA"),
        ] {
            let Some(c) = c else { continue };
            let form = f.column_form(c)?;
            if form.typecode != -TBYTE || form.scale != 1.0 || form.zero != 0.0 {
                let tform = f.key_str(&format!("TFORM{c}"))?.unwrap_or_default();
                return Err(bad(format!(
                    "the {what} column (TFORM{c} = '{}', scale {}, offset {}) is not an \
                     unscaled variable-length byte array (1PB or 1QB), as tiled-image \
                     compression requires",
                    tform.trim(),
                    form.scale,
                    form.zero
                )));
            }
        }
        let (gzip_sizes, column_sizes): (&[usize], &[usize]) = match zbitpix {
            8 => (&[1], &[]),
            16 => (&[2], &[]),
            32 => (&[4], &[]),
            -32 => (&[4], &[4]),
            -64 => (&[4, 8], &[8]),
            _ => (&[], &[]),
        };
        Ok(Some(Layout {
            file,
            name,
            codec,
            rice,
            gzip_sizes,
            column_sizes,
            nx,
            ny,
            tx,
            ty,
            col,
            uncompressed_col,
            gzip_col,
        }))
    }

    fn bad(&self, reason: String) -> Error {
        Error::Fits {
            file: self.file.clone(),
            reason,
        }
    }

    /// The tiles cfitsio would decode, each with its bytes in `heap` (the table's heap) and
    /// its check; errors: a tile outside the heap, a tile of a refused algorithm, an
    /// `UNCOMPRESSED_DATA` tile of another size than the tile's.
    fn tile_checks<'h>(&self, f: &mut Fits, heap: &'h [u8]) -> Result<Vec<TileCheck<'h>>> {
        let tile_bytes = |row: i64, (len, off): (i64, i64)| {
            usize::try_from(off)
                .ok()
                .zip(usize::try_from(len).ok())
                .and_then(|(o, l)| heap.get(o..o.checked_add(l)?))
                .ok_or_else(|| self.bad(format!("{} tile {row} lies outside the heap", self.name)))
        };
        let (tiles_x, tiles_y) = (self.nx.div_ceil(self.tx), self.ny.div_ceil(self.ty));
        let (rows, _) = f.table_shape()?;
        let mut checks = Vec::new();
        for row in 1..=rows {
            // The tile's pixels: tiles run along x, then y (then planes of a cube).
            let k = usize::try_from(row - 1).unwrap_or(usize::MAX);
            let (i, j) = (k % tiles_x, (k / tiles_x) % tiles_y);
            let pixels = self.tx.min(self.nx - i * self.tx) * self.ty.min(self.ny - j * self.ty);
            let desc = f.descriptor(self.col, row)?;
            if let (0, Some(u)) = (desc.0, self.uncompressed_col) {
                // cfitsio reads the elements the descriptor states into its tile buffer,
                // which holds the largest tile's pixels (finding 18): the tile must hold its
                // own pixels (or nothing: cfitsio then refuses the tile).
                let (len, _) = f.descriptor(u, row)?;
                if len != 0 && usize::try_from(len).ok() != Some(pixels) {
                    return Err(self.bad(format!(
                        "UNCOMPRESSED_DATA tile {row} holds {len} values, not its {pixels} pixels"
                    )));
                }
                continue;
            }
            let (desc, check) = if desc.0 > 0 {
                let check = match (self.codec, self.rice) {
                    (Codec::Rice, Some((nblock, bytepix))) => Check::Rice { nblock, bytepix },
                    (Codec::Gzip, _) => Check::Gzip {
                        sizes: self.gzip_sizes,
                        column: false,
                    },
                    (Codec::Refused(why), _) => {
                        return Err(self.bad(format!(
                            "{} tile {row} holds {} bytes: {why}",
                            self.name, desc.0
                        )))
                    }
                    _ => continue,
                };
                (desc, check)
            } else if let Some(g) = self.gzip_col.filter(|_| !self.column_sizes.is_empty()) {
                let check = Check::Gzip {
                    sizes: self.column_sizes,
                    column: true,
                };
                (f.descriptor(g, row)?, check)
            } else {
                continue;
            };
            if desc.0 > 0 {
                checks.push(TileCheck {
                    row,
                    pixels,
                    bytes: tile_bytes(row, desc)?,
                    check,
                });
            }
        }
        Ok(checks)
    }

    /// Why cfitsio may not decode this tile, or `None` when it may.
    fn refusal(&self, c: &TileCheck) -> Option<String> {
        let row = c.row;
        match c.check {
            Check::Rice { nblock, bytepix } => {
                super::rice::validate_tile(c.bytes, nblock, c.pixels, bytepix)
                    .err()
                    .map(|e| format!("RICE_1 tile {row}: {e}"))
            }
            Check::Gzip { sizes, column } => check_gzip(c.bytes, c.pixels, sizes).err().map(|e| {
                let what = if column {
                    "GZIP_COMPRESSED_DATA"
                } else {
                    &self.name
                };
                format!("{what} tile {row} {e}")
            }),
        }
    }
}

/// What a tile is checked for.
#[derive(Clone, Copy)]
enum Check {
    /// RICE_1 code that ends within the tile, with cfitsio's block and pixel sizes.
    Rice { nblock: usize, bytepix: usize },
    /// A gzip stream inflating to one of `sizes` bytes a pixel (`column`: the tile is in
    /// the `GZIP_COMPRESSED_DATA` column).
    Gzip {
        sizes: &'static [usize],
        column: bool,
    },
}

/// `Ok` when cfitsio inflates `tile` (a gzip member, as its GZIP codecs store a tile) to
/// `n × b` bytes for one of the `per_pixel` byte counts `b`; else why not.
fn check_gzip(tile: &[u8], n: usize, per_pixel: &[usize]) -> std::result::Result<(), String> {
    let max = per_pixel.iter().max().map_or(0, |b| n.saturating_mul(*b));
    let mut buf = vec![0u8; max.saturating_add(1)];
    let Ok(got) = into_fixed(uncompress2mem_from_mem, tile, &mut buf) else {
        return Err(format!(
            "is not a gzip stream that inflates to at most {max} bytes ({n} pixels)"
        ));
    };
    if !per_pixel.iter().any(|b| n.checked_mul(*b) == Some(got)) {
        return Err(format!(
            "inflates to {got} bytes, not {per_pixel:?} bytes a pixel × {n} pixels"
        ));
    }
    Ok(())
}

/// The signature of cfitsio's memory-to-memory gzip codecs (`zcompress.c`).
type MemCodec = unsafe extern "C" fn(
    *mut c_char,
    usize,
    *mut *mut c_char,
    *mut usize,
    Option<unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void>,
    *mut usize,
    *mut c_int,
) -> c_int;

/// Run `codec` on `input` into `out`, which it may not grow: the bytes written, or
/// cfitsio's status (414 when `out` is too small or the input is not what the codec takes).
fn into_fixed(codec: MemCodec, input: &[u8], out: &mut [u8]) -> std::result::Result<usize, c_int> {
    let (mut ptr, mut cap) = (out.as_mut_ptr().cast::<c_char>(), out.len());
    let (mut len, mut status) = (0usize, 0 as c_int);
    // SAFETY: cfitsio reads `input.len()` bytes of `input` (its pointer is not const in the
    // C signature, but zlib only reads input) and writes at most `cap` bytes to `out`:
    // with no realloc function it never grows, moves or frees the buffer (it fails instead).
    unsafe {
        codec(
            input.as_ptr().cast_mut().cast::<c_char>(),
            input.len(),
            &mut ptr,
            &mut cap,
            None,
            &mut len,
            &mut status,
        )
    };
    if status == 0 {
        Ok(len)
    } else {
        Err(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data` gzipped as cfitsio's GZIP_1 codec stores a tile.
    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; data.len() + 1024];
        let len = into_fixed(compress2mem_from_mem, data, &mut out).expect("gzip");
        out.truncate(len);
        out
    }

    /// A gzip tile passes only when cfitsio inflates it to exactly the bytes a pixel
    /// allowed × its pixels: not one cut short, not one with a changed trailer, not a
    /// stream longer than the largest allowed size (a compression bomb is refused at the
    /// cost of that size). Bytes after the stream are ignored, as cfitsio ignores them.
    #[test]
    fn gzip_tiles_are_held_to_the_size_cfitsio_expects() {
        let n = 300;
        let raw: Vec<u8> = (0..4 * n as u64)
            .map(|i| (crate::synth::splitmix(77 + i) % 7) as u8)
            .collect();
        let z = gzip(&raw);
        assert_eq!(check_gzip(&z, n, &[4]), Ok(()));
        assert_eq!(check_gzip(&z, n, &[4, 8]), Ok(()));
        assert_eq!(check_gzip(&z, n / 2, &[8]), Ok(()));
        let err = |r: std::result::Result<(), String>| r.expect_err("refused");
        assert!(err(check_gzip(&z, n, &[2])).contains("at most 600 bytes"));
        assert!(err(check_gzip(&z, n, &[8])).contains("inflates to 1200 bytes"));
        assert!(err(check_gzip(&z, n + 1, &[4])).contains("inflates to 1200 bytes"));
        assert!(err(check_gzip(&z, n, &[])).contains("at most 0 bytes"));
        for cut in 0..z.len() {
            assert!(check_gzip(&z[..cut], n, &[4]).is_err(), "cut at {cut}");
        }
        for k in z.len() - 8..z.len() {
            let mut b = z.clone();
            b[k] ^= 1;
            assert!(check_gzip(&b, n, &[4]).is_err(), "trailer byte {k}");
        }
        let bomb = gzip(&vec![0u8; 16 << 20]);
        assert!(bomb.len() * 100 < 16 << 20, "{} bytes", bomb.len());
        assert!(err(check_gzip(&bomb, n, &[4])).contains("at most 1200 bytes"));
        let mut tail = z.clone();
        tail.extend_from_slice(b"not gzip");
        assert_eq!(check_gzip(&tail, n, &[4]), Ok(()));
    }
}
