//! A minimal reader for NumPy `.npy` files (format 1.0–3.0, little-endian `<f8`, `<f4`,
//! `<i2`, `<i4`, `|u1`, `|b1`, `<c16`, C order), enough for the committed parity fixtures.
//! Complex arrays come back with a trailing axis of 2 (real, imaginary).

use ndarray::{ArrayD, IxDyn};
use std::path::Path;

/// Read a `.npy` file as `f64` values with its shape.
pub fn read_f64(path: &Path) -> ArrayD<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 10 && &bytes[..6] == b"\x93NUMPY",
        "{}: not npy",
        path.display()
    );
    let major = bytes[6];
    let (hlen, start) = if major == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).expect("npy header utf8");
    let descr = field(header, "descr")
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    assert!(
        field(header, "fortran_order").starts_with("False"),
        "{}: Fortran order",
        path.display()
    );
    let shape_s = field(header, "shape");
    let mut shape: Vec<usize> = shape_s
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("npy shape"))
        .collect();
    let body = &bytes[start + hlen..];
    if descr == "<c16" {
        shape.push(2);
    }
    let n: usize = shape.iter().product();
    let vals: Vec<f64> = match descr.as_str() {
        "<f8" | "<c16" => body
            .chunks_exact(8)
            .take(n)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        "<f4" => body
            .chunks_exact(4)
            .take(n)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        "<i2" => body
            .chunks_exact(2)
            .take(n)
            .map(|c| i16::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        "<i4" => body
            .chunks_exact(4)
            .take(n)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        "|u1" | "|b1" => body.iter().take(n).map(|&b| b as f64).collect(),
        d => panic!("{}: unsupported dtype {d}", path.display()),
    };
    assert_eq!(vals.len(), n, "{}: truncated", path.display());
    ArrayD::from_shape_vec(IxDyn(&shape), vals).expect("npy shape")
}

/// Read a 2-D `.npy` file.
pub fn read2(path: &Path) -> ndarray::Array2<f64> {
    read_f64(path).into_dimensionality().expect("2-D npy")
}

fn field<'a>(header: &'a str, name: &str) -> &'a str {
    let key = format!("'{name}':");
    let i = header
        .find(&key)
        .unwrap_or_else(|| panic!("npy header lacks {name}"))
        + key.len();
    let rest = header[i..].trim_start();
    if rest.starts_with('(') {
        let j = rest.find(')').expect("npy shape tuple") + 1;
        &rest[..j]
    } else {
        let j = rest.find(',').unwrap_or(rest.len());
        rest[..j].trim()
    }
}
