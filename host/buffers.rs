//! Large pixel buffers: fresh ones backed by transparent huge pages where the OS allows
//! it, a small pool of scratch buffers reused from call to call, and whole-image buffers
//! recycled while a batch runs.
//!
//! A fresh 64 MiB buffer costs ~16 k page faults on first touch plus the kernel zeroing
//! it; in virtual machines that can take as long as the resampling itself. On Linux
//! (x86-64, aarch64) a fresh buffer is marked `MADV_HUGEPAGE` before it is touched, which
//! cuts the faults 512-fold when THP is in `madvise` or `always` mode; elsewhere, or if the
//! hint is refused, nothing changes. Scratch buffers (the B-spline coefficient plane) are
//! kept in a pool of at most [`POOL_SIZE`] buffers after use, so a batch of images pays
//! the faults once; [`release_scratch`] frees them.
//!
//! Whole-image buffers (the decoded input, the registered or downloaded output, the int16
//! values being encoded) leave the library inside the maps it returns, so they cannot be
//! pooled the same way. While a batch runs ([`recycle_images`] holds a guard), the
//! pipeline hands them back ([`recycle_f32`], [`recycle_i16`]) once it is done with them,
//! and [`take_f32`] / [`take_i16`] reuse them. Measured on a 2-core VM (48 RICE 4096²
//! files): the kernel zeroing fresh pages fell from 17 % to 4.6 % of the batch's CPU time
//! (the rest is the first images, before anything comes back), ≈ +8 % images/s. Outside a
//! batch nothing is kept: handing back just frees the buffer.

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

/// Whole-image buffers of each type kept while a batch runs (4 × 64 MiB for 4096² `f32`).
pub const IMAGE_POOL_SIZE: usize = 4;

/// Recycled image buffers, and how many [`RecycleImages`] guards are alive.
struct ImagePool {
    users: usize,
    f32s: Vec<Vec<f32>>,
    i16s: Vec<Vec<i16>>,
}

static IMAGES: Mutex<ImagePool> = Mutex::new(ImagePool::new());

/// The element types with a shelf in the image pool.
trait Pooled: Copy + Default + Sized {
    fn shelf(p: &mut ImagePool) -> &mut Vec<Vec<Self>>;
    /// A fresh zeroed buffer (huge-page hinted).
    fn fresh(len: usize) -> Vec<Self>;
}

impl Pooled for f32 {
    fn shelf(p: &mut ImagePool) -> &mut Vec<Vec<f32>> {
        &mut p.f32s
    }
    fn fresh(len: usize) -> Vec<f32> {
        zeroed(len)
    }
}

impl Pooled for i16 {
    fn shelf(p: &mut ImagePool) -> &mut Vec<Vec<i16>> {
        &mut p.i16s
    }
    fn fresh(len: usize) -> Vec<i16> {
        zeroed(len)
    }
}

/// Buffers a pool lets go of (dropped by the caller, outside the lock).
type Freed = (Vec<Vec<f32>>, Vec<Vec<i16>>);

impl ImagePool {
    const fn new() -> ImagePool {
        ImagePool {
            users: 0,
            f32s: Vec::new(),
            i16s: Vec::new(),
        }
    }

    fn enter(&mut self) {
        self.users += 1;
    }

    /// One guard fewer; with the last one, everything kept is let go.
    fn leave(&mut self) -> Freed {
        self.users = self.users.saturating_sub(1);
        if self.users == 0 {
            (
                std::mem::take(&mut self.f32s),
                std::mem::take(&mut self.i16s),
            )
        } else {
            Freed::default()
        }
    }

    /// The smallest kept buffer of at least `len` elements, resized to `len` (contents
    /// unspecified).
    fn take<T: Pooled>(&mut self, len: usize) -> Option<Vec<T>> {
        let shelf = T::shelf(self);
        let i = shelf
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)?;
        let mut v = shelf.swap_remove(i);
        v.resize(len, T::default());
        v.truncate(len);
        Some(v)
    }

    /// Keep `v` if a guard is alive and it is large enough, while there is room (else it
    /// replaces the smallest kept buffer if larger); returns what is let go.
    fn put<T: Pooled>(&mut self, v: Vec<T>) -> Option<Vec<T>> {
        if self.users == 0 || std::mem::size_of::<T>() * v.capacity() < MIN_BYTES {
            return Some(v);
        }
        let shelf = T::shelf(self);
        if shelf.len() < IMAGE_POOL_SIZE {
            shelf.push(v);
            return None;
        }
        match shelf.iter_mut().min_by_key(|b| b.capacity()) {
            Some(small) if small.capacity() < v.capacity() => Some(std::mem::replace(small, v)),
            _ => Some(v),
        }
    }
}

/// While alive, whole-image buffers handed back ([`recycle_f32`], [`recycle_i16`]) are
/// kept (at most [`IMAGE_POOL_SIZE`] of each type) for [`take_f32`] / [`take_i16`]; when
/// the last guard goes, they are freed.
#[derive(Debug)]
pub struct RecycleImages(());

/// Keep whole-image buffers for reuse until the guard is dropped (a batch holds one).
pub fn recycle_images() -> RecycleImages {
    if let Ok(mut p) = IMAGES.lock() {
        p.enter();
    }
    RecycleImages(())
}

impl Drop for RecycleImages {
    fn drop(&mut self) {
        let freed = IMAGES.lock().map(|mut p| p.leave()).unwrap_or_default();
        drop(freed); // outside the lock
    }
}

fn take<T: Pooled>(len: usize) -> Vec<T> {
    let reused = IMAGES.lock().ok().and_then(|mut p| p.take(len));
    reused.unwrap_or_else(|| T::fresh(len))
}

fn recycle<T: Pooled>(v: Vec<T>) {
    let dropped = match IMAGES.lock() {
        Ok(mut p) => p.put(v),
        Err(_) => Some(v),
    };
    drop(dropped); // outside the lock
}

/// A buffer of `len` `f32` whose contents are **unspecified** (a recycled image's pixels,
/// or zero): for callers that write every element. The smallest recycled buffer that is
/// large enough, else a fresh zeroed one (huge-page hinted).
pub fn take_f32(len: usize) -> Vec<f32> {
    take(len)
}

/// As [`take_f32`], for `i16` (the stored values of an int16 output).
pub fn take_i16(len: usize) -> Vec<i16> {
    take(len)
}

/// Hand back a whole-image buffer the caller is done with: kept for [`take_f32`] while a
/// [`RecycleImages`] guard is alive and the pool has room (else the smallest kept buffer
/// is replaced if this one is larger), freed otherwise. Buffers under 4 MiB are freed.
pub fn recycle_f32(v: Vec<f32>) {
    recycle(v)
}

/// As [`recycle_f32`], for `i16`.
pub fn recycle_i16(v: Vec<i16>) {
    recycle(v)
}

/// Hand back the pixel buffer of an image (see [`recycle_f32`]); arrays that do not own a
/// contiguous buffer starting at their first element are just dropped.
pub fn recycle_array(a: ndarray::Array2<f32>) {
    if !a.is_standard_layout() {
        return;
    }
    let (v, offset) = a.into_raw_vec_and_offset();
    if offset.unwrap_or(0) == 0 {
        recycle_f32(v);
    }
}

/// A zeroed vector of `n` `f32`, hinted to use huge pages.
pub fn zeroed_f32(n: usize) -> Vec<f32> {
    zeroed(n)
}

/// A zeroed (default-filled) vector of `n` elements whose pages are hinted to be huge
/// pages before anything touches them (measured: a fresh 4096² `f32` buffer took ≈ 40 ms
/// of page faults in a RICE read with 4 KiB pages, ≈ 12 ms with huge pages).
pub(crate) fn zeroed<T: Copy + Default>(n: usize) -> Vec<T> {
    let mut v = vec![T::default(); n];
    advise_huge(&mut v);
    v
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn advise_huge<T>(v: &mut [T]) {
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
fn advise_huge<T>(_v: &mut [T]) {}

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

    /// Image buffers are kept only while a guard is alive, reused smallest-fit, at most
    /// IMAGE_POOL_SIZE per type, and let go with the last guard. On a pool of its own (the
    /// process-wide one is shared with the other tests; tests/recycling.rs checks it).
    #[test]
    fn image_pool_keeps_buffers_only_while_entered() {
        use super::*;
        let n = 2 << 20; // 8 MiB of f32
        let mut p = ImagePool::new();
        // No guard: handing back lets go.
        assert!(p.put(vec![1.0f32; n]).is_some());
        assert!(p.f32s.is_empty());
        p.enter();
        let big = vec![2.0f32; 2 * n];
        let (big_ptr, big_cap) = (big.as_ptr(), big.capacity());
        assert!(p.put(big).is_none());
        let small = vec![3.0f32; n];
        let small_ptr = small.as_ptr();
        assert!(p.put(small).is_none());
        // Too small to keep.
        assert!(p.put(vec![4.0f32; 16]).is_some());
        assert_eq!(p.f32s.len(), 2);
        // Smallest fit: n − 7 values come from the n buffer, contents left as they were.
        let a: Vec<f32> = p.take(n - 7).unwrap();
        assert_eq!((a.len(), a.as_ptr()), (n - 7, small_ptr));
        assert!(a.iter().all(|&x| x == 3.0));
        // Larger than any kept one: nothing.
        assert!(p.take::<f32>(3 * n).is_none());
        // The big one serves a request up to its capacity; growing within it pads zeros.
        let c: Vec<f32> = p.take(big_cap).unwrap();
        assert_eq!(c.as_ptr(), big_ptr);
        // At most IMAGE_POOL_SIZE kept; a larger one replaces the smallest.
        for k in 0..IMAGE_POOL_SIZE + 2 {
            let let_go = p.put(vec![5.0f32; n]);
            assert_eq!(let_go.is_some(), k >= IMAGE_POOL_SIZE);
        }
        let replaced = p.put(c).unwrap();
        assert_eq!(replaced.capacity(), n);
        assert!(p.f32s.iter().any(|b| b.capacity() == big_cap));
        // i16 has its own shelf.
        let v = vec![7i16; 4 << 20];
        let vp = v.as_ptr();
        assert!(p.put(v).is_none());
        let w: Vec<i16> = p.take(3 << 20).unwrap();
        assert!(w.as_ptr() == vp && w.iter().all(|&x| x == 7));
        assert!(p.put(w).is_none());
        // A second guard keeps the pool; the last one lets everything go.
        p.enter();
        let (f, i) = p.leave();
        assert!(f.is_empty() && i.is_empty());
        assert_eq!(p.f32s.len(), IMAGE_POOL_SIZE);
        let (f, i) = p.leave();
        assert_eq!((f.len(), i.len()), (IMAGE_POOL_SIZE, 1));
        assert!(p.f32s.is_empty() && p.i16s.is_empty());
        assert!(p.put(vec![1.0f32; n]).is_some());
        drop(a);
    }

    /// The process-wide functions: fresh buffers are zeroed; arrays of any layout can be
    /// handed back without a panic.
    #[test]
    fn take_and_recycle_arrays() {
        use super::*;
        let _g = recycle_images();
        let v = take_f32(3 << 20);
        assert_eq!(v.len(), 3 << 20);
        recycle_f32(v);
        recycle_array(ndarray::Array2::from_elem((1024, 1024), 1.0));
        recycle_array(ndarray::Array2::from_elem((1024, 1024), 1.0).reversed_axes());
        recycle_i16(take_i16(5 << 20));
    }

    #[test]
    fn zeroed_of_any_type() {
        let mut v: Vec<f64> = super::zeroed(3 << 20);
        assert!(v.iter().all(|&x| x == 0.0));
        v[12345] = 2.5;
        assert_eq!(v.iter().sum::<f64>(), 2.5);
        let small: Vec<i16> = super::zeroed(10);
        assert_eq!(small, vec![0; 10]);
    }

    #[test]
    fn zeroed() {
        let v = super::zeroed_f32(3 << 20);
        assert_eq!(v.len(), 3 << 20);
        assert!(v.iter().all(|&x| x == 0.0));
    }
}
