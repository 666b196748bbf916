//! The driver model itself, through the exported entry points: contexts, memory checks,
//! races between streams, the pool, events, NVRTC, launches and faults, cuFFT.
//!
//! Each test that can leave a sticky error works on a device of its own (the unit tests
//! present 16 devices).

use std::ffi::{c_char, c_void, CString};
use std::ptr::null_mut;

use crate::cu;
use crate::driver::*;

type H = *mut c_void;

/// Initialises the driver and makes device `d`'s primary context current on this thread.
fn ctx(d: i32) -> H {
    assert_eq!(cuInit(0), cu::SUCCESS);
    let mut c: H = null_mut();
    unsafe {
        assert_eq!(cuDevicePrimaryCtxRetain(&mut c, d), cu::SUCCESS);
    }
    assert_eq!(cuCtxSetCurrent(c), cu::SUCCESS);
    c
}

fn stream() -> H {
    let mut s: H = null_mut();
    unsafe { assert_eq!(cuStreamCreate(&mut s, 1), cu::SUCCESS) };
    s
}

fn alloc(n: usize) -> u64 {
    let mut p = 0u64;
    unsafe { assert_eq!(cuMemAlloc_v2(&mut p, n), cu::SUCCESS) };
    p
}

fn pinned(n: usize) -> *mut u8 {
    let mut p: *mut c_void = null_mut();
    unsafe { assert_eq!(cuMemHostAlloc(&mut p, n, 0), cu::SUCCESS) };
    p as *mut u8
}

fn diagnostics() -> String {
    let mut buf = vec![0 as c_char; 1 << 16];
    unsafe { crate::diag::softcuda_diagnostics(buf.as_mut_ptr(), buf.len()) };
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn work_needs_a_current_context() {
    assert_eq!(cuInit(0), cu::SUCCESS);
    std::thread::spawn(|| {
        let mut p = 0u64;
        assert_eq!(unsafe { cuMemAlloc_v2(&mut p, 16) }, cu::INVALID_CONTEXT);
        let mut s: H = null_mut();
        assert_eq!(unsafe { cuStreamCreate(&mut s, 0) }, cu::INVALID_CONTEXT);
        assert_eq!(cuCtxSynchronize(), cu::INVALID_CONTEXT);
    })
    .join()
    .unwrap();
    // push/pop restore what was current
    let c = ctx(1);
    assert_eq!(cuCtxPushCurrent_v2(c), cu::SUCCESS);
    let mut popped: H = null_mut();
    unsafe { assert_eq!(cuCtxPopCurrent_v2(&mut popped), cu::SUCCESS) };
    assert_eq!(popped, c);
    let mut cur: H = null_mut();
    unsafe { assert_eq!(cuCtxGetCurrent(&mut cur), cu::SUCCESS) };
    assert_eq!(cur, c);
}

#[test]
fn copies_are_checked_against_the_allocation_table() {
    ctx(2);
    let s = stream();
    let p = alloc(1000);
    let host = vec![7u8; 1001];
    unsafe {
        assert_eq!(
            cuMemcpyHtoDAsync_v2(p, host.as_ptr() as _, 1000, s),
            cu::SUCCESS
        );
        // one byte too many
        assert_eq!(
            cuMemcpyHtoDAsync_v2(p, host.as_ptr() as _, 1001, s),
            cu::INVALID_VALUE
        );
        // not device memory at all
        assert_eq!(
            cuMemcpyHtoDAsync_v2(host.as_ptr() as u64, host.as_ptr() as _, 4, s),
            cu::INVALID_VALUE
        );
    }
    assert!(
        diagnostics().contains("1 bytes past the end"),
        "{}",
        diagnostics()
    );
    // fresh memory is poisoned, not zero
    let q = alloc(8);
    let mut back = [0u8; 8];
    unsafe { assert_eq!(cuMemcpyDtoH_v2(back.as_mut_ptr() as _, q, 8), cu::SUCCESS) };
    assert_eq!(back, [0xFF; 8]);
}

#[test]
fn use_after_free_and_double_free_are_refused() {
    ctx(3);
    let s = stream();
    let mut p = 0u64;
    unsafe { assert_eq!(cuMemAllocAsync(&mut p, 256, s), cu::SUCCESS) };
    assert_eq!(cuMemFreeAsync(p, s), cu::SUCCESS);
    // after the free is enqueued, nothing may touch it, even on the same stream
    assert_eq!(cuMemsetD8Async(p, 0, 256, s), cu::INVALID_VALUE);
    assert!(
        diagnostics().contains("use after free"),
        "{}",
        diagnostics()
    );
    assert_eq!(cuMemFreeAsync(p, s), cu::INVALID_VALUE);
    assert_eq!(cuStreamSynchronize(s), cu::SUCCESS);
    // once freed, the address is remembered
    assert_eq!(cuMemsetD8Async(p + 8, 0, 8, s), cu::INVALID_VALUE);
    assert!(
        diagnostics().contains("freed by cuMemFreeAsync"),
        "{}",
        diagnostics()
    );
}

#[test]
fn unsynchronised_streams_are_races() {
    ctx(4);
    let (a, b) = (stream(), stream());
    let buf = alloc(4096);
    let out = alloc(4096);
    // write on A, read on B: a race, whatever the timing
    assert_eq!(cuMemsetD8Async(buf, 1, 4096, a), cu::SUCCESS);
    assert_eq!(cuMemcpyDtoDAsync_v2(out, buf, 4096, b), cu::ILLEGAL_STATE);
    assert!(diagnostics().contains("race:"), "{}", diagnostics());
    // an event recorded after the write and waited for by B orders them
    let mut e: H = null_mut();
    unsafe { assert_eq!(cuEventCreate(&mut e, 0), cu::SUCCESS) };
    assert_eq!(cuEventRecord(e, a), cu::SUCCESS);
    assert_eq!(cuStreamWaitEvent(b, e, 0), cu::SUCCESS);
    assert_eq!(cuMemcpyDtoDAsync_v2(out, buf, 4096, b), cu::SUCCESS);
    // write on A while B may still read: a race (write after read)
    assert_eq!(cuMemsetD8Async(buf, 2, 4096, a), cu::ILLEGAL_STATE);
    // freeing on A while B reads: a race too
    assert_eq!(cuMemFreeAsync(buf, a), cu::ILLEGAL_STATE);
    // the host waited for B: now A may write and free
    assert_eq!(cuStreamSynchronize(b), cu::SUCCESS);
    assert_eq!(cuMemsetD8Async(buf, 2, 4096, a), cu::SUCCESS);
    assert_eq!(cuMemFreeAsync(buf, a), cu::SUCCESS);
    assert_eq!(cuCtxSynchronize(), cu::SUCCESS);
}

#[test]
fn waits_chain_through_streams() {
    ctx(5);
    let (a, b, c) = (stream(), stream(), stream());
    let buf = alloc(64);
    let tmp = alloc(64);
    let mut e1: H = null_mut();
    let mut e2: H = null_mut();
    unsafe {
        cuEventCreate(&mut e1, 2);
        cuEventCreate(&mut e2, 2);
    }
    assert_eq!(cuMemsetD8Async(buf, 3, 64, a), cu::SUCCESS);
    assert_eq!(cuEventRecord(e1, a), cu::SUCCESS);
    assert_eq!(cuStreamWaitEvent(b, e1, 0), cu::SUCCESS);
    assert_eq!(cuMemsetD8Async(tmp, 0, 64, b), cu::SUCCESS);
    assert_eq!(cuEventRecord(e2, b), cu::SUCCESS);
    assert_eq!(cuStreamWaitEvent(c, e2, 0), cu::SUCCESS);
    // C waited for B, which waited for A: ordered after A's write
    let mut host = [0u8; 64];
    unsafe {
        assert_eq!(
            cuMemcpyDtoHAsync_v2(host.as_mut_ptr() as _, buf, 64, c),
            cu::SUCCESS
        );
    }
    assert_eq!(
        host, [3u8; 64],
        "a copy to pageable memory returns when done"
    );
    // elapsed time needs timing events
    let mut ms = 0f32;
    assert_eq!(
        unsafe { cuEventElapsedTime(&mut ms, e1, e2) },
        cu::INVALID_HANDLE
    );
}

#[test]
fn pinned_copies_run_in_stream_order() {
    ctx(6);
    let s = stream();
    let dbuf = alloc(1 << 20);
    let h = pinned(1 << 20);
    unsafe {
        std::ptr::write_bytes(h, 9, 1 << 20);
        assert_eq!(cuMemcpyHtoDAsync_v2(dbuf, h as _, 1 << 20, s), cu::SUCCESS);
        assert_eq!(cuMemsetD8Async(dbuf, 5, 16, s), cu::SUCCESS);
        assert_eq!(cuMemcpyDtoHAsync_v2(h as _, dbuf, 1 << 20, s), cu::SUCCESS);
    }
    assert_eq!(cuStreamSynchronize(s), cu::SUCCESS);
    let v = unsafe { std::slice::from_raw_parts(h, 1 << 20) };
    assert!(v[..16].iter().all(|&x| x == 5) && v[16..].iter().all(|&x| x == 9));
    assert_eq!(cuMemFreeHost(h as _), cu::SUCCESS);
}

#[test]
fn pool_keeps_up_to_its_threshold() {
    ctx(7);
    let s = stream();
    let mut pool: H = null_mut();
    unsafe { assert_eq!(cuDeviceGetDefaultMemPool(&mut pool, 7), cu::SUCCESS) };
    let reserved = |pool: H| -> u64 {
        let (mut r, mut u) = (0u64, 0u64);
        unsafe {
            cuMemPoolGetAttribute(pool, 5, (&mut r as *mut u64).cast());
            cuMemPoolGetAttribute(pool, 7, (&mut u as *mut u64).cast());
        }
        r - u
    };
    let cycle = || {
        let mut p = 0u64;
        unsafe { assert_eq!(cuMemAllocAsync(&mut p, 1 << 20, s), cu::SUCCESS) };
        assert_eq!(cuMemFreeAsync(p, s), cu::SUCCESS);
        assert_eq!(cuStreamSynchronize(s), cu::SUCCESS);
    };
    cycle();
    assert_eq!(reserved(pool), 0, "default threshold 0: all released");
    let mut t: u64 = 8 << 20;
    unsafe {
        assert_eq!(
            cuMemPoolSetAttribute(pool, 4, (&mut t as *mut u64).cast()),
            cu::SUCCESS
        )
    };
    cycle();
    assert_eq!(reserved(pool), 1 << 20);
    let (mut free, mut total) = (0usize, 0usize);
    unsafe { assert_eq!(cuMemGetInfo_v2(&mut free, &mut total), cu::SUCCESS) };
    assert!(free <= total - (1 << 20), "kept memory is not free");
    assert_eq!(cuMemPoolTrimTo(pool, 0), cu::SUCCESS);
    assert_eq!(reserved(pool), 0);
}

// ------------------------------------------------------------------ NVRTC and launches

const KERNELS: &str = r#"
extern "C" __global__ void twice(const float* in, float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = 2.0f * in[i];
}
// no bounds check: a grid larger than the buffer writes past its end
extern "C" __global__ void unchecked(float* out) {
    out[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}
extern "C" __global__ void block_sum(const float* in, float* out) {
    __shared__ float part[256];
    unsigned t = threadIdx.x;
    part[t] = in[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) part[t] += part[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = part[0];
}
"#;

/// Compiles `src` with the emulated NVRTC `major` and options; `Ok(image)` or the code and log.
fn nvrtc(major: i32, src: &str, opts: &[&str], cubin: bool) -> Result<Vec<u8>, (i32, String)> {
    use crate::nvrtc::*;
    let src = CString::new(src).unwrap();
    let name = CString::new("test.cu").unwrap();
    let mut prog = 0usize;
    unsafe {
        assert_eq!(
            softcuda_nvrtc_create(
                &mut prog,
                src.as_ptr(),
                name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null()
            ),
            SUCCESS
        );
        let o: Vec<CString> = opts.iter().map(|s| CString::new(*s).unwrap()).collect();
        let op: Vec<*const c_char> = o.iter().map(|c| c.as_ptr()).collect();
        let rc = softcuda_nvrtc_compile(major, 0, prog, op.len() as i32, op.as_ptr());
        let mut n = 0usize;
        softcuda_nvrtc_log_size(prog, &mut n);
        let mut log = vec![0 as c_char; n];
        softcuda_nvrtc_log(prog, log.as_mut_ptr());
        let log = std::ffi::CStr::from_ptr(log.as_ptr())
            .to_string_lossy()
            .into_owned();
        if rc != SUCCESS {
            softcuda_nvrtc_destroy(&mut prog);
            return Err((rc, log));
        }
        let mut size = 0usize;
        let mut img;
        if cubin {
            softcuda_nvrtc_cubin_size(prog, &mut size);
            img = vec![0u8; size];
            softcuda_nvrtc_cubin(prog, img.as_mut_ptr() as _);
        } else {
            softcuda_nvrtc_ptx_size(prog, &mut size);
            img = vec![0u8; size];
            softcuda_nvrtc_ptx(prog, img.as_mut_ptr() as _);
        }
        softcuda_nvrtc_destroy(&mut prog);
        Ok(img)
    }
}

fn function(image: &[u8], name: &str) -> H {
    let mut m: H = null_mut();
    let mut f: H = null_mut();
    let n = CString::new(name).unwrap();
    unsafe {
        assert_eq!(cuModuleLoadData(&mut m, image.as_ptr() as _), cu::SUCCESS);
        assert_eq!(cuModuleGetFunction(&mut f, m, n.as_ptr()), cu::SUCCESS);
    }
    f
}

#[test]
fn nvrtc_checks_options_and_architectures() {
    let e = nvrtc(13, KERNELS, &["--gpu-architecture=sm_70"], true).unwrap_err();
    assert_eq!(e.0, crate::nvrtc::INVALID_OPTION, "{}", e.1);
    let e = nvrtc(
        12,
        KERNELS,
        &["--gpu-architecture=sm_90", "--frobnicate"],
        true,
    )
    .unwrap_err();
    assert_eq!(e.0, crate::nvrtc::INVALID_OPTION);
    assert!(e.1.contains("unrecognized option --frobnicate"), "{}", e.1);
    let e = nvrtc(
        12,
        "extern \"C\" __global__ void k() { undeclared(); }",
        &["--gpu-architecture=sm_90"],
        true,
    )
    .unwrap_err();
    assert_eq!(e.0, crate::nvrtc::COMPILATION);
    assert!(e.1.contains("undeclared"), "{}", e.1);
    let ptx = nvrtc(
        13,
        KERNELS,
        &["--gpu-architecture=sm_90", "--fmad=false"],
        false,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&ptx);
    assert!(
        text.contains(".target sm_90") && text.contains(".entry block_sum("),
        "{text}"
    );
    // a cubin runs only on its exact architecture; PTX on newer ones
    ctx(8);
    let sm80 = nvrtc(13, KERNELS, &["--gpu-architecture=sm_80"], true).unwrap();
    let mut m: H = null_mut();
    assert_eq!(
        unsafe { cuModuleLoadData(&mut m, sm80.as_ptr() as _) },
        cu::NO_BINARY_FOR_GPU
    );
    let ptx80 = nvrtc(13, KERNELS, &["--gpu-architecture=compute_80"], false).unwrap();
    assert_eq!(
        unsafe { cuModuleLoadData(&mut m, ptx80.as_ptr() as _) },
        cu::SUCCESS
    );
    // real PTX is refused
    let real = b".version 8.0\n.target sm_90\n.address_size 64\n\0";
    assert_eq!(
        unsafe { cuModuleLoadData(&mut m, real.as_ptr() as _) },
        cu::INVALID_IMAGE
    );
}

#[test]
fn launches_compute_and_check_their_arguments() {
    ctx(9);
    let img = nvrtc(13, KERNELS, &["--gpu-architecture=sm_90"], true).unwrap();
    let s = stream();
    let n = 1000usize;
    let din = alloc(n * 4);
    let dout = alloc(n * 4);
    let host: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    unsafe { assert_eq!(cuMemcpyHtoD_v2(din, host.as_ptr() as _, n * 4), cu::SUCCESS) };
    let f = function(&img, "twice");
    let (mut a, mut b, mut ni) = (din, dout, n as i32);
    let mut params = [
        (&mut a as *mut u64).cast::<c_void>(),
        (&mut b as *mut u64).cast(),
        (&mut ni as *mut i32).cast(),
    ];
    let launch = |gx: u32, gy: u32, bx: u32, params: &mut [*mut c_void; 3]| unsafe {
        cuLaunchKernel(
            f,
            gx,
            gy,
            1,
            bx,
            1,
            1,
            0,
            s,
            params.as_mut_ptr(),
            null_mut(),
        )
    };
    assert_eq!(launch(4, 1, 256, &mut params), cu::SUCCESS);
    let mut got = vec![0f32; n];
    unsafe {
        assert_eq!(
            cuMemcpyDtoHAsync_v2(got.as_mut_ptr() as _, dout, n * 4, s),
            cu::SUCCESS
        )
    };
    assert!(
        got.iter().zip(&host).all(|(g, h)| *g == 2.0 * h),
        "{:?}",
        &got[..8]
    );
    // the device's limits
    assert_eq!(launch(4, 1, 2048, &mut params), cu::INVALID_VALUE);
    assert_eq!(launch(4, 70_000, 32, &mut params), cu::INVALID_VALUE);
    // a pointer argument that is not device memory
    let mut bogus = host.as_ptr() as u64;
    params[1] = (&mut bogus as *mut u64).cast();
    assert_eq!(launch(4, 1, 256, &mut params), cu::INVALID_VALUE);
    assert!(
        diagnostics().contains("argument 1 (mutable pointer)"),
        "{}",
        diagnostics()
    );
    // a block reduction with __syncthreads over 256 threads
    let g = function(&img, "block_sum");
    let ones = vec![1.0f32; 256 * 64];
    let dones = alloc(ones.len() * 4);
    let dsum = alloc(64 * 4);
    unsafe {
        assert_eq!(
            cuMemcpyHtoD_v2(dones, ones.as_ptr() as _, ones.len() * 4),
            cu::SUCCESS
        )
    };
    let (mut x, mut y) = (dones, dsum);
    let mut p2 = [
        (&mut x as *mut u64).cast::<c_void>(),
        (&mut y as *mut u64).cast(),
    ];
    unsafe {
        assert_eq!(
            cuLaunchKernel(g, 64, 1, 1, 256, 1, 1, 0, s, p2.as_mut_ptr(), null_mut()),
            cu::SUCCESS
        );
    }
    let mut sums = vec![0f32; 64];
    assert_eq!(cuStreamSynchronize(s), cu::SUCCESS);
    unsafe {
        assert_eq!(
            cuMemcpyDtoH_v2(sums.as_mut_ptr() as _, dsum, 64 * 4),
            cu::SUCCESS
        )
    };
    assert!(sums.iter().all(|&v| v == 256.0), "{sums:?}");
}

#[test]
fn an_out_of_bounds_write_is_an_illegal_address() {
    ctx(10);
    let img = nvrtc(13, KERNELS, &["--gpu-architecture=sm_90"], true).unwrap();
    let s = stream();
    let buf = alloc(1000 * 4);
    let f = function(&img, "unchecked");
    let mut p = buf;
    let mut params = [(&mut p as *mut u64).cast::<c_void>()];
    // 4 x 256 threads write 1024 floats into a buffer of 1000
    let r = unsafe { cuLaunchKernel(f, 4, 1, 1, 256, 1, 1, 0, s, params.as_mut_ptr(), null_mut()) };
    assert_eq!(r, cu::SUCCESS, "launches are asynchronous");
    assert_eq!(cuStreamSynchronize(s), cu::ILLEGAL_ADDRESS);
    // sticky: the context is unusable
    let mut q = 0u64;
    assert_eq!(unsafe { cuMemAlloc_v2(&mut q, 8) }, cu::ILLEGAL_ADDRESS);
    assert!(
        diagnostics().contains("illegal address in kernel unchecked"),
        "{}",
        diagnostics()
    );
}

// ------------------------------------------------------------------ cuFFT

#[test]
fn cufft_inverse_overwrites_its_input_and_checks_buffers() {
    use crate::fft::*;
    ctx(11);
    let s = stream();
    let (rows, cols) = (4usize, 6usize);
    let m = cols / 2 + 1;
    let x: Vec<f32> = (0..rows * cols).map(|i| (i % 7) as f32).collect();
    let dx = alloc(rows * cols * 4);
    let dspec = alloc(rows * m * 8);
    let dback = alloc(rows * cols * 4);
    unsafe { cuMemcpyHtoD_v2(dx, x.as_ptr() as _, x.len() * 4) };
    let (mut fwd, mut inv) = (0, 0);
    unsafe {
        assert_eq!(
            softcuda_cufft_plan2d(12000, &mut fwd, rows as i32, cols as i32, 0x2a),
            SUCCESS
        );
        assert_eq!(
            softcuda_cufft_plan2d(12000, &mut inv, rows as i32, cols as i32, 0x2c),
            SUCCESS
        );
    }
    assert_eq!(softcuda_cufft_set_stream(fwd, s as u64), SUCCESS);
    assert_eq!(softcuda_cufft_set_stream(inv, s as u64), SUCCESS);
    assert_eq!(softcuda_cufft_exec(fwd, 0x2a, dx, dspec), SUCCESS);
    assert_eq!(softcuda_cufft_exec(inv, 0x2c, dspec, dback), SUCCESS);
    // the legacy stream does not wait for a non-blocking stream: reading now is a race
    let mut probe = [0f32; 4];
    assert_eq!(
        unsafe { cuMemcpyDtoH_v2(probe.as_mut_ptr() as _, dback, 16) },
        cu::ILLEGAL_STATE
    );
    assert_eq!(cuStreamSynchronize(s), cu::SUCCESS);
    let mut back = vec![0f32; x.len()];
    let mut spec = vec![0f32; rows * m * 2];
    unsafe {
        assert_eq!(
            cuMemcpyDtoH_v2(back.as_mut_ptr() as _, dback, back.len() * 4),
            cu::SUCCESS
        );
        assert_eq!(
            cuMemcpyDtoH_v2(spec.as_mut_ptr() as _, dspec, spec.len() * 4),
            cu::SUCCESS
        );
    }
    for (b, v) in back.iter().zip(&x) {
        assert!((b / (rows * cols) as f32 - v).abs() < 1e-5);
    }
    assert!(
        spec.iter().all(|v| v.is_nan()),
        "the C2R input is scribbled on"
    );
    // the wrong plan type, in place, a buffer too short
    assert_eq!(softcuda_cufft_exec(fwd, 0x2c, dspec, dback), INVALID_TYPE);
    assert_eq!(softcuda_cufft_exec(fwd, 0x2a, dx, dx), INVALID_VALUE);
    let short = alloc(8);
    assert_eq!(softcuda_cufft_exec(fwd, 0x2a, dx, short), INVALID_VALUE);
    assert_eq!(softcuda_cufft_destroy(fwd), SUCCESS);
    assert_eq!(softcuda_cufft_exec(fwd, 0x2a, dx, dspec), INVALID_PLAN);
}

#[test]
fn shared_memory_per_block_is_limited() {
    // more than 48 KiB of static shared memory does not compile (ptxas refuses it)
    let big = "extern \"C\" __global__ void k(float* o) { __shared__ float s[16384]; s[threadIdx.x] = 1.0f; o[0] = s[0]; }";
    let e = nvrtc(13, big, &["--gpu-architecture=sm_90"], true).unwrap_err();
    assert_eq!(e.0, crate::nvrtc::COMPILATION);
    assert!(e.1.contains("too much shared data"), "{}", e.1);
    // 40 KiB static + 16 KiB dynamic is over the limit at launch
    let src = "extern \"C\" __global__ void k(float* o) { __shared__ float s[10240]; s[threadIdx.x] = 1.0f; __syncthreads(); o[threadIdx.x] = s[threadIdx.x]; }";
    ctx(12);
    let img = nvrtc(13, src, &["--gpu-architecture=sm_90"], true).unwrap();
    let f = function(&img, "k");
    let s = stream();
    let out = alloc(64 * 4);
    let mut p = out;
    let mut params = [(&mut p as *mut u64).cast::<c_void>()];
    let mut launch = |shmem| unsafe {
        cuLaunchKernel(
            f,
            1,
            1,
            1,
            64,
            1,
            1,
            shmem,
            s,
            params.as_mut_ptr(),
            null_mut(),
        )
    };
    assert_eq!(launch(16 * 1024), cu::INVALID_VALUE);
    assert!(diagnostics().contains("40960 static"), "{}", diagnostics());
    assert_eq!(launch(0), cu::SUCCESS);
    assert_eq!(cuStreamSynchronize(s), cu::SUCCESS);
}
