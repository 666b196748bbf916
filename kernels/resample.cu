// resample.cu — affine resampling for register (level 1 -> 1.5), sunpy/scipy semantics.
//
// Output pixel (x, y) samples the *unpadded* input at
//     (x_in, y_in) = base(y) + x * step,   base(y) = ref + M (-cx, y - cy),  step = M (1, 0)
// evaluated in f64 in exactly the order of the CPU path (aiaprep::geometry::RowMap), with
// M = R^-1 / s acting on (column, row) vectors (semantics.md §4.2, §6.3). The kernels are
// compiled with --fmad=false, so every coordinate is bit-identical to the CPU's: which
// output pixels are inside the frame, which pixel nearest picks and which mask taps count
// cannot differ between the two paths.
//
// The source buffer is the input padded by (pad_x, pad_y) pixels on each side (sunpy pads
// with `missing` before rotating); coordinates stay in the unpadded frame, and a tap at
// integer position i reads padded column i + pad_x.
//
// Interpolations (ResampleParams.interp):
//   0 nearest  — scipy order 0: index floor(c + 0.5)
//   1 linear   — scipy order 1
//   2 spline   — scipy order 3: cubic B-spline on coefficients from the prefilter kernels
//                below (mirror boundary), taps floor(c) - 1 .. floor(c) + 2
//   3 keys     — cubic convolution a = -0.5 (SolarSoft/IDL "cubic = -0.5"), same taps
// Boundary (scipy mode='constant' on the padded frame): a coordinate < -pad or
// > n - 1 + pad on either axis gives `missing`; inside, taps beyond the padded edge use
// mirrored indices (also for keys: a choice, IDL's edge rule is not documented).
// sunpy's NaN rule (§6.4): NaNs are filled before resampling; a dilated NaN mask (u8,
// see mask_dilate) is sampled with bilinear weights (nearest for order 0) and the output
// is NaN where that is > 0. Clipping to [clip_lo, clip_hi] happens before the NaN rule.
//
// Pixels are f32, coordinates and weights f64, one output pixel per thread.

#include "common.cuh"

// Must match gpu::register::RawResampleParams (#[repr(C)], 112 bytes).
struct ResampleParams {
    double ref_x, ref_y;           // input point that the output centre maps to (0-based, unpadded)
    double m00, m01, m10, m11;     // out -> in matrix, row-major, acting on (dx, dy)
    double cx, cy;                 // output centre (0-based), usually (n_out - 1) / 2
    int nx_in, ny_in;              // input size, unpadded
    int pad_x, pad_y;              // padding on each side; the source is (nx + 2 pad_x) wide
    int nx_out, ny_out;            // output size
    int interp;                    // 0 nearest, 1 linear, 2 spline (coefficients), 3 keys
    int use_mask;                  // 1: `dmask` holds the dilated NaN mask of the padded input
    float missing;                 // value outside the padded input
    float clip_lo, clip_hi;        // clip range (applied when clip != 0)
    int clip;
};
static_assert(sizeof(ResampleParams) == 112, "ResampleParams layout");

// ---------------------------------------------------------------- per-element pieces

// Input coordinate (unpadded frame) of output pixel (x, y), as the CPU's RowMap::at.
AIA_DEV void rs_map(const ResampleParams& p, int x, int y, double* xin, double* yin) {
    double dx0 = -p.cx;
    double dy = (double)y - p.cy;
    double bx = p.ref_x + p.m00 * dx0 + p.m01 * dy;
    double by = p.ref_y + p.m10 * dx0 + p.m11 * dy;
    double xf = (double)x;
    *xin = bx + xf * p.m00;
    *yin = by + xf * p.m10;
}

// scipy mode='constant' validity on the padded frame: -pad <= c <= n - 1 + pad on both
// axes (NaN is outside); the CPU's bounds, to the bit.
AIA_DEV bool rs_inside(const ResampleParams& p, double x, double y) {
    return x >= -(double)p.pad_x && x <= (double)(p.nx_in - 1 + p.pad_x) &&
           y >= -(double)p.pad_y && y <= (double)(p.ny_in - 1 + p.pad_y);
}

// Cubic B-spline weights for taps floor(c) - 1 .. floor(c) + 2, t = c - floor(c).
AIA_DEV void rs_bspline3_weights(double t, double* w) {
    double s = 1.0 - t;
    double t2 = t * t, t3 = t2 * t;
    w[0] = s * s * s / 6.0;
    w[1] = (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0;
    w[2] = (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0;
    w[3] = t3 / 6.0;
}

// Keys cubic convolution kernel with a = -0.5 at distance d >= 0.
AIA_DEV double rs_keys_kernel(double d) {
    const double a = -0.5;
    if (d < 1.0) return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0;
    if (d < 2.0) return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a;
    return 0.0;
}

// Keys weights for taps floor(c) - 1 .. floor(c) + 2, t = c - floor(c).
AIA_DEV void rs_keys_weights(double t, double* w) {
    w[0] = rs_keys_kernel(1.0 + t);
    w[1] = rs_keys_kernel(t);
    w[2] = rs_keys_kernel(1.0 - t);
    w[3] = rs_keys_kernel(2.0 - t);
}

// The samplers read the padded source (width nx = n_in + 2 pad) at unpadded coordinates
// (x, y): floor and fraction are taken on the unpadded values, as on the CPU, and the tap
// indices shifted by the padding.

AIA_DEV float rs_sample_nearest(const float* img, int nx, int ny, int px, int py, double x,
                                double y) {
    int ix = aia_mirror((int)floor(x + 0.5) + px, nx);
    int iy = aia_mirror((int)floor(y + 0.5) + py, ny);
    return img[(long long)iy * nx + ix];
}

AIA_DEV float rs_sample_linear(const float* img, int nx, int ny, int px, int py, double x,
                               double y) {
    double fx = floor(x), fy = floor(y);
    double tx = x - fx, ty = y - fy;
    int x0 = aia_mirror((int)fx + px, nx), x1 = aia_mirror((int)fx + 1 + px, nx);
    int y0 = aia_mirror((int)fy + py, ny), y1 = aia_mirror((int)fy + 1 + py, ny);
    const float* r0 = img + (long long)y0 * nx;
    const float* r1 = img + (long long)y1 * nx;
    double a = (1.0 - tx) * (double)r0[x0] + tx * (double)r0[x1];
    double b = (1.0 - tx) * (double)r1[x0] + tx * (double)r1[x1];
    return (float)((1.0 - ty) * a + ty * b);
}

// 4x4 separable cubic (B-spline on coefficients when keys == 0, Keys a = -0.5 otherwise).
AIA_DEV float rs_sample_cubic(const float* img, int nx, int ny, int px, int py, double x,
                              double y, int keys) {
    double fx = floor(x), fy = floor(y);
    double wx[4], wy[4];
    if (keys) {
        rs_keys_weights(x - fx, wx);
        rs_keys_weights(y - fy, wy);
    } else {
        rs_bspline3_weights(x - fx, wx);
        rs_bspline3_weights(y - fy, wy);
    }
    int ix = (int)fx - 1 + px, iy = (int)fy - 1 + py;
    int cols[4];
    for (int k = 0; k < 4; ++k) cols[k] = aia_mirror(ix + k, nx);
    double acc = 0.0;
    for (int r = 0; r < 4; ++r) {
        const float* row = img + (long long)aia_mirror(iy + r, ny) * nx;
        double racc = 0.0;
        for (int k = 0; k < 4; ++k) racc += wx[k] * (double)row[cols[k]];
        acc += wy[r] * racc;
    }
    return (float)acc;
}

// Whether the resampled dilated NaN mask (padded frame) is > 0 at unpadded (x, y): nearest
// tap for order 0, else any bilinear tap with a positive weight whose mask is set.
AIA_DEV bool rs_mask_hit(const aia_u8* m, int nx, int ny, int px, int py, double x, double y,
                         int nearest) {
    if (nearest) {
        int ix = aia_mirror((int)floor(x + 0.5) + px, nx);
        int iy = aia_mirror((int)floor(y + 0.5) + py, ny);
        return m[(long long)iy * nx + ix] != 0;
    }
    double fx = floor(x), fy = floor(y);
    bool tx = (x - fx) > 0.0, ty = (y - fy) > 0.0;
    int x0 = aia_mirror((int)fx + px, nx), x1 = aia_mirror((int)fx + 1 + px, nx);
    int y0 = aia_mirror((int)fy + py, ny), y1 = aia_mirror((int)fy + 1 + py, ny);
    const aia_u8* r0 = m + (long long)y0 * nx;
    const aia_u8* r1 = m + (long long)y1 * nx;
    return r0[x0] || (tx && r0[x1]) || (ty && r1[x0]) || (tx && ty && r1[x1]);
}

// The complete value of output pixel (x, y): sample, clip, NaN rule.
AIA_DEV float rs_output_pixel(const float* src, const aia_u8* dmask, const ResampleParams& p,
                              int x, int y) {
    double xin, yin;
    rs_map(p, x, y, &xin, &yin);
    int nxp = p.nx_in + 2 * p.pad_x, nyp = p.ny_in + 2 * p.pad_y;
    float v;
    bool inside = rs_inside(p, xin, yin);
    if (!inside) {
        v = p.missing;
    } else if (p.interp == 0) {
        v = rs_sample_nearest(src, nxp, nyp, p.pad_x, p.pad_y, xin, yin);
    } else if (p.interp == 1) {
        v = rs_sample_linear(src, nxp, nyp, p.pad_x, p.pad_y, xin, yin);
    } else {
        v = rs_sample_cubic(src, nxp, nyp, p.pad_x, p.pad_y, xin, yin, p.interp == 3);
    }
    if (p.clip) v = v < p.clip_lo ? p.clip_lo : (v > p.clip_hi ? p.clip_hi : v);
    if (p.use_mask && inside &&
        rs_mask_hit(dmask, nxp, nyp, p.pad_x, p.pad_y, xin, yin, p.interp == 0))
        v = aia_nanf();
    return v;
}

// ---------------------------------------------------- B-spline prefilter (per line)
//
// The cubic B-spline coefficients c of samples s (scipy spline_filter1d, mirror
// boundary) solve (c[k-1] + 4 c[k] + c[k+1]) / 6 = s[k] on the mirror-extended line.
// Two equivalent kernels:
//   * recursive (scipy's algorithm): gain 6, causal then anti-causal first-order filter
//     with pole z = sqrt(3) - 2 and the exact mirror initialisations; one thread per line;
//   * FIR: the same inverse filter written as its impulse response sqrt(3) z^|m|,
//     truncated at |m| <= RS_FIR_HALF (|z|^25 ~ 5e-15: below f32 resolution), one thread
//     per coefficient — fully parallel, which is what the GPU needs. Used by default.

#define RS_POLE (-0.26794919243112270)  // sqrt(3) - 2
#define RS_SQRT3 1.7320508075688772
#define RS_FIR_HALF 24

// Coefficient k of the line (base, stride, n) by the truncated impulse response.
AIA_DEV float rs_spline_fir_at(const float* base, long long stride, int n, int k) {
    if (n <= 1) return base[0];
    double acc = (double)base[(long long)k * stride];
    double zp = RS_POLE;
    if (k >= RS_FIR_HALF && k + RS_FIR_HALF < n) {
        for (int m = 1; m <= RS_FIR_HALF; ++m) {
            acc += zp * ((double)base[(long long)(k - m) * stride] +
                         (double)base[(long long)(k + m) * stride]);
            zp *= RS_POLE;
        }
    } else {
        for (int m = 1; m <= RS_FIR_HALF; ++m) {
            acc += zp * ((double)base[(long long)aia_mirror(k - m, n) * stride] +
                         (double)base[(long long)aia_mirror(k + m, n) * stride]);
            zp *= RS_POLE;
        }
    }
    return (float)(RS_SQRT3 * acc);
}

// In-place recursive prefilter of one line (f64 state, f32 storage).
AIA_DEV void rs_spline_line_recursive(float* base, long long stride, int n) {
    if (n <= 1) return;
    const double z = RS_POLE;
    const int period = 2 * n - 2;
    // causal initialisation: c+[0] = sum_{i>=0} z^i s_ext[i] over the mirror-periodic
    // extension = sum_{i<period} z^i s_ext[i] / (1 - z^period); terms below 1e-30 dropped.
    double zi = 1.0, acc = 0.0, zperiod = 0.0;
    int i = 0;
    for (; i < period && fabs(zi) > 1e-30; ++i) {
        acc += zi * (double)base[(long long)aia_mirror(i, n) * stride];
        zi *= z;
    }
    if (i == period) zperiod = zi;
    double cp = 6.0 * acc / (1.0 - zperiod);  // c+[0]
    double cpm1 = cp;                           // c+[k-1] after the loop: c+[n-2]
    base[0] = (float)cp;
    for (int k = 1; k < n; ++k) {
        cpm1 = cp;
        cp = 6.0 * (double)base[(long long)k * stride] + z * cp;
        base[(long long)k * stride] = (float)cp;
    }
    // anti-causal initialisation: c[n-1] = z / (z^2 - 1) * (c+[n-1] + z c+[n-2])
    double cn = z / (z * z - 1.0) * (cp + z * cpm1);
    base[(long long)(n - 1) * stride] = (float)cn;
    for (int k = n - 2; k >= 0; --k) {
        double c = z * (cn - (double)base[(long long)k * stride]);
        base[(long long)k * stride] = (float)c;
        cn = c;
    }
}

// ------------------------------------------------------------------ kernels

// out = B-spline coefficients of `in` along one axis (axis 0: along x / rows,
// axis 1: along y / columns). 2-D launch over (x, y). Not in place.
extern "C" __global__ void spline_prefilter_fir(const float* __restrict__ in,
                                                float* __restrict__ out, int nx, int ny,
                                                int axis) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= nx || y >= ny) return;
    float v;
    if (axis == 0) v = rs_spline_fir_at(in + (long long)y * nx, 1, nx, x);
    else v = rs_spline_fir_at(in + x, nx, ny, y);
    out[(long long)y * nx + x] = v;
}

// In-place recursive prefilter, one thread per line (axis 0: rows, axis 1: columns).
extern "C" __global__ void spline_prefilter_recursive(float* data, int nx, int ny, int axis) {
    long long line = aia_gid();
    if (axis == 0) {
        if (line < ny) rs_spline_line_recursive(data + line * nx, 1, nx);
    } else {
        if (line < nx) rs_spline_line_recursive(data + line, nx, ny);
    }
}

// The resample itself; 2-D launch over the output. `dmask` is NULL when `p.use_mask` is 0
// (`nullable`: the host's typed launcher takes an optional buffer there, see build.rs).
extern "C" __global__ void resample_affine(const float* __restrict__ src,
                                           const aia_u8* __restrict__ dmask /* nullable */,
                                           float* __restrict__ out, ResampleParams p) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= p.nx_out || y >= p.ny_out) return;
    out[(long long)y * p.nx_out + x] = rs_output_pixel(src, dmask, p, x, y);
}

// dst ((nx + 2 pad_x) x (ny + 2 pad_y)) = src surrounded by pad_x columns and pad_y rows
// of `value` on each side (sunpy's padding; `value` may be NaN: padding that is missing data).
extern "C" __global__ void pad_constant(const float* __restrict__ src, int nx, int ny,
                                        float* __restrict__ dst, int pad_x, int pad_y,
                                        float value) {
    int nxp = nx + 2 * pad_x, nyp = ny + 2 * pad_y;
    long long n = (long long)nxp * nyp;
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        int y = (int)(i / nxp) - pad_y, x = (int)(i % nxp) - pad_x;
        dst[i] = (x >= 0 && x < nx && y >= 0 && y < ny) ? src[(long long)y * nx + x] : value;
    }
}

// mask[i] = isnan(img[i]); NaNs replaced by `fill` (sunpy fills with nanmedian).
extern "C" __global__ void nan_mask_fill(float* img, aia_u8* mask, long long n, float fill) {
    for (long long i = aia_gid(); i < n; i += aia_gstride()) {
        bool bad = aia_isnan(img[i]);
        mask[i] = bad ? 1 : 0;
        if (bad) img[i] = fill;
    }
}

// One separable half of the box dilation (k = 2 r + 1, zero outside): out = OR of in
// over [i - r, i + r] along `axis` (0: x, 1: y). Two launches make the k x k box.
extern "C" __global__ void mask_dilate(const aia_u8* __restrict__ in, aia_u8* __restrict__ out,
                                       int nx, int ny, int r, int axis) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= nx || y >= ny) return;
    aia_u8 hit = 0;
    for (int d = -r; d <= r && !hit; ++d) {
        int xx = axis == 0 ? x + d : x, yy = axis == 0 ? y : y + d;
        if (xx >= 0 && xx < nx && yy >= 0 && yy < ny) hit = in[(long long)yy * nx + xx];
    }
    out[(long long)y * nx + x] = hit ? 1 : 0;
}
