//! Keypoint graphs for the posture classifiers: per frame, `k` nodes of `NODE_FEATURES` values,
//! from an SPMKD encoder (the shipped one or an exported `encoder.onnx`, through ONNX Runtime,
//! the plugin's own sessions) or from a non-learned source (the strongest pressure peaks).
//!
//! SPMKD nodes are made by [`spmkd_core::posture::nodes`] from the keypoints and features the
//! element puts in its pose meta, so a model trained here reads `spmkdpose`'s output as is:
//! pressure under the keypoint, x / W and y / H (a 27-wide and a 32-wide mat share one scale),
//! confidence, and the keypoint's `f` encoder features. Peak nodes have the same first four
//! values and a 4x4 pressure patch as features.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use spmkd_core::dataset::{Entry, Experiment, Mat};
use spmkd_core::engine::{Encoder, EngineOptions, ModelSource};
use spmkd_core::frame::mirror_rows;
use spmkd_core::keypoints::{decode, own_features};
use spmkd_core::model_meta::ModelKind;
use spmkd_core::orientation::Orientation;
use spmkd_core::posture::Posture;
use spmkd_core::preprocess::{Letterbox, preprocess_framed_into};
use spmkd_core::{Format, Recording};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::peaks;
use crate::augment::{AugmentConfig, RawFrame};

/// Where the nodes of a graph come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeSource {
    /// An SPMKD encoder: the shipped one (models/default/encoder.onnx) unless another is given.
    Spmkd,
    /// The `k` strongest local pressure maxima, with the 4x4 patch around each as features.
    Peaks,
}

pub use spmkd_core::posture::BASE_FEATURES;

/// Graphs of one or more recordings, with labels and provenance.
#[derive(Debug, Clone, Default)]
pub struct GraphSet {
    pub keypoints: usize,
    pub node_features: usize,
    /// `len * keypoints * node_features`.
    pub nodes: Vec<f32>,
    pub labels: Vec<Posture>,
    pub subjects: Vec<u8>,
    pub mats: Vec<Mat>,
    /// The recording variant of each graph, an index into `variant_names`.
    pub variants: Vec<usize>,
    /// The dataset's label of each variant (experiment-ii's posture ID, such as B1; experiment-
    /// i's posture description), so results can be broken down by it.
    pub variant_names: Vec<String>,
    /// The preprocessed `S x S` frame of each graph, kept for the raw-image baseline.
    pub images: Vec<f32>,
    pub image_size: usize,
}

impl GraphSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The index of the variant called `name`, added when new.
    pub fn variant(&mut self, name: &str) -> usize {
        match self.variant_names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.variant_names.push(name.to_owned());
                self.variant_names.len() - 1
            }
        }
    }

    /// Appends every graph of `other` (of the same shape).
    pub fn append(&mut self, other: &GraphSet) {
        assert_eq!(
            (self.keypoints, self.node_features, self.image_size),
            (other.keypoints, other.node_features, other.image_size),
            "GraphSet::append: another shape"
        );
        self.nodes.extend_from_slice(&other.nodes);
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
        self.subjects.extend_from_slice(&other.subjects);
        self.mats.extend_from_slice(&other.mats);
        let names: Vec<usize> = other
            .variant_names
            .iter()
            .map(|name| self.variant(name))
            .collect();
        self.variants
            .extend(other.variants.iter().map(|&v| names[v]));
    }

    /// The preprocessed frames of the graphs at `indices`, `[indices.len(), 1, S, S]`.
    pub fn image_tensor(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        let s = self.image_size;
        let data = crate::data::gather(&self.images, s * s, indices);
        Tensor::from_data(TensorData::new(data, [indices.len(), 1, s, s]), device)
    }

    /// The nodes of the graphs at `indices`, `[indices.len(), keypoints, node_features]`.
    pub fn node_tensor(&self, indices: &[usize], device: &Device) -> Tensor<3> {
        let data = crate::data::gather(&self.nodes, self.keypoints * self.node_features, indices);
        Tensor::from_data(
            TensorData::new(data, [indices.len(), self.keypoints, self.node_features]),
            device,
        )
    }

    /// The nodes of every graph, `size` graphs a tensor.
    pub fn node_batches(&self, size: usize, device: &Device) -> Vec<Tensor<3>> {
        let indices: Vec<usize> = (0..self.len()).collect();
        indices
            .chunks(size.max(1))
            .map(|chunk| self.node_tensor(chunk, device))
            .collect()
    }

    /// The graphs at `indices` that satisfy `keep`.
    pub fn select(&self, keep: impl Fn(usize) -> bool) -> GraphSet {
        let per = self.keypoints * self.node_features;
        let img = self.image_size * self.image_size;
        let mut out = GraphSet {
            keypoints: self.keypoints,
            node_features: self.node_features,
            image_size: self.image_size,
            variant_names: self.variant_names.clone(),
            ..GraphSet::default()
        };
        for i in (0..self.len()).filter(|&i| keep(i)) {
            out.nodes
                .extend_from_slice(&self.nodes[i * per..(i + 1) * per]);
            out.images
                .extend_from_slice(&self.images[i * img..(i + 1) * img]);
            out.labels.push(self.labels[i]);
            out.subjects.push(self.subjects[i]);
            out.mats.push(self.mats[i]);
            out.variants.push(self.variants[i]);
        }
        out
    }
}

/// Extra graphs made of each training frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Augment {
    /// The mirror image (left and right swapped, and so the label).
    pub mirror: bool,
    /// Up to this many columns: one copy shifted sideways by a random 1..=shift either way
    /// (of the frame and of its mirror image), for people who do not lie in the middle.
    pub shift: usize,
    /// This many copies of the frame (and of its mirror image) through the encoders' label-free
    /// augmentation ([`label_free_config`]): another mat, geometry and sensor, seen through the
    /// encoder, so the graph network learns the keypoints such frames give.
    pub label_free: usize,
}

/// The label-free augmentation posture graphs are drawn with: the encoder's own, but no left-right
/// flip (that would change the label; [`Augment::mirror`] does it with the label swapped).
pub fn label_free_config() -> AugmentConfig {
    AugmentConfig::new().with_flip(0.0)
}

impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.mirror {
            parts.push("mirror".to_owned());
        }
        if self.shift > 0 {
            parts.push(format!("shift {}", self.shift));
        }
        if self.label_free > 0 {
            parts.push(format!("{} label-free", self.label_free));
        }
        if parts.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", parts.join(", "))
        }
    }
}

/// Where a graph comes from.
#[derive(Debug, Clone, Copy)]
struct Origin {
    label: Posture,
    subject: u8,
    mat: Mat,
    /// Index into [`GraphSet::variant_names`].
    variant: usize,
}

/// `data` (`w` wide) moved `by` columns to the right (left when negative), zeros coming in.
fn shift_columns(data: &[u16], w: usize, by: isize, out: &mut Vec<u16>) {
    out.clear();
    out.resize(data.len(), 0);
    for (src, dst) in data.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
        for (x, &v) in src.iter().enumerate() {
            let to = x as isize + by;
            if (0..w as isize).contains(&to) {
                dst[to as usize] = v;
            }
        }
    }
}

/// Builds graphs frame by frame with one node source.
pub struct GraphBuilder {
    source: NodeSource,
    encoder: Encoder,
    image_size: usize,
    /// Lay each recording as its mat was installed ([`Experiment::orientation`]: experiment-ii
    /// turned half way round, head at row 63), as `spmkdpose orientation` would.
    pub as_installed: bool,
    /// Letterbox every frame with the body in the middle of the model input
    /// ([`Letterbox::centred_on_load`]) rather than the mat. Starts as the encoder takes its
    /// input (its metadata); setting it for an encoder trained on mat-centred frames is an
    /// experiment, not how that encoder runs in `spmkdpose`.
    pub body_centred: bool,
    /// Scratch reused from frame to frame.
    normalized: Vec<f32>,
    sorted: Vec<f32>,
    points: Vec<spmkd_core::schema::Keypoint>,
    features: Vec<f32>,
}

impl GraphBuilder {
    /// `encoder`: an exported `encoder.onnx`, else the shipped one. It is loaded for every
    /// source: its input size and `k` define the graphs, and the raw-image baseline sees the
    /// same preprocessed frames.
    pub fn new(source: NodeSource, encoder: Option<&Path>) -> Result<Self> {
        let options = EngineOptions::cpu(0);
        let model = match encoder {
            Some(path) => ModelSource::file(path)?,
            None => ModelSource::embedded(ModelKind::Encoder),
        };
        let encoder = Encoder::new(&model, &options)
            .with_context(|| format!("{} (run scripts/setup for ONNX Runtime)", model.origin))?;
        let image_size = encoder.input_size();
        Ok(Self {
            source,
            image_size,
            as_installed: false,
            body_centred: encoder.meta.body_centred(),
            encoder,
            normalized: Vec::new(),
            sorted: Vec::new(),
            points: Vec::new(),
            features: Vec::new(),
        })
    }

    /// The metadata of the encoder the SPMKD nodes come from.
    pub fn encoder_metadata(&self) -> &spmkd_core::model_meta::ModelMetadata {
        &self.encoder.meta
    }

    pub fn keypoints(&self) -> usize {
        self.encoder.meta.keypoints
    }

    /// The keypoints of the last frame added from the encoder (in its frame's cells).
    pub fn last_keypoints(&self) -> &[spmkd_core::schema::Keypoint] {
        &self.points
    }

    pub fn node_features(&self) -> usize {
        BASE_FEATURES
            + match self.source {
                NodeSource::Spmkd => self.encoder.meta.features,
                NodeSource::Peaks => peaks::PATCH * peaks::PATCH,
            }
    }

    pub fn empty_set(&self) -> GraphSet {
        GraphSet {
            keypoints: self.keypoints(),
            node_features: self.node_features(),
            image_size: self.image_size,
            ..GraphSet::default()
        }
    }

    /// Adds every `every`-th usable frame of a labelled recording to `set`; unlabelled
    /// recordings (experiment-ii's G files) are skipped. `augment` adds more graphs per frame
    /// (training sets only).
    pub fn add_recording(
        &mut self,
        set: &mut GraphSet,
        entry: &Entry,
        every: usize,
        augment: Augment,
    ) -> Result<()> {
        let Some(label) = entry.posture else {
            return Ok(());
        };
        let mut recording = Recording::open(&entry.path, Format::Auto, None)?;
        let (w, h) = (recording.width(), recording.height());
        let mut usable = 0usize;
        // As installed: laid in the models' convention, as `spmkdpose orientation` would.
        let orientation = if self.as_installed {
            entry.experiment.orientation()
        } else {
            Orientation::Identity
        };
        let (w, h) = orientation.size(w, h);
        let mut data = Vec::new();
        let mut shifted = Vec::new();
        let label_free = label_free_config();
        let variant = set.variant(&entry.label);
        // Shifts depend on the recording and the frame only: the same set every run.
        let mut rng = StdRng::seed_from_u64(
            (entry.subject as u64) << 32
                ^ (label.index() as u64) << 24
                ^ entry.path.as_os_str().len() as u64,
        );
        while let Some(frame) = recording.next_frame()? {
            if frame.artifact.is_some() {
                continue;
            }
            usable += 1;
            if !(usable - 1).is_multiple_of(every.max(1)) {
                continue;
            }
            orientation.apply(
                frame.frame.data(),
                frame.frame.width(),
                frame.frame.height(),
                &mut data,
            );
            let mut origin = Origin {
                label,
                subject: entry.subject,
                mat: entry.mat,
                variant,
            };
            self.add_frame(set, &data, w, h, origin)?;
            for pass in 0..if augment.mirror { 2 } else { 1 } {
                if pass == 1 {
                    mirror_rows(&mut data, w);
                    origin.label = label.mirrored();
                    self.add_frame(set, &data, w, h, origin)?;
                }
                if augment.shift > 0 {
                    let by = rng.random_range(1..=augment.shift as i64) as isize
                        * if rng.random_bool(0.5) { -1 } else { 1 };
                    shift_columns(&data, w, by, &mut shifted);
                    self.add_frame(set, &shifted, w, h, origin)?;
                }
                if augment.label_free > 0 {
                    let raw = RawFrame {
                        width: w,
                        height: h,
                        values: data.iter().map(|&v| f32::from(v)).collect(),
                    };
                    for _ in 0..augment.label_free {
                        let seen = crate::augment::augment(&raw, &label_free, &mut rng);
                        self.add_frame(set, &seen.values, seen.width, seen.height, origin)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the graph of a labelled `w x h` frame of a new mat as it comes, laid by
    /// `orientation` first (as `spmkdpose orientation` lays it): what `calibrate` reads a
    /// volunteer's frames through. `scratch` holds the laid frame.
    pub fn add_laid(
        &mut self,
        set: &mut GraphSet,
        frame: (&[u16], usize, usize),
        orientation: Orientation,
        label: Posture,
        scratch: &mut Vec<u16>,
    ) -> Result<()> {
        let (data, w, h) = frame;
        let (lw, lh) = orientation.apply(data, w, h, scratch);
        let origin = Origin {
            label,
            subject: 0,
            mat: Mat::Air,
            variant: set.variant("new mat"),
        };
        self.add_frame(set, scratch, lw, lh, origin)
    }

    /// Adds the graph of an unlabelled `w x h` frame of a new mat (for pseudo-labels: its label
    /// is a placeholder until one is given), and with `mirror` the graph of its mirror image.
    pub fn add_unlabelled(
        &mut self,
        set: &mut GraphSet,
        data: &[u16],
        w: usize,
        h: usize,
        mirror: bool,
    ) -> Result<()> {
        let origin = Origin {
            label: Posture::Supine,
            subject: 0,
            mat: Mat::Air,
            variant: set.variant("new mat"),
        };
        if mirror {
            let mut mirrored = data.to_vec();
            mirror_rows(&mut mirrored, w);
            self.add_frame(set, &mirrored, w, h, origin)
        } else {
            self.add_frame(set, data, w, h, origin)
        }
    }

    /// Adds the graph (and the preprocessed image) of one `w x h` frame.
    fn add_frame<T: Copy + Into<f32>>(
        &mut self,
        set: &mut GraphSet,
        data: &[T],
        w: usize,
        h: usize,
        origin: Origin,
    ) -> Result<()> {
        let (k, f) = (self.keypoints(), self.encoder.meta.features);
        let mut input = vec![0.0; self.image_size * self.image_size];
        let letterbox = preprocess_framed_into(
            data,
            &Letterbox::new(w, h, self.image_size),
            self.body_centred,
            &mut self.normalized,
            &mut self.sorted,
            &mut input,
        );
        match self.source {
            NodeSource::Spmkd => {
                self.encoder.run(&input)?;
                decode(
                    &self.encoder.keypoints,
                    &self.encoder.confidence,
                    &letterbox,
                    &self.normalized,
                    &mut self.points,
                );
                own_features(&self.encoder.fused, f, &mut self.features);
                spmkd_core::posture::nodes(
                    &self.points,
                    &self.features,
                    w as u32,
                    h as u32,
                    &mut set.nodes,
                );
            }
            NodeSource::Peaks => {
                // The normalized frame is in `normalized`.
                peaks::nodes(&self.normalized, w, h, k, &mut set.nodes);
            }
        }
        set.images.extend_from_slice(&input);
        set.labels.push(origin.label);
        set.subjects.push(origin.subject);
        set.mats.push(origin.mat);
        set.variants.push(origin.variant);
        Ok(())
    }
}

/// Which frames go where: train on experiment-i S1..S10, test on S11..S13 (familiar) and on
/// experiment-ii's Air and Sponge mats apart (unfamiliar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    HeldOut,
    Air,
    Sponge,
    /// Experiment-ii turned by 180 degrees to experiment-i's orientation.
    AirTurned,
    SpongeTurned,
}

impl Part {
    pub fn of(experiment: Experiment, subject: u8, mat: Mat) -> Part {
        match (experiment, mat) {
            (Experiment::I, _) if subject <= spmkd_core::dataset::LAST_TRAIN_SUBJECT => Part::Train,
            (Experiment::I, _) => Part::HeldOut,
            (Experiment::II, Mat::Air) => Part::Air,
            (Experiment::II, _) => Part::Sponge,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Part::Train => "experiment-i S1..S10",
            Part::HeldOut => "experiment-i S11..S13",
            Part::Air => "experiment-ii Air",
            Part::Sponge => "experiment-ii Sponge",
            Part::AirTurned => "experiment-ii Air, turned",
            Part::SpongeTurned => "experiment-ii Sponge, turned",
        }
    }

    /// The part of the same frames turned by 180 degrees (experiment-ii only).
    pub fn turned(self) -> Option<Part> {
        match self {
            Part::Air => Some(Part::AirTurned),
            Part::Sponge => Some(Part::SpongeTurned),
            _ => None,
        }
    }
}

/// Shorthand for tests and tools: one recording's graphs.
pub fn graphs_of_file(
    builder: &mut GraphBuilder,
    path: &Path,
    label: Posture,
    every: usize,
) -> Result<GraphSet> {
    let entry = Entry {
        path: path.to_owned(),
        experiment: Experiment::I,
        subject: 0,
        mat: Mat::SoftFlex,
        label: label.to_string(),
        posture: Some(label),
    };
    let mut set = builder.empty_set();
    builder.add_recording(&mut set, &entry, every, Augment::default())?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_moves_every_row_sideways_with_zeros_coming_in() {
        let frame = [1, 2, 3, 4, 5, 6];
        let mut out = Vec::new();
        shift_columns(&frame, 3, 1, &mut out);
        assert_eq!(out, [0, 1, 2, 0, 4, 5]);
        shift_columns(&frame, 3, -2, &mut out);
        assert_eq!(out, [3, 0, 0, 6, 0, 0]);
        shift_columns(&frame, 3, 0, &mut out);
        assert_eq!(out, frame);
    }
}
