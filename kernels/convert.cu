// convert.cu — pixel type conversion and image statistics.
//
//   i16_to_f32      int16 (as stored, BLANK = -32768) -> f32 with BSCALE/BZERO, BLANK -> NaN
//   f32_to_i16      f32 -> int16: round half away from zero, saturate to [-32767, 32767]
//                   (-32768 is reserved for BLANK), NaN -> -32768
//   f32_to_i16_scaled  the same for stored = (physical - BZERO) / BSCALE, in f64 (as the
//                   FITS writer of the CPU path, aiaprep::fits::write)
//   f32_divide      x = (float)((double)x / t): exposure normalisation (DN -> DN/s)
//   f32_clamp       x = min(max(x, lo), hi), NaN kept: register's clip when it can only be
//                   known after resampling
//   f32_estimate_error  out = the 1-sigma uncertainty of counts in (aiapy estimate_error;
//                   aiaprep::uncertainty::ErrorRule: the same operations in the same order)
//   stats_*         min / max / sum / count of the non-NaN (non-BLANK) values: per-block
//                   partials, then stats_finalize on one block (deterministic, no atomics)
//   hist_f32_keys   histogram of 11- or 10-bit digits of order-preserving f32 keys, for the
//                   exact median (radix select on the host, three passes)

#include "common.cuh"

static_assert(sizeof(AiaStats) == 32, "AiaStats layout");

#define CV_BLANK (-32768)

AIA_DEV float cv_i16_to_f32(short v, int has_blank, int blank, double bscale, double bzero) {
    if (has_blank && (int)v == blank) return aia_nanf();
    return (float)(bzero + bscale * (double)v);
}

AIA_DEV short cv_f32_to_i16(float v) {
    if (aia_isnan(v)) return (short)CV_BLANK;
    float r = roundf(v);  // half away from zero
    if (r > 32767.0f) return (short)32767;
    if (r < -32767.0f) return (short)-32767;
    return (short)r;
}

// stored = (v - bzero) / bscale in f64, clamped to [-32767, 32767], rounded half away from
// zero by the exact fractional part; NaN -> BLANK. Bit-identical to the CPU writer.
AIA_DEV short cv_f64_to_i16_scaled(float v, double bscale, double bzero) {
    double x = ((double)v - bzero) / bscale;
    if (aia_isnan_d(x)) return (short)CV_BLANK;
    double c = x < -32767.0 ? -32767.0 : (x > 32767.0 ? 32767.0 : x);
    int t = (int)c;
    double frac = c - (double)t;
    return (short)(t + (frac >= 0.5 ? 1 : 0) - (frac <= -0.5 ? 1 : 0));
}

// Order-preserving map of a (non-NaN) f32 to u32: a < b  <=>  key(a) < key(b).
AIA_DEV aia_u32 cv_f32_key(float v) {
    aia_u32 u = __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

extern "C" __global__ void i16_to_f32(const short* __restrict__ in, float* __restrict__ out,
                                      long long n, int has_blank, int blank, double bscale,
                                      double bzero) {
    for (long long i = aia_gid(); i < n; i += aia_gstride())
        out[i] = cv_i16_to_f32(in[i], has_blank, blank, bscale, bzero);
}

extern "C" __global__ void f32_to_i16(const float* __restrict__ in, short* __restrict__ out,
                                      long long n) {
    for (long long i = aia_gid(); i < n; i += aia_gstride()) out[i] = cv_f32_to_i16(in[i]);
}

extern "C" __global__ void f32_to_i16_scaled(const float* __restrict__ in,
                                             short* __restrict__ out, long long n,
                                             double bscale, double bzero) {
    for (long long i = aia_gid(); i < n; i += aia_gstride())
        out[i] = cv_f64_to_i16_scaled(in[i], bscale, bzero);
}

extern "C" __global__ void f32_divide(float* x, long long n, double t) {
    for (long long i = aia_gid(); i < n; i += aia_gstride()) x[i] = (float)((double)x[i] / t);
}

extern "C" __global__ void f32_clamp(float* x, long long n, float lo, float hi) {
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        float v = x[i];
        x[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}

// aiapy's estimate_error of one count value c (DN): the terms of ErrorRule::eval_n in its
// order; `unit` leaves out the divisions by sqrt(n_sample) (x / 1 = x). Constants: dark
// current 0.18 DN, quantisation 1/sqrt(12) DN, compression only from 25 DN.
AIA_DEV float cv_estimate_error(float in, double gain, double compress, double sn, double read,
                                double quant, double fcal, double fchi, int unit) {
    const double dark = 0.18;
    const double qrms = 0.2886751345948129;
    double c = (double)in;
    double shot = sqrt(c / gain) * gain;
    if (!unit) shot = shot / sn;
    double comp = shot / compress;
    if (comp < qrms) comp = qrms;
    if (c < 25.0) comp = 0.0;
    if (!unit) comp = comp / sn;
    double calib = fcal * c;
    double chianti = fchi * c;
    double s = __dmul_rn(shot, shot);
    s = __dadd_rn(s, __dmul_rn(dark, dark));
    s = __dadd_rn(s, __dmul_rn(read, read));
    s = __dadd_rn(s, __dmul_rn(quant, quant));
    s = __dadd_rn(s, __dmul_rn(comp, comp));
    s = __dadd_rn(s, __dmul_rn(chianti, chianti));
    s = __dadd_rn(s, __dmul_rn(calib, calib));
    return (float)sqrt(s);
}

extern "C" __global__ void f32_estimate_error(const float* __restrict__ in,
                                              float* __restrict__ out, long long n,
                                              double gain, double compress, double sn,
                                              double read, double quant, double fcal,
                                              double fchi, int unit) {
    for (long long i = aia_gid(); i < n; i += aia_gstride())
        out[i] = cv_estimate_error(in[i], gain, compress, sn, read, quant, fcal, fchi, unit);
}

// Shared-memory tree reduction of AiaStats; block size a power of two <= AIA_BLOCK.
AIA_DEV void cv_block_reduce_store(AiaStats local, AiaStats* dst) {
    __shared__ AiaStats part[AIA_BLOCK];
    unsigned t = threadIdx.x;
    part[t] = local;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) part[t] = aia_stats_merge(part[t], part[t + s]);
        __syncthreads();
    }
    if (t == 0) *dst = part[0];
}

extern "C" __global__ void stats_f32_partial(const float* __restrict__ x, long long n,
                                             AiaStats* partial) {
    AiaStats s = aia_stats_empty();
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        float v = x[i];
        if (!aia_isnan(v)) aia_stats_push(&s, (double)v);
    }
    cv_block_reduce_store(s, &partial[blockIdx.x]);
}

extern "C" __global__ void stats_i16_partial(const short* __restrict__ x, long long n,
                                             int has_blank, int blank, AiaStats* partial) {
    AiaStats s = aia_stats_empty();
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        short v = x[i];
        if (!(has_blank && (int)v == blank)) aia_stats_push(&s, (double)v);
    }
    cv_block_reduce_store(s, &partial[blockIdx.x]);
}

// out[0] = merge of partial[0 .. m); one block.
extern "C" __global__ void stats_finalize(const AiaStats* __restrict__ partial, int m,
                                          AiaStats* out) {
    AiaStats s = aia_stats_empty();
    for (int i = threadIdx.x; i < m; i += blockDim.x) s = aia_stats_merge(s, partial[i]);
    cv_block_reduce_store(s, out);
}

#define CV_HIST_BINS 2048

// hist[(key >> shift) & (2^bits - 1)] += 1 for every non-NaN x whose key matches
// `prefix` on the bits in `prefix_mask`. bits <= 11; hist has 2^bits zeroed entries.
extern "C" __global__ void hist_f32_keys(const float* __restrict__ x, long long n,
                                         aia_u32 prefix, aia_u32 prefix_mask, int shift,
                                         int bits, aia_u32* hist) {
    __shared__ aia_u32 local[CV_HIST_BINS];
    int nb = 1 << bits;
    aia_u32 digit_mask = (aia_u32)nb - 1u;
    for (int b = threadIdx.x; b < nb; b += blockDim.x) local[b] = 0;
    __syncthreads();
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        float v = x[i];
        if (aia_isnan(v)) continue;
        aia_u32 k = cv_f32_key(v);
        if ((k & prefix_mask) == prefix) atomicAdd(&local[(k >> shift) & digit_mask], 1u);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < nb; b += blockDim.x)
        if (local[b]) atomicAdd(&hist[b], local[b]);
}
