//! GStreamer plugin `spmkd`: pressure-mat streams in, keypoints, posture and alerts out.
//!
//! Elements:
//! - `pmatsrc`: reads pressure recordings (PmatData text, `.npy`, raw) as GRAY16_LE frames;
//! - `spmkdpose`: keypoints of each frame as a [`posemeta::PoseMeta`], and the reconstruction of
//!   the frame from them (ONNX Runtime through [`spmkd_core::engine`]);
//! - `spmkdjsonenc`: the pose of each frame as one JSON line;
//! - `spmkdoverlay`: the frame through a colormap, upscaled, with the keypoints drawn on it;
//! - `spmkdmonitor`: occupancy and bed exit, movement, pressure exposure and trust of each
//!   frame ([`spmkd_core::monitor`]), into the pose meta and as bus messages;
//! - `spmkdposture`: the posture of each frame from its keypoints (a graph network), posture
//!   changes and reposition alerts as bus messages;
//! - `spmkdmqttsink`: a bed's poses, posture changes and alerts to an MQTT broker, queued on
//!   disk while the broker is away ([`spmkd_core::broker`]);
//! - `rtppmatpay`, `rtppmatdepay`: frames over the network, one per RTP packet
//!   ([`spmkd_core::transport`]), loss counted, a silent sensor reported.
//!
//! Data attribution for the recordings and models this plugin works with: see
//! [`spmkd_core::pmat::ATTRIBUTION`].

use gst::glib;

pub mod announce;
mod caps;
mod errors;
pub mod hot_swap;
pub mod pmatsrc;
pub mod posemeta;
mod pressure;
pub mod rtppmatdepay;
pub mod rtppmatpay;
mod running_time;
pub mod spmkdjsonenc;
pub mod spmkdmonitor;
pub mod spmkdmqttsink;
pub mod spmkdoverlay;
pub mod spmkdpose;
pub mod spmkdposture;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    posemeta::register();
    pmatsrc::register(plugin)?;
    spmkdpose::register(plugin)?;
    spmkdjsonenc::register(plugin)?;
    spmkdoverlay::register(plugin)?;
    spmkdmonitor::register(plugin)?;
    spmkdposture::register(plugin)?;
    spmkdmqttsink::register(plugin)?;
    rtppmatpay::register(plugin)?;
    rtppmatdepay::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    spmkd,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "https://physionet.org/content/pmd/1.0.0/",
    env!("BUILD_REL_DATE")
);
