//! Streams: each executes its operations in order on a worker thread of its own, while the
//! host goes on (as a GPU does). Events mark points in a stream. With `SOFTCUDA_CHAOS` set
//! each operation waits a random 0–2 ms first, so a missing synchronisation that the
//! happens-before check cannot see (host memory, say) shows up as a wrong result rather
//! than passing by luck; `SOFTCUDA_DELAY_US` makes every operation slow, so that host
//! threads race ahead of the device as they do ahead of a busy GPU.
//!
//! After a sticky error (an illegal address, a failed launch) the stream's context is
//! unusable: later operations are skipped (but still complete, so nothing waits forever)
//! and every call returns the error, as on a real device.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::cu;
use crate::diag;
use crate::state;

/// Where the bytes of a host-to-device copy come from.
pub enum Source {
    /// Pageable memory, copied when the call was made (the driver's staging buffer).
    Staged(Vec<u8>),
    /// Page-locked memory, read when the stream gets there.
    Pinned(usize),
}

/// One operation of a stream.
pub enum OpKind {
    Launch(Box<crate::exec::Launch>),
    HtoD {
        dst: usize,
        src: Source,
        len: usize,
    },
    DtoH {
        dst: usize,
        src: usize,
        len: usize,
    },
    DtoD {
        dst: usize,
        src: usize,
        len: usize,
    },
    Memset {
        dst: usize,
        value: u8,
        len: usize,
    },
    /// A stream-ordered free.
    Free {
        id: u64,
        how: String,
    },
    Record {
        time: Arc<Mutex<Option<Instant>>>,
    },
    /// Wait until another stream has completed `seq`.
    Wait {
        stream: Arc<Stream>,
        seq: u64,
    },
    Fft(Box<crate::fft::Exec>),
    /// Nothing to do (stream-ordered allocation).
    Nop,
}

// SAFETY: the raw addresses inside are device or page-locked memory owned by the emulator;
// operations run on one stream worker at a time.
unsafe impl Send for OpKind {}

/// An operation with its sequence number on the stream.
pub struct Op {
    pub seq: u64,
    pub kind: OpKind,
}

/// A stream and its worker.
pub struct Stream {
    pub id: u64,
    pub ctx: u64,
    /// The context's sticky error.
    pub sticky: Arc<AtomicI32>,
    queue: Mutex<VecDeque<Op>>,
    ready: Condvar,
    completed: AtomicU64,
    shutdown: AtomicBool,
}

impl Stream {
    /// A stream with its worker thread started.
    pub fn spawn(id: u64, ctx: u64, sticky: Arc<AtomicI32>) -> std::io::Result<Arc<Stream>> {
        let s = Arc::new(Stream {
            id,
            ctx,
            sticky,
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            completed: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
        });
        let worker = s.clone();
        std::thread::Builder::new()
            .name(format!("softcuda-stream-{id:x}"))
            .spawn(move || worker.run())?;
        Ok(s)
    }

    /// Sequence number of the last completed operation.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }

    /// Appends an operation (callers hold the state lock, so sequence numbers arrive in
    /// order).
    pub fn push(&self, op: Op) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.push_back(op);
        self.ready.notify_one();
    }

    /// Lets the worker exit once its queue is empty.
    pub fn close(&self) {
        self.shutdown.store(true, Ordering::Release);
        let _q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.ready.notify_all();
    }

    fn next(&self) -> Option<Op> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(op) = q.pop_front() {
                return Some(op);
            }
            if self.shutdown.load(Ordering::Acquire) {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn run(self: Arc<Self>) {
        let mut rng = crate::config::get()
            .chaos
            .map(|seed| seed ^ self.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let delay = crate::config::get().delay_us;
        while let Some(op) = self.next() {
            if delay > 0 {
                std::thread::sleep(Duration::from_micros(delay));
            }
            if let Some(r) = rng.as_mut() {
                // xorshift64: half of the operations wait 0–2 ms first
                *r ^= *r << 13;
                *r ^= *r >> 7;
                *r ^= *r << 17;
                if *r & 1 == 0 {
                    std::thread::sleep(Duration::from_micros((*r >> 8) % 2000));
                }
            }
            match op.kind {
                OpKind::Wait { stream, seq } => state::wait_for(&stream, seq),
                kind => {
                    if self.sticky.load(Ordering::Relaxed) == 0 {
                        if let Err((code, msg)) = execute(kind) {
                            diag::report(&msg);
                            if cu::is_sticky(code) {
                                self.sticky.store(code, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            self.completed.store(op.seq, Ordering::Release);
            let _g = state::PROGRESS.0.lock().unwrap_or_else(|e| e.into_inner());
            state::PROGRESS.1.notify_all();
        }
    }
}

/// Runs one operation on the device (this worker).
fn execute(kind: OpKind) -> Result<(), (i32, String)> {
    // SAFETY (copies): every range was checked against the allocation table when the
    // operation was enqueued, and nothing frees it before this stream gets here (frees are
    // stream ordered; a free on another stream would have been reported as a race).
    match kind {
        OpKind::HtoD { dst, src, len } => unsafe {
            let from = match &src {
                Source::Staged(v) => v.as_ptr(),
                Source::Pinned(p) => *p as *const u8,
            };
            std::ptr::copy_nonoverlapping(from, dst as *mut u8, len);
            Ok(())
        },
        OpKind::DtoH { dst, src, len } => unsafe {
            std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, len);
            Ok(())
        },
        OpKind::DtoD { dst, src, len } => unsafe {
            std::ptr::copy(src as *const u8, dst as *mut u8, len);
            Ok(())
        },
        OpKind::Memset { dst, value, len } => unsafe {
            std::ptr::write_bytes(dst as *mut u8, value, len);
            Ok(())
        },
        OpKind::Free { id, how } => {
            state::lock().release(id, &how);
            Ok(())
        }
        OpKind::Record { time } => {
            *time.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            Ok(())
        }
        OpKind::Launch(l) => crate::exec::run(&l),
        OpKind::Fft(f) => crate::fft::run(&f),
        OpKind::Wait { .. } | OpKind::Nop => Ok(()),
    }
}
