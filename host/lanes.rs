//! A pool of interchangeable workers ("lanes") that callers borrow one at a time, with the
//! time they were held summed for occupancy reports.
//!
//! The GPU engine (`gpu::GpuEngine`, with the `cuda` feature) keeps one lane per CUDA
//! stream: each concurrent caller gets a stream of its own, so the transfers of one image
//! overlap the kernels of another, and a caller that finds every lane taken waits for the
//! first one freed. Device memory is bounded by the number of lanes (one image's working
//! set each). The pool itself has nothing CUDA in it and is tested on the CPU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The most lanes a pool is made with (the GPU engine's CUDA streams: 1..=16).
pub const MAX_LANES: usize = 16;

/// A fixed set of lanes, each lent to one caller at a time.
#[derive(Debug)]
pub struct LanePool<T> {
    lanes: Vec<T>,
    /// Indices of the lanes not lent; the most recently returned is lent first (its
    /// caches are warm).
    free: Mutex<Vec<usize>>,
    returned: Condvar,
    /// Nanoseconds lanes were held, summed over lanes.
    busy_ns: AtomicU64,
}

/// A borrowed lane; dereferences to it and goes back to the pool when dropped.
#[derive(Debug)]
pub struct Lane<'a, T> {
    pool: &'a LanePool<T>,
    index: usize,
    since: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The free list is a plain Vec of indices: consistent even after a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> LanePool<T> {
    /// A pool of `first` and the `rest` (so never empty); `first` is lane 0.
    pub fn new(first: T, rest: Vec<T>) -> LanePool<T> {
        let mut lanes = Vec::with_capacity(1 + rest.len());
        lanes.push(first);
        lanes.extend(rest);
        let free = (0..lanes.len()).rev().collect();
        LanePool {
            lanes,
            free: Mutex::new(free),
            returned: Condvar::new(),
            busy_ns: AtomicU64::new(0),
        }
    }

    /// Number of lanes (≥ 1).
    pub fn len(&self) -> usize {
        self.lanes.len()
    }

    /// Always false (a pool has at least one lane); for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// The first lane, for reads that need no exclusive use (e.g. the device name).
    pub fn first(&self) -> &T {
        &self.lanes[0]
    }

    /// Borrows a free lane, waiting until one is returned if all are lent.
    pub fn acquire(&self) -> Lane<'_, T> {
        let mut free = lock(&self.free);
        loop {
            if let Some(index) = free.pop() {
                return Lane {
                    pool: self,
                    index,
                    since: Instant::now(),
                };
            }
            free = self.returned.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Borrows a free lane if there is one now.
    pub fn try_acquire(&self) -> Option<Lane<'_, T>> {
        let index = lock(&self.free).pop()?;
        Some(Lane {
            pool: self,
            index,
            since: Instant::now(),
        })
    }

    /// Total time lanes have been held since the pool was made, summed over lanes (two
    /// lanes held for one second each count two seconds). Lanes lent now are not counted
    /// until returned.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed))
    }
}

impl<T> Lane<'_, T> {
    /// The lane's index in the pool (0-based).
    pub fn index(&self) -> usize {
        self.index
    }
}

impl<T> std::ops::Deref for Lane<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.pool.lanes[self.index]
    }
}

impl<T> Drop for Lane<'_, T> {
    fn drop(&mut self) {
        let ns = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.pool.busy_ns.fetch_add(ns, Ordering::Relaxed);
        lock(&self.pool.free).push(self.index);
        self.pool.returned.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn lanes_are_lent_exclusively_and_returned() {
        let pool = LanePool::new('a', vec!['b']);
        assert_eq!(*pool.first(), 'a');
        assert_eq!(pool.len(), 2);
        let x = pool.acquire();
        let y = pool.acquire();
        assert_eq!(x.index(), 0, "lane 0 is lent first");
        assert_ne!(x.index(), y.index());
        assert_ne!(*x, *y);
        assert!(pool.try_acquire().is_none());
        let ix = x.index();
        drop(x);
        let z = pool.try_acquire().unwrap();
        // the lane just returned is lent again (warm caches)
        assert_eq!(z.index(), ix);
    }

    #[test]
    fn concurrent_callers_never_share_a_lane() {
        // 8 threads, 3 lanes: count the holders of each lane at every borrow.
        let pool = LanePool::new(0usize, vec![1, 2]);
        let holders: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        let most = AtomicUsize::new(0);
        let in_use = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let lane = pool.acquire();
                        assert_eq!(*lane, lane.index());
                        let h = holders[lane.index()].fetch_add(1, Ordering::SeqCst);
                        assert_eq!(h, 0, "lane {} lent twice", lane.index());
                        let n = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        in_use.fetch_sub(1, Ordering::SeqCst);
                        holders[lane.index()].fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3);
        // every lane is back
        let all: Vec<_> = (0..3).map(|_| pool.try_acquire().unwrap()).collect();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn busy_time_sums_over_lanes() {
        let pool = LanePool::new((), vec![()]);
        assert_eq!(pool.busy(), Duration::ZERO);
        let hold = Duration::from_millis(30);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let _l = pool.acquire();
                    std::thread::sleep(hold);
                });
            }
        });
        // each lane was held at least `hold`: the sum is at least twice that
        assert!(pool.busy() >= 2 * hold, "{:?}", pool.busy());
    }
}
