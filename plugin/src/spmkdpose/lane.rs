//! A lane: the scratch buffers of one frame in flight. With `parallel-frames` = n the element
//! keeps n lanes and infers n frames at once, each on a thread of its own (`super::lanes`): the
//! encoder is so small that one frame cannot keep two cores busy, two frames can. The sessions
//! they run on come from the process's shared pools ([`spmkd_core::model_pool`]): a second
//! pipeline with the same model adds lanes, not a model.

use std::path::PathBuf;
use std::time::Instant;

use spmkd_core::engine::{Decoder, Encoder, EngineError, EngineOptions};
use spmkd_core::keypoints;
use spmkd_core::layout;
use spmkd_core::model_pool::{self, Lease, Pool};
use spmkd_core::monitor::FrameOccupancy;
use spmkd_core::orientation::Orientation;
use spmkd_core::preprocess::{Letterbox, preprocess_framed_into};
use spmkd_core::schema::Keypoint;
use spmkd_core::ssim::Ssim;

use super::frame::{FrameError, Stream};

/// A laid frame's way into the encoder: the normalized frame, the load's median (models that
/// frame their input on the body), the model input.
#[derive(Default)]
struct Encoding {
    normalized: Vec<f32>,
    sorted: Vec<f32>,
    input: Vec<f32>,
}

impl Encoding {
    /// The keypoints of `laid` (a frame in the models' convention, `letterbox`'s size) into
    /// `pose`, in the laid frame's cells, and with `features` each keypoint's own encoder
    /// features; the geometry it was framed by and the decoder's input.
    fn encode(
        &mut self,
        models: &Loaded,
        laid: &[f32],
        letterbox: &Letterbox,
        pose: &mut Vec<Keypoint>,
        features: Option<&mut Vec<f32>>,
    ) -> Result<(Letterbox, Vec<f32>), EngineError> {
        let letterbox = preprocess_framed_into(
            laid,
            letterbox,
            models.body_centred,
            &mut self.normalized,
            &mut self.sorted,
            &mut self.input,
        );
        let fused = models.encoder.with(|encoder| {
            encoder.run(&self.input)?;
            keypoints::decode(
                &encoder.keypoints,
                &encoder.confidence,
                &letterbox,
                &self.normalized,
                pose,
            );
            if let Some(features) = features {
                keypoints::own_features(&encoder.fused, encoder.meta.features, features);
                return Ok(encoder.fused.clone());
            }
            Ok::<_, EngineError>(Vec::new())
        })?;
        Ok((letterbox, fused))
    }
}

#[derive(Default)]
pub struct Lane {
    /// The frame as floats, the frame laid as the model expects it (`orientation`), its way
    /// into the encoder, the reconstruction (model grid, oriented grid and sensor grid): reused
    /// from frame to frame.
    raw: Vec<f32>,
    oriented: Vec<f32>,
    encoding: Encoding,
    /// The laid frame turned half way round, for the head-to-foot check.
    turned: Vec<f32>,
    map: Vec<f32>,
    oriented_map: Vec<f32>,
    sensor_map: Vec<f32>,
    ssim: Ssim,
    occupancy: FrameOccupancy,
}

/// What the frame's inference asks for beyond the keypoints.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// The reconstruction buffer (recon_src is linked).
    pub recon: bool,
    /// The SSIM of the reconstruction against the input (the `quality` property).
    pub quality: bool,
    /// The layout of the frame turned half way round too, when it is occupied (the head-to-foot
    /// check wants frames).
    pub turned: bool,
}

/// What inference made of one frame.
pub struct Inferred {
    /// In the stream's cells.
    pub keypoints: Vec<Keypoint>,
    /// How the keypoints lie head to foot against the encoder's reference layout (measured in
    /// the models' convention, before they were mapped back to the stream's cells).
    pub layout: Option<f32>,
    /// Someone is on the mat by this frame alone.
    pub occupied: bool,
    /// With [`Want::turned`]: the layout of the frame turned half way round.
    pub turned_layout: Option<f32>,
    /// Each keypoint's own encoder features, `k x f`.
    pub features: Vec<f32>,
    pub quality: Option<f32>,
    pub recon: Option<gst::Buffer>,
    /// The decoder's input, kept to reconstruct later frames that carry this pose.
    pub fused: Vec<f32>,
    /// The frame's pressure range, to bring a reconstruction back to its units.
    pub range: (f32, f32),
    /// Where the frame sat in the model's square (the stream's letterbox, or moved onto the
    /// body for a model that takes its input so).
    pub letterbox: Letterbox,
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
    #[error("an inference thread of parallel-frames stopped")]
    Stopped,
}

/// The element's models: leases of the shared pools.
pub struct Loaded {
    pub encoder: Lease<Encoder>,
    pub decoder: Option<Lease<Decoder>>,
    /// The encoder takes each frame framed on the body (its metadata, read once here rather
    /// than per frame).
    pub body_centred: bool,
}

impl Lane {
    /// Scratch for frames of `stream` and a model input of `s x s` (nothing moves when the
    /// sizes are those of the frame before).
    fn fit(&mut self, stream: &Stream, s: usize) {
        let cells = (stream.info.width() * stream.info.height()) as usize;
        self.raw.resize(cells, 0.0);
        self.encoding.normalized.resize(cells, 0.0);
        self.encoding.input.resize(s * s, 0.0);
        self.map.resize(s * s, 0.0);
    }

    /// Decodes into `map` what `fused` says (on a free decoder session).
    fn decode(decoder: &Pool<Decoder>, fused: &[f32], map: &mut [f32]) -> Result<(), EngineError> {
        decoder.with(|d| {
            d.run(fused)?;
            map.copy_from_slice(&d.map);
            Ok(())
        })
    }

    /// The pose of `buffer` (and its reconstruction and quality when wanted).
    pub fn infer(
        &mut self,
        models: &Loaded,
        buffer: &gst::BufferRef,
        stream: &Stream,
        want: Want,
    ) -> Result<Inferred, LaneError> {
        let t = Instant::now();
        self.fit(stream, models.encoder.meta.input_size);
        stream.read(buffer, &mut self.raw)?;
        let range = self
            .raw
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let (w, h) = stream.size();
        let occupied = self.occupancy.occupied(&self.raw, w);
        let laid = if stream.orientation.is_identity() {
            &self.raw
        } else {
            stream
                .orientation
                .apply(&self.raw, w, h, &mut self.oriented);
            &self.oriented
        };
        let mut pose = Vec::with_capacity(models.encoder.meta.keypoints);
        let mut features = Vec::new();
        let (letterbox, fused) = self.encoding.encode(
            models,
            laid,
            &stream.letterbox,
            &mut pose,
            Some(&mut features),
        )?;
        // The layout is the model's view of the mat; everything downstream reads the stream's
        // cells.
        let layout = models
            .encoder
            .meta
            .layout_reference
            .as_deref()
            .and_then(|reference| layout::agreement(&pose, reference));
        keypoints::to_stream(&mut pose, stream.orientation, w, h);
        let keypoints_us = t.elapsed().as_micros() as u64;

        let mut quality = None;
        let mut recon = None;
        if let Some(decoder) = models
            .decoder
            .as_ref()
            .filter(|_| want.recon || want.quality)
        {
            Self::decode(decoder, &fused, &mut self.map)?;
            if want.quality {
                let s = stream.letterbox.size;
                quality = self.ssim.compute(&self.map, &self.encoding.input, s, s);
            }
            if want.recon {
                recon = Some(stream.recon_buffer(
                    &self.map,
                    &letterbox,
                    (&mut self.oriented_map, &mut self.sensor_map),
                    range,
                )?);
            }
        }
        let turned_layout = match (&models.encoder.meta.layout_reference, layout) {
            (Some(reference), Some(_)) if want.turned && occupied => {
                self.turned_layout(models, stream, reference)?
            }
            _ => None,
        };
        Ok(Inferred {
            keypoints: pose,
            layout,
            occupied,
            turned_layout,
            features,
            quality,
            recon,
            fused,
            range,
            letterbox,
            keypoints_us,
            cost_ns: t.elapsed().as_nanos() as u64,
        })
    }

    /// The layout of the frame in `raw` (or `oriented`, as laid) turned half way round: what
    /// the head-to-foot check compares its layout with. Runs the encoder a second time.
    fn turned_layout(
        &mut self,
        models: &Loaded,
        stream: &Stream,
        reference: &[f32],
    ) -> Result<Option<f32>, EngineError> {
        let (w, h) = stream.orientation.size(stream.size().0, stream.size().1);
        let laid = if stream.orientation.is_identity() {
            &self.raw
        } else {
            &self.oriented
        };
        Orientation::Rotate180.apply(laid, w, h, &mut self.turned);
        let mut pose = Vec::new();
        self.encoding
            .encode(models, &self.turned, &stream.letterbox, &mut pose, None)?;
        Ok(layout::agreement(&pose, reference))
    }

    /// The reconstruction of an earlier frame from its `fused` features (for frames that carry
    /// its pose after recon_src was linked), framed by its `letterbox`; `None` without a
    /// decoder.
    pub fn reconstruct(
        &mut self,
        models: &Loaded,
        fused: &[f32],
        stream: &Stream,
        letterbox: &Letterbox,
        range: (f32, f32),
    ) -> Result<Option<gst::Buffer>, LaneError> {
        let Some(decoder) = models.decoder.as_ref() else {
            return Ok(None);
        };
        self.fit(stream, models.encoder.meta.input_size);
        Self::decode(decoder, fused, &mut self.map)?;
        Ok(Some(stream.recon_buffer(
            &self.map,
            letterbox,
            (&mut self.oriented_map, &mut self.sensor_map),
            range,
        )?))
    }
}

/// Where the element's models come from: files, or the built-in ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFiles {
    /// The encoder; `None`: the built-in one.
    pub encoder: Option<PathBuf>,
    /// The decoder; `None`: the built-in one with the built-in encoder, no decoder otherwise
    /// (the built-in decoder only fits the built-in encoder).
    pub decoder: Option<PathBuf>,
}

impl ModelFiles {
    /// Leases of the shared sessions for `lanes` frames at once (loaded if this process has
    /// not loaded them yet), the decoder checked against the encoder.
    pub fn load(&self, lanes: usize, options: &EngineOptions) -> Result<Loaded, EngineError> {
        let encoder = model_pool::lease::<Encoder>(self.encoder.as_deref(), options, lanes)?;
        let decoder = if self.decoder.is_some() || self.encoder.is_none() {
            let decoder = model_pool::lease::<Decoder>(self.decoder.as_deref(), options, lanes)?;
            decoder.with(|d| d.fits(&encoder.meta))?;
            Some(decoder)
        } else {
            None
        };
        let body_centred = encoder.meta.body_centred();
        Ok(Loaded {
            encoder,
            decoder,
            body_centred,
        })
    }
}
