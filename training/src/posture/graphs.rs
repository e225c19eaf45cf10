//! Keypoint graphs for the posture classifiers: per frame, `k` nodes of `NODE_FEATURES` values,
//! from the shipped SPMKD encoder (ONNX Runtime, the plugin's own sessions) or from a
//! non-learned source (the strongest pressure peaks).
//!
//! A node: normalized value under the keypoint, x / W and y / H (sensor coordinates scaled to
//! the mat, so a 27-wide and a 32-wide mat share one scale), confidence, and `f` features.

use std::path::Path;

use anyhow::{Context, Result};
use spmkd_core::dataset::{Entry, Experiment, Mat, Posture};
use spmkd_core::engine::{Device as OrtDevice, Encoder, EngineOptions, ModelSource};
use spmkd_core::keypoints::decode;
use spmkd_core::model_meta::ModelKind;
use spmkd_core::preprocess::{Letterbox, preprocess_into};
use spmkd_core::{Format, Recording};

use super::peaks;

/// Where the nodes of a graph come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeSource {
    /// The shipped SPMKD encoder (models/default/encoder.onnx).
    Spmkd,
    /// The `k` strongest local pressure maxima, with the 4x4 patch around each as features.
    Peaks,
}

/// Per node: value, x, y, confidence, then the features.
pub const BASE_FEATURES: usize = 4;

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

    /// The graphs at `indices` that satisfy `keep`.
    pub fn select(&self, keep: impl Fn(usize) -> bool) -> GraphSet {
        let per = self.keypoints * self.node_features;
        let img = self.image_size * self.image_size;
        let mut out = GraphSet {
            keypoints: self.keypoints,
            node_features: self.node_features,
            image_size: self.image_size,
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
        }
        out
    }
}

/// Builds graphs frame by frame with one node source.
pub struct GraphBuilder {
    source: NodeSource,
    encoder: Encoder,
    image_size: usize,
    /// Turn experiment-ii frames by 180 degrees (its mat lies the other way round: head at
    /// row 63; see docs/RESULTS.md, "Posture").
    pub turn_unfamiliar: bool,
}

impl GraphBuilder {
    /// The encoder is the shipped one either way: its input size and `k` define the graphs,
    /// and the raw-image baseline sees the same preprocessed frames.
    pub fn new(source: NodeSource) -> Result<Self> {
        let options = EngineOptions {
            library: None,
            device: OrtDevice::Cpu,
            allow_fallback: false,
            threads: 0,
        };
        let encoder = Encoder::new(&ModelSource::embedded(ModelKind::Encoder), &options)
            .context("the shipped encoder (run scripts/setup for ONNX Runtime)")?;
        let image_size = encoder.input_size();
        Ok(Self {
            source,
            encoder,
            image_size,
            turn_unfamiliar: false,
        })
    }

    pub fn keypoints(&self) -> usize {
        self.encoder.meta.keypoints
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
    /// recordings (experiment-ii's G files) are skipped.
    pub fn add_recording(&mut self, set: &mut GraphSet, entry: &Entry, every: usize) -> Result<()> {
        let Some(label) = entry.posture else {
            return Ok(());
        };
        let mut recording = Recording::open(&entry.path, Format::Auto, None)?;
        let (w, h) = (recording.width(), recording.height());
        let letterbox = Letterbox::new(w, h, self.image_size);
        let (k, f) = (self.keypoints(), self.encoder.meta.features);
        let mut normalized = Vec::new();
        let mut input = vec![0.0; self.image_size * self.image_size];
        let mut points = Vec::new();
        let mut usable = 0usize;
        let turn = self.turn_unfamiliar && entry.experiment == Experiment::II;
        let mut turned = Vec::new();
        while let Some(frame) = recording.next_frame()? {
            if frame.artifact.is_some() {
                continue;
            }
            usable += 1;
            if !(usable - 1).is_multiple_of(every.max(1)) {
                continue;
            }
            // A 180-degree turn of a row-major frame is its readings in reverse order.
            let data = if turn {
                turned.clear();
                turned.extend(frame.frame.data().iter().rev());
                &turned[..]
            } else {
                frame.frame.data()
            };
            preprocess_into(data, &letterbox, &mut normalized, &mut input);
            match self.source {
                NodeSource::Spmkd => {
                    self.encoder.run(&input)?;
                    decode(
                        &self.encoder.keypoints,
                        &self.encoder.confidence,
                        &letterbox,
                        &normalized,
                        &mut points,
                    );
                    for (i, p) in points.iter().enumerate() {
                        let value = self.encoder.keypoints[i * 3];
                        set.nodes.extend_from_slice(&[
                            value,
                            p.x / w as f32,
                            p.y / h as f32,
                            p.confidence,
                        ]);
                        // The second half of the fused vector: the keypoint's own features.
                        let fused = &self.encoder.fused[i * 2 * f..(i + 1) * 2 * f];
                        set.nodes.extend_from_slice(&fused[f..]);
                    }
                }
                NodeSource::Peaks => {
                    // preprocess_into left the normalized frame in `normalized`.
                    peaks::nodes(&normalized, w, h, k, &mut set.nodes);
                }
            }
            set.images.extend_from_slice(&input);
            set.labels.push(label);
            set.subjects.push(entry.subject);
            set.mats.push(entry.mat);
        }
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
    builder.add_recording(&mut set, &entry, every)?;
    Ok(set)
}
