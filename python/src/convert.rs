//! Headers and options between Python and the crate.

use aiaprep::header::Value;
use aiaprep::register::Missing;
use aiaprep::Header;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use pyo3::IntoPyObjectExt;

/// A header as a list of `(key, value, comment)` tuples, in order: values `str`, `int`,
/// `float`, `bool`, `None` (undefined); commentary cards (`HISTORY`, `COMMENT`, blank) with
/// their text as a `str`.
pub fn cards<'py>(py: Python<'py>, h: &Header) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for c in h.cards() {
        let v: Bound<'py, PyAny> = match &c.value {
            Value::Str(s) | Value::Text(s) | Value::Raw(s) => s.into_bound_py_any(py)?,
            Value::Int(i) => i.into_bound_py_any(py)?,
            Value::Float(f) => f.into_bound_py_any(py)?,
            Value::Bool(b) => b.into_bound_py_any(py)?,
            Value::Undefined => py.None().into_bound(py),
        };
        let t = PyTuple::new(
            py,
            [
                c.key.as_str().into_bound_py_any(py)?,
                v,
                c.comment.as_deref().into_bound_py_any(py)?,
            ],
        )?;
        list.append(t)?;
    }
    Ok(list)
}

/// The header of a map whose pixels are float32 with NaN for missing (as read): the
/// storage keywords of an integer file (BLANK, BSCALE, BZERO) dropped, `BITPIX = -32`.
pub fn float_header(h: &Header) -> Header {
    let mut h = h.clone();
    for k in ["BLANK", "BSCALE", "BZERO"] {
        h.remove(k);
    }
    if h.contains("BITPIX") {
        h.set("BITPIX", Value::Int(-32), None);
    }
    h
}

/// aiapy's `missing`: `None` = the image minimum, NaN = missing, else the value (DN).
pub fn missing(m: Option<f64>) -> Missing {
    match m {
        None => Missing::Min,
        Some(v) if v.is_nan() => Missing::Nan,
        Some(v) => Missing::Value(v),
    }
}
