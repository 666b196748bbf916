// psf.cu — synthesis of the AIA diffraction-pattern PSF (semantics.md §2.2), f64.
//
// Grid n x n, pixel centre coordinates x_i = i + 0.5, y_j = j + 0.5. One Gaussian
//     G(x0, y0)[j, i] = exp(-w (x_i - x0)^2) exp(-w (y_j - y0)^2)
// (w is the coefficient of r^2, not a sigma). With w = 4.5 each 1-D factor underflows to
// exactly 0 beyond ~12.9 px (~28 px for the preflight widths), so each Gaussian is
// evaluated only inside a (2 R + 1)^2 window, R = psf_window_radius(w): the result is the
// same as a full-grid evaluation.
//
// psf_accumulate: one thread block per Gaussian (centre and amplitude I_m computed on
// the host in f64); the 1-D factors go to shared memory, then the block adds
// amp * gx * gy into the grid with atomicAdd on double (sm_60+). Spikes off the grid are
// lost, as in aiapy. psf_combine then forms P = 0.18 S / sum(S) + 0.82 C / sum(C) with
// the core C = G(c, c), c = n/2 + 0.5. The composite FFT2(FFT2(P_f) FFT2(P_e)) is done
// with cuFFT (D2Z, product, Z2D) and psf_finish applies the point reflection, abs,
// fftshift and the 1/n^2 scale.

#include "common.cuh"

#define PSF_MAX_RADIUS 64

static_assert(sizeof(AiaComplex64) == 16, "AiaComplex64 layout");

// Smallest R such that exp(-w d^2) == 0 in f64 for every |d| > R - 0.5 (ulp-safe):
// w d^2 > 745.2 underflows below the smallest subnormal.
AIA_DEV int psf_window_radius(double w) {
    int r = (int)ceil(sqrt(746.0 / w)) + 1;
    return r;
}

// One 1-D Gaussian factor at pixel index i for a centre x0 (x0 in i + 0.5 coordinates).
AIA_DEV double psf_gauss1d(int i, double x0, double w) {
    double d = ((double)i + 0.5) - x0;
    return exp(-w * d * d);
}

// Index of the pixel whose centre is nearest to x0 (the window centre).
AIA_DEV int psf_window_center(double x0) { return (int)floor(x0); }

// grid[j, i] += amp[b] * gx(i) * gy(j) over the window of Gaussian b = blockIdx.x.
// Block: any number of threads; radius <= PSF_MAX_RADIUS.
extern "C" __global__ void psf_accumulate(double* grid, int n, const double* __restrict__ cx,
                                          const double* __restrict__ cy,
                                          const double* __restrict__ amp, int count, double w,
                                          int radius) {
    __shared__ double gx[2 * PSF_MAX_RADIUS + 1];
    __shared__ double gy[2 * PSF_MAX_RADIUS + 1];
    int b = blockIdx.x;
    if (b >= count) return;
    int width = 2 * radius + 1;
    int ix0 = psf_window_center(cx[b]) - radius;
    int iy0 = psf_window_center(cy[b]) - radius;
    for (int t = threadIdx.x; t < width; t += blockDim.x) {
        gx[t] = psf_gauss1d(ix0 + t, cx[b], w);
        gy[t] = psf_gauss1d(iy0 + t, cy[b], w);
    }
    __syncthreads();
    double a = amp[b];
    for (int t = threadIdx.x; t < width * width; t += blockDim.x) {
        int ty = t / width, tx = t % width;
        int i = ix0 + tx, j = iy0 + ty;
        if (i < 0 || i >= n || j < 0 || j >= n) continue;
        double v = a * gx[tx] * gy[ty];
        if (v != 0.0) atomicAdd(&grid[(long long)j * n + i], v);
    }
}

// Per-block partial sums of x (length n) into partial[blockIdx.x]; block size a power
// of two <= AIA_BLOCK. Finish with psf_sum_final on one block.
extern "C" __global__ void psf_sum_partial(const double* __restrict__ x, long long n,
                                           double* partial) {
    __shared__ double part[AIA_BLOCK];
    double local = 0.0;
    for (long long i = aia_gid(); i < n; i += aia_gstride()) local += x[i];
    unsigned t = threadIdx.x;
    part[t] = local;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) part[t] += part[t + s];
        __syncthreads();
    }
    if (t == 0) partial[blockIdx.x] = part[0];
}

// out[0] = sum of partial[0 .. m); launch with one block.
extern "C" __global__ void psf_sum_final(const double* __restrict__ partial, int m, double* out) {
    __shared__ double part[AIA_BLOCK];
    unsigned t = threadIdx.x;
    double local = 0.0;
    for (int i = t; i < m; i += blockDim.x) local += partial[i];
    part[t] = local;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) part[t] += part[t + s];
        __syncthreads();
    }
    if (t == 0) out[0] = part[0];
}

// Core Gaussian C = G(c, c) at pixel (i, j), c = n / 2 + 0.5, 0 outside the window.
AIA_DEV double psf_core_value(int i, int j, int n, double w, int radius) {
    int ic = n / 2;
    if (i < ic - radius || i > ic + radius || j < ic - radius || j > ic + radius) return 0.0;
    double c = (double)(n / 2) + 0.5;
    return psf_gauss1d(i, c, w) * psf_gauss1d(j, c, w);
}

// grid = f_spikes * grid * inv_sum_s + f_core * C * inv_sum_c, in place.
extern "C" __global__ void psf_combine(double* grid, int n, double inv_sum_s, double inv_sum_c,
                                       double w, int radius, double f_spikes, double f_core) {
    long long total = (long long)n * n;
    for (long long k = aia_gid(); k < total; k += aia_gstride()) {
        int j = (int)(k / n), i = (int)(k % n);
        double core = psf_core_value(i, j, n, w, radius);
        grid[k] = f_spikes * (grid[k] * inv_sum_s) + f_core * (core * inv_sum_c);
    }
}

// a[k] *= b[k] (complex f64); half spectra of length m = n (n / 2 + 1).
extern "C" __global__ void psf_mul_spectra(AiaComplex64* a, const AiaComplex64* __restrict__ b,
                                           long long m) {
    for (long long k = aia_gid(); k < m; k += aia_gstride()) {
        AiaComplex64 x = a[k], y = b[k];
        AiaComplex64 r;
        r.re = x.re * y.re - x.im * y.im;
        r.im = x.re * y.im + x.im * y.re;
        a[k] = r;
    }
}

// Source index of output pixel j after point reflection and fftshift (n even):
// out[j] = conv[(-(j + n/2)) mod n] = conv[(n/2 - j) mod n].
AIA_DEV int psf_finish_index(int j, int n) {
    int s = (n / 2 - j) % n;
    return s < 0 ? s + n : s;
}

// out[j, i] = |conv[src(j), src(i)]| * scale (scale = 1 / n^2); conv = Z2D output.
extern "C" __global__ void psf_finish(const double* __restrict__ conv, double* __restrict__ out,
                                      int n, double scale) {
    long long total = (long long)n * n;
    for (long long k = aia_gid(); k < total; k += aia_gstride()) {
        int j = (int)(k / n), i = (int)(k % n);
        double v = conv[(long long)psf_finish_index(j, n) * n + psf_finish_index(i, n)];
        out[k] = fabs(v) * scale;
    }
}
