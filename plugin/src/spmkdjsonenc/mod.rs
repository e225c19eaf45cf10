//! `spmkdjsonenc`: one JSON line per frame (the record of `spmkd_core::schema`), for files,
//! network sinks or any recorder.
//!
//! ```text
//! gst-launch-1.0 pmatsrc location=S12/3.txt ! spmkdpose ! spmkdjsonenc ! filesink location=poses.ndjson
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct SpmkdJsonEnc(ObjectSubclass<imp::SpmkdJsonEnc>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "spmkdjsonenc",
        gst::Rank::NONE,
        SpmkdJsonEnc::static_type(),
    )
}
