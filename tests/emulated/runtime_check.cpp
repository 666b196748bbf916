// Checks of the block runtime in kernels/emulate.h itself (tests/kernels_emulated.rs, test
// `block_runtime_self_check`). One file, built twice:
//   * with `-DAIA_EMULATE_DEVICE=1 -fPIC -shared`: a tiny kernel module laid out as the
//     software CUDA device's fake NVRTC lays out a program (the module part below);
//   * as a program (host-test mode), run as `runtime_check MODULE.so`: the checks, then the
//     module's exported C ABI through dlopen (the module and a copy of it, two handlers).
// Prints one line per check plus timings; exit status 0 when every check passed.

#include "emulate.h"

// A by-value kernel parameter struct (module ABI check).
struct ModParams {
    double scale;
    float offset;
    int stride;
    char tag[20];
};

#if defined(AIA_EMULATE_DEVICE)
// ------------------------------------------------------------------ the module

extern "C" __global__ void axpb(const float* a, float* b, long long n, ModParams p) {
    long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (long long i = g; i < n; i += (long long)blockDim.x * gridDim.x)
        b[i] = (float)(a[i] * p.scale) + p.offset + (float)p.stride + (float)(p.tag[3] - 'x');
}

// Per-block sums (blockDim.x a power of two <= 256); a cooperative kernel inside a module.
extern "C" __global__ void block_sum(const double* x, long long n, double* partial) {
    __shared__ double s[256];
    unsigned t = threadIdx.x;
    double v = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + t; i < n; i += (long long)blockDim.x * gridDim.x)
        v += x[i];
    s[t] = v;
    __syncthreads();
    for (unsigned k = blockDim.x / 2; k > 0; k >>= 1) {
        if (t < k) s[t] += s[t + k];
        __syncthreads();
    }
    if (t == 0) partial[blockIdx.x] = s[0];
}

extern "C" __global__ void poke(float* p, long long i) {
    if (blockIdx.x == 1 && threadIdx.x == 2) p[i] = 1.0f;
}

extern "C" __global__ void iota(float* out, long long n) {
    long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (g < n) out[g] = (float)g;
}

AIA_EMU_MODULE_BEGIN
AIA_EMU_ENTRY(axpb)
AIA_EMU_ENTRY(block_sum)
AIA_EMU_ENTRY(poke)
AIA_EMU_ENTRY(iota)
AIA_EMU_MODULE_END

#else
// ------------------------------------------------------------------ the checks

#include <dlfcn.h>

#include <chrono>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

int g_failures = 0;
#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            ++g_failures;                                                   \
            std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            std::printf(__VA_ARGS__);                                       \
            std::printf("\n");                                              \
        }                                                                   \
    } while (0)

aia_dim3 d3(unsigned x, unsigned y = 1, unsigned z = 1) { return aia_dim3{x, y, z}; }
unsigned long long nblocks(aia_dim3 g) { return (unsigned long long)g.x * g.y * g.z; }
unsigned nthreads(aia_dim3 b) { return b.x * b.y * b.z; }

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A buffer whose last page is followed by a PROT_NONE page.
struct Guarded {
    char* base = nullptr;
    std::size_t pg = 0;
    Guarded() {
        pg = (std::size_t)sysconf(_SC_PAGESIZE);
        void* m = mmap(nullptr, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) std::abort();
        base = static_cast<char*>(m);
        mprotect(base + pg, pg, PROT_NONE);
    }
    ~Guarded() { munmap(base, 2 * pg); }
    char* guard() const { return base + pg; }
    float* tail(int n) const { return reinterpret_cast<float*>(guard()) - n; }  // n floats before it
};

// ---- kernels (host-test mode: plain functions, launched through lambdas)

unsigned lin_thread() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
unsigned long long lin_block() {
    return blockIdx.x + (unsigned long long)gridDim.x * (blockIdx.y + (unsigned long long)gridDim.y * blockIdx.z);
}

// Tree reduction over the whole (up to 1024-thread, any shape) block.
__global__ void reduce_tree(const double* x, double* out) {
    __shared__ double s[1024];
    unsigned n = nthreads(blockDim), t = lin_thread();
    unsigned long long b = lin_block();
    s[t] = x[b * n + t];
    __syncthreads();
    for (unsigned k = n / 2; k > 0; k >>= 1) {
        if (t < k) s[t] += s[t + k];
        __syncthreads();
    }
    if (t == 0) out[b] = s[0];
}

// Threads t < lo and t % 3 == 0 return at once; the others pass 1 + t % 4 barriers and check
// after each that every thread due at it had arrived.
unsigned due_at(unsigned n, int lo, int k) {
    unsigned c = 0;
    for (unsigned u = 0; u < n; ++u)
        if ((int)u >= lo && u % 3 != 0 && 1 + (int)(u % 4) > k) ++c;
    return c;
}
__global__ void partial_sync(int lo, int* out, unsigned* arrive, int* errors) {
    __shared__ int s[1024];
    unsigned t = threadIdx.x, n = blockDim.x, b = blockIdx.x;
    s[t] = (int)(t + 1000 * b);
    if ((int)t < lo || t % 3 == 0) return;
    int rounds = 1 + (int)(t % 4);
    for (int k = 0; k < rounds; ++k) {
        atomicAdd(&arrive[b * 4 + k], 1u);
        __syncthreads();
        if (arrive[b * 4 + k] != due_at(n, lo, k)) atomicAdd(errors, 1);
        if (threadIdx.x != t || blockIdx.x != b) atomicAdd(errors, 1);
    }
    out[b * n + t] = s[(t + 1) % n];
}

__global__ void hist256(const unsigned* x, long long n, unsigned* hist, unsigned long long* total) {
    __shared__ unsigned local[256];
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x) local[b] = 0;
    __syncthreads();
    unsigned cnt = 0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        atomicAdd(&local[x[i] & 255u], 1u);
        ++cnt;
    }
    __syncthreads();
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x)
        if (local[b]) atomicAdd(&hist[b], local[b]);
    atomicAdd(total, (unsigned long long)cnt);
}

__global__ void add_fp(double* d, float* f, int* i, int* seen) {
    atomicAdd(d, 0.5);
    float old = atomicAdd(f, 1.0f);
    atomicAdd(&seen[(int)old], 1);
    atomicAdd(i, 1);
}

__global__ void write_upto(float* p, int n) {
    int g = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (g < n) p[g] = 1.0f;
}

__global__ void fault_after_sync(float* bad, int who) {
    __syncthreads();
    if ((int)threadIdx.x == who) bad[0] = 2.0f;
    __syncthreads();
}

__device__ __attribute__((noinline)) int deep(int d) {
    volatile char buf[600];
    buf[0] = (char)d;
    buf[599] = 1;
    if (d <= 0) return buf[0];
    return deep(d - 1) + buf[599];
}
__global__ void overflow(int* out) {
    __syncthreads();
    if (threadIdx.x == 1) out[0] = deep(1 << 30);
}

struct Rec {
    aia_dim3 b, t, bd, gd;
    unsigned seq, seq2;
    int ok;
};
__global__ void record(Rec* r, unsigned* counter, int sync) {
    unsigned nt = nthreads(blockDim);
    Rec& e = r[lin_block() * nt + lin_thread()];
    e.b = blockIdx;
    e.t = threadIdx;
    e.bd = blockDim;
    e.gd = gridDim;
    e.seq = atomicAdd(&counter[0], 1u);
    e.ok = 1;
    if (sync) {
        aia_dim3 t0 = threadIdx, b0 = blockIdx;
        __syncthreads();
        e.seq2 = atomicAdd(&counter[1], 1u);
        __syncthreads();
        __syncthreads();
        e.ok = threadIdx.x == t0.x && threadIdx.y == t0.y && threadIdx.z == t0.z && blockIdx.x == b0.x &&
               blockIdx.y == b0.y && blockIdx.z == b0.z;
    }
}

__global__ void iota(float* out, long long n) {
    long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (g < n) out[g] = (float)g;
}

// The ABI's stack alignment inside a fiber: 16-byte aligned locals really are.
__attribute__((noinline)) void probe_align(int* bad) {
    alignas(16) volatile char b[16];
    b[0] = 0;
    std::uintptr_t a = reinterpret_cast<std::uintptr_t>(&b[0]);
    asm volatile("" : "+r"(a));
    if (a % 16 != 0) atomicAdd(bad, 1);
}
__global__ void stack_align(int* bad) {
    probe_align(bad);
    __syncthreads();
    probe_align(bad);
}

__global__ void syncs(int rounds) {
    for (int k = 0; k < rounds; ++k) __syncthreads();
}

// ---- checks

// The tree reduction's exact result (same order of additions as the kernel).
double tree_sum(const double* x, unsigned n) {
    std::vector<double> s(x, x + n);
    for (unsigned k = n / 2; k > 0; k >>= 1)
        for (unsigned t = 0; t < k; ++t) s[t] += s[t + k];
    return s[0];
}

void check_tree_reduction() {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (aia_dim3 block : {d3(1024), d3(16, 8, 8), d3(4, 4, 64), d3(256), d3(2)}) {
        aia_dim3 grid = d3(3, 2);
        unsigned n = nthreads(block);
        std::vector<double> x(nblocks(grid) * n), out(nblocks(grid), 0.0);
        for (auto& v : x) v = u(rng) * std::ldexp(1.0, (int)(rng() % 40));
        aia_emu::launch(grid, block, [&] { reduce_tree(x.data(), out.data()); });
        for (unsigned b = 0; b < nblocks(grid); ++b) {
            double want = tree_sum(&x[(size_t)b * n], n);
            CHECK(out[b] == want, "block (%u,%u,%u) b %u: %.17g != %.17g", block.x, block.y, block.z, b, out[b], want);
        }
    }
    std::printf("ok tree reduction (1024-thread blocks, 3-D blocks, exact)\n");
}

void check_partial_sync() {
    struct Case { unsigned n; int lo; };
    for (Case c : {Case{200, 0}, Case{200, 50}, Case{200, 199}, Case{1024, 0}, Case{7, 1}, Case{1, 0}}) {
        unsigned nb = 5;
        std::vector<int> out((size_t)nb * c.n, -1);
        std::vector<unsigned> arrive(nb * 4, 0u);
        int errors = 0;
        aia_emu::launch(d3(nb), d3(c.n), [&] { partial_sync(c.lo, out.data(), arrive.data(), &errors); });
        CHECK(errors == 0, "n %u lo %d: %d barrier errors", c.n, c.lo, errors);
        for (unsigned b = 0; b < nb; ++b) {
            for (int k = 0; k < 4; ++k)
                CHECK(arrive[b * 4 + k] == due_at(c.n, c.lo, k), "n %u lo %d: arrive[%u][%d]", c.n, c.lo, b, k);
            for (unsigned t = 0; t < c.n; ++t) {
                bool early = (int)t < c.lo || t % 3 == 0;
                int want = early ? -1 : (int)((t + 1) % c.n + 1000 * b);
                CHECK(out[(size_t)b * c.n + t] == want, "n %u lo %d: out[%u][%u] = %d, want %d", c.n, c.lo, b, t,
                      out[(size_t)b * c.n + t], want);
            }
        }
    }
    std::printf("ok __syncthreads with threads that returned early\n");
}

// Runs linear blocks of one launch from `workers` OS threads on disjoint ranges.
template <class F> void run_split(aia_dim3 grid, aia_dim3 block, unsigned workers, F f, const char* name) {
    unsigned long long nb = nblocks(grid);
    std::vector<std::thread> th;
    std::vector<int> rc(workers, -9);
    for (unsigned w = 0; w < workers; ++w)
        th.emplace_back([&, w] {
            unsigned long long a = nb * w / workers, e = nb * (w + 1) / workers;
            AiaEmuFault fault;
            rc[w] = aia_emu::run(grid, block, a, e - a, f, nullptr, &fault, name);
            if (rc[w] != 0) std::printf("  %s: %s\n", name, fault.message);
        });
    for (auto& t : th) t.join();
    for (unsigned w = 0; w < workers; ++w) CHECK(rc[w] == 0, "%s worker %u rc %d", name, w, rc[w]);
}

void check_concurrent_atomics() {
    std::mt19937 rng(99);
    long long n = (1 << 20) + 12345;
    std::vector<unsigned> x((size_t)n);
    for (auto& v : x) v = rng();
    std::vector<unsigned> want(256, 0u);
    for (unsigned v : x) want[v & 255u] += 1;
    for (int rep = 0; rep < 3; ++rep) {
        std::vector<unsigned> hist(256, 0u);
        unsigned long long total = 0;
        run_split(d3(1024), d3(128), 4, [&] { hist256(x.data(), n, hist.data(), &total); }, "hist256");
        CHECK(hist == want, "histogram differs (rep %d)", rep);
        CHECK(total == (unsigned long long)n, "total %llu", total);
    }
    aia_dim3 grid = d3(512), block = d3(64);
    unsigned long long T = nblocks(grid) * nthreads(block);
    double d = 0.0;
    float f = 0.0f;
    int i = 0;
    std::vector<int> seen(T, 0);
    run_split(grid, block, 4, [&] { add_fp(&d, &f, &i, seen.data()); }, "add_fp");
    CHECK(d == 0.5 * (double)T, "double sum %.17g", d);
    CHECK(f == (float)T, "float sum %g", (double)f);
    CHECK(i == (int)T, "int sum %d", i);
    int bad = 0;
    for (int s : seen) bad += s != 1;
    CHECK(bad == 0, "%d float atomicAdd old values not returned exactly once", bad);
    std::printf("ok atomicAdd (shared and global, u32/u64/int/float/double) from 4 OS threads\n");
}

void check_indices() {
    aia_dim3 grid = d3(3, 2, 2), block = d3(4, 3, 2);
    unsigned nt = nthreads(block);
    unsigned long long nb = nblocks(grid);
    for (int sync = 0; sync < 2; ++sync) {
        std::vector<Rec> r(nb * nt);
        std::memset(static_cast<void*>(r.data()), 0, r.size() * sizeof(Rec));
        unsigned counter[2] = {0, 0};
        aia_emu::launch(grid, block, [&] { record(r.data(), counter, sync); });
        for (unsigned long long b = 0; b < nb; ++b)
            for (unsigned t = 0; t < nt; ++t) {
                const Rec& e = r[b * nt + t];
                aia_dim3 wb{(unsigned)(b % 3), (unsigned)(b / 3 % 2), (unsigned)(b / 6)};
                aia_dim3 wt{t % 4, t / 4 % 3, t / 12};
                bool ok = e.b.x == wb.x && e.b.y == wb.y && e.b.z == wb.z && e.t.x == wt.x && e.t.y == wt.y &&
                          e.t.z == wt.z && e.bd.x == 4 && e.bd.y == 3 && e.bd.z == 2 && e.gd.x == 3 && e.gd.y == 2 &&
                          e.gd.z == 2 && e.ok == 1;
                CHECK(ok, "sync %d block %llu thread %u: blockIdx (%u,%u,%u) threadIdx (%u,%u,%u) ok %d", sync, b, t,
                      e.b.x, e.b.y, e.b.z, e.t.x, e.t.y, e.t.z, e.ok);
                CHECK(e.seq == b * nt + t, "sync %d: thread %u of block %llu ran %u-th", sync, t, b, e.seq);
                if (sync) CHECK(e.seq2 == b * nt + t, "thread %u of block %llu released %u-th", t, b, e.seq2);
            }
    }
    // A sub-range of blocks, as a worker of the fake driver runs it.
    std::vector<Rec> r(nb * nt);
    std::memset(static_cast<void*>(r.data()), 0, r.size() * sizeof(Rec));
    unsigned counter[2] = {0, 0};
    AiaEmuFault fault;
    int rc = aia_emu::run(grid, block, 5, 4, [&] { record(r.data(), counter, 1); }, nullptr, &fault, "record");
    CHECK(rc == 0, "rc %d", rc);
    for (unsigned long long b = 0; b < nb; ++b)
        for (unsigned t = 0; t < nt; ++t) {
            bool in = b >= 5 && b < 9;
            CHECK(r[b * nt + t].ok == (in ? 1 : 0), "range: block %llu ran %d", b, r[b * nt + t].ok);
            if (in) CHECK(r[b * nt + t].seq == (b - 5) * nt + t, "range: order");
        }
    CHECK(counter[0] == 4 * nt, "range: %u threads ran", counter[0]);
    // Invalid launches are refused.
    CHECK(aia_emu::run(d3(1), d3(33, 32), 0, 1, [] {}, nullptr, &fault) == -1, "1056 threads accepted");
    CHECK(aia_emu::run(d3(1), d3(0), 0, 1, [] {}, nullptr, &fault) == -1, "0 threads accepted");
    CHECK(aia_emu::run(d3(4), d3(1), 3, 2, [] {}, nullptr, &fault) == -1, "range outside the grid accepted");
    volatile int stop = 1;
    CHECK(aia_emu::run(d3(4), d3(1), 0, 4, [] {}, &stop, &fault) == 2, "abort flag ignored");
    int misaligned = 0;
    aia_emu::launch(d3(2), d3(100), [&] { stack_align(&misaligned); });
    CHECK(misaligned == 0, "%d misaligned stack frames", misaligned);
    std::printf("ok blockIdx/threadIdx/blockDim/gridDim for 3-D grids and blocks, thread order, block ranges, "
                "fiber stack alignment\n");
}

bool contains(const char* s, const char* sub) { return std::strstr(s, sub) != nullptr; }

void check_faults() {
    Guarded g;
    AiaEmuFault fault;
    // direct phase: thread 16 (block 2, thread 0) writes the first float of the guard page
    int rc = aia_emu::run(d3(4), d3(8), 0, 4, [&] { write_upto(g.tail(16), 17); }, nullptr, &fault, "write_upto");
    CHECK(rc == 1, "rc %d", rc);
    CHECK(fault.kind == 1, "kind %d", fault.kind);
    CHECK(fault.addr == (unsigned long long)(uintptr_t)g.guard(), "addr 0x%llx", fault.addr);
    CHECK(fault.block == 2 && fault.thread == 0, "block %llu thread %u", fault.block, fault.thread);
    CHECK(contains(fault.message, "SIGSEGV") && contains(fault.message, "write_upto") &&
              contains(fault.message, "block (2,0,0)") && contains(fault.message, "thread (0,0,0)"),
          "message: %s", fault.message);
    std::printf("  fault: %s\n", fault.message);
    // the same OS thread runs the next launch normally
    rc = aia_emu::run(d3(4), d3(8), 0, 4, [&] { write_upto(g.tail(16), 16); }, nullptr, &fault, "write_upto");
    CHECK(rc == 0, "rc %d after a fault", rc);
    CHECK(g.tail(16)[15] == 1.0f, "not written");

    // cooperative mode: a fiber (thread 37) and the suspended main-stack thread (thread 0)
    for (int who : {37, 0}) {
        rc = aia_emu::run(d3(2), d3(64), 0, 2, [&] { fault_after_sync(reinterpret_cast<float*>(g.guard()), who); },
                          nullptr, &fault, "fault_after_sync");
        CHECK(rc == 1 && fault.kind == 1 && fault.thread == (unsigned)who && fault.block == 0, "who %d: rc %d: %s",
              who, rc, fault.message);
        std::vector<double> x(256, 1.0), out(1);
        aia_emu::launch(d3(1), d3(256), [&] { reduce_tree(x.data(), out.data()); });
        CHECK(out[0] == 256.0, "reduction after a fault in a fiber: %g", out[0]);
    }

    // SIGBUS: a shared file mapping past the end of the file
    FILE* tf = std::tmpfile();
    int fd = fileno(tf);
    CHECK(ftruncate(fd, (off_t)g.pg) == 0, "ftruncate");
    void* m = mmap(nullptr, 2 * g.pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap file");
    if (m != MAP_FAILED) {
        char* end = static_cast<char*>(m) + g.pg;
        rc = aia_emu::run(d3(1), d3(32), 0, 1, [&] { write_upto(reinterpret_cast<float*>(end) - 4, 5); }, nullptr,
                          &fault, "write_upto");
        CHECK(rc == 1 && fault.kind == 2 && fault.addr == (unsigned long long)(uintptr_t)end && fault.thread == 4,
              "rc %d kind %d addr 0x%llx: %s", rc, fault.kind, fault.addr, fault.message);
        std::printf("  fault: %s\n", fault.message);
        munmap(m, 2 * g.pg);
    }
    std::fclose(tf);

    // a fiber overflowing its stack into the guard page
    int sink = 0;
    rc = aia_emu::run(d3(1), d3(4), 0, 1, [&] { overflow(&sink); }, nullptr, &fault, "overflow");
    CHECK(rc == 1 && fault.kind == 1 && fault.thread == 1 && contains(fault.message, "stack overflow"),
          "rc %d: %s", rc, fault.message);
    std::printf("  fault: %s\n", fault.message);
    std::vector<double> x(2048, 0.25), out(2);
    aia_emu::launch(d3(2), d3(1024), [&] { reduce_tree(x.data(), out.data()); });
    CHECK(out[0] == 256.0 && out[1] == 256.0, "reduction after a stack overflow: %g %g", out[0], out[1]);
    std::printf("ok faults (SIGSEGV direct and in fibers, SIGBUS, fiber stack overflow) reported, runner reusable\n");
}

// A SIGSEGV handler installed before any runtime: faults outside every runner must reach it.
sigjmp_buf g_probe_jb;
volatile sig_atomic_t g_probe_armed = 0;
void* volatile g_probe_addr = nullptr;
void probe_handler(int sig, siginfo_t* si, void*) {
    if (g_probe_armed) {
        g_probe_armed = 0;
        g_probe_addr = si->si_addr;
        siglongjmp(g_probe_jb, 1);
    }
    signal(sig, SIG_DFL);
}
void install_probe() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = probe_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, nullptr);
}
void check_chaining(const char* what) {
    Guarded g;
    g_probe_addr = nullptr;
    if (sigsetjmp(g_probe_jb, 1) == 0) {
        g_probe_armed = 1;
        *reinterpret_cast<volatile int*>(g.guard()) = 1;
        g_probe_armed = 0;
    }
    CHECK(g_probe_addr == g.guard(), "%s: fault outside the runner did not reach the earlier handler", what);
    std::printf("ok a fault outside the runner reaches the previously installed handler (%s)\n", what);
}

// ---- timing

void timing() {
    aia_dim3 grid = d3(65536), block = d3(256);
    long long n = (long long)nblocks(grid) * nthreads(block);
    std::vector<float> out((size_t)n);
    double best = 1e9, base = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
        double t0 = now();
        aia_emu::launch(grid, block, [&] { iota(out.data(), n); });
        best = std::min(best, now() - t0);
        t0 = now();
        float* o = out.data();
        for (long long i = 0; i < n; ++i) {
            o[i] = (float)i;
            asm volatile("" ::"r"(o) : "memory");
        }
        base = std::min(base, now() - t0);
    }
    CHECK(out[12345] == 12345.0f, "iota");
    std::printf("time direct path: %.2f ns per CUDA thread (65536 x 256 threads of a one-store kernel; "
                "a plain loop storing the same: %.2f ns per element)\n",
                best / (double)n * 1e9, base / (double)n * 1e9);

    int rounds = 2000;
    double t0 = now();
    aia_emu::launch(d3(4), d3(256), [&] { syncs(rounds); });
    double dt = now() - t0;
    std::printf("time __syncthreads: %.2f ns per thread per barrier (4 blocks x 256 threads x %d barriers)\n",
                dt / (4.0 * 256 * rounds) * 1e9, rounds);
    t0 = now();
    aia_emu::launch(d3(4096), d3(256), [&] { syncs(1); });
    dt = now() - t0;
    std::printf("time cooperative block: %.2f us per 256-thread block with one barrier (fiber starts)\n",
                dt / 4096 * 1e6);
}

// ---- the module ABI

typedef int (*RunFn)(int, void**, aia_dim3, aia_dim3, unsigned long long, unsigned long long,
                     const volatile int*, AiaEmuFault*);
struct Module {
    void* h = nullptr;
    int (*version)() = nullptr;
    int (*count)() = nullptr;
    const char* (*name)(int) = nullptr;
    int (*params)(int, AiaEmuParam*, int) = nullptr;
    RunFn run = nullptr;
    template <class T> void sym(T& f, const char* s) {
        void* p = dlsym(h, s);
        CHECK(p != nullptr, "dlsym %s", s);
        std::memcpy(&f, &p, sizeof p);
    }
    bool load(const std::string& path) {
        h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        CHECK(h != nullptr, "dlopen %s: %s", path.c_str(), dlerror());
        if (!h) return false;
        sym(version, "aia_emu_abi_version");
        sym(count, "aia_emu_entry_count");
        sym(name, "aia_emu_entry_name");
        sym(params, "aia_emu_entry_params");
        sym(run, "aia_emu_run");
        return version && count && name && params && run;
    }
    int find(const char* n) {
        for (int i = 0; i < count(); ++i)
            if (std::strcmp(name(i), n) == 0) return i;
        CHECK(false, "no entry %s", n);
        return -1;
    }
};

void check_module(Module& m, const char* which, bool timed) {
    CHECK(m.version() == 1, "abi version %d", m.version());
    CHECK(m.count() == 4, "entry count %d", m.count());
    CHECK(m.name(4) == nullptr && m.name(-1) == nullptr, "name out of range");
    int ia = m.find("axpb"), ib = m.find("block_sum"), ip = m.find("poke"), ii = m.find("iota");
    if (ia < 0 || ib < 0 || ip < 0 || ii < 0) return;

    AiaEmuParam p[5];
    std::memset(p, 0x5a, sizeof p);
    CHECK(m.params(ia, p, 5) == 4, "param count");
    unsigned want_size[4] = {8, 8, 8, (unsigned)sizeof(ModParams)};
    unsigned want_align[4] = {8, 8, 8, (unsigned)alignof(ModParams)};
    int want_kind[4] = {1, 2, 0, 0};
    for (int j = 0; j < 4; ++j)
        CHECK(p[j].size == want_size[j] && p[j].align == want_align[j] && p[j].kind == want_kind[j],
              "param %d: size %u align %u kind %d", j, p[j].size, p[j].align, p[j].kind);
    AiaEmuParam q[3];
    std::memset(q, 0x5a, sizeof q);
    CHECK(m.params(ia, q, 2) == 4 && q[1].kind == 2 && q[2].size == 0x5a5a5a5au, "params with max 2");
    CHECK(m.params(99, p, 5) == -1 && m.params(-1, p, 5) == -1, "params of a bad entry");
    CHECK(m.params(ip, nullptr, 0) == 2, "params count only");

    // axpb from two OS threads on disjoint block ranges
    aia_dim3 grid = d3(100), block = d3(96);
    long long n = 100 * 96 * 2 + 7;
    std::vector<float> a((size_t)n), b((size_t)n, -1.0f);
    for (long long i = 0; i < n; ++i) a[i] = (float)(i % 1000) * 0.25f;
    ModParams mp;
    std::memset(&mp, 0, sizeof mp);
    mp.scale = 2.0;
    mp.offset = 0.5f;
    mp.stride = 3;
    std::strcpy(mp.tag, "abcz");  // tag[3] - 'x' = 2
    const float* pa = a.data();
    float* pb = b.data();
    void* args[4] = {&pa, &pb, &n, &mp};
    int rc[2] = {-9, -9};
    AiaEmuFault f2[2];
    std::thread t1([&] { rc[0] = m.run(ia, args, grid, block, 0, 50, nullptr, &f2[0]); });
    std::thread t2([&] { rc[1] = m.run(ia, args, grid, block, 50, 50, nullptr, &f2[1]); });
    t1.join();
    t2.join();
    CHECK(rc[0] == 0 && rc[1] == 0, "axpb rc %d %d (%s / %s)", rc[0], rc[1], f2[0].message, f2[1].message);
    int bad = 0;
    for (long long i = 0; i < n; ++i) bad += b[i] != (float)(a[i] * 2.0) + 0.5f + 3.0f + 2.0f;
    CHECK(bad == 0, "axpb: %d wrong", bad);

    // a cooperative kernel in the module, two OS threads
    long long nx = 100000;
    std::vector<double> x((size_t)nx), partial(8, 0.0);
    for (long long i = 0; i < nx; ++i) x[i] = 1.0 + (double)(i % 7);
    const double* px = x.data();
    double* pp = partial.data();
    void* sargs[3] = {&px, &nx, &pp};
    std::thread s1([&] { rc[0] = m.run(ib, sargs, d3(8), d3(256), 0, 3, nullptr, &f2[0]); });
    std::thread s2([&] { rc[1] = m.run(ib, sargs, d3(8), d3(256), 3, 5, nullptr, &f2[1]); });
    s1.join();
    s2.join();
    CHECK(rc[0] == 0 && rc[1] == 0, "block_sum rc %d %d", rc[0], rc[1]);
    double sum = 0.0, want = 0.0;
    for (double v : partial) sum += v;
    for (double v : x) want += v;
    CHECK(sum == want, "block_sum %.17g != %.17g", sum, want);

    // a fault in the module (block 1, thread 2)
    Guarded g;
    float* tail = g.tail(4);
    long long at = 4;
    void* pargs[2] = {&tail, &at};
    AiaEmuFault fault;
    int r = m.run(ip, pargs, d3(3), d3(4), 0, 3, nullptr, &fault);
    CHECK(r == 1 && fault.kind == 1 && fault.addr == (unsigned long long)(uintptr_t)g.guard() && fault.block == 1 &&
              fault.thread == 2 && contains(fault.message, "poke") && contains(fault.message, "block (1,0,0)"),
          "%s: rc %d: %s", which, r, fault.message);
    std::printf("  %s fault: %s\n", which, fault.message);
    at = 3;
    CHECK(m.run(ip, pargs, d3(3), d3(4), 0, 3, nullptr, &fault) == 0 && tail[3] == 1.0f, "poke after a fault");

    // abort flag, bad entry, bad launch
    volatile int stop = 1;
    CHECK(m.run(ip, pargs, d3(3), d3(4), 0, 3, &stop, &fault) == 2, "abort flag");
    CHECK(m.run(7, pargs, d3(3), d3(4), 0, 3, nullptr, &fault) == -1, "bad entry accepted");
    CHECK(m.run(ip, pargs, d3(3), d3(2048), 0, 3, nullptr, &fault) == -1, "2048 threads accepted");
    CHECK(m.run(ip, nullptr, d3(3), d3(4), 0, 3, nullptr, &fault) == -1, "null params accepted");

    if (timed) {
        aia_dim3 tg = d3(65536), tb = d3(256);
        long long nt = 65536LL * 256;
        std::vector<float> out((size_t)nt);
        float* po = out.data();
        void* iargs[2] = {&po, &nt};
        double best = 1e9;
        for (int rep = 0; rep < 3; ++rep) {
            double t0 = now();
            r = m.run(ii, iargs, tg, tb, 0, nblocks(tg), nullptr, &fault);
            best = std::min(best, now() - t0);
        }
        CHECK(r == 0 && out[777] == 777.0f, "iota in the module");
        std::printf("time module direct path: %.2f ns per CUDA thread (aia_emu_run, 65536 x 256 threads)\n",
                    best / (double)nt * 1e9);
    }
    std::printf("ok module ABI (%s): entries, parameter kinds/sizes, runs from two OS threads, faults\n", which);
}

void check_modules(const std::string& path) {
    // a second copy: another module instance with its own runtime and signal handler
    std::string copy = path + ".copy.so";
    {
        std::ifstream in(path, std::ios::binary);
        std::ofstream out(copy, std::ios::binary);
        out << in.rdbuf();
    }
    Module a, b;
    if (!a.load(path) || !b.load(copy)) return;
    check_module(a, "module", true);
    check_module(b, "module copy", false);
    check_module(a, "module again", false);  // its handler is now behind the copy's
    check_chaining("two modules and the host runtime installed after it");
    std::remove(copy.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    install_probe();
    check_tree_reduction();
    check_partial_sync();
    check_indices();
    check_concurrent_atomics();
    check_faults();
    check_chaining("host runtime installed after it");
    timing();
    if (argc > 1)
        check_modules(argv[1]);
    else
        std::printf("(no module given: module ABI not checked)\n");
    if (g_failures) {
        std::printf("%d check(s) failed\n", g_failures);
        return 1;
    }
    std::printf("all runtime checks passed\n");
    return 0;
}

#endif
