//! Shared helpers of the integration tests: plugin registration and data locations.

use std::path::{Path, PathBuf};
use std::sync::Once;

use spmkd_core::dataset::DatasetIndex;

/// Initializes GStreamer and registers the `spmkd` plugin from this build (no install needed).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initializes");
        gstspmkd::plugin_register_static().expect("the spmkd plugin registers");
    });
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// The full PmatData tree (`$SPMKD_DATA` or `../shared/data/pmatdata`). Tests that need it fail
/// with this message rather than pass without it.
pub fn data_root() -> PathBuf {
    let root = DatasetIndex::locate(&repo_root());
    assert!(
        root.join("experiment-i").is_dir(),
        "PmatData not found at {}: set SPMKD_DATA to the pmatdata folder",
        root.display()
    );
    root
}

/// The sample recordings committed with the project.
pub fn sample(name: &str) -> PathBuf {
    repo_root().join("data/sample/experiment-i/S12").join(name)
}

/// An `.npy` file holding `data` (little-endian, C order) as an array of `descr` and `shape`.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = spmkd_core::reader::npy_header(descr, shape);
    out.extend_from_slice(data);
    out
}
