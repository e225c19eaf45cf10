//! The negotiated input of `spmkdpose` and the two conversions between its buffers and floats:
//! a pressure frame in, a reconstruction out.

use gst_video::prelude::*;

use spmkd_core::preprocess::Letterbox;

/// The negotiated input and what follows from it.
pub struct Stream {
    pub info: gst_video::VideoInfo,
    pub recon_info: gst_video::VideoInfo,
    pub letterbox: Letterbox,
}

/// Why a buffer could not be read or a reconstruction not written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("cannot map the buffer as a {width}x{height} {format} frame")]
    Map {
        width: u32,
        height: u32,
        format: &'static str,
    },
    #[error("cannot allocate a {0}-byte reconstruction buffer")]
    Alloc(usize),
}

impl Stream {
    /// The frame's values as floats into `out`, rows packed (the buffer's rows may be padded).
    pub fn read(&self, buffer: &gst::BufferRef, out: &mut [f32]) -> Result<(), FrameError> {
        let info = &self.info;
        let map_error = || FrameError::Map {
            width: info.width(),
            height: info.height(),
            format: info.format().to_str(),
        };
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
            .map_err(|_| map_error())?;
        let width = info.width() as usize;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|_| map_error())?;
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

    /// The reconstruction `map` (`S x S`, `[0, 1]`) on the sensor grid, in the input's units
    /// `(min, max)`, as a GRAY16_LE buffer. `sensor_map` is scratch of one value per cell.
    pub fn recon_buffer(
        &self,
        map: &[f32],
        sensor_map: &mut [f32],
        (min, max): (f32, f32),
    ) -> Result<gst::Buffer, FrameError> {
        self.letterbox.unapply(map, sensor_map);
        let info = &self.recon_info;
        let mut buffer =
            gst::Buffer::with_size(info.size()).map_err(|_| FrameError::Alloc(info.size()))?;
        let map_error = || FrameError::Map {
            width: info.width(),
            height: info.height(),
            format: info.format().to_str(),
        };
        let b = buffer.get_mut().ok_or_else(map_error)?;
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(b, info).map_err(|_| map_error())?;
        let width = info.width() as usize;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data_mut(0).map_err(|_| map_error())?;
        for (row, src) in sensor_map.chunks_exact(width).enumerate() {
            let dst = &mut data[row * stride..][..2 * width];
            for (d, &v) in dst.chunks_exact_mut(2).zip(src) {
                let units = (min + v * (max - min)).round().clamp(0.0, 65535.0) as u16;
                d.copy_from_slice(&units.to_le_bytes());
            }
        }
        drop(frame);
        Ok(buffer)
    }
}
