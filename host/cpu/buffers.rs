//! Large `f32` buffers: fresh ones backed by transparent huge pages where the OS allows
//! it, and a small pool of scratch buffers reused from call to call.
//!
//! A fresh 64 MiB buffer costs ~16 k page faults on first touch plus the kernel zeroing
//! it; in virtual machines that can take as long as the resampling itself. On Linux
//! (x86-64, aarch64) a fresh buffer is marked `MADV_HUGEPAGE` before it is touched, which
//! cuts the faults 512-fold when THP is in `madvise` or `always` mode; elsewhere, or if the
//! hint is refused, nothing changes. Scratch buffers (the B-spline coefficient plane) are
//! kept in a pool of at most [`POOL_SIZE`] buffers after use, so a batch of images pays
//! the faults once; [`release_scratch`] frees them.

use std::sync::Mutex;

/// Scratch buffers kept for reuse (one per concurrent `register` call, up to this many).
pub const POOL_SIZE: usize = 2;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A scratch buffer of `len` `f32` whose contents are unspecified (left over from an
/// earlier use, or zero); returned to the pool when dropped.
pub struct Scratch(Vec<f32>);

impl Scratch {
    /// A buffer of `len` values, from the pool if one is large enough.
    pub fn new(len: usize) -> Scratch {
        let reused = POOL.lock().ok().and_then(|mut pool| {
            let i = pool.iter().position(|b| b.capacity() >= len)?;
            Some(pool.swap_remove(i))
        });
        match reused {
            Some(mut v) => {
                v.resize(len, 0.0);
                v.truncate(len);
                Scratch(v)
            }
            None => Scratch(zeroed_f32(len)),
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if std::mem::size_of_val(v.as_slice()) < MIN_BYTES {
            return;
        }
        if let Ok(mut pool) = POOL.lock() {
            if pool.len() < POOL_SIZE {
                pool.push(v);
            } else if let Some(small) = pool.iter_mut().min_by_key(|b| b.capacity()) {
                if small.capacity() < v.capacity() {
                    *small = v;
                }
            }
        }
    }
}

/// Free the pooled scratch buffers (about 64 MiB each for 4096² images).
pub fn release_scratch() {
    if let Ok(mut pool) = POOL.lock() {
        pool.clear();
    }
}

/// Buffers smaller than this are left alone.
const MIN_BYTES: usize = 4 << 20;

/// A zeroed vector of `n` `f32`, hinted to use huge pages.
pub fn zeroed_f32(n: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; n];
    advise_huge(&mut v);
    v
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn advise_huge(v: &mut [f32]) {
    const MADV_HUGEPAGE: i32 = 14;
    const PAGE: usize = 4096;
    extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
    }
    let bytes = std::mem::size_of_val(v);
    if bytes < MIN_BYTES {
        return;
    }
    let start = v.as_mut_ptr() as usize;
    let first = (start + PAGE - 1) & !(PAGE - 1);
    let end = (start + bytes) & !(PAGE - 1);
    if end <= first {
        return;
    }
    // SAFETY: [first, end) is a page-aligned range inside the allocation we exclusively
    // own; MADV_HUGEPAGE is only a hint about how to back anonymous memory and never
    // changes its contents. Failure (EINVAL, THP disabled) is harmless and ignored.
    unsafe {
        madvise(first as *mut std::ffi::c_void, end - first, MADV_HUGEPAGE);
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn advise_huge(_v: &mut [f32]) {}

#[cfg(test)]
mod tests {
    #[test]
    fn scratch_is_reused() {
        let n = 2 << 20;
        let p = {
            let mut s = super::Scratch::new(n);
            s[0] = 7.0;
            s.as_ptr()
        };
        let s = super::Scratch::new(n - 5);
        assert_eq!(s.len(), n - 5);
        // Another test may have taken it concurrently; only check when it came back.
        if s.as_ptr() == p {
            assert_eq!(s[0], 7.0);
        }
    }

    #[test]
    fn zeroed() {
        let v = super::zeroed_f32(3 << 20);
        assert_eq!(v.len(), 3 << 20);
        assert!(v.iter().all(|&x| x == 0.0));
    }
}
