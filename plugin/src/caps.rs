//! Caps shared by the elements, and what they say of a frame.

use gst::prelude::*;

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

/// Pressure frames as RTP packets (`spmkd_core::transport`): what `rtppmatpay` sends and
/// `rtppmatdepay` takes, any dynamic payload type.
pub fn pmat_rtp() -> gst::Caps {
    gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("payload", gst::IntRange::new(96, 127))
        .field("clock-rate", spmkd_core::transport::CLOCK_RATE as i32)
        .field("encoding-name", spmkd_core::transport::ENCODING_NAME)
        .build()
}

/// How long one frame lasts at `fps`; `None` for a variable rate (0/1) or one it cannot hold.
pub fn frame_duration(fps: gst::Fraction) -> Option<gst::ClockTime> {
    let (num, den) = (
        u64::try_from(fps.numer()).ok()?,
        u64::try_from(fps.denom()).ok()?,
    );
    (num > 0).then(|| gst::ClockTime::SECOND.mul_div_floor(den, num))?
}
