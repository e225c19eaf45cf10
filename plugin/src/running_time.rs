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
