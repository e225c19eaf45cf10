//! `spmkdmonitor`: what a ward asks of a pressure mat, frame by frame: is someone in the bed (and
//! did they just get out), have they moved, which skin has been under load for how long, and can
//! the models be trusted on this frame ([`spmkd_core::monitor`]). It reads the frame itself and,
//! when `spmkdpose` is upstream, its pose; it writes its findings into the pose meta, where
//! `spmkdposture` after it reads them (posture `none` on an empty bed, `uncertain` below
//! `min-trust`, offloading movements as repositions), and posts bus messages.
//!
//! ```text
//! gst-launch-1.0 -m pmatsrc location=night.npy ! spmkdpose ! spmkdmonitor exit-delay=60000000000 \
//!     ! spmkdposture ! spmkdjsonenc ! filesink location=night.ndjson
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct SpmkdMonitor(ObjectSubclass<imp::SpmkdMonitor>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "spmkdmonitor",
        gst::Rank::NONE,
        SpmkdMonitor::static_type(),
    )
}
