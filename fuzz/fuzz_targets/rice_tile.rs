//! The RICE_1 tile decoder and validator (`fits/rice.rs`: `decode_tile`, `validate_tile`)
//! on arbitrary tile bytes and tile parameters (pixels per tile, pixels per block, bytes per
//! pixel), against cfitsio's own decoders (`fits_rdecomp_byte`, `_short`, `fits_rdecomp`,
//! linked from the bundled cfitsio) as the oracle: all accept and refuse the same tiles, and
//! the 16-bit decoders give the same values. A tile the validator accepts is decoded by
//! cfitsio from a buffer that ends exactly at an inaccessible page (cfitsio is C built
//! without the sanitizer: a read past the tile faults instead). Never a panic.
#![no_main]

use std::os::raw::c_int;

use aiaprep::internals::{decode_tile, validate_tile};
use libfuzzer_sys::fuzz_target;

extern "C" {
    // cfitsio ricecomp.c (declared in its internal fitsio2.h).
    fn fits_rdecomp_byte(
        c: *mut u8,
        clen: c_int,
        array: *mut u8,
        nx: c_int,
        nblock: c_int,
    ) -> c_int;
    fn fits_rdecomp_short(
        c: *mut u8,
        clen: c_int,
        array: *mut u16,
        nx: c_int,
        nblock: c_int,
    ) -> c_int;
    fn fits_rdecomp(c: *mut u8, clen: c_int, array: *mut u32, nx: c_int, nblock: c_int) -> c_int;
    // Clear cfitsio's message stack (its error messages accumulate otherwise).
    fn ffcmsg();
    fn mmap(addr: *mut u8, len: usize, prot: c_int, flags: c_int, fd: c_int, off: i64) -> *mut u8;
    fn mprotect(addr: *mut u8, len: usize, prot: c_int) -> c_int;
    fn munmap(addr: *mut u8, len: usize) -> c_int;
}

const PAGE: usize = 4096;

/// A copy of some bytes that ends exactly where an inaccessible page begins.
struct Guarded {
    base: *mut u8,
    len: usize,
    at: *mut u8,
}

impl Guarded {
    fn new(bytes: &[u8]) -> Guarded {
        let data_pages = bytes.len().div_ceil(PAGE).max(1);
        let len = (data_pages + 1) * PAGE;
        // SAFETY: anonymous private mapping (PROT_READ | PROT_WRITE, MAP_PRIVATE |
        // MAP_ANONYMOUS); the last page made inaccessible; the copy fits before it.
        unsafe {
            let base = mmap(std::ptr::null_mut(), len, 3, 0x22, -1, 0);
            assert!(!base.is_null() && base as isize != -1, "mmap failed");
            assert_eq!(mprotect(base.add(data_pages * PAGE), PAGE, 0), 0);
            let at = base.add(data_pages * PAGE - bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len());
            Guarded { base, len, at }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { munmap(self.base, self.len) };
    }
}

/// cfitsio's decoder for `bytepix` on `buf` (of which the first `len` bytes are the tile);
/// its status and the values as u32.
fn cfitsio(buf: *mut u8, len: usize, n: usize, nblock: usize, bytepix: usize) -> (c_int, Vec<u32>) {
    // SAFETY: `buf` points at the tile (followed by overrun room or a guard page);
    // the output arrays have `n` elements; nblock ≥ 1.
    unsafe {
        let (rc, v) = match bytepix {
            1 => {
                let mut a = vec![0u8; n];
                let rc = fits_rdecomp_byte(
                    buf,
                    len as c_int,
                    a.as_mut_ptr(),
                    n as c_int,
                    nblock as c_int,
                );
                (rc, a.into_iter().map(u32::from).collect())
            }
            2 => {
                let mut a = vec![0u16; n];
                let rc = fits_rdecomp_short(
                    buf,
                    len as c_int,
                    a.as_mut_ptr(),
                    n as c_int,
                    nblock as c_int,
                );
                (rc, a.into_iter().map(u32::from).collect())
            }
            _ => {
                let mut a = vec![0u32; n];
                let rc = fits_rdecomp(
                    buf,
                    len as c_int,
                    a.as_mut_ptr(),
                    n as c_int,
                    nblock as c_int,
                );
                (rc, a)
            }
        };
        ffcmsg();
        (rc, v)
    }
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 3 {
        return;
    }
    // Tile parameters from the first three bytes: 1..=4096 pixels; 1..=64 pixels per block
    // (JSOC: 32); bytes per pixel 2 (JSOC), 1 or 4 from the top bits. The rest is the tile.
    let n = 1 + (usize::from(u16::from_le_bytes([input[0], input[1]])) % 4096);
    let nblock = 1 + usize::from(input[2] % 64);
    let bytepix = [2, 2, 1, 4][usize::from(input[2] >> 6)];
    let tile = &input[3..];
    let valid = validate_tile(tile, nblock, n, bytepix);
    let mut ours = vec![0i16; n];
    if bytepix == 2 {
        let got = decode_tile(tile, nblock, &mut ours);
        assert_eq!(
            got.is_ok(),
            valid.is_ok(),
            "decode {got:?}, validate {valid:?}"
        );
    }
    if tile.len() < bytepix {
        // cfitsio reads the first pixel unconditionally; ours refuses.
        assert!(valid.is_err());
        return;
    }
    let (rc, theirs) = if valid.is_ok() {
        // Exactly the tile's bytes, then a page that faults: cfitsio must not read past them.
        let exact = Guarded::new(tile);
        cfitsio(exact.at, tile.len(), n, nblock, bytepix)
    } else {
        // cfitsio checks for overrun only after each block and reads ahead of that check:
        // give it room (0xFF ends its zero-run loops; one block reads at most 4 bytes a
        // pixel).
        let mut padded = tile.to_vec();
        padded.extend(std::iter::repeat_n(0xFFu8, 4 * nblock + 16));
        cfitsio(padded.as_mut_ptr(), tile.len(), n, nblock, bytepix)
    };
    assert_eq!(
        valid.is_ok(),
        rc == 0,
        "validate {valid:?}, cfitsio status {rc} (bytepix {bytepix})"
    );
    if bytepix == 2 && rc == 0 {
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(
                u32::from(*a as u16),
                *b,
                "pixel {i} of {n} (nblock {nblock})"
            );
        }
    }
});
