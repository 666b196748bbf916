//! The emulated cuFFT: 2-D real transforms (`R2C`, `C2R`, `D2Z`, `Z2D`) with cuFFT's
//! semantics — row-major `nx × ny` plans where `nx` (cuFFT's first size) is the slowest
//! dimension, unnormalised transforms, the half spectrum `nx × (ny/2 + 1)`, the imaginary
//! parts of the DC and Nyquist columns ignored by the inverse, and an inverse that is
//! allowed to overwrite its input: this one always does (with NaNs), so code that relies on
//! the spectrum surviving a C2R fails here as it may on a GPU. Transforms run on the plan's
//! stream (`cufftSetStream`; default the legacy stream) in stream order, and their buffers
//! are checked and recorded like every other device access. A plan holds a work area in
//! device memory (outside the memory pool), as cuFFT's does.
//!
//! Computed with realfft/rustfft in the plan's precision.

use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use realfft::RealFftPlanner;
use rustfft::num_complex::Complex;
use rustfft::num_traits::Zero;
use rustfft::{FftNum, FftPlanner};

use crate::state;
use crate::stream::{Op, OpKind};

pub const SUCCESS: c_int = 0;
pub const INVALID_PLAN: c_int = 1;
pub const ALLOC_FAILED: c_int = 2;
pub const INVALID_TYPE: c_int = 3;
pub const INVALID_VALUE: c_int = 4;
pub const EXEC_FAILED: c_int = 6;
pub const SETUP_FAILED: c_int = 7;
pub const INVALID_SIZE: c_int = 8;
pub const INVALID_DEVICE: c_int = 11;

/// Transform type (cufftType values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    R2C,
    C2R,
    D2Z,
    Z2D,
}

impl Kind {
    pub fn from_code(t: c_int) -> Option<Kind> {
        match t {
            0x2a => Some(Kind::R2C),
            0x2c => Some(Kind::C2R),
            0x6a => Some(Kind::D2Z),
            0x6c => Some(Kind::Z2D),
            _ => None,
        }
    }
    fn real_size(self) -> usize {
        match self {
            Kind::R2C | Kind::C2R => 4,
            Kind::D2Z | Kind::Z2D => 8,
        }
    }
    fn inverse(self) -> bool {
        matches!(self, Kind::C2R | Kind::Z2D)
    }
}

/// A plan.
#[derive(Debug)]
pub struct Plan {
    pub handle: c_int,
    pub ctx: u64,
    /// Rows (cuFFT's `nx`, slowest).
    pub rows: usize,
    /// Columns (cuFFT's `ny`, fastest).
    pub cols: usize,
    pub kind: Kind,
    pub stream: Mutex<u64>,
    pub work_area: u64,
}

/// One enqueued transform.
pub struct Exec {
    pub kind: Kind,
    pub rows: usize,
    pub cols: usize,
    pub input: usize,
    pub output: usize,
}

fn plans() -> &'static Mutex<HashMap<c_int, Arc<Plan>>> {
    static P: OnceLock<Mutex<HashMap<c_int, Arc<Plan>>>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashMap::new()))
}

fn plan(h: c_int) -> Option<Arc<Plan>> {
    plans()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&h)
        .cloned()
}

/// `cufftPlan2d` of cuFFT `version` (e.g. 11400 for CUDA 12's, 12000 for CUDA 13's).
#[no_mangle]
pub unsafe extern "C" fn softcuda_cufft_plan2d(
    version: c_int,
    out: *mut c_int,
    nx: c_int,
    ny: c_int,
    t: c_int,
) -> c_int {
    if out.is_null() {
        return INVALID_VALUE;
    }
    let Some(kind) = Kind::from_code(t) else {
        return INVALID_TYPE;
    };
    if nx < 1 || ny < 1 {
        return INVALID_SIZE;
    }
    let cfg = crate::config::get();
    if let Some(code) = cfg.faults.cufft_plan {
        crate::diag::report(&format!("injected fault: cufftPlan2d returns {code}"));
        return code;
    }
    let mut st = state::lock();
    let Ok(ctx) = st.current_ctx() else {
        crate::diag::report("cufftPlan2d: no usable current context");
        return SETUP_FAILED;
    };
    // cuFFT from CUDA 13 (version 12.x) has no kernels for Volta and older.
    if version >= 12000 && cfg.model.cc < (7, 5) {
        crate::diag::report(&format!(
            "cufftPlan2d: cuFFT {}.{} (CUDA 13) does not support compute capability {}.{}",
            version / 1000,
            version % 1000 / 10,
            cfg.model.cc.0,
            cfg.model.cc.1
        ));
        return INVALID_DEVICE;
    }
    let (rows, cols) = (nx as usize, ny as usize);
    let work = (rows * (cols / 2 + 1) * 2 * kind.real_size()) as u64;
    let Ok(device) = st.device_of(ctx) else {
        return SETUP_FAILED;
    };
    if st.reserve(device, work, false, "cuFFT work area").is_err() {
        return ALLOC_FAILED;
    }
    if let Some(d) = st.devices.get_mut(device) {
        d.live -= work;
        d.work_areas += work;
    }
    drop(st);
    static NEXT: Mutex<c_int> = Mutex::new(0);
    let handle = {
        let mut n = NEXT.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    };
    plans().lock().unwrap_or_else(|e| e.into_inner()).insert(
        handle,
        Arc::new(Plan {
            handle,
            ctx,
            rows,
            cols,
            kind,
            stream: Mutex::new(0),
            work_area: work,
        }),
    );
    *out = handle;
    SUCCESS
}

/// `cufftSetStream`.
#[no_mangle]
pub extern "C" fn softcuda_cufft_set_stream(h: c_int, stream: u64) -> c_int {
    let Some(p) = plan(h) else {
        return INVALID_PLAN;
    };
    let st = state::lock();
    if st.stream_id(p.ctx, stream).is_err() {
        return INVALID_VALUE;
    }
    *p.stream.lock().unwrap_or_else(|e| e.into_inner()) = stream;
    SUCCESS
}

/// `cufftDestroy`.
#[no_mangle]
pub extern "C" fn softcuda_cufft_destroy(h: c_int) -> c_int {
    let Some(p) = plans().lock().unwrap_or_else(|e| e.into_inner()).remove(&h) else {
        return INVALID_PLAN;
    };
    let mut st = state::lock();
    if let Ok(device) = st.device_of(p.ctx) {
        if let Some(d) = st.devices.get_mut(device) {
            d.work_areas = d.work_areas.saturating_sub(p.work_area);
        }
    }
    SUCCESS
}

/// `cufftExecR2C` / `C2R` / `D2Z` / `Z2D`: enqueues the transform on the plan's stream.
#[no_mangle]
pub extern "C" fn softcuda_cufft_exec(h: c_int, t: c_int, input: u64, output: u64) -> c_int {
    let Some(p) = plan(h) else {
        return INVALID_PLAN;
    };
    if Kind::from_code(t) != Some(p.kind) {
        crate::diag::report(&format!(
            "cufftExec: a {:?} plan executed as type {t:#x}",
            p.kind
        ));
        return INVALID_TYPE;
    }
    let n_real = p.rows * p.cols * p.kind.real_size();
    let n_cplx = p.rows * (p.cols / 2 + 1) * 2 * p.kind.real_size();
    let (in_len, out_len) = if p.kind.inverse() {
        (n_cplx, n_real)
    } else {
        (n_real, n_cplx)
    };
    let name = format!("cufftExec{:?} {} x {}", p.kind, p.rows, p.cols);
    if input == output {
        crate::diag::report(&format!(
            "{name}: in-place transforms (padded layout) are not emulated"
        ));
        return INVALID_VALUE;
    }
    let stream_h = *p.stream.lock().unwrap_or_else(|e| e.into_inner());
    let mut st = state::lock();
    let r = (|| {
        let sticky = st
            .contexts
            .get(&p.ctx)
            .map(|c| c.sticky.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap_or(crate::cu::INVALID_CONTEXT);
        if sticky != 0 {
            return Err(sticky);
        }
        let stream = st.stream_id(p.ctx, stream_h)?;
        let a_in = st.range(p.ctx, input, in_len, &format!("{name} input"), false)?;
        let a_out = st.range(p.ctx, output, out_len, &format!("{name} output"), false)?;
        let seq = st.next_seq(stream)?;
        // the inverse overwrites its input (cuFFT may)
        st.record_accesses(
            stream,
            seq,
            &[(a_in, p.kind.inverse()), (a_out, true)],
            &name,
        )?;
        let s = st.streams.get(&stream).ok_or(crate::cu::INVALID_HANDLE)?;
        s.stream.push(Op {
            seq,
            kind: OpKind::Fft(Box::new(Exec {
                kind: p.kind,
                rows: p.rows,
                cols: p.cols,
                input: input as usize,
                output: output as usize,
            })),
        });
        Ok(())
    })();
    match r {
        Ok(()) => SUCCESS,
        Err(c) if c == crate::cu::INVALID_VALUE => INVALID_VALUE,
        Err(_) => EXEC_FAILED,
    }
}

/// Runs a transform (on the stream worker).
pub fn run(e: &Exec) -> Result<(), (i32, String)> {
    let m = e.cols / 2 + 1;
    let (nr, nc) = (e.rows * e.cols, e.rows * m);
    // SAFETY: both ranges were checked against the allocation table at enqueue and stay
    // allocated until this stream gets past this operation.
    unsafe {
        match e.kind {
            Kind::R2C => forward::<f32>(
                std::slice::from_raw_parts(e.input as *const f32, nr),
                std::slice::from_raw_parts_mut(e.output as *mut Complex<f32>, nc),
                e.rows,
                e.cols,
            ),
            Kind::D2Z => forward::<f64>(
                std::slice::from_raw_parts(e.input as *const f64, nr),
                std::slice::from_raw_parts_mut(e.output as *mut Complex<f64>, nc),
                e.rows,
                e.cols,
            ),
            Kind::C2R => inverse::<f32>(
                std::slice::from_raw_parts_mut(e.input as *mut Complex<f32>, nc),
                std::slice::from_raw_parts_mut(e.output as *mut f32, nr),
                e.rows,
                e.cols,
                f32::from_bits(0x7fa5_a5a5),
            ),
            Kind::Z2D => inverse::<f64>(
                std::slice::from_raw_parts_mut(e.input as *mut Complex<f64>, nc),
                std::slice::from_raw_parts_mut(e.output as *mut f64, nr),
                e.rows,
                e.cols,
                f64::from_bits(0x7ff4_a5a5_a5a5_a5a5),
            ),
        }
    }
    Ok(())
}

/// Transposes `rows × cols` into `cols × rows`.
fn transpose<T: Copy + Send + Sync>(src: &[T], dst: &mut [T], rows: usize, cols: usize) {
    const B: usize = 32;
    dst.par_chunks_mut(rows.max(1) * B)
        .enumerate()
        .for_each(|(bi, chunk)| {
            // chunk holds output rows [bi*B, bi*B + B) (= input columns)
            let c0 = bi * B;
            let nrow = chunk.len() / rows.max(1);
            for r0 in (0..rows).step_by(B) {
                for c in c0..c0 + nrow {
                    for r in r0..(r0 + B).min(rows) {
                        chunk[(c - c0) * rows + r] = src[r * cols + c];
                    }
                }
            }
        });
}

/// Complex FFTs along the columns of a `rows × m` array.
fn columns<T: FftNum>(data: &mut [Complex<T>], rows: usize, m: usize, forward: bool) {
    let fft = {
        let mut p = FftPlanner::<T>::new();
        if forward {
            p.plan_fft_forward(rows)
        } else {
            p.plan_fft_inverse(rows)
        }
    };
    let mut t = vec![Complex::<T>::zero(); rows * m];
    transpose(data, &mut t, rows, m);
    t.par_chunks_mut(rows).for_each_init(
        || vec![Complex::<T>::zero(); fft.get_inplace_scratch_len()],
        |s, line| fft.process_with_scratch(line, s),
    );
    transpose(&t, data, m, rows);
}

fn forward<T: FftNum>(input: &[T], output: &mut [Complex<T>], rows: usize, cols: usize) {
    let m = cols / 2 + 1;
    let r2c = RealFftPlanner::<T>::new().plan_fft_forward(cols);
    output
        .par_chunks_mut(m)
        .zip(input.par_chunks(cols))
        .for_each_init(
            || (r2c.make_input_vec(), r2c.make_scratch_vec()),
            |(buf, s), (o, i)| {
                buf.copy_from_slice(i);
                let _ = r2c.process_with_scratch(buf, o, s);
            },
        );
    columns(output, rows, m, true);
}

fn inverse<T: FftNum>(
    input: &mut [Complex<T>],
    output: &mut [T],
    rows: usize,
    cols: usize,
    scribble: T,
) {
    let m = cols / 2 + 1;
    let mut work = input.to_vec();
    columns(&mut work, rows, m, false);
    let c2r = RealFftPlanner::<T>::new().plan_fft_inverse(cols);
    work.par_chunks_mut(m)
        .zip(output.par_chunks_mut(cols))
        .for_each_init(
            || c2r.make_scratch_vec(),
            |s, (i, o)| {
                // cuFFT ignores the imaginary parts that a real signal cannot have
                i[0].im = T::zero();
                if cols.is_multiple_of(2) {
                    i[m - 1].im = T::zero();
                }
                let _ = c2r.process_with_scratch(i, o, s);
            },
        );
    input.fill(Complex::new(scribble, scribble));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dft2(x: &[f64], rows: usize, cols: usize) -> Vec<Complex<f64>> {
        let m = cols / 2 + 1;
        let mut out = vec![Complex::zero(); rows * m];
        for u in 0..rows {
            for v in 0..m {
                let mut acc = Complex::zero();
                for r in 0..rows {
                    for c in 0..cols {
                        let ph = -2.0
                            * std::f64::consts::PI
                            * ((u * r) as f64 / rows as f64 + (v * c) as f64 / cols as f64);
                        acc += Complex::new(ph.cos(), ph.sin()) * x[r * cols + c];
                    }
                }
                out[u * m + v] = acc;
            }
        }
        out
    }

    #[test]
    fn transforms_match_a_naive_dft_for_odd_and_even_sizes() {
        for (rows, cols) in [(4usize, 6usize), (5, 7), (3, 8), (33, 40)] {
            let x: Vec<f64> = (0..rows * cols)
                .map(|i| ((i * 7919) % 101) as f64 - 50.0)
                .collect();
            let m = cols / 2 + 1;
            let mut spec = vec![Complex::zero(); rows * m];
            forward::<f64>(&x, &mut spec, rows, cols);
            let want = naive_dft2(&x, rows, cols);
            for (a, b) in spec.iter().zip(&want) {
                assert!((a - b).norm() < 1e-9, "{rows}x{cols}: {a} vs {b}");
            }
            let mut back = vec![0.0; rows * cols];
            let mut s2 = spec.clone();
            inverse::<f64>(&mut s2, &mut back, rows, cols, f64::NAN);
            for (a, b) in back.iter().zip(&x) {
                assert!((a / (rows * cols) as f64 - b).abs() < 1e-9);
            }
            assert!(s2.iter().all(|c| c.re.is_nan()), "C2R input scribbled");
        }
    }
}
