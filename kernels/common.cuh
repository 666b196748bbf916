// common.cuh — helpers shared by every kernel file in kernels/.
//
// Compiled two ways:
//   * by NVRTC (the GPU path): the host passes this file as an NVRTC header, so
//     `#include "common.cuh"` resolves without a file system;
//   * as host C++ (tests/kernels_emulated.rs): kernels/emulate.h is included first and
//     defines AIA_EMULATE, the CUDA keywords and the few intrinsics used below.
//
// Only plain C/C++ types are used (no CUDA headers, no <cstdint>): NVRTC has no standard
// library headers. Every per-element function is `AIA_DEV` so it can be unit-tested on
// the host; cooperative pieces (block reductions, atomics) are kept small and separate.
//
// Conventions: images are row-major `[row y][col x]`, pixel centres at integer 0-based
// coordinates; linear indices are `long long`.

#ifndef AIAPREP_COMMON_CUH
#define AIAPREP_COMMON_CUH

#define AIA_DEV __device__ __forceinline__

// Threads per block used by every 1-D kernel and by the block reductions. Reductions
// require blockDim.x to be a power of two <= AIA_BLOCK (the emulator uses 1).
#define AIA_BLOCK 256

typedef unsigned char aia_u8;
typedef unsigned int aia_u32;
typedef unsigned long long aia_u64;

// A complex number with the layout of cufftComplex / cufftDoubleComplex.
struct AiaComplex32 {
    float re, im;
};
struct AiaComplex64 {
    double re, im;
};

// Quiet NaN without <cmath>.
AIA_DEV float aia_nanf() { return __int_as_float(0x7fc00000); }
// NaN test that survives any math flags (x != x only for NaN).
AIA_DEV bool aia_isnan(float x) { return x != x; }
AIA_DEV bool aia_isnan_d(double x) { return x != x; }
// Finite test on the bits (exponent not all ones), independent of math flags.
AIA_DEV bool aia_isfinite(float x) { return (__float_as_int(x) & 0x7f800000) != 0x7f800000; }

// Global thread index along x and the grid-stride step, as 64-bit integers.
AIA_DEV long long aia_gid() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
AIA_DEV long long aia_gstride() { return (long long)blockDim.x * gridDim.x; }

// scipy's "mirror" boundary (reflect about the edge pixel centres, period 2n - 2):
// ... c b | a b c d | c b ... . Any integer index maps into [0, n). n = 1 maps to 0.
AIA_DEV int aia_mirror(int i, int n) {
    if (n <= 1) return 0;
    int p = 2 * n - 2;
    int r = i % p;
    if (r < 0) r += p;
    return r < n ? r : p - r;
}

// Statistics of the non-NaN values of an image (used for DATAMIN/DATAMAX/DATAMEAN, the
// register `missing` value and clip range). 32 bytes; mirrors `gpu::convert::RawStats`.
struct AiaStats {
    double sum;
    double min;
    double max;
    aia_u64 count;
};

AIA_DEV AiaStats aia_stats_empty() {
    AiaStats s;
    s.sum = 0.0;
    s.min = __longlong_as_double(0x7ff0000000000000LL);  // +inf
    s.max = __longlong_as_double((long long)0xfff0000000000000ULL);  // -inf
    s.count = 0;
    return s;
}
AIA_DEV void aia_stats_push(AiaStats* s, double v) {
    s->sum += v;
    s->min = v < s->min ? v : s->min;
    s->max = v > s->max ? v : s->max;
    s->count += 1;
}
AIA_DEV AiaStats aia_stats_merge(AiaStats a, AiaStats b) {
    AiaStats r;
    r.sum = a.sum + b.sum;
    r.min = b.min < a.min ? b.min : a.min;
    r.max = b.max > a.max ? b.max : a.max;
    r.count = a.count + b.count;
    return r;
}

#endif  // AIAPREP_COMMON_CUH
