//! The process-wide state of the emulated driver: devices, contexts, handles, the
//! allocation table, memory accounting and the happens-before bookkeeping that finds races
//! between streams.
//!
//! # Races between streams
//! Every operation enqueued on a stream (launch, copy, memset, free, FFT) names the
//! allocations it reads and writes. It conflicts with an earlier operation of *another*
//! stream on the same allocation when one of them writes, unless the earlier one is known
//! to come first:
//! * the later stream waited for it (`cuStreamWaitEvent` on an event recorded after it —
//!   vector clocks, so waits chain), or
//! * the host waited for it (`cuStreamSynchronize`, `cuEventSynchronize`,
//!   `cuCtxSynchronize`, a synchronous copy): the host is treated as one observer, since
//!   host threads synchronise among themselves in ways the driver cannot see.
//!
//! A conflict is reported (stderr and [`crate::diag`]) and the call fails with
//! `CUDA_ERROR_ILLEGAL_STATE`, whatever the timing: a missing synchronisation is found
//! deterministically, not by luck. Stream-ordered allocation counts as a write on its
//! stream and a stream-ordered free as a write too (so a free while another stream still
//! reads is caught), and nothing may touch an allocation once its free is enqueued.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use crate::config;
use crate::cu;
use crate::diag;
use crate::memory::{Alloc, Life, Mapping, Table};
use crate::stream::Stream;
use crate::CuResult;

/// A vector clock: stream id → the latest sequence number known to be ordered before.
pub type Clock = HashMap<u64, u64>;

fn join(a: &mut Clock, b: &Clock) {
    for (&k, &v) in b {
        let e = a.entry(k).or_insert(0);
        *e = (*e).max(v);
    }
}

/// One device: its primary context and memory accounting.
#[derive(Debug, Default)]
pub struct Device {
    /// The primary context while retained (0 = none).
    pub primary: u64,
    pub refs: u32,
    /// Flags the primary context is (or will be) created with.
    pub flags: u32,
    /// Bytes of live device allocations.
    pub live: u64,
    /// Bytes held by cuFFT work areas.
    pub work_areas: u64,
    /// The default memory pool.
    pub pool: Pool,
}

/// The default memory pool of a device (stream-ordered allocator).
#[derive(Debug, Default)]
pub struct Pool {
    pub id: u64,
    /// Bytes kept after a synchronisation (CU_MEMPOOL_ATTR_RELEASE_THRESHOLD; default 0).
    pub threshold: u64,
    /// Freed bytes the pool holds for reuse.
    pub reserved: u64,
    pub reserved_high: u64,
    pub used_high: u64,
}

/// A context (only primary contexts are made).
#[derive(Debug)]
pub struct Context {
    pub id: u64,
    pub device: i32,
    pub flags: u32,
    /// A sticky error: once set, every call on the context returns it.
    pub sticky: Arc<AtomicI32>,
    /// The legacy default stream (handle 0).
    pub null_stream: u64,
}

/// A stream with its bookkeeping.
pub struct StreamRec {
    pub stream: Arc<Stream>,
    /// Sequence number of the last operation enqueued.
    pub enqueued: u64,
    /// What this stream is ordered after.
    pub clock: Clock,
}

/// An event.
pub struct Event {
    pub ctx: u64,
    pub flags: u32,
    /// Stream and sequence number of the latest record.
    pub recorded: Option<(Arc<Stream>, u64)>,
    pub clock: Clock,
    /// When the device reached the record.
    pub time: Arc<Mutex<Option<Instant>>>,
}

/// A loaded module.
pub struct ModuleRec {
    pub ctx: u64,
    pub module: Arc<crate::exec::Module>,
}

/// A kernel function handle.
#[derive(Clone)]
pub struct FunctionRec {
    pub ctx: u64,
    pub module: Arc<crate::exec::Module>,
    pub entry: i32,
}

/// Everything behind the global lock.
pub struct Inner {
    pub initialized: bool,
    next_id: u64,
    pub devices: Vec<Device>,
    pub contexts: HashMap<u64, Context>,
    pub streams: HashMap<u64, StreamRec>,
    pub events: HashMap<u64, Event>,
    pub modules: HashMap<u64, ModuleRec>,
    pub functions: HashMap<u64, FunctionRec>,
    pub plans: HashMap<u64, Arc<crate::fft::Plan>>,
    pub table: Table,
    /// What the host has waited for.
    pub host_clock: Clock,
    pub alloc_count: u64,
    pub launch_count: u64,
}

static STATE: OnceLock<Mutex<Inner>> = OnceLock::new();
/// Signalled whenever a stream completes an operation.
pub static PROGRESS: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// The global state, locked.
pub fn lock() -> MutexGuard<'static, Inner> {
    STATE
        .get_or_init(|| {
            Mutex::new(Inner {
                initialized: false,
                next_id: 0x1000,
                devices: Vec::new(),
                contexts: HashMap::new(),
                streams: HashMap::new(),
                events: HashMap::new(),
                modules: HashMap::new(),
                functions: HashMap::new(),
                plans: HashMap::new(),
                table: Table::default(),
                host_clock: Clock::new(),
                alloc_count: 0,
                launch_count: 0,
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// The calling thread's context stack (top = current).
    static CURRENT: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread's current context handle (0 = none).
pub fn current() -> u64 {
    CURRENT.with(|c| c.borrow().last().copied().unwrap_or(0))
}

/// `cuCtxSetCurrent`: replaces the top of the stack (0 pops it).
pub fn set_current(ctx: u64) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.pop();
        if ctx != 0 {
            c.push(ctx);
        }
    })
}

pub fn push_current(ctx: u64) {
    CURRENT.with(|c| c.borrow_mut().push(ctx))
}

pub fn pop_current() -> u64 {
    CURRENT.with(|c| c.borrow_mut().pop().unwrap_or(0))
}

/// Waits until `stream` has completed operation `seq`.
pub fn wait_for(stream: &Stream, seq: u64) {
    let mut g = PROGRESS.0.lock().unwrap_or_else(|e| e.into_inner());
    while stream.completed() < seq {
        g = PROGRESS.1.wait(g).unwrap_or_else(|e| e.into_inner());
    }
}

/// Reports a diagnostic and returns `code`.
pub fn fail<T>(code: i32, msg: &str) -> CuResult<T> {
    diag::report(msg);
    Err(code)
}

impl Inner {
    /// A new handle value (never 0, never reused).
    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// `CUDA_ERROR_NOT_INITIALIZED` before `cuInit`.
    pub fn require_init(&self) -> CuResult {
        if self.initialized {
            Ok(())
        } else {
            Err(cu::NOT_INITIALIZED)
        }
    }

    /// The calling thread's current context, checked (no context, destroyed, sticky error).
    pub fn current_ctx(&self) -> CuResult<u64> {
        self.require_init()?;
        let c = current();
        if c == 0 {
            return Err(cu::INVALID_CONTEXT);
        }
        let ctx = self.contexts.get(&c).ok_or(cu::INVALID_CONTEXT)?;
        let sticky = ctx.sticky.load(Ordering::Relaxed);
        if sticky != 0 {
            return Err(sticky);
        }
        Ok(c)
    }

    /// The device of a context.
    pub fn device_of(&self, ctx: u64) -> CuResult<usize> {
        let c = self.contexts.get(&ctx).ok_or(cu::INVALID_CONTEXT)?;
        Ok(c.device as usize)
    }

    /// The stream for handle `h` (0 = the context's legacy default stream), which must
    /// belong to context `ctx`.
    pub fn stream_id(&self, ctx: u64, h: u64) -> CuResult<u64> {
        let id = if h == 0 {
            self.contexts
                .get(&ctx)
                .ok_or(cu::INVALID_CONTEXT)?
                .null_stream
        } else {
            h
        };
        let s = self.streams.get(&id).ok_or(cu::INVALID_HANDLE)?;
        if s.stream.ctx != ctx {
            return fail(
                cu::INVALID_HANDLE,
                &format!("stream {id:#x} belongs to another context"),
            );
        }
        Ok(id)
    }

    /// Creates a stream of `ctx` with its worker thread.
    pub fn create_stream(&mut self, ctx: u64) -> CuResult<u64> {
        let id = self.new_id();
        let sticky = self
            .contexts
            .get(&ctx)
            .ok_or(cu::INVALID_CONTEXT)?
            .sticky
            .clone();
        let stream = Stream::spawn(id, ctx, sticky).map_err(|e| {
            diag::report(&format!("cannot start a stream worker: {e}"));
            cu::OUT_OF_MEMORY
        })?;
        let mut clock = self.host_clock.clone();
        clock.insert(id, 0);
        self.streams.insert(
            id,
            StreamRec {
                stream,
                enqueued: 0,
                clock,
            },
        );
        Ok(id)
    }

    /// Reserves the next sequence number of a stream (the caller enqueues the op with it
    /// while still holding the lock, so the queue stays in sequence order).
    pub fn next_seq(&mut self, stream: u64) -> CuResult<u64> {
        let s = self.streams.get_mut(&stream).ok_or(cu::INVALID_HANDLE)?;
        s.enqueued += 1;
        let seq = s.enqueued;
        s.clock.insert(stream, seq);
        Ok(seq)
    }

    /// The allocation containing `[ptr, ptr + len)`, live and of context `ctx` (or
    /// page-locked host memory when `host_ok`), for an operation described by `what`.
    pub fn range(
        &self,
        ctx: u64,
        ptr: u64,
        len: usize,
        what: &str,
        host_ok: bool,
    ) -> CuResult<u64> {
        let addr = ptr as usize;
        let Some(a) = self.table.find(addr) else {
            return fail(
                cu::INVALID_VALUE,
                &format!("{what}: {}", self.table.why_not(addr)),
            );
        };
        if !a.map.device && !host_ok {
            return fail(
                cu::INVALID_VALUE,
                &format!("{what}: {addr:#x} is page-locked host memory, not device memory"),
            );
        }
        if a.map.device && a.ctx != ctx {
            return fail(
                cu::INVALID_VALUE,
                &format!("{what}: {} belongs to another context", a.describe()),
            );
        }
        if let Life::FreeEnqueued(how) = &a.life {
            return fail(
                cu::INVALID_VALUE,
                &format!(
                    "{what}: use after free: {} was freed by {how}",
                    a.describe()
                ),
            );
        }
        let end = a.map.ptr + a.map.size;
        if addr + len > end {
            return fail(
                cu::INVALID_VALUE,
                &format!(
                    "{what}: {len} bytes at {addr:#x} run {} bytes past the end of {}",
                    addr + len - end,
                    a.describe()
                ),
            );
        }
        Ok(a.id)
    }

    /// Checks the accesses of an operation about to be enqueued as `seq` on `stream`
    /// against other streams' (module docs), then records them.
    pub fn record_accesses(
        &mut self,
        stream: u64,
        seq: u64,
        accesses: &[(u64, bool)],
        label: &str,
    ) -> CuResult {
        let clock = self
            .streams
            .get(&stream)
            .map(|s| s.clock.clone())
            .ok_or(cu::INVALID_HANDLE)?;
        let ordered = |other: u64, s: u64| -> bool {
            s <= clock.get(&other).copied().unwrap_or(0)
                || s <= self.host_clock.get(&other).copied().unwrap_or(0)
        };
        for &(id, write) in accesses {
            let Some(a) = self.table.allocs.get(&id) else {
                continue;
            };
            let mut conflicts = Vec::new();
            for (&other, (s, what)) in &a.writes {
                if other != stream && !ordered(other, *s) {
                    conflicts.push(format!("written by {what} on stream {other:#x}"));
                }
            }
            if write {
                for (&other, (s, what)) in &a.reads {
                    if other != stream && !ordered(other, *s) {
                        conflicts.push(format!("read by {what} on stream {other:#x}"));
                    }
                }
            }
            if !conflicts.is_empty() {
                return fail(
                    cu::ILLEGAL_STATE,
                    &format!(
                        "race: {label} on stream {stream:#x} {} {} while it is {}, with no \
                         synchronisation in between (cuStreamWaitEvent or a host wait)",
                        if write { "writes" } else { "reads" },
                        a.describe(),
                        conflicts.join(" and ")
                    ),
                );
            }
        }
        for &(id, write) in accesses {
            if let Some(a) = self.table.allocs.get_mut(&id) {
                a.reads.insert(stream, (seq, label.to_string()));
                if write {
                    a.writes.insert(stream, (seq, label.to_string()));
                }
            }
        }
        Ok(())
    }

    /// The host has waited for everything `stream` had enqueued when `clock` was taken.
    pub fn host_observed(&mut self, clock: &Clock) {
        join(&mut self.host_clock, clock);
    }

    /// `stream` now waits for everything in `clock` (cuStreamWaitEvent).
    pub fn stream_waits(&mut self, stream: u64, clock: &Clock) {
        if let Some(s) = self.streams.get_mut(&stream) {
            join(&mut s.clock, clock);
        }
    }

    /// Counts `bytes` of device memory as used on `device` (from the pool's reserve when
    /// `pool`), or fails with out of memory.
    pub fn reserve(&mut self, device: usize, bytes: u64, pool: bool, what: &str) -> CuResult {
        let cfg = config::get();
        self.alloc_count += 1;
        if cfg.faults.oom_at == Some(self.alloc_count)
            || cfg.faults.oom_from.is_some_and(|n| self.alloc_count >= n)
        {
            return fail(
                cu::OUT_OF_MEMORY,
                &format!(
                    "injected fault: device allocation #{} ({what}, {bytes} bytes) fails",
                    self.alloc_count
                ),
            );
        }
        let d = self.devices.get_mut(device).ok_or(cu::INVALID_DEVICE)?;
        if pool && d.pool.reserved >= bytes {
            d.pool.reserved -= bytes;
            d.live += bytes;
        } else {
            let used = d.live + d.pool.reserved + d.work_areas;
            if used + bytes > cfg.model.memory {
                return Err(cu::OUT_OF_MEMORY);
            }
            d.live += bytes;
        }
        d.pool.used_high = d.pool.used_high.max(d.live);
        Ok(())
    }

    /// Device memory used (live + pool reserve + cuFFT work areas).
    pub fn used(&self, device: usize) -> u64 {
        self.devices
            .get(device)
            .map(|d| d.live + d.pool.reserved + d.work_areas)
            .unwrap_or(0)
    }

    /// Makes a device allocation of `bytes` for context `ctx`.
    pub fn alloc_device(
        &mut self,
        ctx: u64,
        bytes: usize,
        pool: bool,
        what: &str,
    ) -> CuResult<u64> {
        let device = self.device_of(ctx)?;
        let footprint = bytes.max(1).div_ceil(16) as u64 * 16;
        self.reserve(device, footprint, pool, what)?;
        let Some(map) = Mapping::device(bytes) else {
            if let Some(d) = self.devices.get_mut(device) {
                d.live -= footprint;
            }
            return Err(cu::OUT_OF_MEMORY);
        };
        let id = self.new_id();
        let ptr = map.ptr as u64;
        self.table.insert(Alloc {
            id,
            map,
            ctx,
            pool,
            life: Life::Live,
            writes: HashMap::new(),
            reads: HashMap::new(),
        });
        Ok(ptr)
    }

    /// Frees allocation `id` now (its memory goes to the pool's reserve when it came from
    /// the pool).
    pub fn release(&mut self, id: u64, how: &str) {
        let Some(a) = self.table.allocs.get(&id) else {
            return;
        };
        let (ctx, pool) = (a.ctx, a.pool);
        let device = self.device_of(ctx).ok();
        if let Some(bytes) = self.table.remove(id, how) {
            if let Some(d) = device.and_then(|i| self.devices.get_mut(i)) {
                d.live = d.live.saturating_sub(bytes);
                if pool {
                    d.pool.reserved += bytes;
                    d.pool.reserved_high = d.pool.reserved_high.max(d.pool.reserved);
                }
            }
        }
    }

    /// A synchronisation point: pools give back what they hold above their threshold.
    pub fn trim_pools(&mut self) {
        for d in &mut self.devices {
            d.pool.reserved = d.pool.reserved.min(d.pool.threshold);
        }
    }
}
