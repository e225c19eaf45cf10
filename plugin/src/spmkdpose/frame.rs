//! The negotiated input of `spmkdpose` and the two conversions between its buffers and floats:
//! a pressure frame in, a reconstruction out.

use gst_video::prelude::*;

use spmkd_core::orientation::Orientation;
use spmkd_core::preprocess::Letterbox;

use crate::pressure::{MapError, read_values};

/// The negotiated input and what follows from it.
pub struct Stream {
    pub info: gst_video::VideoInfo,
    pub recon_info: gst_video::VideoInfo,
    /// How the stream's frames are brought into the models' convention before the model.
    pub orientation: Orientation,
    /// The oriented mat's place in the model's square; a model that frames its input on the
    /// body moves it sideways frame by frame (`Inferred::letterbox`).
    pub letterbox: Letterbox,
}

/// Why a buffer could not be read or a reconstruction not written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("cannot allocate a {0}-byte reconstruction buffer")]
    Alloc(usize),
}

impl Stream {
    /// The stream of `info` for a model input of `s x s`, its frames laid by `orientation`.
    pub fn new(
        info: gst_video::VideoInfo,
        recon_info: gst_video::VideoInfo,
        orientation: Orientation,
        s: usize,
    ) -> Self {
        let (w, h) = orientation.size(info.width() as usize, info.height() as usize);
        Self {
            info,
            recon_info,
            orientation,
            letterbox: Letterbox::new(w, h, s),
        }
    }

    /// The stream's frame size, cells.
    pub fn size(&self) -> (usize, usize) {
        (self.info.width() as usize, self.info.height() as usize)
    }

    /// The frame's values as floats into `out`, rows packed.
    pub fn read(&self, buffer: &gst::BufferRef, out: &mut [f32]) -> Result<(), FrameError> {
        Ok(read_values(&self.info, buffer, out)?)
    }

    /// The reconstruction `map` (`S x S`, `[0, 1]`, framed by `letterbox`) on the sensor grid
    /// (the stream's own, whatever the orientation), in the input's units `(min, max)`, as a
    /// GRAY16_LE buffer. `oriented` and `sensor_map` are scratch of one value per cell.
    pub fn recon_buffer(
        &self,
        map: &[f32],
        letterbox: &Letterbox,
        (oriented, sensor_map): (&mut Vec<f32>, &mut Vec<f32>),
        (min, max): (f32, f32),
    ) -> Result<gst::Buffer, FrameError> {
        oriented.resize(letterbox.src_width * letterbox.src_height, 0.0);
        letterbox.unapply(map, oriented);
        self.orientation.inverse().apply(
            oriented,
            letterbox.src_width,
            letterbox.src_height,
            sensor_map,
        );
        let info = &self.recon_info;
        let mut buffer =
            gst::Buffer::with_size(info.size()).map_err(|_| FrameError::Alloc(info.size()))?;
        let map_error = || FrameError::Map(MapError::of(info));
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
