//! `spmkdmqttsink`: a bed's poses, posture changes and alerts to an MQTT broker, with store and
//! forward: postures and alerts wait on disk while the broker is away and are delivered in order
//! after it returns ([`spmkd_core::broker`] has the topics and payloads).
//!
//! ```text
//! gst-launch-1.0 pmatsrc location=night.npy ! spmkdpose ! spmkdmonitor ! spmkdposture ! \
//!     spmkdmqttsink host=broker.ward port=1883 topic-prefix=ward/4 bed=12
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod journal;
pub mod publisher;

pub use imp::{CONNECTION_MESSAGE, DROPPED_MESSAGE};

glib::wrapper! {
    pub struct SpmkdMqttSink(ObjectSubclass<imp::SpmkdMqttSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "spmkdmqttsink",
        gst::Rank::NONE,
        SpmkdMqttSink::static_type(),
    )
}
