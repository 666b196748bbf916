//! The RICE_1 tile encoder and decoder (`fits/rice.rs`) on arbitrary 16-bit tiles and block
//! sizes: what `encode_tile` writes, `decode_tile` reads back exactly; the code is never
//! longer than the raw form plus the per-block headers. Never a panic.
#![no_main]

use aiaprep::internals::{decode_tile, encode_tile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&b, rest)) = input.split_first() else {
        return;
    };
    let nblock = 1 + usize::from(b % 64);
    let values: Vec<i16> = rest
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut enc = Vec::new();
    encode_tile(&values, nblock, &mut enc);
    if values.is_empty() {
        return;
    }
    // 2 bytes of first pixel, then per block 4 bits + at most 16 bits a pixel.
    let bound = 2 + (values.len().div_ceil(nblock) * 4 + values.len() * 16).div_ceil(8);
    assert!(enc.len() <= bound, "{} > {bound}", enc.len());
    let mut back = vec![0i16; values.len()];
    decode_tile(&enc, nblock, &mut back).expect("own code decodes");
    assert_eq!(back, values);
});
