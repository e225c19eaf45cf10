//! `spmkdoverlay`: a pressure frame and its pose as a picture: a colormap, an integer upscale
//! (mats are only 27-32 cells wide) and the keypoints drawn on top, with the posture label
//! when the pose has one; or, `mode=exposure`, each cell's time under load from `spmkdmonitor`
//! with a legend: the picture a nurse reads at a glance.
//!
//! ```text
//! gst-launch-1.0 pmatsrc location=S12/3.txt ! spmkdpose ! spmkdoverlay scale=8 \
//!     ! videoconvert ! pngenc ! multifilesink location=overlay-%03d.png
//! gst-launch-1.0 pmatsrc location=S12/3.txt framerate=1/60 ! spmkdpose \
//!     ! spmkdmonitor exposure-map=true ! spmkdoverlay mode=exposure scale=8 \
//!     ! videoconvert ! pngenc ! multifilesink location=exposure-%03d.png
//! ```

use gst::glib;
use gst::prelude::*;

mod colormap;
mod draw;
mod imp;
mod mode;

pub use colormap::Colormap;
pub use mode::Mode;

glib::wrapper! {
    pub struct SpmkdOverlay(ObjectSubclass<imp::SpmkdOverlay>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Colormap::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "spmkdoverlay",
        gst::Rank::NONE,
        SpmkdOverlay::static_type(),
    )
}
