//! `rtppmatpay`: pressure frames into RTP packets, one frame per packet, in the payload format
//! of `spmkd_core::transport` (what a mat on the network sends; `rtppmatdepay` reads it).
//!
//! ```text
//! gst-launch-1.0 pmatsrc location=S12/3.txt ! rtppmatpay ! udpsink host=127.0.0.1 port=5000 sync=true
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct RtpPmatPay(ObjectSubclass<imp::RtpPmatPay>)
        @extends gst_rtp::RTPBasePayload, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "rtppmatpay",
        gst::Rank::NONE,
        RtpPmatPay::static_type(),
    )
}
