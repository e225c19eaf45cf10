//! Frames for training and evaluation: real recordings read and preprocessed by spmkd-core
//! (the same code the plugin runs), held in memory as model inputs.

use std::path::Path;

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use spmkd_core::ReadError;
use spmkd_core::dataset::Entry;
use spmkd_core::orientation::Orientation;
use spmkd_core::posture::Posture;
use spmkd_core::preprocess::{Letterbox, preprocess_framed_into};
use spmkd_core::{Format, Recording};

use crate::augment::{AugmentConfig, RawFrame, augment};
use crate::model::EfdConfig;

/// Preprocessed `S x S` frames, with the posture and subject of each.
#[derive(Debug, Clone, Default)]
pub struct FrameSet {
    pub size: usize,
    /// `len * size * size` normalized, letterboxed values.
    pub inputs: Vec<f32>,
    pub postures: Vec<Option<Posture>>,
    pub subjects: Vec<u8>,
    /// Each frame as read (`width`, `height`, readings), for augmentation, which works on the
    /// sensor's readings before preprocessing.
    pub raw: Vec<(u16, u16, Vec<u16>)>,
    /// Every frame framed on the body, not the mat ([`EfdConfig::body_centred`]).
    pub body_centred: bool,
}

impl FrameSet {
    pub fn new(size: usize) -> Self {
        Self {
            size,
            ..Self::default()
        }
    }

    /// An empty set of inputs as `model` takes them.
    pub fn for_model(model: &EfdConfig) -> Self {
        Self {
            size: model.input_size,
            body_centred: model.is_body_centred(),
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// Adds every `every`-th usable frame of a recording (capture artifacts left out).
    /// Consecutive PmatData frames are one second apart and nearly identical, so a stride
    /// buys variety per step at no loss.
    pub fn add_recording(
        &mut self,
        entry: &Entry,
        every: usize,
        orientation: Orientation,
    ) -> Result<usize, ReadError> {
        let mut recording = Recording::open(&entry.path, Format::Auto, None)?;
        self.add_frames(
            &mut recording,
            entry.posture,
            entry.subject,
            every,
            orientation,
        )
    }

    /// [`Self::add_recording`] of a file as it lies.
    pub fn add_file(
        &mut self,
        path: &Path,
        posture: Option<Posture>,
        subject: u8,
        every: usize,
    ) -> Result<usize, ReadError> {
        let mut recording = Recording::open(path, Format::Auto, None)?;
        self.add_frames(
            &mut recording,
            posture,
            subject,
            every,
            Orientation::Identity,
        )
    }

    /// Adds every `every`-th usable frame of an open recording, laid by `orientation` (how
    /// the mat lies: [`spmkd_core::orientation`]); the frames are kept as laid.
    pub fn add_frames(
        &mut self,
        recording: &mut Recording,
        posture: Option<Posture>,
        subject: u8,
        every: usize,
        orientation: Orientation,
    ) -> Result<usize, ReadError> {
        let (width, height) = (recording.width(), recording.height());
        let (laid_width, laid_height) = orientation.size(width, height);
        let letterbox = Letterbox::new(laid_width, laid_height, self.size);
        let (mut scratch, mut sorted) = (Vec::new(), Vec::new());
        let mut out = vec![0.0; self.size * self.size];
        let (mut usable, mut added) = (0usize, 0usize);
        while let Some(frame) = recording.next_frame()? {
            if frame.artifact.is_some() {
                continue;
            }
            usable += 1;
            if (usable - 1) % every.max(1) != 0 {
                continue;
            }
            let mut values = Vec::new();
            orientation.apply(frame.frame.data(), width, height, &mut values);
            preprocess_framed_into(
                &values,
                &letterbox,
                self.body_centred,
                &mut scratch,
                &mut sorted,
                &mut out,
            );
            self.inputs.extend_from_slice(&out);
            self.raw
                .push((laid_width as u16, laid_height as u16, values));
            self.postures.push(posture);
            self.subjects.push(subject);
            added += 1;
        }
        Ok(added)
    }

    /// The frames at `indices`, each augmented (a draw of its own from `seed` and its index)
    /// and then preprocessed as the plugin would, as a `[B, 1, S, S]` tensor.
    pub fn batch_augmented(
        &self,
        indices: &[usize],
        config: &AugmentConfig,
        seed: u64,
        device: &Device,
    ) -> Tensor<4> {
        let n = self.size * self.size;
        let mut data = vec![0.0; indices.len() * n];
        let (mut scratch, mut sorted) = (Vec::new(), Vec::new());
        for (out, &i) in data.chunks_exact_mut(n).zip(indices) {
            let (width, height, values) = &self.raw[i];
            let frame = RawFrame {
                width: *width as usize,
                height: *height as usize,
                values: values.iter().map(|&v| f32::from(v)).collect(),
            };
            let mut rng =
                StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let seen = augment(&frame, config, &mut rng);
            let letterbox = Letterbox::new(seen.width, seen.height, self.size);
            preprocess_framed_into(
                &seen.values,
                &letterbox,
                self.body_centred,
                &mut scratch,
                &mut sorted,
                out,
            );
        }
        Tensor::from_data(
            TensorData::new(data, [indices.len(), 1, self.size, self.size]),
            device,
        )
    }

    /// The mirror images (left and right swapped, `spmkd_core::frame::mirror_rows`) of the frames
    /// at `indices`, preprocessed as the plugin would, as a `[B, 1, S, S]` tensor. Mirrored as
    /// read, not as letterboxed: on a mat whose columns pad the input unevenly the two differ.
    pub fn batch_mirrored(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        let n = self.size * self.size;
        let mut data = vec![0.0; indices.len() * n];
        let (mut scratch, mut sorted) = (Vec::new(), Vec::new());
        for (out, &i) in data.chunks_exact_mut(n).zip(indices) {
            let (width, height, values) = &self.raw[i];
            let (width, height) = (usize::from(*width), usize::from(*height));
            let mut mirrored = values.clone();
            spmkd_core::frame::mirror_rows(&mut mirrored, width);
            let letterbox = Letterbox::new(width, height, self.size);
            preprocess_framed_into(
                &mirrored,
                &letterbox,
                self.body_centred,
                &mut scratch,
                &mut sorted,
                out,
            );
        }
        Tensor::from_data(
            TensorData::new(data, [indices.len(), 1, self.size, self.size]),
            device,
        )
    }

    /// The inputs at `indices` as a `[B, 1, S, S]` tensor.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        let data = gather(&self.inputs, self.size * self.size, indices);
        Tensor::from_data(
            TensorData::new(data, [indices.len(), 1, self.size, self.size]),
            device,
        )
    }
}

/// Items `indices` of `values` (items of `per` values each, back to back), in that order: the
/// rows of a batch.
pub fn gather(values: &[f32], per: usize, indices: &[usize]) -> Vec<f32> {
    let mut data = Vec::with_capacity(indices.len() * per);
    for &i in indices {
        data.extend_from_slice(&values[i * per..(i + 1) * per]);
    }
    data
}
