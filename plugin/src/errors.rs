//! How the elements report ONNX Runtime failures while starting: one mapping from
//! [`EngineError`] to the GStreamer error domain a user (or `gst-launch-1.0`) sees.

use spmkd_core::engine::EngineError;

/// The error message for a model or runtime that could not be set up: an unreadable file is a
/// resource error, a missing or mismatched ONNX Runtime library an init error, anything about
/// the model itself (metadata, shapes, kind, device) a settings error. The text names the file.
pub fn start_error(e: EngineError) -> gst::ErrorMessage {
    match e {
        EngineError::Read { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e)),
        EngineError::Library { .. } | EngineError::LibraryMismatch { .. } => {
            gst::error_msg!(gst::LibraryError::Init, ("{}", e))
        }
        _ => gst::error_msg!(gst::LibraryError::Settings, ("{}", e)),
    }
}
