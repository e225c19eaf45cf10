//! `pmatsrc`: pressure recordings as a stream of GRAY16_LE frames.
//!
//! ```text
//! gst-launch-1.0 pmatsrc location=S12/3.txt ! videoconvert ! pngenc ! multifilesink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

pub use imp::RecordingFormat;

glib::wrapper! {
    pub struct PmatSrc(ObjectSubclass<imp::PmatSrc>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    RecordingFormat::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "pmatsrc",
        gst::Rank::NONE,
        PmatSrc::static_type(),
    )
}
