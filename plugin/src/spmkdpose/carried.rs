//! The last pose inferred, and what each frame leaves with: its pose record (its own pose, or
//! the one it carries under `inference-interval`) and what goes on `recon_src`.

use spmkd_core::orientation::Orientation;
use spmkd_core::preprocess::Letterbox;
use spmkd_core::schema::{Keypoint, PoseRecord, SCHEMA_VERSION};

use super::lane::Inferred;

/// The last pose computed, carried onto frames that inference-interval skips.
pub struct Carried {
    keypoints: Vec<Keypoint>,
    layout: Option<f32>,
    occupied: bool,
    features: Vec<f32>,
    quality: Option<f32>,
    /// The reconstruction pushed with it, if one was made.
    pub recon: Option<gst::Buffer>,
    /// The decoder's input, to make the reconstruction later if recon_src is linked then.
    pub fused: Vec<f32>,
    /// The frame's pressure range, to bring a later reconstruction back to its units.
    pub range: (f32, f32),
    /// Where the frame sat in the model's square, to put a later reconstruction back.
    pub letterbox: Letterbox,
}

/// What a frame sends on `recon_src`.
pub enum Recon {
    /// Its reconstruction.
    Buffer(gst::Buffer),
    /// A gap of the frame's time: recon_src is linked but there is no reconstruction (no
    /// decoder), so the branch behind it keeps flowing (prerolls, reaches EOS) instead of
    /// waiting for a buffer that never comes.
    Gap,
    /// Nothing: recon_src is not linked.
    None,
}

impl From<Inferred> for Carried {
    fn from(i: Inferred) -> Self {
        Self {
            keypoints: i.keypoints,
            layout: i.layout,
            occupied: i.occupied,
            features: i.features,
            quality: i.quality,
            recon: i.recon,
            fused: i.fused,
            range: i.range,
            letterbox: i.letterbox,
        }
    }
}

impl Carried {
    /// The record of a `width x height` frame with this pose, found with the frame laid by
    /// `orientation`: `stale` when carried, `inference_us` its own inference time (0 when
    /// carried).
    pub fn record(
        &self,
        model: &str,
        (width, height): (u32, u32),
        orientation: Orientation,
        inference_us: u64,
        stale: bool,
    ) -> PoseRecord {
        PoseRecord {
            schema: SCHEMA_VERSION,
            pts_ns: None,
            duration_ns: None,
            running_time_ns: None,
            width,
            height,
            model: model.to_owned(),
            inference_us,
            stale,
            quality: self.quality,
            confidence_reference: None,
            layout: self.layout,
            layout_ramp: None,
            orientation,
            occupied: Some(self.occupied),
            posture: None,
            monitor: None,
            keypoints: self.keypoints.clone(),
            features: self.features.clone(),
        }
    }

    /// What `buffer` sends on `recon_src` (`linked`: whether it is): the reconstruction with
    /// the buffer's timestamps (its memory shared), or a gap when there is none.
    pub fn recon_for(&self, buffer: &gst::BufferRef, linked: bool) -> Recon {
        match (&self.recon, linked) {
            (Some(r), true) => {
                let mut r = r.copy();
                let rb = r.make_mut();
                rb.set_pts(buffer.pts());
                rb.set_dts(buffer.dts());
                rb.set_duration(buffer.duration());
                rb.set_offset(buffer.offset());
                Recon::Buffer(r)
            }
            (None, true) => Recon::Gap,
            (_, false) => Recon::None,
        }
    }
}
