// emulate.h — compile the kernels in kernels/*.cu as ordinary host C++ (no GPU, no CUDA).
//
// Include this first, then the .cu files. It defines the CUDA keywords as nothing or
// `inline`, provides blockIdx/threadIdx/blockDim/gridDim as globals that a sequential
// driver sets (`aia_emu::launch`), and the few intrinsics the kernels use.
//
// Semantics: `launch(grid, block, f)` runs every thread of every block one after the
// other. That is exact for kernels in which threads do not communicate. Kernels with
// `__syncthreads` / shared-memory reductions are exact only with one thread per block
// there. `launch_coop(grid, block, f)` runs the blocks one after the other but the
// threads of a block as real host threads, with `__syncthreads` a barrier over them and
// atomics under a lock: the block reductions run with the block size the GPU path
// launches (256). Used by tests/kernels_emulated.rs.
//
// Not used by the GPU build: NVRTC never sees this file (it is embedded like every
// kernels/*.h but not included by any .cu file).

#ifndef AIAPREP_EMULATE_H
#define AIAPREP_EMULATE_H

#define AIA_EMULATE 1

#include <cmath>
#include <condition_variable>
#include <cstring>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

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
// Per host thread (launch_coop runs a block's threads concurrently).
inline aia_dim3& block_idx() { static thread_local aia_dim3 v{0, 0, 0}; return v; }
inline aia_dim3& thread_idx() { static thread_local aia_dim3 v{0, 0, 0}; return v; }
inline aia_dim3& block_dim() { static aia_dim3 v{1, 1, 1}; return v; }
inline aia_dim3& grid_dim() { static aia_dim3 v{1, 1, 1}; return v; }
}  // namespace aia_emu

#define blockIdx (aia_emu::block_idx())
#define threadIdx (aia_emu::thread_idx())
#define blockDim (aia_emu::block_dim())
#define gridDim (aia_emu::grid_dim())

namespace aia_emu {
// A reusable barrier for the threads of one block (C++17 has no std::barrier).
class Barrier {
  public:
    explicit Barrier(unsigned n) : n_(n) {}
    void wait() {
        std::unique_lock<std::mutex> lk(m_);
        unsigned gen = gen_;
        if (++arrived_ == n_) {
            arrived_ = 0;
            ++gen_;
            cv_.notify_all();
        } else {
            cv_.wait(lk, [&] { return gen != gen_; });
        }
    }

  private:
    std::mutex m_;
    std::condition_variable cv_;
    unsigned n_, arrived_ = 0, gen_ = 0;
};
// The barrier of the calling thread's block (null outside launch_coop).
inline Barrier*& block_barrier() { static thread_local Barrier* b = nullptr; return b; }
inline std::mutex& atomic_lock() { static std::mutex m; return m; }
}  // namespace aia_emu

inline void __syncthreads() {
    if (aia_emu::Barrier* b = aia_emu::block_barrier()) b->wait();
}

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned int __float_as_uint(float f) { unsigned int i; std::memcpy(&i, &f, 4); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }

template <class T> inline T atomicAdd(T* p, T v) {
    std::lock_guard<std::mutex> g(aia_emu::atomic_lock());
    T old = *p;
    *p = old + v;
    return old;
}

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

// Run kernel body `f` with the threads of each block as concurrent host threads (blocks
// one after the other): `__syncthreads` synchronises them and `__shared__` (a function
// static) is shared by them, as on the GPU.
template <class F>
void launch_coop(aia_dim3 grid, aia_dim3 block, F f) {
    grid_dim() = grid;
    block_dim() = block;
    unsigned nt = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                Barrier bar(nt);
                std::vector<std::thread> threads;
                threads.reserve(nt);
                for (unsigned t = 0; t < nt; ++t)
                    threads.emplace_back([&, t] {
                        block_idx() = aia_dim3{bx, by, bz};
                        thread_idx() = aia_dim3{t % block.x, (t / block.x) % block.y,
                                                t / (block.x * block.y)};
                        block_barrier() = &bar;
                        f();
                        block_barrier() = nullptr;
                    });
                for (auto& th : threads) th.join();
            }
}
}  // namespace aia_emu

#endif  // AIAPREP_EMULATE_H
