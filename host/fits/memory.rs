//! Large pixel buffers: a hint to back them with huge pages.
//!
//! A fresh 4096² `f32` buffer (64 MB) costs ≈ 16,000 page faults on first touch, which
//! measured ≈ 40 ms here — a quarter of a whole RICE read. With transparent huge pages
//! (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise` or `always`) the same
//! buffer takes 32 faults and ≈ 12 ms. The hint is advisory: where the kernel does not
//! support it (or on other systems) nothing changes but speed.

/// Below this many bytes no hint is given (a huge page is 2 MB).
const MIN_BYTES: usize = 4 << 20;

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::{c_int, c_void};
    /// `MADV_HUGEPAGE` (Linux, all architectures: asm-generic/mman-common.h).
    pub const MADV_HUGEPAGE: c_int = 14;
    extern "C" {
        /// glibc/musl `madvise(2)`.
        pub fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
}

/// A zeroed vector of `n` elements whose pages are advised to be huge pages. Call before
/// the first write to the buffer (the hint acts on pages not yet touched).
pub(crate) fn zeroed_vec<T: Copy + Default>(n: usize) -> Vec<T> {
    let mut v = vec![T::default(); n];
    advise_huge_pages(&mut v);
    v
}

/// Advise huge pages for the page-aligned part of `buf` (no effect off Linux, for small
/// buffers, or where the kernel declines).
pub(crate) fn advise_huge_pages<T>(buf: &mut [T]) {
    let bytes = std::mem::size_of_val(buf);
    if bytes < MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = buf.as_mut_ptr() as usize;
        let first = start.next_multiple_of(PAGE);
        let end = (start + bytes) & !(PAGE - 1);
        if end > first {
            // SAFETY: [first, end) lies within `buf`, which this process owns; the advice
            // changes no contents and its failure is harmless (the result is ignored).
            unsafe {
                sys::madvise(
                    first as *mut std::ffi::c_void,
                    end - first,
                    sys::MADV_HUGEPAGE,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_buffers_are_zeroed_and_usable() {
        let mut v: Vec<f32> = zeroed_vec(3 << 20);
        assert!(v.iter().all(|&x| x == 0.0));
        v[12345] = 2.5;
        assert_eq!(v.iter().sum::<f32>(), 2.5);
        let small: Vec<i16> = zeroed_vec(10);
        assert_eq!(small, vec![0; 10]);
    }
}
