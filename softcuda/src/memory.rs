//! Device memory: host memory behind an allocation table, laid out so that misuse shows.
//!
//! Each device allocation is its own mapping: a `PROT_NONE` guard page, the data pages,
//! another guard page. The data *end* at the upper guard page (after at most 15 bytes of
//! slack, to keep the start 16-byte aligned), so a read or write past the end faults at
//! once; the slack and the bytes before the start are filled with a canary that is checked
//! after every launch and copy. Fresh memory is poisoned (`0xFF`: NaN as f32/f64, −1 as
//! integers), as a real allocation holds garbage. Freed memory is made `PROT_NONE` and kept
//! out of reuse (quarantine) so a use after free faults or is refused by the table instead
//! of reading someone else's data.
//!
//! Page-locked host memory (`cuMemHostAlloc`) is plain host memory, recorded so that copies
//! from it can run asynchronously (from pageable memory they are staged, as the driver
//! does).

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Poison byte of fresh allocations.
pub const POISON: u8 = 0xFF;
/// Canary byte around the data.
pub const CANARY: u8 = 0xCD;

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// One mapping.
#[derive(Debug)]
pub struct Mapping {
    /// Start of the mapping (a guard page for device memory).
    pub base: usize,
    /// Length of the mapping.
    pub len: usize,
    /// Start of the data.
    pub ptr: usize,
    /// Requested size in bytes.
    pub size: usize,
    /// Whether this is device memory (with guards and canaries).
    pub device: bool,
}

impl Mapping {
    /// Device memory of `size` bytes (see the module docs). `None` when `mmap` fails.
    pub fn device(size: usize) -> Option<Mapping> {
        let pg = page();
        let size_al = round_up(size.max(1), 16);
        let data_len = round_up(size_al, pg);
        let len = data_len + 2 * pg;
        // SAFETY: an anonymous private mapping; checked for failure below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let base = base as usize;
        // SAFETY: the data pages lie inside the mapping just made.
        let ok = unsafe {
            libc::mprotect(
                (base + pg) as *mut libc::c_void,
                data_len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        } == 0;
        if !ok {
            // SAFETY: unmapping what was mapped above.
            unsafe { libc::munmap(base as *mut libc::c_void, len) };
            return None;
        }
        let ptr = base + pg + data_len - size_al;
        // SAFETY: [base + pg, base + pg + data_len) is readable and writable.
        unsafe {
            std::ptr::write_bytes((base + pg) as *mut u8, CANARY, ptr - (base + pg));
            std::ptr::write_bytes(ptr as *mut u8, POISON, size);
            std::ptr::write_bytes((ptr + size) as *mut u8, CANARY, size_al - size);
        }
        Some(Mapping {
            base,
            len,
            ptr,
            size,
            device: true,
        })
    }

    /// Page-locked host memory (zeroed by `mmap`; callers do not rely on it).
    pub fn pinned(size: usize) -> Option<Mapping> {
        let len = round_up(size.max(1), page());
        // SAFETY: an anonymous private mapping; checked for failure below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        Some(Mapping {
            base: base as usize,
            len,
            ptr: base as usize,
            size,
            device: false,
        })
    }

    /// Bytes counted against device memory.
    pub fn footprint(&self) -> u64 {
        round_up(self.size.max(1), 16) as u64
    }

    /// Whether the canaries around device data are intact; `Err(offset)` gives the first
    /// damaged byte relative to the data start (negative: before it).
    pub fn check_canaries(&self) -> Result<(), isize> {
        if !self.device {
            return Ok(());
        }
        let pg = page();
        let head = (self.base + pg)..self.ptr;
        let size_al = round_up(self.size.max(1), 16);
        let tail = (self.ptr + self.size)..(self.ptr + size_al);
        for a in head.chain(tail) {
            // SAFETY: both ranges are inside the readable data pages.
            if unsafe { *(a as *const u8) } != CANARY {
                return Err(a as isize - self.ptr as isize);
            }
        }
        Ok(())
    }

    /// Makes the memory inaccessible (freed device memory in quarantine).
    pub fn revoke(&self) {
        // SAFETY: the range is this mapping; its pages are dropped (they read as fresh
        // zero pages if ever re-enabled, which quarantine never does).
        unsafe {
            libc::mprotect(self.base as *mut libc::c_void, self.len, libc::PROT_NONE);
            libc::madvise(
                self.base as *mut libc::c_void,
                self.len,
                libc::MADV_DONTNEED,
            );
        }
    }

    /// Returns the address range to the system.
    pub fn unmap(&self) {
        // SAFETY: the range is this mapping and nothing refers to it any more.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

/// What happened to an allocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Life {
    Live,
    /// `cuMemFreeAsync` enqueued (by this label); the memory goes when the stream gets there.
    FreeEnqueued(String),
}

/// An allocation in the table.
#[derive(Debug)]
pub struct Alloc {
    pub id: u64,
    pub map: Mapping,
    pub ctx: u64,
    /// Came from the stream-ordered allocator (freed memory goes back to the pool).
    pub pool: bool,
    pub life: Life,
    /// Latest write per stream: stream → (sequence number, what).
    pub writes: HashMap<u64, (u64, String)>,
    /// Latest read per stream.
    pub reads: HashMap<u64, (u64, String)>,
}

impl Alloc {
    /// "allocation #N (S bytes at 0x…)".
    pub fn describe(&self) -> String {
        format!(
            "{} #{} ({} bytes at {:#x})",
            if self.map.device {
                "device allocation"
            } else {
                "pinned host allocation"
            },
            self.id,
            self.map.size,
            self.map.ptr
        )
    }
}

/// A freed allocation remembered for messages and kept out of reuse.
#[derive(Debug)]
struct Freed {
    map: Mapping,
    id: u64,
    how: String,
}

/// All allocations of the process, by data start.
#[derive(Debug, Default)]
pub struct Table {
    by_ptr: BTreeMap<usize, u64>,
    pub allocs: HashMap<u64, Alloc>,
    freed: BTreeMap<usize, Freed>,
    freed_order: VecDeque<usize>,
    freed_bytes: usize,
}

/// Address space kept in quarantine before the oldest freed mapping is unmapped.
const QUARANTINE_BYTES: usize = 64 << 30;
/// Freed mappings kept in quarantine at most (each costs a few kernel VMAs).
const QUARANTINE_COUNT: usize = 4096;

impl Table {
    pub fn insert(&mut self, a: Alloc) {
        self.by_ptr.insert(a.map.ptr, a.id);
        self.allocs.insert(a.id, a);
    }

    /// The allocation whose data contain `addr` (or start at it, for empty ones).
    pub fn find(&self, addr: usize) -> Option<&Alloc> {
        let (&start, id) = self.by_ptr.range(..=addr).next_back()?;
        let a = self.allocs.get(id)?;
        let end = start + a.map.size;
        if addr < end || addr == start {
            Some(a)
        } else {
            None
        }
    }

    pub fn find_mut(&mut self, addr: usize) -> Option<&mut Alloc> {
        let id = self.find(addr)?.id;
        self.allocs.get_mut(&id)
    }

    /// Why `addr` is not usable: freed (by what), or not device memory at all.
    pub fn why_not(&self, addr: usize) -> String {
        if let Some((_, f)) = self.freed.range(..=addr).next_back() {
            if addr < f.map.ptr + f.map.size.max(1) {
                return format!(
                    "{addr:#x} is inside allocation #{} ({} bytes at {:#x}), freed by {}",
                    f.id, f.map.size, f.map.ptr, f.how
                );
            }
        }
        if let Some((&start, id)) = self.by_ptr.range(..=addr).next_back() {
            if let Some(a) = self.allocs.get(id) {
                return format!(
                    "{addr:#x} is {} bytes past the end of {}",
                    addr - (start + a.map.size),
                    a.describe()
                );
            }
        }
        format!("{addr:#x} is not device memory")
    }

    /// Removes an allocation: device memory goes to quarantine, pinned memory is unmapped.
    pub fn remove(&mut self, id: u64, how: &str) -> Option<u64> {
        let a = self.allocs.remove(&id)?;
        self.by_ptr.remove(&a.map.ptr);
        let footprint = a.map.footprint();
        if !a.map.device {
            a.map.unmap();
            return Some(0);
        }
        a.map.revoke();
        let ptr = a.map.ptr;
        self.freed_bytes += a.map.len;
        self.freed.insert(
            ptr,
            Freed {
                map: a.map,
                id,
                how: how.to_string(),
            },
        );
        self.freed_order.push_back(ptr);
        while self.freed_bytes > QUARANTINE_BYTES || self.freed_order.len() > QUARANTINE_COUNT {
            let Some(old) = self.freed_order.pop_front() else {
                break;
            };
            if let Some(f) = self.freed.remove(&old) {
                self.freed_bytes -= f.map.len;
                f.map.unmap();
            }
        }
        Some(footprint)
    }

    /// Ids of the allocations of a context.
    pub fn of_context(&self, ctx: u64) -> Vec<u64> {
        self.allocs
            .values()
            .filter(|a| a.ctx == ctx)
            .map(|a| a.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_memory_layout() {
        let m = Mapping::device(100).unwrap();
        assert_eq!(m.ptr % 16, 0);
        // poisoned data, intact canaries
        let s = unsafe { std::slice::from_raw_parts(m.ptr as *const u8, 100) };
        assert!(s.iter().all(|&b| b == POISON));
        assert!(m.check_canaries().is_ok());
        // the data end within 15 bytes of the guard page
        assert_eq!((m.ptr + 112) % page(), 0);
        unsafe { *((m.ptr + 101) as *mut u8) = 0 };
        assert_eq!(m.check_canaries(), Err(101));
        unsafe { *((m.ptr - 1) as *mut u8) = 0 };
        assert_eq!(m.check_canaries(), Err(-1));
        m.unmap();
    }

    #[test]
    fn table_finds_and_explains() {
        let mut t = Table::default();
        let m = Mapping::device(64).unwrap();
        let p = m.ptr;
        t.insert(Alloc {
            id: 7,
            map: m,
            ctx: 1,
            pool: false,
            life: Life::Live,
            writes: HashMap::new(),
            reads: HashMap::new(),
        });
        assert_eq!(t.find(p).map(|a| a.id), Some(7));
        assert_eq!(t.find(p + 63).map(|a| a.id), Some(7));
        assert!(t.find(p + 64).is_none());
        assert!(t.why_not(p + 70).contains("past the end"));
        t.remove(7, "cuMemFree_v2");
        assert!(t.find(p).is_none());
        assert!(
            t.why_not(p + 8).contains("freed by cuMemFree_v2"),
            "{}",
            t.why_not(p + 8)
        );
    }
}
