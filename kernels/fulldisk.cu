// fulldisk.cu — the edge half of sunpy's contains_full_disk (semantics.md §7.1), fused
// into one pass over the 2 nx + 2 ny - 4 border pixel centres with a block reduction.
//
// For each border pixel centre p (0-based), the FITS-WCS TAN deprojection with the
// reference (CRVAL) and LONPOLE = 180 deg gives a helioprojective direction (Tx, Ty);
// the pixel is on the disk when arccos(cos Tx cos Ty) <= arcsin(RSUN_REF / DSUN_OBS).
// The kernel counts on-disk border pixels; the map contains the full disk when the count
// is 0 and the Sun centre lies inside the map (that one-point test is done on the host).
//
// Deprojection as a tangent-plane vector: with (xi, eta) the intermediate world
// coordinates in radians, the unit direction is (d0 + xi e_lon + eta e_lat) / norm where
// d0, e_lon, e_lat are the reference direction and its local east/north unit vectors;
// its component along (lon 0, lat 0) is cos Tx cos Ty. This equals the spherical
// rotation of FITS Paper II for zenithal projections with phi_p = 180 deg.

#include "common.cuh"

// Must match gpu::fulldisk::RawFullDiskParams (#[repr(C)], 112 bytes).
struct FullDiskParams {
    double ref_x, ref_y;          // reference pixel, 0-based (CRPIX - 1)
    double pc00, pc01, pc10, pc11; // rotation (PC) matrix acting on (x, y)
    double cdelt_x, cdelt_y;      // plate scale in radians per pixel
    double sin_lon0, cos_lon0;    // CRVAL1 (Tx of the reference pixel)
    double sin_lat0, cos_lat0;    // CRVAL2
    double limit;                 // arcsin(RSUN_REF / DSUN_OBS), radians
    int nx, ny;
};
static_assert(sizeof(FullDiskParams) == 112, "FullDiskParams layout");

// Angular distance (radians) of pixel (x, y) from the disk centre (Tx, Ty) = (0, 0).
AIA_DEV double fd_center_distance(const FullDiskParams& p, double x, double y) {
    double dx = x - p.ref_x, dy = y - p.ref_y;
    double xi = p.cdelt_x * (p.pc00 * dx + p.pc01 * dy);
    double eta = p.cdelt_y * (p.pc10 * dx + p.pc11 * dy);
    // Cartesian frame with X towards (0, 0), Y towards lon 90 deg, Z towards lat 90 deg.
    //   d0    = (cos lat0 cos lon0, cos lat0 sin lon0, sin lat0)
    //   e_lon = (-sin lon0, cos lon0, 0)
    //   e_lat = (-sin lat0 cos lon0, -sin lat0 sin lon0, cos lat0)
    double X = p.cos_lat0 * p.cos_lon0 - xi * p.sin_lon0 - eta * p.sin_lat0 * p.cos_lon0;
    double c = X / sqrt(1.0 + xi * xi + eta * eta);
    c = c > 1.0 ? 1.0 : (c < -1.0 ? -1.0 : c);
    return acos(c);
}

// The k-th border pixel: row 0 (k < nx), row ny - 1, then columns 0 and nx - 1 of rows
// 1 .. ny - 2 (alternating). Requires nx, ny >= 2; k < 2 nx + 2 ny - 4.
AIA_DEV void fd_edge_pixel(long long k, int nx, int ny, int* x, int* y) {
    if (k < nx) {
        *x = (int)k;
        *y = 0;
    } else if (k < 2LL * nx) {
        *x = (int)(k - nx);
        *y = ny - 1;
    } else {
        long long r = k - 2LL * nx;
        *x = (r & 1) ? nx - 1 : 0;
        *y = 1 + (int)(r >> 1);
    }
}

AIA_DEV bool fd_on_disk(const FullDiskParams& p, double x, double y) {
    return fd_center_distance(p, x, y) <= p.limit;
}

// count += number of border pixels on the disk. `count` must be zeroed before launch.
// Block size: a power of two <= AIA_BLOCK.
extern "C" __global__ void fulldisk_edge_count(FullDiskParams p, aia_u64* count) {
    __shared__ aia_u32 part[AIA_BLOCK];
    long long n_edge = 2LL * p.nx + 2LL * p.ny - 4;
    aia_u32 local = 0;
    for (long long k = aia_gid(); k < n_edge; k += aia_gstride()) {
        int x, y;
        fd_edge_pixel(k, p.nx, p.ny, &x, &y);
        if (fd_on_disk(p, (double)x, (double)y)) local += 1;
    }
    unsigned t = threadIdx.x;
    part[t] = local;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) part[t] += part[t + s];
        __syncthreads();
    }
    if (t == 0 && part[0] != 0) atomicAdd(count, (aia_u64)part[0]);
}
