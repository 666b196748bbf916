//! The driver API entry points (`cu*`), exported under their real names with the real
//! signatures (the `_v2` names where the headers map to them). Every call that needs a
//! context uses the calling thread's current one and fails with
//! `CUDA_ERROR_INVALID_CONTEXT` without it; streams, events, modules and functions must
//! belong to it. After a sticky error every such call returns that error.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use crate::config;
use crate::cu;
use crate::exec::{self, Dim3, Launch, Module};
use crate::memory::{Alloc, Life, Mapping};
use crate::state::{self, fail, Context, Event, FunctionRec, Inner, ModuleRec};
use crate::stream::{Op, OpKind, Source, Stream};
use crate::{code, CuResult};

type CUresult = c_int;
type Handle = *mut c_void;

fn h(x: u64) -> Handle {
    x as usize as Handle
}
fn id(x: Handle) -> u64 {
    x as usize as u64
}

unsafe fn out<T>(p: *mut T, v: T) -> CuResult {
    if p.is_null() {
        return Err(cu::INVALID_VALUE);
    }
    *p = v;
    Ok(())
}

// ------------------------------------------------------------------ init and devices

#[no_mangle]
pub extern "C" fn cuInit(_flags: c_uint) -> CUresult {
    let cfg = config::get();
    let mut st = state::lock();
    if !st.initialized {
        for _ in 0..cfg.devices {
            let pool = st.new_id();
            st.devices.push(state::Device {
                pool: state::Pool {
                    id: pool,
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        st.initialized = true;
    }
    if st.devices.is_empty() {
        cu::NO_DEVICE
    } else {
        cu::SUCCESS
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuDriverGetVersion(v: *mut c_int) -> CUresult {
    code(out(v, config::get().driver_version))
}

fn device(st: &Inner, d: c_int) -> CuResult<usize> {
    st.require_init()?;
    if d < 0 || d as usize >= st.devices.len() {
        return Err(cu::INVALID_DEVICE);
    }
    Ok(d as usize)
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(n: *mut c_int) -> CUresult {
    let st = state::lock();
    code(
        st.require_init()
            .and_then(|_| out(n, st.devices.len() as c_int)),
    )
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(d: *mut c_int, ordinal: c_int) -> CUresult {
    let st = state::lock();
    code(device(&st, ordinal).and_then(|i| out(d, i as c_int)))
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, d: c_int) -> CUresult {
    let st = state::lock();
    code((|| {
        device(&st, d)?;
        if name.is_null() || len <= 0 {
            return Err(cu::INVALID_VALUE);
        }
        let s = config::get().model.name.as_bytes();
        let n = s.len().min(len as usize - 1);
        std::ptr::copy_nonoverlapping(s.as_ptr(), name as *mut u8, n);
        *name.add(n) = 0;
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, d: c_int) -> CUresult {
    let st = state::lock();
    code(device(&st, d).and_then(|_| out(bytes, config::get().model.memory as usize)))
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetAttribute(v: *mut c_int, attr: c_int, d: c_int) -> CUresult {
    let st = state::lock();
    code((|| {
        device(&st, d)?;
        let m = &config::get().model;
        let x = match attr {
            1 => 1024,                             // MAX_THREADS_PER_BLOCK
            2 | 3 => 1024,                         // MAX_BLOCK_DIM_X, Y
            4 => 64,                               // MAX_BLOCK_DIM_Z
            5 => i32::MAX,                         // MAX_GRID_DIM_X
            6 | 7 => 65535,                        // MAX_GRID_DIM_Y, Z
            8 => 48 * 1024,                        // MAX_SHARED_MEMORY_PER_BLOCK
            9 => 65536,                            // TOTAL_CONSTANT_MEMORY
            10 => 32,                              // WARP_SIZE
            12 => 65536,                           // MAX_REGISTERS_PER_BLOCK
            13 => 1_400_000,                       // CLOCK_RATE (kHz)
            15 => 1,                               // GPU_OVERLAP
            16 => m.sms,                           // MULTIPROCESSOR_COUNT
            17 => 0,                               // KERNEL_EXEC_TIMEOUT
            18 => 0,                               // INTEGRATED
            19 => 1,                               // CAN_MAP_HOST_MEMORY
            20 => 0,                               // COMPUTE_MODE default
            31 => 1,                               // CONCURRENT_KERNELS
            39 => 2048,                            // MAX_THREADS_PER_MULTIPROCESSOR
            40 => 2,                               // ASYNC_ENGINE_COUNT
            41 => 1,                               // UNIFIED_ADDRESSING
            75 => m.cc.0,                          // COMPUTE_CAPABILITY_MAJOR
            76 => m.cc.1,                          // COMPUTE_CAPABILITY_MINOR
            97 => 96 * 1024,                       // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
            115 => i32::from(config::get().pools), // MEMORY_POOLS_SUPPORTED
            _ => 0,
        };
        out(v, x)
    })())
}

// ------------------------------------------------------------------ contexts

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut Handle, d: c_int) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let i = device(&st, d)?;
        if ctx.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        if st.devices[i].primary == 0 {
            let cid = st.new_id();
            let flags = st.devices[i].flags;
            st.contexts.insert(
                cid,
                Context {
                    id: cid,
                    device: i as i32,
                    flags,
                    sticky: Arc::new(AtomicI32::new(0)),
                    null_stream: 0,
                },
            );
            let s = st.create_stream(cid)?;
            if let Some(c) = st.contexts.get_mut(&cid) {
                c.null_stream = s;
            }
            st.devices[i].primary = cid;
            st.devices[i].refs = 0;
        }
        st.devices[i].refs += 1;
        *ctx = h(st.devices[i].primary);
        Ok(())
    })())
}

/// Destroys a context: waits for its streams, frees everything it owns.
fn destroy_context(st: std::sync::MutexGuard<'static, Inner>, cid: u64) {
    let streams: Vec<(Arc<Stream>, u64)> = st
        .streams
        .values()
        .filter(|s| s.stream.ctx == cid)
        .map(|s| (s.stream.clone(), s.enqueued))
        .collect();
    drop(st);
    for (s, seq) in &streams {
        state::wait_for(s, *seq);
        s.close();
    }
    let mut st = state::lock();
    st.streams.retain(|_, s| s.stream.ctx != cid);
    st.events.retain(|_, e| e.ctx != cid);
    st.modules.retain(|_, m| m.ctx != cid);
    st.functions.retain(|_, f| f.ctx != cid);
    for a in st.table.of_context(cid) {
        st.release(a, "the destruction of its context");
    }
    if let Ok(d) = st.device_of(cid) {
        if let Some(dev) = st.devices.get_mut(d) {
            dev.pool.reserved = 0;
        }
    }
    st.contexts.remove(&cid);
}

#[no_mangle]
pub extern "C" fn cuDevicePrimaryCtxRelease_v2(d: c_int) -> CUresult {
    let mut st = state::lock();
    let i = match device(&st, d) {
        Ok(i) => i,
        Err(e) => return e,
    };
    if st.devices[i].refs == 0 {
        return cu::INVALID_CONTEXT;
    }
    st.devices[i].refs -= 1;
    if st.devices[i].refs == 0 {
        let cid = st.devices[i].primary;
        st.devices[i].primary = 0;
        destroy_context(st, cid);
    }
    cu::SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxGetState(
    d: c_int,
    flags: *mut c_uint,
    active: *mut c_int,
) -> CUresult {
    let st = state::lock();
    code((|| {
        let i = device(&st, d)?;
        out(flags, st.devices[i].flags)?;
        out(active, i32::from(st.devices[i].primary != 0))
    })())
}

#[no_mangle]
pub extern "C" fn cuDevicePrimaryCtxSetFlags_v2(d: c_int, flags: c_uint) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let i = device(&st, d)?;
        if flags & !0x1f != 0 {
            return Err(cu::INVALID_VALUE);
        }
        st.devices[i].flags = flags;
        let p = st.devices[i].primary;
        if let Some(c) = st.contexts.get_mut(&p) {
            c.flags = flags;
        }
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetCurrent(ctx: *mut Handle) -> CUresult {
    let st = state::lock();
    code(
        st.require_init()
            .and_then(|_| out(ctx, h(state::current()))),
    )
}

#[no_mangle]
pub extern "C" fn cuCtxSetCurrent(ctx: Handle) -> CUresult {
    let st = state::lock();
    code((|| {
        st.require_init()?;
        if !ctx.is_null() && !st.contexts.contains_key(&id(ctx)) {
            return Err(cu::INVALID_CONTEXT);
        }
        state::set_current(id(ctx));
        Ok(())
    })())
}

#[no_mangle]
pub extern "C" fn cuCtxPushCurrent_v2(ctx: Handle) -> CUresult {
    let st = state::lock();
    code((|| {
        st.require_init()?;
        if !st.contexts.contains_key(&id(ctx)) {
            return Err(cu::INVALID_CONTEXT);
        }
        state::push_current(id(ctx));
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxPopCurrent_v2(ctx: *mut Handle) -> CUresult {
    let st = state::lock();
    code((|| {
        st.require_init()?;
        if state::current() == 0 {
            return Err(cu::INVALID_CONTEXT);
        }
        let c = state::pop_current();
        if !ctx.is_null() {
            *ctx = h(c);
        }
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetFlags(flags: *mut c_uint) -> CUresult {
    let st = state::lock();
    code(
        st.current_ctx()
            .and_then(|c| out(flags, st.contexts[&c].flags)),
    )
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetDevice(d: *mut c_int) -> CUresult {
    let st = state::lock();
    code(
        st.current_ctx()
            .and_then(|c| out(d, st.contexts[&c].device)),
    )
}

/// Waits for streams (with the sequence numbers enqueued now), as the host: afterwards their
/// operations count as observed, pools trim, and a sticky error is returned.
fn host_wait(st: std::sync::MutexGuard<'static, Inner>, streams: Vec<u64>, ctx: u64) -> CuResult {
    let targets: Vec<(Arc<Stream>, u64, state::Clock)> = streams
        .iter()
        .filter_map(|s| st.streams.get(s))
        .map(|s| (s.stream.clone(), s.enqueued, s.clock.clone()))
        .collect();
    let sticky = st.contexts.get(&ctx).map(|c| c.sticky.clone());
    drop(st);
    for (s, seq, _) in &targets {
        state::wait_for(s, *seq);
    }
    let mut st = state::lock();
    for (_, _, clock) in &targets {
        st.host_observed(clock);
    }
    st.trim_pools();
    match sticky.map(|s| s.load(Ordering::Relaxed)) {
        Some(0) | None => Ok(()),
        Some(e) => Err(e),
    }
}

fn context_streams(st: &Inner, ctx: u64) -> Vec<u64> {
    st.streams
        .iter()
        .filter(|(_, s)| s.stream.ctx == ctx)
        .map(|(&k, _)| k)
        .collect()
}

#[no_mangle]
pub extern "C" fn cuCtxSynchronize() -> CUresult {
    let st = state::lock();
    let ctx = match st.current_ctx() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let streams = context_streams(&st, ctx);
    code(host_wait(st, streams, ctx))
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorName(e: CUresult, s: *mut *const c_char) -> CUresult {
    match cu::describe(e) {
        Some((n, _)) => code(out(s, n.as_ptr() as *const c_char)),
        None => cu::INVALID_VALUE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorString(e: CUresult, s: *mut *const c_char) -> CUresult {
    match cu::describe(e) {
        Some((_, d)) => code(out(s, d.as_ptr() as *const c_char)),
        None => cu::INVALID_VALUE,
    }
}

// ------------------------------------------------------------------ streams and events

#[no_mangle]
pub unsafe extern "C" fn cuStreamCreate(s: *mut Handle, _flags: c_uint) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        if s.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        *s = h(st.create_stream(ctx)?);
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamCreateWithPriority(
    s: *mut Handle,
    flags: c_uint,
    _priority: c_int,
) -> CUresult {
    cuStreamCreate(s, flags)
}

#[no_mangle]
pub extern "C" fn cuStreamDestroy_v2(s: Handle) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        if s.is_null() {
            return Err(cu::INVALID_HANDLE);
        }
        let sid = st.stream_id(ctx, id(s))?;
        if let Some(rec) = st.streams.remove(&sid) {
            rec.stream.close();
        }
        Ok(())
    })())
}

#[no_mangle]
pub extern "C" fn cuStreamSynchronize(s: Handle) -> CUresult {
    let st = state::lock();
    let r = st
        .current_ctx()
        .and_then(|c| st.stream_id(c, id(s)).map(|sid| (c, sid)));
    match r {
        Ok((ctx, sid)) => code(host_wait(st, vec![sid], ctx)),
        Err(e) => e,
    }
}

#[no_mangle]
pub extern "C" fn cuStreamQuery(s: Handle) -> CUresult {
    let st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        let sid = st.stream_id(ctx, id(s))?;
        let rec = &st.streams[&sid];
        if rec.stream.completed() >= rec.enqueued {
            Ok(())
        } else {
            Err(cu::NOT_READY)
        }
    })())
}

#[no_mangle]
pub extern "C" fn cuStreamWaitEvent(s: Handle, e: Handle, _flags: c_uint) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        let sid = st.stream_id(ctx, id(s))?;
        let ev = st.events.get(&id(e)).ok_or(cu::INVALID_HANDLE)?;
        let Some((target, seq)) = ev.recorded.clone() else {
            return Ok(());
        };
        let clock = ev.clock.clone();
        let my = st.next_seq(sid)?;
        st.stream_waits(sid, &clock);
        st.streams[&sid].stream.push(Op {
            seq: my,
            kind: OpKind::Wait {
                stream: target,
                seq,
            },
        });
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuEventCreate(e: *mut Handle, flags: c_uint) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        if e.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        let eid = st.new_id();
        st.events.insert(
            eid,
            Event {
                ctx,
                flags,
                recorded: None,
                clock: state::Clock::new(),
                time: Arc::new(Mutex::new(None)),
            },
        );
        *e = h(eid);
        Ok(())
    })())
}

#[no_mangle]
pub extern "C" fn cuEventDestroy_v2(e: Handle) -> CUresult {
    let mut st = state::lock();
    code((|| {
        st.require_init()?;
        st.events
            .remove(&id(e))
            .map(|_| ())
            .ok_or(cu::INVALID_HANDLE)
    })())
}

#[no_mangle]
pub extern "C" fn cuEventRecord(e: Handle, s: Handle) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        let sid = st.stream_id(ctx, id(s))?;
        let ev = st.events.get(&id(e)).ok_or(cu::INVALID_HANDLE)?;
        if ev.ctx != ctx {
            return Err(cu::INVALID_HANDLE);
        }
        let seq = st.next_seq(sid)?;
        let rec = &st.streams[&sid];
        let (stream, clock) = (rec.stream.clone(), rec.clock.clone());
        let time = Arc::new(Mutex::new(None));
        stream.push(Op {
            seq,
            kind: OpKind::Record { time: time.clone() },
        });
        if let Some(ev) = st.events.get_mut(&id(e)) {
            ev.recorded = Some((stream, seq));
            ev.clock = clock;
            ev.time = time;
        }
        Ok(())
    })())
}

#[no_mangle]
pub extern "C" fn cuEventSynchronize(e: Handle) -> CUresult {
    let st = state::lock();
    let Some(ev) = st.events.get(&id(e)) else {
        return cu::INVALID_HANDLE;
    };
    let ctx = ev.ctx;
    let Some((s, seq)) = ev.recorded.clone() else {
        return cu::SUCCESS;
    };
    let clock = ev.clock.clone();
    let sticky = st.contexts.get(&ctx).map(|c| c.sticky.clone());
    drop(st);
    state::wait_for(&s, seq);
    let mut st = state::lock();
    st.host_observed(&clock);
    st.trim_pools();
    match sticky.map(|s| s.load(Ordering::Relaxed)) {
        Some(0) | None => cu::SUCCESS,
        Some(e) => e,
    }
}

#[no_mangle]
pub extern "C" fn cuEventQuery(e: Handle) -> CUresult {
    let st = state::lock();
    let Some(ev) = st.events.get(&id(e)) else {
        return cu::INVALID_HANDLE;
    };
    match &ev.recorded {
        Some((s, seq)) if s.completed() < *seq => cu::NOT_READY,
        _ => cu::SUCCESS,
    }
}

/// `cuEventElapsedTime` (the `_v2` name is added by the shim of drivers that have it).
#[no_mangle]
pub unsafe extern "C" fn cuEventElapsedTime(ms: *mut f32, a: Handle, b: Handle) -> CUresult {
    let st = state::lock();
    code((|| {
        st.require_init()?;
        let ea = st.events.get(&id(a)).ok_or(cu::INVALID_HANDLE)?;
        let eb = st.events.get(&id(b)).ok_or(cu::INVALID_HANDLE)?;
        if (ea.flags | eb.flags) & 2 != 0 {
            return fail(
                cu::INVALID_HANDLE,
                "cuEventElapsedTime: an event was created with CU_EVENT_DISABLE_TIMING",
            );
        }
        if ea.recorded.is_none() || eb.recorded.is_none() {
            return Err(cu::INVALID_HANDLE);
        }
        let ta = *ea.time.lock().unwrap_or_else(|e| e.into_inner());
        let tb = *eb.time.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(ta), Some(tb)) = (ta, tb) else {
            return Err(cu::NOT_READY);
        };
        let d = if tb >= ta {
            tb.duration_since(ta).as_secs_f64()
        } else {
            -ta.duration_since(tb).as_secs_f64()
        };
        out(ms, (d * 1e3) as f32)
    })())
}

// ------------------------------------------------------------------ memory

#[no_mangle]
pub unsafe extern "C" fn cuMemAlloc_v2(p: *mut u64, bytes: usize) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        if p.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        *p = st.alloc_device(ctx, bytes, false, "cuMemAlloc")?;
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAllocAsync(p: *mut u64, bytes: usize, s: Handle) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        if !config::get().pools {
            return Err(cu::NOT_SUPPORTED);
        }
        if p.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        let sid = st.stream_id(ctx, id(s))?;
        let ptr = st.alloc_device(ctx, bytes, true, "cuMemAllocAsync")?;
        let a = st
            .table
            .find(ptr as usize)
            .map(|a| a.id)
            .ok_or(cu::UNKNOWN)?;
        let seq = st.next_seq(sid)?;
        st.record_accesses(sid, seq, &[(a, true)], "cuMemAllocAsync")?;
        st.streams[&sid].stream.push(Op {
            seq,
            kind: OpKind::Nop,
        });
        *p = ptr;
        Ok(())
    })())
}

/// The allocation starting exactly at `ptr` (device memory of `ctx`).
fn alloc_at(st: &Inner, ctx: u64, ptr: u64, what: &str) -> CuResult<u64> {
    match st.table.find(ptr as usize) {
        Some(a) if a.map.ptr == ptr as usize && a.map.device && a.ctx == ctx => {
            if let Life::FreeEnqueued(how) = &a.life {
                return fail(
                    cu::INVALID_VALUE,
                    &format!("{what}: double free of {} (already freed by {how})", a.describe()),
                );
            }
            Ok(a.id)
        }
        Some(a) => fail(
            cu::INVALID_VALUE,
            &format!("{what}: {ptr:#x} is not the start of a device allocation of this context (inside {})", a.describe()),
        ),
        None => fail(
            cu::INVALID_VALUE,
            &format!("{what}: {}", st.table.why_not(ptr as usize)),
        ),
    }
}

#[no_mangle]
pub extern "C" fn cuMemFree_v2(p: u64) -> CUresult {
    let st = state::lock();
    let r = st
        .current_ctx()
        .and_then(|ctx| alloc_at(&st, ctx, p, "cuMemFree").map(|a| (ctx, a)));
    let (ctx, a) = match r {
        Ok(x) => x,
        Err(e) => return e,
    };
    // Like cudaFree, a synchronous free waits for the device first.
    let streams = context_streams(&st, ctx);
    let r = host_wait(st, streams, ctx);
    state::lock().release(a, "cuMemFree");
    code(r)
}

#[no_mangle]
pub extern "C" fn cuMemFreeAsync(p: u64, s: Handle) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        let sid = st.stream_id(ctx, id(s))?;
        let a = alloc_at(&st, ctx, p, "cuMemFreeAsync")?;
        let seq = st.next_seq(sid)?;
        let how = format!("cuMemFreeAsync on stream {sid:#x}");
        st.record_accesses(sid, seq, &[(a, true)], "cuMemFreeAsync")?;
        if let Some(x) = st.table.allocs.get_mut(&a) {
            x.life = Life::FreeEnqueued(how.clone());
        }
        st.streams[&sid].stream.push(Op {
            seq,
            kind: OpKind::Free { id: a, how },
        });
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CUresult {
    let st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        let d = st.device_of(ctx)?;
        let total_b = config::get().model.memory;
        out(free, total_b.saturating_sub(st.used(d)) as usize)?;
        out(total, total_b as usize)
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostAlloc(
    p: *mut *mut c_void,
    bytes: usize,
    _flags: c_uint,
) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        if p.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        let map = Mapping::pinned(bytes).ok_or(cu::OUT_OF_MEMORY)?;
        let ptr = map.ptr;
        let aid = st.new_id();
        st.table.insert(Alloc {
            id: aid,
            map,
            ctx,
            pool: false,
            life: Life::Live,
            writes: Default::default(),
            reads: Default::default(),
        });
        *p = ptr as *mut c_void;
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAllocHost_v2(p: *mut *mut c_void, bytes: usize) -> CUresult {
    cuMemHostAlloc(p, bytes, 0)
}

#[no_mangle]
pub extern "C" fn cuMemFreeHost(p: *mut c_void) -> CUresult {
    let st = state::lock();
    let r = st
        .current_ctx()
        .and_then(|ctx| match st.table.find(p as usize) {
            Some(a) if !a.map.device && a.map.ptr == p as usize => Ok((ctx, a.id)),
            _ => fail(
                cu::INVALID_VALUE,
                &format!("cuMemFreeHost: {p:?} is not page-locked memory from cuMemHostAlloc"),
            ),
        });
    let (ctx, a) = match r {
        Ok(x) => x,
        Err(e) => return e,
    };
    let streams = context_streams(&st, ctx);
    let r = host_wait(st, streams, ctx);
    state::lock().release(a, "cuMemFreeHost");
    code(r)
}

/// Enqueues a copy or memset on stream handle `s` (0 = legacy stream) after checking its
/// ranges; `sync` waits for it (pageable destinations and the synchronous calls).
#[allow(clippy::too_many_arguments)]
fn enqueue_copy(
    s: Handle,
    what: &str,
    dst: (usize, bool),
    src: Option<(usize, bool)>,
    len: usize,
    make: impl FnOnce(bool) -> OpKind,
    sync: bool,
) -> CuResult {
    let mut st = state::lock();
    let ctx = st.current_ctx()?;
    let sid = st.stream_id(ctx, id(s))?;
    let mut acc = Vec::new();
    // (address, is device) -> allocation id; host pointers may be page-locked
    let mut host_pinned = false;
    if dst.1 {
        acc.push((
            st.range(
                ctx,
                dst.0 as u64,
                len,
                &format!("{what} destination"),
                false,
            )?,
            true,
        ));
    } else if let Some(a) = st.table.find(dst.0).filter(|a| !a.map.device) {
        acc.push((a.id, true));
        host_pinned = true;
    }
    if let Some((p, dev)) = src {
        if dev {
            acc.push((
                st.range(ctx, p as u64, len, &format!("{what} source"), false)?,
                false,
            ));
        } else if let Some(a) = st.table.find(p).filter(|a| !a.map.device) {
            acc.push((a.id, false));
            host_pinned = true;
        } else if st.table.find(p).is_some() {
            return fail(
                cu::INVALID_VALUE,
                &format!("{what}: source {p:#x} is device memory"),
            );
        }
    }
    let seq = st.next_seq(sid)?;
    st.record_accesses(sid, seq, &acc, what)?;
    let rec = &st.streams[&sid];
    let (stream, clock) = (rec.stream.clone(), rec.clock.clone());
    stream.push(Op {
        seq,
        kind: make(host_pinned),
    });
    if !sync {
        return Ok(());
    }
    let sticky = st.contexts.get(&ctx).map(|c| c.sticky.clone());
    drop(st);
    state::wait_for(&stream, seq);
    let mut st = state::lock();
    st.host_observed(&clock);
    match sticky.map(|s| s.load(Ordering::Relaxed)) {
        Some(0) | None => Ok(()),
        Some(e) => Err(e),
    }
}

unsafe fn htod(dst: u64, src: *const c_void, n: usize, s: Handle, sync: bool) -> CUresult {
    if src.is_null() && n > 0 {
        return cu::INVALID_VALUE;
    }
    let pinned = state::lock()
        .table
        .find(src as usize)
        .is_some_and(|a| !a.map.device);
    // Pageable memory is staged now, as the driver does before it returns.
    let staged = if pinned || n == 0 {
        Vec::new()
    } else {
        std::slice::from_raw_parts(src as *const u8, n).to_vec()
    };
    code(enqueue_copy(
        s,
        "cuMemcpyHtoD",
        (dst as usize, true),
        Some((src as usize, false)),
        n,
        move |p| OpKind::HtoD {
            dst: dst as usize,
            src: if p {
                Source::Pinned(src as usize)
            } else {
                Source::Staged(staged)
            },
            len: n,
        },
        sync,
    ))
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(dst: u64, src: *const c_void, n: usize) -> CUresult {
    htod(dst, src, n, std::ptr::null_mut(), true)
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    dst: u64,
    src: *const c_void,
    n: usize,
    s: Handle,
) -> CUresult {
    htod(dst, src, n, s, false)
}

unsafe fn dtoh(dst: *mut c_void, src: u64, n: usize, s: Handle, sync: bool) -> CUresult {
    if dst.is_null() && n > 0 {
        return cu::INVALID_VALUE;
    }
    let pinned = state::lock()
        .table
        .find(dst as usize)
        .is_some_and(|a| !a.map.device);
    // To pageable memory the call returns only when the copy is done.
    code(enqueue_copy(
        s,
        "cuMemcpyDtoH",
        (dst as usize, false),
        Some((src as usize, true)),
        n,
        move |_| OpKind::DtoH {
            dst: dst as usize,
            src: src as usize,
            len: n,
        },
        sync || !pinned,
    ))
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(dst: *mut c_void, src: u64, n: usize) -> CUresult {
    dtoh(dst, src, n, std::ptr::null_mut(), true)
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: u64,
    n: usize,
    s: Handle,
) -> CUresult {
    dtoh(dst, src, n, s, false)
}

fn dtod(dst: u64, src: u64, n: usize, s: Handle, sync: bool) -> CUresult {
    code(enqueue_copy(
        s,
        "cuMemcpyDtoD",
        (dst as usize, true),
        Some((src as usize, true)),
        n,
        move |_| OpKind::DtoD {
            dst: dst as usize,
            src: src as usize,
            len: n,
        },
        sync,
    ))
}

#[no_mangle]
pub extern "C" fn cuMemcpyDtoD_v2(dst: u64, src: u64, n: usize) -> CUresult {
    dtod(dst, src, n, std::ptr::null_mut(), true)
}

#[no_mangle]
pub extern "C" fn cuMemcpyDtoDAsync_v2(dst: u64, src: u64, n: usize, s: Handle) -> CUresult {
    dtod(dst, src, n, s, false)
}

fn memset8(dst: u64, v: u8, n: usize, s: Handle, sync: bool) -> CUresult {
    code(enqueue_copy(
        s,
        "cuMemsetD8",
        (dst as usize, true),
        None,
        n,
        move |_| OpKind::Memset {
            dst: dst as usize,
            value: v,
            len: n,
        },
        sync,
    ))
}

#[no_mangle]
pub extern "C" fn cuMemsetD8_v2(dst: u64, v: u8, n: usize) -> CUresult {
    memset8(dst, v, n, std::ptr::null_mut(), true)
}

#[no_mangle]
pub extern "C" fn cuMemsetD8Async(dst: u64, v: u8, n: usize, s: Handle) -> CUresult {
    memset8(dst, v, n, s, false)
}

// ------------------------------------------------------------------ memory pools

fn pool_device(st: &Inner, pool: Handle) -> CuResult<usize> {
    st.require_init()?;
    st.devices
        .iter()
        .position(|d| d.pool.id == id(pool))
        .ok_or(cu::INVALID_VALUE)
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetDefaultMemPool(pool: *mut Handle, d: c_int) -> CUresult {
    let st = state::lock();
    code((|| {
        let i = device(&st, d)?;
        if !config::get().pools {
            return Err(cu::NOT_SUPPORTED);
        }
        out(pool, h(st.devices[i].pool.id))
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuMemPoolSetAttribute(
    pool: Handle,
    attr: c_int,
    v: *mut c_void,
) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let d = pool_device(&st, pool)?;
        if v.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        let p = &mut st.devices[d].pool;
        match attr {
            1..=3 => {}
            4 => p.threshold = *(v as *const u64),
            6 | 8 => {
                if *(v as *const u64) != 0 {
                    return Err(cu::INVALID_VALUE);
                }
                p.reserved_high = 0;
                p.used_high = 0;
            }
            _ => return Err(cu::INVALID_VALUE),
        }
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuMemPoolGetAttribute(
    pool: Handle,
    attr: c_int,
    v: *mut c_void,
) -> CUresult {
    let st = state::lock();
    code((|| {
        let d = pool_device(&st, pool)?;
        if v.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        let dev = &st.devices[d];
        let x: u64 = match attr {
            1..=3 => {
                *(v as *mut c_int) = 1;
                return Ok(());
            }
            4 => dev.pool.threshold,
            5 => dev.pool.reserved + dev.live,
            6 => dev.pool.reserved_high,
            7 => dev.live,
            8 => dev.pool.used_high,
            _ => return Err(cu::INVALID_VALUE),
        };
        *(v as *mut u64) = x;
        Ok(())
    })())
}

#[no_mangle]
pub extern "C" fn cuMemPoolTrimTo(pool: Handle, keep: usize) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let d = pool_device(&st, pool)?;
        let p = &mut st.devices[d].pool;
        p.reserved = p.reserved.min(keep as u64);
        Ok(())
    })())
}

// ------------------------------------------------------------------ modules and launches

fn loaded(path: &str) -> Result<Arc<Module>, String> {
    static CACHE: Mutex<Vec<Arc<Module>>> = Mutex::new(Vec::new());
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = c.iter().find(|m| m.path == path) {
        return Ok(m.clone());
    }
    let m = Arc::new(Module::load(path)?);
    c.push(m.clone());
    Ok(m)
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleLoadData(m: *mut Handle, image: *const c_void) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        if m.is_null() || image.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        let im = match exec::parse_image(image) {
            Ok(im) => im,
            Err(msg) => return fail(cu::INVALID_IMAGE, &format!("cuModuleLoadData: {msg}")),
        };
        let cfg = config::get();
        let cc = cfg.model.cc;
        if im.nvrtc_major > cfg.driver_version / 1000 {
            return fail(
                cu::UNSUPPORTED_PTX_VERSION,
                &format!(
                    "cuModuleLoadData: compiled by NVRTC {} but the driver supports CUDA {}.{}",
                    im.nvrtc_major,
                    cfg.driver_version / 1000,
                    cfg.driver_version % 1000 / 10
                ),
            );
        }
        if (im.cubin && im.target != cc) || (!im.cubin && im.target > cc) {
            return fail(
                cu::NO_BINARY_FOR_GPU,
                &format!(
                    "cuModuleLoadData: {} for sm_{}{} cannot run on compute capability {}.{}",
                    if im.cubin { "cubin" } else { "PTX" },
                    im.target.0,
                    im.target.1,
                    cc.0,
                    cc.1
                ),
            );
        }
        let module = loaded(&im.path).or_else(|msg| fail(cu::INVALID_IMAGE, &msg))?;
        let mid = st.new_id();
        st.modules.insert(mid, ModuleRec { ctx, module });
        *m = h(mid);
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleLoadDataEx(
    m: *mut Handle,
    image: *const c_void,
    _n: c_uint,
    _options: *mut c_int,
    _values: *mut *mut c_void,
) -> CUresult {
    cuModuleLoadData(m, image)
}

#[no_mangle]
pub extern "C" fn cuModuleUnload(m: Handle) -> CUresult {
    let mut st = state::lock();
    code((|| {
        st.require_init()?;
        st.modules
            .remove(&id(m))
            .map(|_| ())
            .ok_or(cu::INVALID_HANDLE)
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleGetFunction(
    f: *mut Handle,
    m: Handle,
    name: *const c_char,
) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        if f.is_null() || name.is_null() {
            return Err(cu::INVALID_VALUE);
        }
        let rec = st.modules.get(&id(m)).ok_or(cu::INVALID_HANDLE)?;
        if rec.ctx != ctx {
            return Err(cu::INVALID_CONTEXT);
        }
        let n = std::ffi::CStr::from_ptr(name).to_string_lossy();
        let entry = rec.module.entry(&n).ok_or(cu::NOT_FOUND)?;
        let module = rec.module.clone();
        let fid = st.new_id();
        st.functions.insert(fid, FunctionRec { ctx, module, entry });
        *f = h(fid);
        Ok(())
    })())
}

#[no_mangle]
pub unsafe extern "C" fn cuFuncGetAttribute(v: *mut c_int, attr: c_int, f: Handle) -> CUresult {
    let st = state::lock();
    code((|| {
        st.require_init()?;
        st.functions.get(&id(f)).ok_or(cu::INVALID_HANDLE)?;
        let cc = config::get().model.cc;
        out(
            v,
            match attr {
                0 => 1024,
                4 => 32,
                5 | 6 => cc.0 * 10 + cc.1,
                _ => 0,
            },
        )
    })())
}

#[no_mangle]
pub extern "C" fn cuFuncSetAttribute(_f: Handle, _attr: c_int, _v: c_int) -> CUresult {
    cu::SUCCESS
}

#[no_mangle]
pub extern "C" fn cuFuncSetCacheConfig(_f: Handle, _c: c_int) -> CUresult {
    cu::SUCCESS
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn cuLaunchKernel(
    f: Handle,
    gx: c_uint,
    gy: c_uint,
    gz: c_uint,
    bx: c_uint,
    by: c_uint,
    bz: c_uint,
    shmem: c_uint,
    s: Handle,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CUresult {
    let mut st = state::lock();
    code((|| {
        let ctx = st.current_ctx()?;
        let fr = st.functions.get(&id(f)).ok_or(cu::INVALID_HANDLE)?.clone();
        if fr.ctx != ctx {
            return Err(cu::INVALID_CONTEXT);
        }
        let entry = &fr.module.entries[fr.entry as usize];
        let name = entry.name.clone();
        let grid = Dim3 {
            x: gx,
            y: gy,
            z: gz,
        };
        let block = Dim3 {
            x: bx,
            y: by,
            z: bz,
        };
        let threads = block.count();
        if grid.count() == 0 || threads == 0 {
            return fail(
                cu::INVALID_VALUE,
                &format!("launch of {name}: an empty grid or block {grid:?} {block:?}"),
            );
        }
        if threads > 1024 || bx > 1024 || by > 1024 || bz > 64 {
            return fail(
                cu::INVALID_VALUE,
                &format!("launch of {name}: block {bx} x {by} x {bz} exceeds the device limits (1024 threads; 1024 x 1024 x 64)"),
            );
        }
        if gx > i32::MAX as u32 || gy > 65535 || gz > 65535 {
            return fail(
                cu::INVALID_VALUE,
                &format!("launch of {name}: grid {gx} x {gy} x {gz} exceeds the device limits (2^31 - 1 x 65535 x 65535)"),
            );
        }
        let static_shared = fr.module.static_shared.unwrap_or(0);
        if static_shared + shmem as u64 > 48 * 1024 {
            return fail(
                cu::INVALID_VALUE,
                &format!(
                    "launch of {name}: {shmem} bytes of dynamic shared memory on top of \
                     {static_shared} static (limit 48 KiB per block)"
                ),
            );
        }
        if !extra.is_null() {
            return fail(
                cu::NOT_SUPPORTED,
                &format!("launch of {name}: the `extra` argument is not emulated"),
            );
        }
        if !entry.params.is_empty() && params.is_null() {
            return fail(
                cu::INVALID_VALUE,
                &format!("launch of {name}: kernelParams is null"),
            );
        }
        let mut storage = Vec::with_capacity(entry.params.len());
        let mut accesses = Vec::new();
        for (j, p) in entry.params.iter().enumerate() {
            let src = *params.add(j);
            if src.is_null() {
                return fail(
                    cu::INVALID_VALUE,
                    &format!("launch of {name}: kernelParams[{j}] is null"),
                );
            }
            let mut b = vec![0u128; (p.size as usize).div_ceil(16).max(1)].into_boxed_slice();
            std::ptr::copy_nonoverlapping(
                src as *const u8,
                b.as_mut_ptr() as *mut u8,
                p.size as usize,
            );
            if p.kind != 0 {
                let v = *(b.as_ptr() as *const u64);
                if v != 0 {
                    let what = format!(
                        "launch of {name}: argument {j} ({} pointer)",
                        if p.kind == 1 { "const" } else { "mutable" }
                    );
                    let a = st.range(ctx, v, 0, &what, true)?;
                    accesses.push((a, p.kind == 2));
                }
            }
            storage.push(b);
        }
        st.launch_count += 1;
        let fail_now = config::get().faults.launch_at == Some(st.launch_count);
        let sid = st.stream_id(ctx, id(s))?;
        let seq = st.next_seq(sid)?;
        st.record_accesses(sid, seq, &accesses, &format!("kernel {name}"))?;
        let touched = accesses.iter().map(|a| a.0).collect();
        st.streams[&sid].stream.push(Op {
            seq,
            kind: OpKind::Launch(Box::new(Launch {
                module: fr.module.clone(),
                entry: fr.entry,
                name,
                grid,
                block,
                storage,
                touched,
                fail: fail_now,
            })),
        });
        Ok(())
    })())
}
