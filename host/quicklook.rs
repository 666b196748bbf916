//! Log-scaled 8-bit greyscale PNG quicklooks of a map.
//!
//! Scaling: `log10` of the pixel value between 1 DN (or the smallest positive value, if
//! larger) and the 99.9th percentile of the finite values (estimated from a strided
//! sample), mapped to 0…255. Missing pixels are black. Solar north is up: FITS row 0 is the
//! bottom of the image, so rows are written last first.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::error::{Error, Result, Source};

/// The log-scaled 8-bit image (rows top to bottom) and the `(lo, hi)` range used, in DN.
pub fn render(data: ArrayView2<f32>) -> (Vec<u8>, (f32, f32)) {
    let (ny, nx) = data.dim();
    let step = ((ny * nx) / 200_000).max(1);
    let mut sample: Vec<f32> = data
        .iter()
        .step_by(step)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    sample.sort_unstable_by(f32::total_cmp);
    let pick = |q: f64| -> f32 {
        if sample.is_empty() {
            1.0
        } else {
            sample[((sample.len() - 1) as f64 * q).round() as usize]
        }
    };
    let lo = pick(0.01).max(1.0);
    let hi = pick(0.999).max(lo * 10.0);
    let (llo, lhi) = (lo.log10(), hi.log10());
    let inv = 255.0 / (lhi - llo);
    let mut out = vec![0u8; ny * nx];
    out.par_chunks_mut(nx.max(1))
        .enumerate()
        .for_each(|(r, row)| {
            let src = data.row(ny - 1 - r);
            for (o, &v) in row.iter_mut().zip(src.iter()) {
                *o = if v.is_finite() {
                    ((v.max(lo).log10() - llo) * inv).clamp(0.0, 255.0) as u8
                } else {
                    0
                };
            }
        });
    (out, (lo, hi))
}

/// Write a quicklook PNG of `data` to `path` (replacing it if it exists).
pub fn write_png(data: ArrayView2<f32>, path: &Path) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::Io {
        file: Source::file(path),
        reason: format!("cannot write PNG: {e}"),
    })?;
    encode(data, BufWriter::new(f), &Source::file(path))
}

/// The quicklook of `data` as the bytes of a PNG file (for callers that show it rather
/// than save it: a notebook, a web page).
pub fn png_bytes(data: ArrayView2<f32>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode(data, &mut out, &Source::memory())?;
    Ok(out)
}

fn encode(data: ArrayView2<f32>, w: impl Write, file: &Source) -> Result<()> {
    let (ny, nx) = data.dim();
    let io = |e: &dyn std::fmt::Display| Error::Io {
        file: file.clone(),
        reason: format!("cannot write PNG: {e}"),
    };
    let (pixels, _) = render(data);
    let mut enc = png::Encoder::new(w, nx as u32, ny as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut w = enc.write_header().map_err(|e| io(&e))?;
    w.write_image_data(&pixels).map_err(|e| io(&e))?;
    w.finish().map_err(|e| io(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn log_scale_flips_rows_and_blacks_out_missing() {
        // Row 0 (bottom) dim, top row bright; one NaN.
        let mut a = Array2::<f32>::from_shape_fn((4, 3), |(j, _)| 10f32.powi(j as i32 + 1));
        a[[0, 0]] = f32::NAN;
        let (img, (lo, hi)) = render(a.view());
        assert!(lo >= 1.0 && hi >= lo * 10.0);
        // First PNG row is the last data row: brightest.
        assert_eq!(img[0], 255);
        // The NaN pixel ends up in the last PNG row.
        assert_eq!(img[3 * 3], 0);
        // Monotone in value.
        assert!(img[3] > img[6] && img[6] > img[9 + 1]);
    }

    #[test]
    fn writes_a_png_that_decodes() {
        let a = Array2::<f32>::from_shape_fn((20, 30), |(j, i)| (j * 30 + i) as f32 + 1.0);
        let dir = std::env::temp_dir().join(format!("aiaprep-ql-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("q.png");
        write_png(a.view(), &p).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(File::open(&p).unwrap()));
        let r = dec.read_info().unwrap();
        assert_eq!((r.info().width, r.info().height), (30, 20));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
