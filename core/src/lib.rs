//! spmkd-core: the contract shared by the spmkd plugin and the training code.
//!
//! Everything that must mean the same thing on both sides lives here, once:
//! - [`reader`]: streaming readers for real pressure recordings (PmatData text of both
//!   experiments, `.npy` stacks, raw GRAY16_LE), with errors that name the file and the line or
//!   byte offset;
//! - [`artifacts`]: the documented rule that finds the capture artifacts of PmatData
//!   experiment-i;
//! - [`dataset`]: the index of the PmatData tree, labels and the subject-held-out split;
//! - [`preprocess`]: letterbox + per-frame normalization, and the inverse coordinate mapping;
//! - [`keypoints`]: encoder outputs to keypoints in sensor cells;
//! - [`orientation`]: which way the models expect a mat to lie, the eight ways a grid can lie
//!   and the mapping between a stream's cells and the models';
//! - [`layout`]: how a frame's keypoints lie head to foot against the encoder's reference;
//! - [`posture`]: the graph a posture model sees of a pose, smoothing, changes and alerts;
//! - [`ssim`]: the SSIM of the training loss and of the plugin's reconstruction quality;
//! - [`schema`]: the per-frame JSON record and the names of the pose meta fields;
//! - [`ndjson`]: reading records back from what `spmkdjsonenc` writes;
//! - [`monitor`]: occupancy and bed exit, movement, pressure exposure and trust of a frame;
//! - [`model_meta`]: the metadata keys every exported model carries;
//! - [`broker`]: the MQTT topics and payloads of a ward (what `spmkdmqttsink` publishes);
//!   `mqtt` (feature `mqtt`): how the connections are made;
//! - [`transport`]: the live wire format (one frame per RTP packet) and its sequence accounting;
//! - `engine` (feature `onnx`): ONNX Runtime sessions of the exported models;
//! - `model_pool` (feature `onnx`): those sessions shared by every element of a process.
//!
//! No GStreamer and no Burn here: both sides depend on this crate, never the other way round.
//! ONNX Runtime only with the `onnx` feature (the plugin's and the posture tools'), an MQTT client
//! only with `mqtt` (the plugin's sink, `spmkd-ward`).
//!
//! Data attribution: PmatData (PhysioNet "pmd" 1.0.0), M. Baran Pouyan et al., "A Pressure Map
//! Dataset for In-bed Posture Classification", IEEE BHI 2017, under ODC-By 1.0.

pub mod artifacts;
pub mod assets;
pub mod broker;
pub mod dataset;
#[cfg(feature = "onnx")]
pub mod engine;
pub mod error;
pub mod format;
pub mod frame;
pub mod keypoints;
pub mod layout;
pub mod model_meta;
#[cfg(feature = "onnx")]
pub mod model_pool;
pub mod monitor;
#[cfg(feature = "mqtt")]
pub mod mqtt;
pub mod ndjson;
pub mod orientation;
pub mod pmat;
pub mod posture;
pub mod preprocess;
pub mod reader;
pub mod runtime;
pub mod schema;
pub mod ssim;
pub mod transport;

pub use error::{Position, ReadError};
pub use format::Format;
pub use frame::Frame;
pub use reader::{RecordedFrame, Recording};
