// emulate.h — run the CUDA kernels of kernels/*.cu as ordinary host C++: the CUDA keywords,
// the few intrinsics the kernels use, and a small block runtime (no GPU, no CUDA).
//
// Two modes, one runtime:
//   * host-test mode (tests/emulated/*.cpp): include this file, then the .cu files, and
//     launch with `aia_emu::launch(grid, block, f)` where `f` is a lambda that calls the
//     kernel; `aia_emu::run(...)` runs a range of blocks and reports faults instead.
//   * module mode (`AIA_EMULATE_DEVICE` defined; the software CUDA device's fake NVRTC):
//     include this file, the program, then list its entry points between
//     AIA_EMU_MODULE_BEGIN / AIA_EMU_ENTRY(name) / AIA_EMU_MODULE_END, and build a shared
//     object. That exports the C ABI declared at the end of this file (aia_emu_run, ...),
//     which the driver calls from several OS threads at once.
//
// Schedule of one block (both modes; all of a block's threads run on the calling OS thread,
// exactly one at a time, so `__shared__` needs no lock):
//   * Direct phase: thread 0, 1, 2, ... (CUDA's linear order: x fastest, then y, then z) are
//     called one after the other on the caller's stack. Kernels that never call
//     `__syncthreads` cost a plain function call per thread.
//   * The first `__syncthreads()` of a block (by thread t) switches the block to cooperative
//     mode: t is suspended where it is (its frames stay on the caller's stack) and threads
//     t+1 ... n-1 are started as fibers, each on its own stack. `__syncthreads()` is a
//     barrier over the threads still alive; a thread that has returned counts as arrived
//     (threads 0 ... t-1 returned in the direct phase without ever synchronising, which is
//     a legal CUDA schedule). When every live thread waits at a barrier, all are released
//     and resumed in thread order, each running to its next barrier or to its end. Any
//     `__syncthreads` call site counts as the same barrier.
//   * Fibers: a hand-written x86-64 context switch (callee-saved registers, MXCSR and the x87
//     control word: no system call); `ucontext` on other architectures. Stacks of
//     AIA_EMU_FIBER_STACK (64 KiB) with a PROT_NONE guard page below, mapped lazily per OS
//     thread and CUDA thread index and reused by later blocks and launches.
//   * Blocks of a launch (or of the range given to `run`) run one after the other, in linear
//     order (x fastest). Blocks run concurrently only when the caller calls the runner from
//     several OS threads (the fake driver's worker pool): `blockIdx`, `threadIdx`,
//     `blockDim`, `gridDim` and `__shared__` variables are thread_local, and `atomicAdd` is
//     a real atomic (relaxed, as in CUDA).
//   * Faults: a SIGSEGV or SIGBUS while the runner executes kernel code (a read past the end
//     of a buffer into an unmapped page, a fiber overflowing into its guard page) makes the
//     runner return a fault with the address instead of killing the process. The handler is
//     process-wide, installed once per copy of this runtime, and chains to the previously
//     installed handler (Rust's stack-overflow handler, another module's copy) when the
//     faulting OS thread is not inside this copy's runner (a per-copy table of the OS
//     threads in its runner, keyed by pthread_self: the handler touches no dynamic TLS).
//     It siglongjmps to the sigsetjmp at the start of the run call; the block's fiber state
//     is reset and the thread can run later launches. Threads without an alternate signal
//     stack get one (needed to report a fiber stack overflow). Kernel code must not throw.
//
// Not emulated: warps (no `__shfl*`, `__ballot`, warp-synchronous code; no `__syncwarp`),
// dynamic `extern __shared__` arrays, `__syncthreads_count/and/or`, memory fences, grid
// synchronisation. `__shared__` memory is not reset between blocks (as on the GPU, its
// content at block start is undefined; here it holds the previous block's values). A kernel
// must not depend on threads of one block running in parallel (e.g. spin-waiting on a
// shared flag set by another thread without a barrier would hang).
//
// Not used by the GPU build: NVRTC never sees this file (it is embedded like every
// kernels/*.h but not included by any .cu file).

#ifndef AIAPREP_EMULATE_H
#define AIAPREP_EMULATE_H

#define AIA_EMULATE 1

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__) || defined(AIA_EMU_FORCE_UCONTEXT)
#define AIA_EMU_UCONTEXT 1
#include <ucontext.h>
#else
#define AIA_EMU_UCONTEXT 0
#endif

// Usable stack of each fiber (a CUDA thread that ran past its first __syncthreads).
#ifndef AIA_EMU_FIBER_STACK
#define AIA_EMU_FIBER_STACK (64 * 1024)
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __constant__ static const
#define __restrict__ __restrict

struct aia_dim3 {
    unsigned int x, y, z;
};

// The C ABI of module mode (also the fault report of aia_emu::run in host-test mode).
extern "C" {
// One kernel parameter. kind: 0 by value, 1 pointer to const, 2 pointer to non-const.
typedef struct AiaEmuParam {
    unsigned size;
    unsigned align;
    int kind;
} AiaEmuParam;
// A fault in kernel code. kind: 1 SIGSEGV, 2 SIGBUS (0: no signal, see message). block: the
// linear block index; thread: the linear thread index in the block.
typedef struct AiaEmuFault {
    int kind;
    unsigned long long addr;
    unsigned long long block;
    unsigned thread;
    char message[256];
} AiaEmuFault;
}

// Everything below is private to each copy of the runtime (each module .so has its own).
#pragma GCC visibility push(hidden)

namespace aia_emu {
// The CUDA built-in variables of the CUDA thread running on this OS thread. One TLS object:
// in a module (dynamic TLS) a kernel reaches all four with one __tls_get_addr.
struct Builtins {
    aia_dim3 block_idx, thread_idx, block_dim, grid_dim;
};
inline thread_local Builtins tl_cuda{{0, 0, 0}, {0, 0, 0}, {1, 1, 1}, {1, 1, 1}};
}  // namespace aia_emu

#define blockIdx (::aia_emu::tl_cuda.block_idx)
#define threadIdx (::aia_emu::tl_cuda.thread_idx)
#define blockDim (::aia_emu::tl_cuda.block_dim)
#define gridDim (::aia_emu::tl_cuda.grid_dim)

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned int __float_as_uint(float f) { unsigned int i; std::memcpy(&i, &f, 4); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
// Round-to-nearest double arithmetic that the compiler may not fuse into an FMA (the CUDA
// intrinsics): volatile keeps each product rounded on hosts that contract.
inline double __dmul_rn(double a, double b) { volatile double r = a * b; return r; }
inline double __dadd_rn(double a, double b) { volatile double r = a + b; return r; }

// atomicAdd: relaxed read-modify-write, returns the old value (CUDA's overloads).
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
namespace aia_emu {
namespace detail {
typedef unsigned int __attribute__((may_alias)) u32_alias;
typedef unsigned long long __attribute__((may_alias)) u64_alias;
// Compare-exchange loop on the bit pattern of a float/double (U: same-size integer).
template <class T, class U, class UA> inline T atomic_add_fp(T* p, T v) {
    UA* q = reinterpret_cast<UA*>(p);
    U old = __atomic_load_n(q, __ATOMIC_RELAXED);
    for (;;) {
        T f;
        std::memcpy(&f, &old, sizeof f);
        T r = f + v;
        U nw;
        std::memcpy(&nw, &r, sizeof nw);
        if (__atomic_compare_exchange_n(q, &old, nw, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return f;
    }
}
}  // namespace detail
}  // namespace aia_emu
inline float atomicAdd(float* p, float v) {
    return aia_emu::detail::atomic_add_fp<float, unsigned int, aia_emu::detail::u32_alias>(p, v);
}
inline double atomicAdd(double* p, double v) {
    return aia_emu::detail::atomic_add_fp<double, unsigned long long, aia_emu::detail::u64_alias>(p, v);
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

// ---------------------------------------------------------------------------- block runtime

#if !AIA_EMU_UCONTEXT
// aia_emu_ctx_switch(save, to): saves the callee-saved registers, MXCSR and the x87 control
// word on the current stack, stores the stack pointer in *save, switches to the stack `to`
// (saved the same way, or prepared by fiber_initial_sp) and restores from it. Hidden and in
// a COMDAT group: every translation unit may contain it, each shared object has its own.
extern "C" void aia_emu_ctx_switch(void** save, void* to);
asm(R"(
    .pushsection .text.aia_emu_ctx_switch,"axG",@progbits,aia_emu_ctx_switch,comdat
    .weak aia_emu_ctx_switch
    .hidden aia_emu_ctx_switch
    .type aia_emu_ctx_switch, @function
    .p2align 4
aia_emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw 12(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr 8(%rsp)
    fldcw 12(%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size aia_emu_ctx_switch, .-aia_emu_ctx_switch
    .popsection
)");
#endif

namespace aia_emu {
namespace detail {

constexpr unsigned kMaxThreads = 1024;  // per block
constexpr unsigned kMain = kMaxThreads;  // context slot of the runner's own stack
constexpr std::size_t kAltStack = 64 * 1024;

// The scheduler state of the OS thread's current block (zero-initialised TLS, no
// constructor: cheap to reach from kernel code).
struct Sched {
    void (*invoke)(void*);  // runs the current CUDA thread's body: invoke(fobj)
    void* fobj;
    unsigned n;            // threads per block
    bool active;           // inside run(): __syncthreads is a barrier
    bool coop;             // the current block is in cooperative mode
    bool altstack_checked;
    unsigned main_thread;  // the thread whose frames are on the runner's stack (slot kMain)
    // Sweep: order[0 .. cnt) are the live threads in thread order; order[pos] runs;
    // order[0 .. w) are those of this sweep that stopped at the barrier (kept for the next).
    unsigned cnt, pos, w;
    unsigned short order[kMaxThreads];
    bool started[kMaxThreads];
    aia_dim3 tid[kMaxThreads];  // threadIdx of each linear thread index, for block shape tid_of
    aia_dim3 tid_of;
#if !AIA_EMU_UCONTEXT
    void* sp[kMaxThreads + 1];  // saved stack pointers (slot kMain: the runner's stack)
#else
    ucontext_t* uc[kMaxThreads + 1];
#endif
    char* stack[kMaxThreads];  // fiber mappings: guard page + stack (null: not mapped yet)
    char* altstack;            // our alternate signal stack mapping, if we installed one
};
inline thread_local Sched tl_sched{};

// Where the fault handler jumps (on the stack of run()).
struct FaultCatch {
    sigjmp_buf jb;
    int sig;  // 0: runtime error (msg)
    int code;
    void* addr;
    const char* msg;
};

// The OS threads inside this copy's runner and their FaultCatch. A table per copy rather
// than TLS: the signal handler must not touch a dlopen'ed module's dynamic TLS (its block
// may be allocated lazily, with malloc), and initial-exec TLS in a module would draw on
// glibc's small static TLS reserve, once per loaded module.
constexpr unsigned kCatchSlots = 1024;
struct CatchSlot {
    std::atomic<unsigned long> owner;  // pthread_self() of the thread, 0 when free
    FaultCatch* c;
};
inline CatchSlot g_catch[kCatchSlots];

inline unsigned long self_id() { return (unsigned long)pthread_self(); }

inline CatchSlot* catch_register(FaultCatch* c) {
    unsigned long self = self_id();
    unsigned h = (unsigned)((self >> 12) ^ (self >> 24)) % kCatchSlots;
    for (unsigned k = 0; k < kCatchSlots; ++k) {
        CatchSlot& s = g_catch[(h + k) % kCatchSlots];
        unsigned long free_id = 0;
        if (s.owner.load(std::memory_order_relaxed) == 0 &&
            s.owner.compare_exchange_strong(free_id, self, std::memory_order_acq_rel)) {
            s.c = c;
            std::atomic_signal_fence(std::memory_order_seq_cst);
            return &s;
        }
    }
    return nullptr;
}

inline void catch_release(CatchSlot* s) {
    s->c = nullptr;
    s->owner.store(0, std::memory_order_release);
}

// Async-signal-safe: the calling thread's FaultCatch (releasing its slot), or null.
inline FaultCatch* catch_take() {
    unsigned long self = self_id();
    for (unsigned i = 0; i < kCatchSlots; ++i)
        if (g_catch[i].owner.load(std::memory_order_relaxed) == self) {
            FaultCatch* c = g_catch[i].c;
            catch_release(&g_catch[i]);
            return c;
        }
    return nullptr;
}

inline std::size_t page_size() {
    static const std::size_t p = (std::size_t)sysconf(_SC_PAGESIZE);
    return p;
}
inline std::size_t fiber_stack_bytes() {
    std::size_t pg = page_size();
    return ((std::size_t)AIA_EMU_FIBER_STACK + pg - 1) / pg * pg;
}

// Unmaps the fiber stacks (and our alternate signal stack) when the OS thread exits.
struct Reaper {
    bool armed = false;
    ~Reaper() {
        if (!armed) return;
        Sched& S = tl_sched;
        std::size_t pg = page_size(), len = pg + fiber_stack_bytes();
        for (unsigned j = 0; j < kMaxThreads; ++j)
            if (S.stack[j]) {
                munmap(S.stack[j], len);
                S.stack[j] = nullptr;
            }
#if AIA_EMU_UCONTEXT
        for (unsigned j = 0; j <= kMaxThreads; ++j) {
            std::free(S.uc[j]);
            S.uc[j] = nullptr;
        }
#endif
        if (S.altstack) {
            stack_t cur;
            if (sigaltstack(nullptr, &cur) == 0 && cur.ss_sp == S.altstack + pg) {
                stack_t off;
                std::memset(&off, 0, sizeof off);
                off.ss_flags = SS_DISABLE;
                sigaltstack(&off, nullptr);
            }
            munmap(S.altstack, pg + kAltStack);
            S.altstack = nullptr;
        }
    }
};
inline thread_local Reaper tl_reaper;

// A failure of the runtime itself inside kernel code (no memory for a fiber stack): leaves
// the run like a fault, reported as an error.
[[noreturn]] inline void run_error(const char* msg) {
    FaultCatch* c = catch_take();
    if (!c) {
        std::fprintf(stderr, "aia_emu: %s\n", msg);
        std::abort();
    }
    c->sig = 0;
    c->msg = msg;
    siglongjmp(c->jb, 1);
}

// ---- fault handling

inline struct sigaction g_old_segv, g_old_bus;  // chained handlers (this copy's)

inline void on_fault(int sig, siginfo_t* si, void* uc) {
    if (FaultCatch* c = catch_take()) {  // inside this copy's runner
        c->sig = sig;
        c->code = si->si_code;
        c->addr = si->si_addr;
        siglongjmp(c->jb, 1);
    }
    const struct sigaction& old = sig == SIGBUS ? g_old_bus : g_old_segv;
    if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
        if (old.sa_flags & SA_SIGINFO)
            old.sa_sigaction(sig, si, uc);
        else
            old.sa_handler(sig);
        return;
    }
    // Default action: restore it; a faulting instruction runs again and the process dies.
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    if (si->si_code <= 0) raise(sig);  // sent by kill/raise: send it again
}

inline void install_handlers() {
    static const bool once = [] {
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = &on_fault;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigaction(SIGSEGV, &sa, &g_old_segv);  // atomic exchange: chains stay consistent
        sigaction(SIGBUS, &sa, &g_old_bus);
        return true;
    }();
    (void)once;
}

// A stack overflow is reported through a signal, which needs an alternate stack.
inline void ensure_altstack(Sched& S) {
    stack_t cur;
    if (sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return;
    std::size_t pg = page_size();
    void* m = mmap(nullptr, pg + kAltStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;  // faults on a fiber stack would then kill the process
    mprotect(m, pg, PROT_NONE);
    stack_t ss;
    std::memset(&ss, 0, sizeof ss);
    ss.ss_sp = static_cast<char*>(m) + pg;
    ss.ss_size = kAltStack;
    if (sigaltstack(&ss, nullptr) != 0) {
        munmap(m, pg + kAltStack);
        return;
    }
    S.altstack = static_cast<char*>(m);
    tl_reaper.armed = true;
}

// ---- fibers

inline void fiber_main();

// Top (exclusive, page aligned) of fiber j's stack, mapped on first use.
inline char* fiber_stack_top(Sched& S, unsigned j) {
    std::size_t pg = page_size(), size = fiber_stack_bytes();
    if (!S.stack[j]) {
        void* m = mmap(nullptr, pg + size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m == MAP_FAILED) run_error("cannot map a fiber stack");
        if (mprotect(m, pg, PROT_NONE) != 0) {
            munmap(m, pg + size);
            run_error("cannot protect a fiber stack guard page");
        }
        S.stack[j] = static_cast<char*>(m);
        tl_reaper.armed = true;
    }
    return S.stack[j] + pg + size;
}

#if !AIA_EMU_UCONTEXT
// An initial frame for aia_emu_ctx_switch that "returns" into fiber_main with
// rsp = top - 8 (rsp ≡ 8 mod 16 at entry, as after a call) and a null return address.
inline void* fiber_initial_sp(Sched& S, unsigned j) {
    // Stagger the tops by j * 64 bytes (mod 4 KiB) so the hot stack lines of the fibers do
    // not all fall into the same cache sets.
    char* top = fiber_stack_top(S, j) - (std::size_t)(j & 63) * 64;
    char* sp = top - 80;
    void (*entry)() = &fiber_main;
    std::memset(sp, 0, 80);  // pad, MXCSR, x87 CW, r15 r14 r13 r12 rbx rbp, entry, 0
    unsigned int mxcsr = __builtin_ia32_stmxcsr();
    unsigned short fcw;
    asm volatile("fnstcw %0" : "=m"(fcw));
    std::memcpy(sp + 8, &mxcsr, 4);
    std::memcpy(sp + 12, &fcw, 2);
    std::memcpy(sp + 64, &entry, 8);
    return sp;
}
#endif

// Saves the running context in slot `from` and resumes slot `to` (starting fiber `to` when
// it has not started yet).
inline void ctx_switch(Sched& S, unsigned from, unsigned to) {
#if !AIA_EMU_UCONTEXT
    if (to != kMain && !S.started[to]) {
        S.sp[to] = fiber_initial_sp(S, to);
        S.started[to] = true;
    }
    aia_emu_ctx_switch(&S.sp[from], S.sp[to]);
#else
    for (unsigned s : {from, to})
        if (!S.uc[s]) {
            S.uc[s] = static_cast<ucontext_t*>(std::calloc(1, sizeof(ucontext_t)));
            if (!S.uc[s]) run_error("cannot allocate a fiber context");
            tl_reaper.armed = true;
        }
    if (to != kMain && !S.started[to]) {
        char* top = fiber_stack_top(S, to);
        ucontext_t* u = S.uc[to];
        getcontext(u);
        u->uc_stack.ss_sp = top - fiber_stack_bytes();
        u->uc_stack.ss_size = fiber_stack_bytes();
        u->uc_link = nullptr;
        makecontext(u, &fiber_main, 0);
        S.started[to] = true;
    }
    swapcontext(S.uc[from], S.uc[to]);
#endif
}

inline unsigned slot_of(const Sched& S, unsigned t) { return t == S.main_thread ? kMain : t; }


// The running thread stops at a barrier (or has returned: `exited`) and the next thread of
// the sweep runs. Returns when this thread is released (never for an exited fiber; at once
// when it is the only live thread; for the exited main thread, when all have exited).
inline void sweep_next(Sched& S, bool exited) {
    unsigned me = S.order[S.pos];
    if (!exited) S.order[S.w++] = (unsigned short)me;
    if (++S.pos == S.cnt) {  // every live thread is at the barrier: release them in order
        S.cnt = S.w;
        S.pos = 0;
        S.w = 0;
    }
    unsigned from = slot_of(S, me);
    if (S.cnt == 0) {  // all threads have exited: back to the runner
        if (from != kMain) ctx_switch(S, from, kMain);
        return;
    }
    unsigned next = S.order[S.pos];
    if (next == me) return;
    tl_cuda.thread_idx = S.tid[next];
    ctx_switch(S, from, slot_of(S, next));
}

// First __syncthreads of the block, by the running (direct-phase) thread t.
inline void enter_coop(Sched& S) {
    aia_dim3 d = tl_cuda.block_dim, ti = tl_cuda.thread_idx;
    unsigned t = ti.x + d.x * (ti.y + d.y * ti.z);
    if (t + 1 >= S.n) return;  // the last thread, all others returned: nothing to wait for
    S.coop = true;
    S.main_thread = t;
    if (S.tid_of.x != d.x || S.tid_of.y != d.y || S.tid_of.z != d.z) {  // once per block shape
        for (unsigned j = 0; j < S.n; ++j) S.tid[j] = aia_dim3{j % d.x, (j / d.x) % d.y, j / (d.x * d.y)};
        S.tid_of = d;
    }
    S.cnt = S.n - t;
    for (unsigned i = 0; i < S.cnt; ++i) S.order[i] = (unsigned short)(t + i);
    for (unsigned j = t + 1; j < S.n; ++j) S.started[j] = false;
    S.pos = 0;
    S.w = 0;
    sweep_next(S, false);
}

__attribute__((noinline)) inline void sync_threads() {
    Sched& S = tl_sched;
    if (!S.active) return;  // outside a launch: one thread
    if (S.coop)
        sweep_next(S, false);
    else
        enter_coop(S);
}

inline void fiber_main() {
    Sched& S = tl_sched;
    S.invoke(S.fobj);
    sweep_next(S, true);
    __builtin_trap();  // not reached: an exited fiber is never resumed
}

template <class F> void invoke_thunk(void* f) { (*static_cast<F*>(f))(); }

// Threads of one block; B.block_idx is set. (B is this OS thread's tl_cuda: its address is
// taken once, not per CUDA thread.)
template <class F> inline void run_block(Sched& S, Builtins& B, F& f, aia_dim3 block) {
    for (unsigned z = 0; z < block.z; ++z)
        for (unsigned y = 0; y < block.y; ++y)
            for (unsigned x = 0; x < block.x; ++x) {
                B.thread_idx = aia_dim3{x, y, z};
                std::atomic_signal_fence(std::memory_order_seq_cst);  // visible to a fault
                f();
                if (__builtin_expect(S.coop, 0)) {  // this thread returned; run the others
                    sweep_next(S, true);
                    S.coop = false;
                    return;
                }
            }
}

template <class F>
__attribute__((noinline)) int run_range(Sched& S, F& f, aia_dim3 grid, aia_dim3 block,
                                        unsigned long long first, unsigned long long count,
                                        const volatile int* abort_flag) {
    unsigned long long rest = first / grid.x;
    unsigned bx = (unsigned)(first % grid.x), by = (unsigned)(rest % grid.y),
             bz = (unsigned)(rest / grid.y);
    Builtins& B = tl_cuda;
    for (unsigned long long b = 0; b < count; ++b) {
        if (abort_flag && *abort_flag) return 2;
        B.block_idx = aia_dim3{bx, by, bz};
        std::atomic_signal_fence(std::memory_order_seq_cst);
        run_block(S, B, f, block);
        if (++bx == grid.x) {
            bx = 0;
            if (++by == grid.y) {
                by = 0;
                ++bz;
            }
        }
    }
    return 0;
}

inline int fail(AiaEmuFault* fault, const char* msg) {
    if (fault) {
        fault->kind = 0;
        std::snprintf(fault->message, sizeof fault->message, "%s", msg);
    }
    return -1;
}

// Fills *fault after a signal caught in kernel code (or a runtime error); the block and
// thread are those the runner last set.
inline int report(const FaultCatch& c, AiaEmuFault* fault, const char* name, aia_dim3 grid) {
    if (c.sig == 0) return fail(fault, c.msg);
    if (!fault) return 1;
    if (!name) name = "kernel";
    aia_dim3 b = tl_cuda.block_idx, t = tl_cuda.thread_idx, d = tl_cuda.block_dim;
    std::uintptr_t addr = reinterpret_cast<std::uintptr_t>(c.addr);
    fault->kind = c.sig == SIGBUS ? 2 : 1;
    fault->addr = addr;
    fault->block = b.x + (unsigned long long)grid.x * (b.y + (unsigned long long)grid.y * b.z);
    fault->thread = t.x + d.x * (t.y + d.y * t.z);
    const char* what = "";
    if (c.sig == SIGSEGV && c.code == SEGV_MAPERR) what = " (address not mapped)";
    if (c.sig == SIGSEGV && c.code == SEGV_ACCERR) what = " (no access to the page)";
    if (c.sig == SIGBUS) what = " (bus error: e.g. past the end of a mapped file)";
    char extra[96] = "";
    const Sched& S = tl_sched;
    std::size_t pg = page_size();
    for (unsigned j = 0; j < kMaxThreads; ++j) {
        std::uintptr_t g = reinterpret_cast<std::uintptr_t>(S.stack[j]);
        if (g && addr >= g && addr < g + pg) {
            std::snprintf(extra, sizeof extra, " (stack overflow: guard page of the %zu-byte fiber stack)",
                          fiber_stack_bytes());
            break;
        }
    }
    std::snprintf(fault->message, sizeof fault->message,
                  "%s at address 0x%llx%s%s in kernel %s, block (%u,%u,%u), thread (%u,%u,%u)",
                  c.sig == SIGBUS ? "SIGBUS" : "SIGSEGV", (unsigned long long)addr, what, extra, name,
                  b.x, b.y, b.z, t.x, t.y, t.z);
    return 1;
}

}  // namespace detail

// Runs linear blocks [first, first + count) of a launch of `grid` x `block` on the calling
// OS thread: `f()` is the body of one CUDA thread (a kernel call). Returns 0 when done, 1 on
// a fault in kernel code (*fault filled, if given), 2 when *abort_flag became non-zero
// (checked between blocks), -1 for an invalid launch (message in *fault). May be called
// from several OS threads at once (e.g. on disjoint block ranges of one launch).
template <class F>
int run(aia_dim3 grid, aia_dim3 block, unsigned long long first, unsigned long long count, F&& f,
        const volatile int* abort_flag = nullptr, AiaEmuFault* fault = nullptr, const char* name = "kernel") {
    using Fn = std::remove_reference_t<F>;
    if (fault) std::memset(fault, 0, sizeof *fault);
    unsigned long long nt = (unsigned long long)block.x * block.y * block.z;
    unsigned long long nb = (unsigned long long)grid.x * grid.y * grid.z;
    if (nt == 0 || nt > detail::kMaxThreads) return detail::fail(fault, "block size must be 1 ... 1024 threads");
    if (first > nb || count > nb - first) return detail::fail(fault, "block range outside the grid");
    if (count == 0) return 0;
    detail::Sched& S = detail::tl_sched;
    if (S.active) return detail::fail(fault, "runner re-entered on one OS thread");
    detail::install_handlers();
    if (!S.altstack_checked) {
        detail::ensure_altstack(S);
        S.altstack_checked = true;
    }
    S.invoke = &detail::invoke_thunk<Fn>;
    S.fobj = const_cast<void*>(static_cast<const void*>(&f));
    S.n = (unsigned)nt;
    S.coop = false;
    tl_cuda.block_dim = block;
    tl_cuda.grid_dim = grid;
    detail::FaultCatch c;
    c.sig = 0;
    c.msg = "";
    if (sigsetjmp(c.jb, 1) != 0) {  // from the fault handler or run_error (slot released)
        detail::Sched& R = detail::tl_sched;
        R.active = false;
        R.coop = false;
        return detail::report(c, fault, name, tl_cuda.grid_dim);
    }
    detail::CatchSlot* slot = detail::catch_register(&c);
    if (!slot) return detail::fail(fault, "too many OS threads in the runner at once");
    S.active = true;
    int rc = detail::run_range(S, f, grid, block, first, count, abort_flag);
    S.active = false;
    detail::catch_release(slot);
    return rc;
}

// Runs every thread of every block of the launch (blocks in linear order); aborts the
// process with a message on a fault. Exact for cooperative kernels (see the top).
template <class F> void launch(aia_dim3 grid, aia_dim3 block, F f) {
    AiaEmuFault fault;
    int rc = run(grid, block, 0, (unsigned long long)grid.x * grid.y * grid.z, f, nullptr, &fault);
    if (rc != 0) {
        std::fprintf(stderr, "aia_emu::launch: %s\n", fault.message);
        std::abort();
    }
}

// Same as launch (kept for the callers that mark their cooperative kernels).
template <class F> void launch_coop(aia_dim3 grid, aia_dim3 block, F f) { launch(grid, block, f); }

// ---------------------------------------------------------------------------- module ABI
namespace detail {

typedef int (*EntryRun)(void** params, aia_dim3 grid, aia_dim3 block, unsigned long long first,
                        unsigned long long count, const volatile int* abort_flag, AiaEmuFault* fault,
                        const char* name);
typedef int (*EntryParams)(AiaEmuParam* out, int max);
struct Entry {
    const char* name;
    EntryRun run;
    EntryParams params;
};

template <class T> constexpr int param_kind() {
    if constexpr (std::is_pointer_v<T>)
        return std::is_const_v<std::remove_pointer_t<T>> ? 1 : 2;
    else
        return 0;
}

template <class T> inline T load_param(const void* p) {
    static_assert(std::is_trivially_copyable_v<T>, "kernel parameters must be trivially copyable");
    T v;
    std::memcpy(static_cast<void*>(&v), p, sizeof(T));
    return v;
}

template <class K> struct KernelSig;
template <class... A> struct KernelSig<void (*)(A...)> {
    static constexpr int count = (int)sizeof...(A);
    static int params(AiaEmuParam* out, int max) {
        const AiaEmuParam p[] = {
            AiaEmuParam{(unsigned)sizeof(std::decay_t<A>), (unsigned)alignof(std::decay_t<A>),
                        param_kind<std::decay_t<A>>()}...,
            AiaEmuParam{0, 0, 0}};
        for (int j = 0; j < count && j < max; ++j) out[j] = p[j];
        return count;
    }
    // The kernel's arguments are unpacked once per call, then passed to every CUDA thread.
    template <void (*K)(A...), std::size_t... I>
    static int run(std::index_sequence<I...>, [[maybe_unused]] void** params, aia_dim3 grid,
                   aia_dim3 block, unsigned long long first, unsigned long long cnt,
                   const volatile int* abort_flag, AiaEmuFault* fault, const char* name) {
        std::tuple<std::decay_t<A>...> args{load_param<std::decay_t<A>>(params[I])...};
        auto body = [&args] { std::apply(K, args); };
        return ::aia_emu::run(grid, block, first, cnt, body, abort_flag, fault, name);
    }
};

template <auto K>
int entry_run(void** params, aia_dim3 grid, aia_dim3 block, unsigned long long first,
              unsigned long long count, const volatile int* abort_flag, AiaEmuFault* fault,
              const char* name) {
    using Sig = KernelSig<decltype(K)>;
    if (fault) std::memset(fault, 0, sizeof *fault);
    if (Sig::count > 0 && !params) return fail(fault, "no kernel parameters given");
    return Sig::template run<K>(std::make_index_sequence<Sig::count>{}, params, grid, block, first,
                                count, abort_flag, fault, name);
}

}  // namespace detail
}  // namespace aia_emu

inline void __syncthreads() {
    asm volatile("" ::: "memory");
    ::aia_emu::detail::sync_threads();
    asm volatile("" ::: "memory");
}

#if defined(AIA_EMULATE_DEVICE)
// Module mode. The program's kernels stay hidden too (no interposition between modules):
// the visibility push above is popped by AIA_EMU_MODULE_BEGIN.
//
// Exported C ABI (all extern "C", default visibility):
//   int aia_emu_abi_version(void);                          // 1
//   int aia_emu_entry_count(void);
//   const char* aia_emu_entry_name(int i);                  // NULL when out of range
//   int aia_emu_entry_params(int i, AiaEmuParam* out, int max);
//       // the parameter count (fills min(count, max)); -1 for a bad i
//   int aia_emu_run(int i, void** params, aia_dim3 grid, aia_dim3 block,
//                   unsigned long long first, unsigned long long count,
//                   const volatile int* abort_flag, AiaEmuFault* fault);
//       // runs linear blocks [first, first + count) of entry i; params as cuLaunchKernel's
//       // kernelParams. 0 done, 1 fault (*fault filled), 2 aborted (*abort_flag non-zero,
//       // checked between blocks), -1 bad entry / launch configuration (fault->message).
#define AIA_EMU_EXPORT extern "C" __attribute__((visibility("default")))
#define AIA_EMU_MODULE_BEGIN                \
    _Pragma("GCC visibility pop")           \
    namespace aia_emu_module {              \
    static const ::aia_emu::detail::Entry entries[] = {
#define AIA_EMU_ENTRY(name) \
    {#name, &::aia_emu::detail::entry_run<&name>, &::aia_emu::detail::KernelSig<decltype(&name)>::params},
#define AIA_EMU_MODULE_END                                                                         \
    {nullptr, nullptr, nullptr}};                                                                  \
    static const int n_entries = (int)(sizeof(entries) / sizeof(entries[0])) - 1;                  \
    }                                                                                              \
    AIA_EMU_EXPORT int aia_emu_abi_version(void) { return 1; }                                     \
    AIA_EMU_EXPORT int aia_emu_entry_count(void) { return aia_emu_module::n_entries; }             \
    AIA_EMU_EXPORT const char* aia_emu_entry_name(int i) {                                         \
        return i >= 0 && i < aia_emu_module::n_entries ? aia_emu_module::entries[i].name : nullptr; \
    }                                                                                              \
    AIA_EMU_EXPORT int aia_emu_entry_params(int i, AiaEmuParam* out, int max) {                    \
        if (i < 0 || i >= aia_emu_module::n_entries) return -1;                                    \
        return aia_emu_module::entries[i].params(out, out ? max : 0);                              \
    }                                                                                              \
    AIA_EMU_EXPORT int aia_emu_run(int i, void** params, aia_dim3 grid, aia_dim3 block,            \
                                   unsigned long long first, unsigned long long count,             \
                                   const volatile int* abort_flag, AiaEmuFault* fault) {           \
        if (i < 0 || i >= aia_emu_module::n_entries)                                               \
            return ::aia_emu::detail::fail(fault, "no such entry point");                          \
        return aia_emu_module::entries[i].run(params, grid, block, first, count, abort_flag, fault, \
                                              aia_emu_module::entries[i].name);                    \
    }
#else
#pragma GCC visibility pop
#endif

#endif  // AIAPREP_EMULATE_H
