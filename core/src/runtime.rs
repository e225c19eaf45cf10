//! Where the ONNX Runtime shared library is: one answer for the plugin, the tests and tools.

use std::path::PathBuf;

/// The variable `ort` itself reads: a full path to `libonnxruntime.so`.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// `scripts/setup` installs into `$SPMKD_ORT_DIR` (default below) `lib/libonnxruntime.so`.
pub const ORT_DIR_ENV: &str = "SPMKD_ORT_DIR";
pub const ORT_DEFAULT_DIR: &str = "/opt/spmkd/onnxruntime";

/// `$ORT_DYLIB_PATH`, else `$SPMKD_ORT_DIR/lib/libonnxruntime.so`, else the set-up default.
pub fn onnxruntime_library() -> PathBuf {
    if let Some(path) = std::env::var_os(ORT_DYLIB_ENV) {
        return PathBuf::from(path);
    }
    let dir =
        std::env::var_os(ORT_DIR_ENV).map_or_else(|| PathBuf::from(ORT_DEFAULT_DIR), PathBuf::from);
    dir.join("lib/libonnxruntime.so")
}
