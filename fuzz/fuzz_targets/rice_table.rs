//! The tile-compressed HDU reader (`fits/rice.rs` table layout and tile decoding, cfitsio's
//! HDU parsing around it) on structured input: a valid RICE_1 int16 file is built from the
//! fuzzer's image size, tile size, block size, BLANK, scaling, descriptor width and pixel
//! values (tiles coded with the crate's encoder), then corrupted as the fuzzer says
//! (descriptors, heap bytes, THEAP, PCOUNT). The crate's parallel decoder (`fits::read`)
//! must agree with cfitsio's own (`fits::read_image_f64`, which always decodes with
//! cfitsio): the same pixels, bit for bit, whenever both read the file, and the intact file
//! must read as written. Never a panic.
#![no_main]

mod scratch;

use aiaprep::fits::{self, ReadLimits};
use aiaprep::internals::encode_tile;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Spec {
    nx: u8,
    ny: u8,
    tile_x: u8,
    tile_y: u8,
    nblock: u8,
    blank: Option<i16>,
    scaling: u8,
    wide: bool,
    theap_pad: Option<u8>,
    pixels: Vec<i16>,
    /// (tile, new length, new offset) overrides of descriptors.
    descriptors: Vec<(u8, i32, i32)>,
    /// (heap index, xor) byte corruptions.
    flips: Vec<(u16, u8)>,
    /// Heap bytes cut from the end.
    cut: u8,
    pcount_delta: i8,
}

fn card(out: &mut Vec<u8>, text: String) {
    let mut rec = text.into_bytes();
    rec.resize(80, b' ');
    out.extend_from_slice(&rec[..80]);
}

fn end_block(out: &mut Vec<u8>, fill: u8) {
    while out.len() % 2880 != 0 {
        out.push(fill);
    }
}

fn kv(out: &mut Vec<u8>, key: &str, value: impl std::fmt::Display) {
    card(out, format!("{key:<8}= {value:>20}"));
}

fuzz_target!(|s: Spec| {
    let nx = 1 + usize::from(s.nx % 80);
    let ny = 1 + usize::from(s.ny % 60);
    let tx = 1 + usize::from(s.tile_x) % nx;
    let ty = 1 + usize::from(s.tile_y) % ny;
    let nblock = [32usize, 16, 8, 1, 7][usize::from(s.nblock % 5)];
    let (bscale, bzero) =
        [(1.0, 0.0), (1.0, 32768.0), (0.25, -50.0), (2.0, 0.5)][usize::from(s.scaling % 4)];
    let image: Vec<i16> = (0..nx * ny)
        .map(|i| {
            if s.pixels.is_empty() {
                (i as i16).wrapping_mul(37)
            } else {
                s.pixels[i % s.pixels.len()]
            }
        })
        .collect();
    // Tiles, row-major over the tile grid, each coded with the crate's encoder.
    let (tiles_x, tiles_y) = (nx.div_ceil(tx), ny.div_ceil(ty));
    let mut heap = Vec::new();
    let mut desc: Vec<(i64, i64)> = Vec::new();
    for j in 0..tiles_y {
        for i in 0..tiles_x {
            let (w, h) = (tx.min(nx - i * tx), ty.min(ny - j * ty));
            let mut vals = Vec::with_capacity(w * h);
            for r in 0..h {
                let row = (j * ty + r) * nx + i * tx;
                vals.extend_from_slice(&image[row..row + w]);
            }
            let start = heap.len();
            encode_tile(&vals, nblock, &mut heap);
            desc.push(((heap.len() - start) as i64, start as i64));
        }
    }
    let intact =
        s.descriptors.is_empty() && s.flips.is_empty() && s.cut == 0 && s.pcount_delta == 0;
    for &(t, len, off) in &s.descriptors {
        let k = usize::from(t) % desc.len();
        desc[k] = (i64::from(len), i64::from(off));
    }
    for &(at, x) in &s.flips {
        if !heap.is_empty() {
            let k = usize::from(at) % heap.len();
            heap[k] ^= x;
        }
    }
    let cut = usize::from(s.cut).min(heap.len());
    heap.truncate(heap.len() - cut);
    let max_len = desc
        .iter()
        .map(|d| d.0)
        .max()
        .unwrap_or(0)
        .clamp(0, 1 << 30);
    let row_bytes = if s.wide { 16 } else { 8 };
    let gap = s.theap_pad.map(usize::from).unwrap_or(0);
    let table_len = row_bytes * desc.len();
    let pcount = (gap + heap.len()) as i64 + i64::from(s.pcount_delta);

    let mut f = Vec::new();
    card(&mut f, "SIMPLE  =                    T".into());
    kv(&mut f, "BITPIX", 16);
    kv(&mut f, "NAXIS", 0);
    card(&mut f, "EXTEND  =                    T".into());
    card(&mut f, "END".into());
    end_block(&mut f, b' ');
    card(&mut f, "XTENSION= 'BINTABLE'".into());
    kv(&mut f, "BITPIX", 8);
    kv(&mut f, "NAXIS", 2);
    kv(&mut f, "NAXIS1", row_bytes);
    kv(&mut f, "NAXIS2", desc.len());
    kv(&mut f, "PCOUNT", pcount);
    kv(&mut f, "GCOUNT", 1);
    kv(&mut f, "TFIELDS", 1);
    card(&mut f, "TTYPE1  = 'COMPRESSED_DATA'".into());
    let form = if s.wide { "1QB" } else { "1PB" };
    card(&mut f, format!("TFORM1  = '{form}({max_len})'"));
    if s.theap_pad.is_some() {
        kv(&mut f, "THEAP", table_len + gap);
    }
    card(&mut f, "ZIMAGE  =                    T".into());
    kv(&mut f, "ZBITPIX", 16);
    kv(&mut f, "ZNAXIS", 2);
    kv(&mut f, "ZNAXIS1", nx);
    kv(&mut f, "ZNAXIS2", ny);
    kv(&mut f, "ZTILE1", tx);
    kv(&mut f, "ZTILE2", ty);
    card(&mut f, "ZCMPTYPE= 'RICE_1'".into());
    card(&mut f, "ZNAME1  = 'BLOCKSIZE'".into());
    kv(&mut f, "ZVAL1", nblock);
    card(&mut f, "ZNAME2  = 'BYTEPIX'".into());
    kv(&mut f, "ZVAL2", 2);
    if let Some(b) = s.blank {
        kv(&mut f, "BLANK", b);
    }
    if (bscale, bzero) != (1.0, 0.0) {
        kv(&mut f, "BSCALE", format!("{bscale:?}"));
        kv(&mut f, "BZERO", format!("{bzero:?}"));
    }
    card(&mut f, "END".into());
    end_block(&mut f, b' ');
    for &(len, off) in &desc {
        if s.wide {
            f.extend_from_slice(&len.to_be_bytes());
            f.extend_from_slice(&off.to_be_bytes());
        } else {
            f.extend_from_slice(&(len as i32).to_be_bytes());
            f.extend_from_slice(&(off as i32).to_be_bytes());
        }
    }
    f.extend(std::iter::repeat_n(0u8, gap));
    f.extend_from_slice(&heap);
    // cfitsio (and so fitsverify) take the data unit to end at THEAP + PCOUNT, counting a
    // gap twice where the standard counts it once (PCOUNT includes it): room for both.
    f.extend(std::iter::repeat_n(0u8, gap));
    end_block(&mut f, 0);

    let path = scratch::scratch("rice_table");
    if std::fs::write(&path, &f).is_err() {
        return;
    }
    let ours = fits::read_limited(
        &path,
        &ReadLimits {
            max_bytes: 64 << 20,
        },
    );
    let theirs = fits::read_image_f64(&path);
    if intact {
        let m = ours.as_ref().expect("an intact file reads");
        let (d, _) = theirs.as_ref().expect("cfitsio reads an intact file");
        assert_eq!(m.shape_xy(), (nx, ny));
        for (k, &v) in image.iter().enumerate() {
            let want = if Some(v) == s.blank {
                f32::NAN
            } else {
                (f64::from(v) * bscale + bzero) as f32
            };
            let got = m.data.as_slice().unwrap()[k];
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "pixel {k}: {got} vs {want}"
            );
            let _ = d;
        }
    }
    if let (Ok(m), Ok((d, _))) = (&ours, &theirs) {
        assert_eq!(m.data.dim(), d.dim());
        for (a, b) in m.data.iter().zip(d.iter()) {
            let b = *b as f32;
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{a} vs cfitsio {b}"
            );
        }
    }
});
