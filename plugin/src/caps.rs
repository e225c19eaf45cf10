//! Caps shared by the elements.

/// Pressure frames as the elements take them: GRAY8 or GRAY16_LE, one sensor cell per pixel,
/// any size and rate.
pub fn pressure_frames() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list([
            gst_video::VideoFormat::Gray8,
            gst_video::VideoFormat::Gray16Le,
        ])
        .build()
}
