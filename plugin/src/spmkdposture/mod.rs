//! `spmkdposture`: the posture of each posed frame (a graph network over the keypoints in its
//! `SpmkdPoseMeta`), written into the meta, with bus messages when the posture changes and when
//! it has lasted long enough that the person should be turned (pressure-injury prevention).
//!
//! ```text
//! gst-launch-1.0 -m pmatsrc location=S12/3.txt ! spmkdpose ! spmkdposture smoothing=5 \
//!     reposition-interval=7200000000000 ! spmkdjsonenc ! filesink location=poses.ndjson
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct SpmkdPosture(ObjectSubclass<imp::SpmkdPosture>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "spmkdposture",
        gst::Rank::NONE,
        SpmkdPosture::static_type(),
    )
}
