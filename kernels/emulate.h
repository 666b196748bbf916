// emulate.h — compile the kernels in kernels/*.cu as ordinary host C++ (no GPU, no CUDA).
//
// Include this first, then the .cu files. It defines the CUDA keywords as nothing or
// `inline`, provides blockIdx/threadIdx/blockDim/gridDim as globals that a sequential
// driver sets (`aia_emu::launch`), and the few intrinsics the kernels use.
//
// Semantics: `launch(grid, block, f)` runs every thread of every block one after the
// other. That is exact for kernels in which threads do not communicate. Kernels with
// `__syncthreads` / shared-memory reductions are exact only with one thread per block
// (`block = 1`), which is how the emulation tests launch them; atomics are plain
// read-modify-write (the emulation is sequential). Used by tests/kernels_emulated.rs.
//
// Not used by the GPU build: NVRTC never sees this file (it is embedded like every
// kernels/*.h but not included by any .cu file).

#ifndef AIAPREP_EMULATE_H
#define AIAPREP_EMULATE_H

#define AIA_EMULATE 1

#include <cmath>
#include <cstring>
#include <cstdint>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __constant__ static const
#define __restrict__ __restrict

struct aia_dim3 {
    unsigned int x, y, z;
};

namespace aia_emu {
inline aia_dim3& block_idx() { static aia_dim3 v{0, 0, 0}; return v; }
inline aia_dim3& thread_idx() { static aia_dim3 v{0, 0, 0}; return v; }
inline aia_dim3& block_dim() { static aia_dim3 v{1, 1, 1}; return v; }
inline aia_dim3& grid_dim() { static aia_dim3 v{1, 1, 1}; return v; }
}  // namespace aia_emu

#define blockIdx (aia_emu::block_idx())
#define threadIdx (aia_emu::thread_idx())
#define blockDim (aia_emu::block_dim())
#define gridDim (aia_emu::grid_dim())

inline void __syncthreads() {}

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned int __float_as_uint(float f) { unsigned int i; std::memcpy(&i, &f, 4); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }

template <class T> inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }

// The CUDA math functions used by the kernels, from <cmath>.
using std::acos;
using std::asin;
using std::ceil;
using std::cos;
using std::exp;
using std::fabs;
using std::floor;
using std::round;
using std::sin;
using std::sqrt;
// roundf, fminf, ... come from <math.h> (global namespace) as in CUDA.

namespace aia_emu {
// Run kernel body `f` for every (block, thread) of the launch, sequentially.
template <class F>
void launch(aia_dim3 grid, aia_dim3 block, F f) {
    grid_dim() = grid;
    block_dim() = block;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx)
                for (unsigned tz = 0; tz < block.z; ++tz)
                    for (unsigned ty = 0; ty < block.y; ++ty)
                        for (unsigned tx = 0; tx < block.x; ++tx) {
                            block_idx() = aia_dim3{bx, by, bz};
                            thread_idx() = aia_dim3{tx, ty, tz};
                            f();
                        }
}
}  // namespace aia_emu

#endif  // AIAPREP_EMULATE_H
