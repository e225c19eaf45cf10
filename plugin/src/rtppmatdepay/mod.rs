//! `rtppmatdepay`: RTP packets of the payload format of `spmkd_core::transport` back into
//! pressure frames, each datagram checked on its own: a lost, short, long, late or duplicated
//! datagram costs at most its own frame, is counted (`stats`) and reported
//! (`spmkd-transport` messages); a sender gone silent is reported (`spmkd-sensor-lost`).
//!
//! ```text
//! gst-launch-1.0 udpsrc port=5000 caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=X-PMAT" \
//!     ! rtppmatdepay ! spmkdpose ! spmkdjsonenc ! filesink location=poses.ndjson
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

pub use imp::SensorLostAction;

glib::wrapper! {
    pub struct RtpPmatDepay(ObjectSubclass<imp::RtpPmatDepay>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    SensorLostAction::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "rtppmatdepay",
        gst::Rank::NONE,
        RtpPmatDepay::static_type(),
    )
}
