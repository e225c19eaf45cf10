//! Helpers shared by the training crate's integration tests.

use std::path::{Path, PathBuf};

/// A committed sample recording of held-out subject S12 (data/sample, ODC-By).
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/sample/experiment-i/S12")
        .join(name)
}
