//! Running time of a buffer: what the monitoring elements time postures, exits and exposure
//! by, so that a recording, a `concat` of recordings and a live mat behave alike.

/// The buffer's PTS as running time in `segment`, ns; `None` without a PTS or outside the
/// segment.
pub fn of(segment: &gst::Segment, buffer: &gst::BufferRef) -> Option<u64> {
    let pts = buffer.pts()?;
    segment
        .downcast_ref::<gst::ClockTime>()?
        .to_running_time(pts)
        .map(gst::ClockTime::nseconds)
}

/// The running time of each buffer of a stream; a buffer without one (no PTS, or outside the
/// segment) counts as the frame before it.
#[derive(Debug, Default)]
pub struct Clock {
    last_ns: u64,
    warned: bool,
}

impl Clock {
    /// The buffer's running time, and `true` the first time a buffer had none (the element
    /// warns once).
    pub fn now(&mut self, segment: &gst::Segment, buffer: &gst::BufferRef) -> (u64, bool) {
        match of(segment, buffer) {
            Some(t) => {
                self.last_ns = t;
                (t, false)
            }
            None => (self.last_ns, !std::mem::replace(&mut self.warned, true)),
        }
    }
}
