//! numpy arrays in: the caller's pixels as the f32 view the engines read.
//!
//! A 2-D `float32` array in native byte order (any strides; C order is what the engines
//! read fastest) is borrowed as it is: no copy. Any other real dtype — `int16` as stored in
//! level-1 files, `float64`, big-endian arrays as astropy reads FITS, other integer
//! widths — is converted in one pass (rows in parallel, with the GIL released) straight
//! into the f32 array the compute works in: numpy makes no temporary.

use ndarray::{Array2, ArrayView2};
use numpy::{PyArrayDescrMethods, PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rayon::prelude::*;

/// The pixels of one call: borrowed from numpy, or converted.
pub enum Pixels<'py> {
    /// A native-order float32 array, read in place.
    Borrowed(PyReadonlyArray2<'py, f32>),
    /// Converted from another dtype or byte order.
    Converted(Array2<f32>),
}

impl Pixels<'_> {
    /// The f32 view the engines read.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        match self {
            Pixels::Borrowed(a) => a.as_array(),
            Pixels::Converted(a) => a.view(),
        }
    }

    /// Whether the pixels are read in place (the caller's memory).
    pub fn borrowed(&self) -> bool {
        matches!(self, Pixels::Borrowed(_))
    }
}

/// An element type numpy may hand us, with its byte order.
#[derive(Debug, Clone, Copy)]
enum Kind {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
}

impl Kind {
    fn of(kind: u8, size: usize) -> Option<Kind> {
        Some(match (kind, size) {
            (b'f', 4) => Kind::F32,
            (b'f', 8) => Kind::F64,
            (b'i', 1) => Kind::I8,
            (b'i', 2) => Kind::I16,
            (b'i', 4) => Kind::I32,
            (b'i', 8) => Kind::I64,
            (b'u', 1) => Kind::U8,
            (b'u', 2) => Kind::U16,
            (b'u', 4) => Kind::U32,
            _ => return None,
        })
    }

    /// The value of one element whose bytes are at `p` (`swap`: not native order).
    ///
    /// # Safety
    /// `p` must point to `size` readable bytes.
    unsafe fn read(self, p: *const u8, swap: bool) -> f32 {
        macro_rules! get {
            ($t:ty) => {{
                let v = std::ptr::read_unaligned(p as *const $t);
                if swap {
                    v.swap_bytes()
                } else {
                    v
                }
            }};
        }
        match self {
            Kind::F32 => f32::from_bits(get!(u32)),
            Kind::F64 => f64::from_bits(get!(u64)) as f32,
            Kind::I8 => f32::from(*(p as *const i8)),
            Kind::I16 => f32::from(get!(i16)),
            Kind::I32 => get!(i32) as f32,
            Kind::I64 => get!(i64) as f32,
            Kind::U8 => f32::from(*p),
            Kind::U16 => f32::from(get!(u16)),
            Kind::U32 => get!(u32) as f32,
        }
    }
}

/// A raw address that may cross to the rayon workers (the array outlives the call).
#[derive(Clone, Copy)]
struct Addr(usize);

/// The pixels of `obj`, a 2-D numpy array of a real dtype (`name` is the argument's name,
/// for the error message).
pub fn pixels<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Pixels<'py>> {
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name}: expected a 2-D numpy array, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        ))
    })?;
    if arr.ndim() != 2 {
        return Err(crate::invalid(format!(
            "{name}: expected a 2-D image, got {} dimensions",
            arr.ndim()
        )));
    }
    let dtype = arr.dtype();
    let native = dtype.is_native_byteorder().unwrap_or(true);
    let kind = Kind::of(dtype.kind(), dtype.itemsize()).ok_or_else(|| {
        crate::invalid(format!(
            "{name}: unsupported dtype {} (real numbers: float32/64, signed or unsigned integers)",
            dtype
        ))
    })?;
    if native && matches!(kind, Kind::F32) {
        if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, f32>>() {
            return Ok(Pixels::Borrowed(a));
        }
    }
    let (ny, nx) = (arr.shape()[0], arr.shape()[1]);
    let (s0, s1) = (arr.strides()[0], arr.strides()[1]);
    // SAFETY: `arr` is a live numpy array; its data pointer, shape and strides describe
    // readable memory for as long as we hold `obj` (we do, for the whole call).
    let base = Addr(unsafe { (*arr.as_array_ptr()).fields.data } as usize);
    let swap = !native;
    let out = py.detach(|| {
        let mut buf = vec![0f32; ny * nx];
        if nx > 0 {
            buf.par_chunks_mut(nx).enumerate().for_each(|(y, row)| {
                let b = base;
                for (x, o) in row.iter_mut().enumerate() {
                    let off = y as isize * s0 + x as isize * s1;
                    // SAFETY: (y, x) is inside the array's shape (see above).
                    *o = unsafe { kind.read((b.0 as *const u8).offset(off), swap) };
                }
            });
        }
        Array2::from_shape_vec((ny, nx), buf)
    });
    out.map(Pixels::Converted)
        .map_err(|e| crate::invalid(format!("{name}: cannot convert a {ny}×{nx} array: {e}")))
}

/// The address of the first element the engines will read (for the tests' no-copy check).
pub fn address(p: &Pixels<'_>) -> usize {
    p.view().as_ptr() as usize
}
