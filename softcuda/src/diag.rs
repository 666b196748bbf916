//! Diagnostics: what the emulator caught (a race between streams, an out-of-bounds access,
//! a use after free, ...), printed to stderr as `softcuda: ...` and kept for tests, which
//! read them with [`softcuda_diagnostics`].

use std::sync::Mutex;

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prints and keeps one diagnostic.
pub fn report(msg: &str) {
    eprintln!("softcuda: {msg}");
    let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    if log.len() >= 1000 {
        log.remove(0);
    }
    log.push(msg.to_string());
}

/// Copies every diagnostic so far, one per line, into `buf` (NUL-terminated, truncated to
/// `len` bytes) and returns the length of the whole text. Exported for tests.
#[no_mangle]
pub unsafe extern "C" fn softcuda_diagnostics(buf: *mut libc::c_char, len: usize) -> usize {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let text = log.join("\n");
    if !buf.is_null() && len > 0 {
        let n = text.len().min(len - 1);
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
    text.len()
}

/// 1: this is the software device (for tools that must not quote its timings).
#[no_mangle]
pub extern "C" fn softcuda_is_emulated() -> i32 {
    1
}
