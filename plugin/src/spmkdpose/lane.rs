//! A lane: one encoder session (and decoder session) with its scratch buffers. With
//! `parallel-frames` = n the element keeps n lanes ([`Lanes`]) and infers n frames at once, one
//! per thread: the encoder is so small that one frame cannot keep two cores busy, two frames can.

use std::path::{Path, PathBuf};
use std::time::Instant;

use spmkd_core::engine::{Decoder, Encoder, EngineError, EngineOptions, ModelSource};
use spmkd_core::keypoints;
use spmkd_core::model_meta::ModelKind;
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

/// Where a lane's models come from: files, or the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct Models {
    /// The encoder; `None`: the built-in one.
    pub encoder: Option<PathBuf>,
    /// The decoder; `None`: the built-in one with the built-in encoder, no decoder otherwise
    /// (the built-in decoder only fits the built-in encoder).
    pub decoder: Option<PathBuf>,
}

impl Models {
    fn source(path: Option<&Path>, kind: ModelKind) -> Result<ModelSource, EngineError> {
        match path {
            Some(p) => ModelSource::file(p),
            None => Ok(ModelSource::embedded(kind)),
        }
    }

    /// One lane with its own sessions, warmed up; returns it with the warm-up time (ns).
    fn open(&self, options: &EngineOptions) -> Result<(Lane, u64), EngineError> {
        let encoder = Encoder::new(
            &Self::source(self.encoder.as_deref(), ModelKind::Encoder)?,
            options,
        )?;
        let decoder = if self.decoder.is_some() || self.encoder.is_none() {
            let source = Self::source(self.decoder.as_deref(), ModelKind::Decoder)?;
            Some(Decoder::new(&source, options, &encoder.meta)?)
        } else {
            None
        };
        let mut lane = Lane::new(encoder, decoder);
        let warm_up = lane.warm_up()?;
        Ok((lane, warm_up))
    }
}

/// `parallel-frames` lanes and the threads they run on: the streaming thread runs lane 1,
/// a pool of n - 1 threads the others.
pub struct Lanes {
    /// Never empty.
    lanes: Vec<Lane>,
    /// `None` with one lane.
    pool: Option<rayon::ThreadPool>,
    /// The first lane's warm-up time (ns): the latency reported before any frame is seen.
    pub warm_up_ns: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot start the inference threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
}

/// The lanes `parallel-frames=0` gives: one per `threads` cores this process may run on (its
/// CPU affinity and cgroup quota counted), at most `max`; one when `threads` is 0 (ONNX
/// Runtime's default, a thread per core, already uses every core).
pub fn auto_lanes(threads: usize, max: usize) -> usize {
    if threads == 0 {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / threads).clamp(1, max.max(1))
}

impl Lanes {
    /// `n` lanes (at least one), each with its own sessions of `models`.
    pub fn open(n: usize, models: &Models, options: &EngineOptions) -> Result<Self, OpenError> {
        let (first, warm_up_ns) = models.open(options)?;
        let mut lanes = vec![first];
        for _ in 1..n.max(1) {
            lanes.push(models.open(options)?.0);
        }
        let pool = if lanes.len() > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(lanes.len() - 1)
                .thread_name(|i| format!("spmkdpose-lane{}", i + 2))
                .build()?;
            Some(pool)
        } else {
            None
        };
        Ok(Self {
            lanes,
            pool,
            warm_up_ns,
        })
    }

    pub fn len(&self) -> usize {
        self.lanes.len()
    }

    /// The first lane (its encoder's metadata holds for all).
    pub fn first(&self) -> &Lane {
        &self.lanes[0]
    }

    /// Scratch for frames of `cells` sensor cells, in every lane.
    pub fn resize(&mut self, cells: usize) {
        for lane in &mut self.lanes {
            lane.resize(cells);
        }
    }

    /// Infers up to one frame per lane at once; the results in the order of `frames`.
    pub fn infer(
        &mut self,
        frames: &[&gst::BufferRef],
        stream: &Stream,
        want: Want,
    ) -> Vec<Result<Inferred, LaneError>> {
        debug_assert!(frames.len() <= self.lanes.len());
        let mut results: Vec<Option<Result<Inferred, LaneError>>> =
            frames.iter().map(|_| None).collect();
        let mut work = self.lanes.iter_mut().zip(frames).zip(results.iter_mut());
        match &self.pool {
            Some(pool) if frames.len() > 1 => pool.in_place_scope(|scope| {
                // The streaming thread runs the first frame while the pool runs the others.
                let first = work.next();
                for ((lane, buffer), slot) in work {
                    scope.spawn(move |_| *slot = Some(lane.infer(buffer, stream, want)));
                }
                if let Some(((lane, buffer), slot)) = first {
                    *slot = Some(lane.infer(buffer, stream, want));
                }
            }),
            _ => {
                for ((lane, buffer), slot) in work {
                    *slot = Some(lane.infer(buffer, stream, want));
                }
            }
        }
        // Every slot was filled: the scope joins all its tasks before returning.
        results.into_iter().flatten().collect()
    }

    /// The reconstruction of an earlier frame from its `fused` features (on lane 1).
    pub fn reconstruct(
        &mut self,
        fused: &[f32],
        stream: &Stream,
        range: (f32, f32),
    ) -> Result<Option<gst::Buffer>, LaneError> {
        self.lanes[0].reconstruct(fused, stream, range)
    }
}

#[cfg(test)]
mod tests {
    use super::auto_lanes;

    #[test]
    fn auto_lanes_share_out_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(auto_lanes(1, 64), cores.min(64));
        assert_eq!(auto_lanes(1, 1), 1);
        // ONNX Runtime's default threads already take every core; more threads than cores.
        assert_eq!(auto_lanes(0, 64), 1);
        assert_eq!(auto_lanes(cores + 1, 64), 1);
    }
}
