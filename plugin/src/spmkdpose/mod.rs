//! `spmkdpose`: keypoints of pressure-mat frames, as a meta on each buffer, and the
//! reconstruction of each frame from its keypoints on a second pad.
//!
//! ```text
//! gst-launch-1.0 pmatsrc location=S12/3.txt ! spmkdpose name=p ! fakesink \
//!     p.recon_src ! videoconvert ! pngenc ! multifilesink location=recon-%03d.png
//! ```

use gst::glib;
use gst::prelude::*;

mod carried;
mod frame;
mod imp;
mod in_flight;
mod interval;
mod lane;
mod lanes;
mod orientation;
mod workers;

pub use imp::DeviceChoice;
pub use orientation::OrientationChoice;

glib::wrapper! {
    pub struct SpmkdPose(ObjectSubclass<imp::SpmkdPose>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    DeviceChoice::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    OrientationChoice::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "spmkdpose",
        gst::Rank::NONE,
        SpmkdPose::static_type(),
    )
}
