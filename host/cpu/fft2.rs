//! A reusable 2-D real FFT (`rfft2` / `irfft2`) on the CPU, generic over `f32` and `f64`.
//!
//! Rows are transformed with realfft (real → half-complex, length `nx`), columns with rustfft
//! (complex, length `ny`), with a blocked transpose in between and rayon across rows and
//! columns. Plans and every work buffer are created once in [`Fft2::new`]; the transforms
//! themselves allocate nothing, so one `Fft2` can be used for many calls (the
//! Richardson–Lucy loop, the PSF composite).
//!
//! **Normalisation**: none, as realfft/rustfft/numpy's forward transform. `forward` computes
//! `X[ky, kx] = Σ_y Σ_x x[y, x] · exp(−2πi (ky·y/ny + kx·x/nx))` for `kx = 0..=nx/2`, and
//! `inverse` computes the unnormalised sum with `exp(+2πi …)`, so `inverse(forward(x)) =
//! nx·ny·x`. Divide by `nx·ny` yourself (or fold the factor into a multiplier).
//!
//! **Spectrum layout** (differs from numpy on purpose, it saves one transpose per call):
//! the half spectrum is stored *column-major*, `spectrum[kx * ny + ky]` for `kx in 0..=nx/2`,
//! `ky in 0..ny` — row `kx` of the buffer is the `ny`-point column transform. numpy's
//! `rfft2(x)[ky, kx]` is `spectrum[Fft2::index(ky, kx)]`. Element-wise products of two
//! spectra made by the same `Fft2` shape are layout-independent.
//!
//! **Inverse input**: like numpy's `irfft2`, the imaginary parts that must vanish for a real
//! signal (`kx = 0`, and `kx = nx/2` for even `nx`, after the column transform) are ignored.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftNum, FftPlanner};

use crate::error::{Error, Result, Source};

/// Per-task work space (one per parallel chunk).
struct Worker<T> {
    /// One real row (`nx`).
    row: Vec<T>,
    /// A block of half-spectrum rows (`block × nh`).
    cbuf: Vec<Complex<T>>,
    /// Scratch for realfft / rustfft.
    scratch: Vec<Complex<T>>,
}

/// A planned 2-D real FFT of a fixed shape `(ny, nx)` (rows, columns). See the module docs
/// for normalisation and the spectrum layout.
pub struct Fft2<T: FftNum> {
    ny: usize,
    nx: usize,
    nh: usize,
    r2c: Arc<dyn RealToComplex<T>>,
    c2r: Arc<dyn ComplexToReal<T>>,
    col_fwd: Arc<dyn Fft<T>>,
    col_inv: Arc<dyn Fft<T>>,
    workers: Vec<Worker<T>>,
    /// Rows (or spectrum columns) per transpose block.
    block: usize,
}

fn shape_err(reason: String) -> Error {
    Error::Shape {
        file: Source::memory(),
        reason,
    }
}

fn fft_err(e: realfft::FftError) -> Error {
    // Only reachable on a length mismatch, which the checks below rule out.
    shape_err(format!("FFT: {e}"))
}

/// A mutable slice shared by parallel tasks that write provably disjoint ranges of it.
struct SharedSlice<C> {
    ptr: *mut C,
    len: usize,
}

// SAFETY: only used for `C = Complex<T>` with `T: FftNum` (Send + Sync), and every caller of
// `range_mut` guarantees that no two tasks touch overlapping ranges.
unsafe impl<C: Send> Send for SharedSlice<C> {}
unsafe impl<C: Send> Sync for SharedSlice<C> {}

impl<C> SharedSlice<C> {
    fn new(s: &mut [C]) -> SharedSlice<C> {
        SharedSlice {
            ptr: s.as_mut_ptr(),
            len: s.len(),
        }
    }

    /// `s[start .. start + n]`.
    ///
    /// # Safety
    /// No other live reference may overlap this range while the result is in use, and the
    /// slice passed to [`SharedSlice::new`] must outlive it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range_mut(&self, start: usize, n: usize) -> &mut [C] {
        assert!(start + n <= self.len, "SharedSlice range out of bounds");
        // SAFETY: in bounds (checked above); exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), n) }
    }
}

/// `ceil(n / parts)`, at least 1.
fn per_part(n: usize, parts: usize) -> usize {
    n.div_ceil(parts.max(1)).max(1)
}

impl<T: FftNum> Fft2<T> {
    /// Plan transforms for `ny` rows × `nx` columns (both ≥ 1; any length, odd included)
    /// and allocate the work buffers (small: a few rows per parallel task).
    pub fn new(ny: usize, nx: usize) -> Result<Fft2<T>> {
        if ny == 0 || nx == 0 || ny.checked_mul(nx / 2 + 1).is_none() {
            return Err(Error::InvalidOption {
                file: Source::memory(),
                reason: format!("FFT shape {ny}×{nx} is empty or too large"),
            });
        }
        let nh = nx / 2 + 1;
        let mut rp = RealFftPlanner::<T>::new();
        let r2c = rp.plan_fft_forward(nx);
        let c2r = rp.plan_fft_inverse(nx);
        let mut cp = FftPlanner::<T>::new();
        let col_fwd = cp.plan_fft_forward(ny);
        let col_inv = cp.plan_fft_inverse(ny);
        let scratch_len = r2c
            .get_scratch_len()
            .max(c2r.get_scratch_len())
            .max(col_fwd.get_inplace_scratch_len())
            .max(col_inv.get_inplace_scratch_len());
        let block = (128 / std::mem::size_of::<Complex<T>>()).clamp(4, 16);
        let parts = (4 * rayon::current_num_threads()).max(1);
        let z = Complex::new(T::zero(), T::zero());
        let workers = (0..parts)
            .map(|_| Worker {
                row: vec![T::zero(); nx],
                cbuf: vec![z; block * nh],
                scratch: vec![z; scratch_len],
            })
            .collect();
        Ok(Fft2 {
            ny,
            nx,
            nh,
            r2c,
            c2r,
            col_fwd,
            col_inv,
            workers,
            block,
        })
    }

    /// `(ny, nx)`: rows and columns of the real array.
    pub fn shape(&self) -> (usize, usize) {
        (self.ny, self.nx)
    }

    /// Length of the real array, `ny·nx`.
    pub fn real_len(&self) -> usize {
        self.ny * self.nx
    }

    /// Length of the half spectrum, `(nx/2 + 1)·ny`.
    pub fn spectrum_len(&self) -> usize {
        self.nh * self.ny
    }

    /// Position of numpy's `rfft2(x)[ky, kx]` in the spectrum buffer (`kx ≤ nx/2`).
    pub fn index(&self, ky: usize, kx: usize) -> usize {
        kx * self.ny + ky
    }

    /// A zeroed spectrum buffer of the right length.
    pub fn make_spectrum(&self) -> Vec<Complex<T>> {
        vec![Complex::new(T::zero(), T::zero()); self.spectrum_len()]
    }

    fn check(&self, what: &str, got: usize, want: usize) -> Result<()> {
        if got != want {
            return Err(shape_err(format!(
                "{what} has {got} elements, the {}×{} FFT needs {want}",
                self.ny, self.nx
            )));
        }
        Ok(())
    }

    /// Forward transform of `input` (row-major `ny × nx`, left unchanged) into `spectrum`
    /// (layout in the module docs). Errors with [`Error::Shape`] on a length mismatch.
    pub fn forward(&mut self, input: &[T], spectrum: &mut [Complex<T>]) -> Result<()> {
        self.check("input", input.len(), self.real_len())?;
        let nx = self.nx;
        self.forward_with(
            |y, row| row.copy_from_slice(&input[y * nx..(y + 1) * nx]),
            spectrum,
            |_, _| {},
        )
    }

    /// Forward transform with fused element-wise work:
    /// `load(y, row)` fills real row `y` (`nx` values; the buffer holds garbage on entry),
    /// and `post(kx0, cols)` is called on finished spectrum rows `kx0 .. kx0 + cols.len()/ny`
    /// (each `ny` long, layout as in the module docs), e.g. to multiply by a transfer
    /// function while the data are in cache.
    pub fn forward_with<L, P>(
        &mut self,
        load: L,
        spectrum: &mut [Complex<T>],
        post: P,
    ) -> Result<()>
    where
        L: Fn(usize, &mut [T]) + Sync,
        P: Fn(usize, &mut [Complex<T>]) + Sync,
    {
        self.check("spectrum", spectrum.len(), self.spectrum_len())?;
        let (ny, nh, block) = (self.ny, self.nh, self.block);
        let parts = self.workers.len();

        // Rows: real → half complex, a block of rows at a time into the worker's buffer,
        // then scattered (transposed) into the spectrum rows.
        let rows_per = per_part(ny, parts);
        let r2c = &self.r2c;
        let dst = SharedSlice::new(spectrum);
        self.workers
            .par_iter_mut()
            .enumerate()
            .take(ny.div_ceil(rows_per))
            .try_for_each(|(c, w)| -> Result<()> {
                let y0 = c * rows_per;
                let y1 = (y0 + rows_per).min(ny);
                let mut a = y0;
                while a < y1 {
                    let b = (a + block).min(y1);
                    for j in 0..b - a {
                        load(a + j, &mut w.row);
                        let crow = &mut w.cbuf[j * nh..(j + 1) * nh];
                        r2c.process_with_scratch(&mut w.row, crow, &mut w.scratch)
                            .map_err(fft_err)?;
                    }
                    for kx in 0..nh {
                        // SAFETY: rows a..b belong to this task only (the row ranges of the
                        // tasks are disjoint), so the destination range kx·ny + a .. kx·ny + b
                        // is written by no other task, and nothing reads the spectrum until
                        // the parallel loop has finished.
                        let out = unsafe { dst.range_mut(kx * ny + a, b - a) };
                        for (j, o) in out.iter_mut().enumerate() {
                            *o = w.cbuf[j * nh + kx];
                        }
                    }
                    a = b;
                }
                Ok(())
            })?;

        // Columns: complex FFT of each spectrum row (one column of the image), post-hook.
        let kx_per = per_part(nh, parts);
        let col = &self.col_fwd;
        spectrum
            .par_chunks_mut(kx_per * ny)
            .zip(self.workers.par_iter_mut())
            .enumerate()
            .for_each(|(c, (out, w))| {
                let k0 = c * kx_per;
                let kn = out.len() / ny;
                let mut a = 0;
                while a < kn {
                    let b = (a + block).min(kn);
                    let dst = &mut out[a * ny..b * ny];
                    col.process_with_scratch(dst, &mut w.scratch);
                    post(k0 + a, dst);
                    a = b;
                }
            });
        Ok(())
    }

    /// Inverse transform of `spectrum` (overwritten: used as work space) into `output`
    /// (row-major `ny × nx`), unnormalised. Errors with [`Error::Shape`] on a length mismatch.
    pub fn inverse(&mut self, spectrum: &mut [Complex<T>], output: &mut [T]) -> Result<()> {
        self.inverse_with(spectrum, output, |_, row, out| out.copy_from_slice(row))
    }

    /// Inverse transform with a fused store: `store(y, row, out_row)` receives real row `y`
    /// of the (unnormalised) result and the matching `nx`-long row of `output` to write.
    pub fn inverse_with<S>(
        &mut self,
        spectrum: &mut [Complex<T>],
        output: &mut [T],
        store: S,
    ) -> Result<()>
    where
        S: Fn(usize, &[T], &mut [T]) + Sync,
    {
        self.check("spectrum", spectrum.len(), self.spectrum_len())?;
        self.check("output", output.len(), self.real_len())?;
        let (ny, nx, nh, block) = (self.ny, self.nx, self.nh, self.block);
        let parts = self.workers.len();

        // Columns: in-place inverse complex FFTs on the spectrum rows.
        let kx_per = per_part(nh, parts);
        let col = &self.col_inv;
        spectrum
            .par_chunks_mut(kx_per * ny)
            .zip(self.workers.par_iter_mut())
            .for_each(|(chunk, w)| col.process_with_scratch(chunk, &mut w.scratch));

        // Rows: blocked transpose spectrum → per-worker row block, half complex → real.
        let spec: &[Complex<T>] = spectrum;
        let rows_per = per_part(ny, parts);
        let c2r = &self.c2r;
        let even = nx % 2 == 0;
        output
            .par_chunks_mut(rows_per * nx)
            .zip(self.workers.par_iter_mut())
            .enumerate()
            .try_for_each(|(c, (out, w))| -> Result<()> {
                let y0 = c * rows_per;
                let rn = out.len() / nx;
                let mut a = 0;
                while a < rn {
                    let b = (a + block).min(rn);
                    for kx in 0..nh {
                        let src = &spec[kx * ny + y0 + a..kx * ny + y0 + b];
                        for (j, v) in src.iter().enumerate() {
                            w.cbuf[j * nh + kx] = *v;
                        }
                    }
                    for j in 0..b - a {
                        let crow = &mut w.cbuf[j * nh..(j + 1) * nh];
                        crow[0].im = T::zero();
                        if even {
                            crow[nh - 1].im = T::zero();
                        }
                        c2r.process_with_scratch(crow, &mut w.row, &mut w.scratch)
                            .map_err(fft_err)?;
                        let y = y0 + a + j;
                        store(y, &w.row, &mut out[(a + j) * nx..(a + j + 1) * nx]);
                    }
                    a = b;
                }
                Ok(())
            })
    }
}
