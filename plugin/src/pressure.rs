//! Reading pressure frames (the GRAY8 / GRAY16_LE buffers of [`crate::caps::pressure_frames`])
//! as one float per cell: what `spmkdpose` feeds its encoder and `spmkdmonitor` measures.

use gst_video::prelude::*;

/// A buffer that could not be mapped as a frame of the negotiated format.
#[derive(Debug, thiserror::Error)]
#[error("cannot map the buffer as a {width}x{height} {format} frame")]
pub struct MapError {
    pub width: u32,
    pub height: u32,
    pub format: &'static str,
}

impl MapError {
    pub fn of(info: &gst_video::VideoInfo) -> Self {
        Self {
            width: info.width(),
            height: info.height(),
            format: info.format().to_str(),
        }
    }
}

/// The frame's values as floats into `out` (`width x height`), rows packed (the buffer's rows
/// may be padded).
pub fn read_values(
    info: &gst_video::VideoInfo,
    buffer: &gst::BufferRef,
    out: &mut [f32],
) -> Result<(), MapError> {
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
        .map_err(|_| MapError::of(info))?;
    let width = info.width() as usize;
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).map_err(|_| MapError::of(info))?;
    for (row, dst) in out.chunks_exact_mut(width).enumerate() {
        let src = &data[row * stride..];
        match info.format() {
            gst_video::VideoFormat::Gray8 => {
                for (d, &v) in dst.iter_mut().zip(&src[..width]) {
                    *d = v as f32;
                }
            }
            _ => {
                for (d, v) in dst.iter_mut().zip(src[..2 * width].chunks_exact(2)) {
                    *d = u16::from_le_bytes([v[0], v[1]]) as f32;
                }
            }
        }
    }
    Ok(())
}
