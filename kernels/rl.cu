// rl.cu — the element-wise steps of one Richardson–Lucy iteration (semantics.md §3),
// fused so that each step is one pass over memory; the FFTs are cuFFT R2C / C2R.
//
// One iteration, with H = rfft2(fftshift(psf)) (the cached OTF) and s = 1 / (ny nx)
// (cuFFT is unnormalised; s is folded into the spectrum multiply):
//     E = rfft2(u);  E *= H s           (rl_mul_otf, conj = 0)
//     e = irfft2(E); e = d / e guarded   (rl_ratio, see rl_ratio_value)
//     R = rfft2(e);  R *= conj(H) s     (rl_mul_otf, conj = 1)
//     c = irfft2(R); u *= c             (rl_update)
// Before the first iteration rl_prepare records non-finite pixels (NaN = missing, ±inf)
// in a mask, fills them with 0, clips negatives to 0 (aiapy clip_negative) and sets
// u = d; afterwards rl_restore makes them NaN (as the CPU path). The guard is a deliberate deviation from aiapy (which
// divides unguarded): with floor 0 (the default) it is the CPU path's rule
// (aiaprep::cpu::deconvolve::ratio: the quotient wherever it is finite, else 0), so both
// paths agree; floor > 0 selects d / max(e, floor) instead.

#include "common.cuh"

static_assert(sizeof(AiaComplex32) == 8, "AiaComplex32 layout");

AIA_DEV AiaComplex32 rl_cmul(AiaComplex32 a, AiaComplex32 b, float s, int conj) {
    float bim = conj ? -b.im : b.im;
    AiaComplex32 r;
    r.re = (a.re * b.re - a.im * bim) * s;
    r.im = (a.re * bim + a.im * b.re) * s;
    return r;
}

// floor_ > 0: d / max(e, floor_). floor_ <= 0: d / e where that is finite, else 0
// (e = 0, 0/0, or an f32 overflow for tiny e) — bit-identical to the CPU path.
AIA_DEV float rl_ratio_value(float d, float e, float floor_) {
    if (floor_ > 0.0f) {
        float den = e > floor_ ? e : floor_;
        return d / den;
    }
    float q = d / e;
    return aia_isfinite(q) ? q : 0.0f;
}

// Prepared observation: non-finite -> 0 (mask = 1), negatives -> 0 when clip_negative.
AIA_DEV float rl_prepare_value(float d, int clip_negative) {
    if (!aia_isfinite(d)) return 0.0f;
    if (clip_negative && d < 0.0f) return 0.0f;
    return d;
}

extern "C" __global__ void rl_prepare(float* d, float* u, aia_u8* mask, long long n,
                                      int clip_negative) {
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        float v = d[i];
        mask[i] = aia_isfinite(v) ? 0 : 1;
        v = rl_prepare_value(v, clip_negative);
        d[i] = v;
        u[i] = v;
    }
}

// spec[i] *= otf[i] * scale (conj: times conj(otf[i])). n = ny (nx / 2 + 1).
extern "C" __global__ void rl_mul_otf(AiaComplex32* spec, const AiaComplex32* __restrict__ otf,
                                      long long n, float scale, int conj) {
    for (long long i = aia_gid(); i < n; i += aia_gstride())
        spec[i] = rl_cmul(spec[i], otf[i], scale, conj);
}

// e[i] = rl_ratio_value(d[i], e[i], floor)
extern "C" __global__ void rl_ratio(const float* __restrict__ d, float* e, long long n,
                                    float floor_) {
    for (long long i = aia_gid(); i < n; i += aia_gstride())
        e[i] = rl_ratio_value(d[i], e[i], floor_);
}

// u[i] *= c[i]
extern "C" __global__ void rl_update(float* u, const float* __restrict__ c, long long n) {
    for (long long i = aia_gid(); i < n; i += aia_gstride()) u[i] = u[i] * c[i];
}

// u[i] = NaN where mask[i]
extern "C" __global__ void rl_restore(float* u, const aia_u8* __restrict__ mask, long long n) {
    for (long long i = aia_gid(); i < n; i += aia_gstride())
        if (mask[i]) u[i] = aia_nanf();
}

// OTF from a centred f64 PSF: out = ifftshift(psf) as f32 is not precise enough for the
// spectrum, so the OTF is made in f64 (D2Z of otf_shift_f64's output) and rounded by
// complex_f64_to_f32. out[y][x] = psf[(y + ny/2) % ny][(x + nx/2) % nx] moves the peak at
// [ny/2, nx/2] to [0, 0] for any size (numpy ifftshift; the same as fftshift when even).
extern "C" __global__ void otf_shift_f64(const double* __restrict__ psf, double* __restrict__ out,
                                         int nx, int ny) {
    long long n = (long long)nx * ny;
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        int y = (int)(i / nx), x = (int)(i % nx);
        int sy = (y + ny / 2) % ny, sx = (x + nx / 2) % nx;
        out[i] = psf[(long long)sy * nx + sx];
    }
}

extern "C" __global__ void complex_f64_to_f32(const AiaComplex64* __restrict__ in,
                                              AiaComplex32* __restrict__ out, long long n) {
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        AiaComplex32 c;
        c.re = (float)in[i].re;
        c.im = (float)in[i].im;
        out[i] = c;
    }
}
