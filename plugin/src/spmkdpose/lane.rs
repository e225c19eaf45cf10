//! A lane: one encoder session (and decoder session) with its scratch buffers. With
//! `parallel-frames` = n the element keeps n lanes and infers n frames at once, one per thread:
//! the encoder is so small that one frame cannot keep two cores busy, two frames can.

use std::time::Instant;

use spmkd_core::engine::{Decoder, Encoder, EngineError};
use spmkd_core::keypoints;
use spmkd_core::preprocess::preprocess_into;
use spmkd_core::schema::Keypoint;
use spmkd_core::ssim::Ssim;

use super::frame::{FrameError, Stream};

pub struct Lane {
    pub encoder: Encoder,
    pub decoder: Option<Decoder>,
    /// The frame as floats, the normalized frame, the model input, the reconstruction on the
    /// sensor grid: reused from frame to frame.
    raw: Vec<f32>,
    normalized: Vec<f32>,
    input: Vec<f32>,
    sensor_map: Vec<f32>,
    ssim: Ssim,
}

/// What the frame's inference asks for beyond the keypoints.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// The reconstruction buffer (recon_src is linked).
    pub recon: bool,
    /// The SSIM of the reconstruction against the input (the `quality` property).
    pub quality: bool,
}

/// What inference made of one frame.
pub struct Inferred {
    pub keypoints: Vec<Keypoint>,
    /// Each keypoint's own encoder features, `k x f`.
    pub features: Vec<f32>,
    pub quality: Option<f32>,
    pub recon: Option<gst::Buffer>,
    /// The decoder's input, kept to reconstruct later frames that carry this pose.
    pub fused: Vec<f32>,
    /// The frame's pressure range, to bring a reconstruction back to its units.
    pub range: (f32, f32),
    /// Preprocessing, encoder and keypoint decoding.
    pub keypoints_us: u64,
    /// All of it, decoder included.
    pub cost_ns: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Lane {
    pub fn new(encoder: Encoder, decoder: Option<Decoder>) -> Self {
        let s = encoder.input_size();
        Self {
            encoder,
            decoder,
            raw: Vec::new(),
            normalized: Vec::new(),
            input: vec![0.0; s * s],
            sensor_map: Vec::new(),
            ssim: Ssim::default(),
        }
    }

    /// Runs the sessions once on an empty frame: ONNX Runtime's first run allocates. Returns the
    /// time it took, the latency reported before any frame has been seen.
    pub fn warm_up(&mut self) -> Result<u64, EngineError> {
        let t = Instant::now();
        self.encoder.run(&self.input)?;
        if let Some(d) = self.decoder.as_mut() {
            d.run(&self.encoder.fused)?;
        }
        Ok(t.elapsed().as_nanos() as u64)
    }

    /// Scratch for frames of `cells` sensor cells.
    pub fn resize(&mut self, cells: usize) {
        self.raw.resize(cells, 0.0);
        self.normalized.resize(cells, 0.0);
        self.sensor_map.resize(cells, 0.0);
    }

    /// The pose of `buffer` (and its reconstruction and quality when wanted).
    pub fn infer(
        &mut self,
        buffer: &gst::BufferRef,
        stream: &Stream,
        want: Want,
    ) -> Result<Inferred, LaneError> {
        let t = Instant::now();
        stream.read(buffer, &mut self.raw)?;
        let range = self
            .raw
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        preprocess_into(
            &self.raw,
            &stream.letterbox,
            &mut self.normalized,
            &mut self.input,
        );
        self.encoder.run(&self.input)?;
        let mut pose = Vec::with_capacity(self.encoder.meta.keypoints);
        keypoints::decode(
            &self.encoder.keypoints,
            &self.encoder.confidence,
            &stream.letterbox,
            &self.normalized,
            &mut pose,
        );
        let mut features = Vec::new();
        keypoints::own_features(
            &self.encoder.fused,
            self.encoder.meta.features,
            &mut features,
        );
        let keypoints_us = t.elapsed().as_micros() as u64;

        let mut quality = None;
        let mut recon = None;
        if let Some(decoder) = self.decoder.as_mut().filter(|_| want.recon || want.quality) {
            decoder.run(&self.encoder.fused)?;
            if want.quality {
                let s = stream.letterbox.size;
                quality = self.ssim.compute(&decoder.map, &self.input, s, s);
            }
            if want.recon {
                recon = Some(stream.recon_buffer(&decoder.map, &mut self.sensor_map, range)?);
            }
        }
        Ok(Inferred {
            keypoints: pose,
            features,
            quality,
            recon,
            fused: self.encoder.fused.clone(),
            range,
            keypoints_us,
            cost_ns: t.elapsed().as_nanos() as u64,
        })
    }

    /// The reconstruction of an earlier frame from its `fused` features (for frames that carry
    /// its pose after recon_src was linked); `None` without a decoder.
    pub fn reconstruct(
        &mut self,
        fused: &[f32],
        stream: &Stream,
        range: (f32, f32),
    ) -> Result<Option<gst::Buffer>, LaneError> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(None);
        };
        decoder.run(fused)?;
        Ok(Some(stream.recon_buffer(
            &decoder.map,
            &mut self.sensor_map,
            range,
        )?))
    }
}
