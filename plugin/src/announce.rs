//! How the monitoring elements tell of an event (a posture change, a reposition, a bed exit...):
//! an element message on the bus, for the application, and a custom downstream event with the
//! same structure, in order with the buffers, for the elements downstream (`spmkdmqttsink`
//! publishes them) and for anything that records the stream. Called on the streaming thread,
//! while the buffer the event belongs to is being handled: the event goes out before it.

use gst::prelude::*;

/// Whether `event` is one of the spmkd events [`announce`] forwards.
pub fn is_spmkd_event(event: &gst::EventRef) -> Option<&gst::StructureRef> {
    if event.type_() != gst::EventType::CustomDownstream {
        return None;
    }
    event.structure().filter(|s| s.name().starts_with("spmkd-"))
}

/// Posts `s` from `element` and pushes it downstream from `src`.
pub fn announce(element: &gst::Element, src: &gst::Pad, s: gst::Structure) {
    let _ = element.post_message(
        gst::message::Element::builder(s.clone())
            .src(element)
            .build(),
    );
    // Not linked or flushing: nothing downstream to tell, the bus has it.
    let _ = src.push_event(gst::event::CustomDownstream::new(s));
}
