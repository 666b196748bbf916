//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod npy;

use std::path::PathBuf;

/// `tests/data/NAME` (tests never read ../shared).
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

/// `tests/parity/fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("parity")
        .join("fixtures")
        .join(name)
}
