//! Training and evaluation of the posture classifiers on [`GraphSet`]s.

use std::collections::BTreeMap;

use crate::progress::Progress;
use anyhow::{Result, bail};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use spmkd_core::posture::Posture;

use super::classifier::{Cnn, Gnn};
use super::ensemble::GnnEnsemble;
use super::graphs::GraphSet;

/// A posture classifier: keypoint graphs or raw images in, 3 logits out.
#[derive(Module, Debug)]
pub enum Classifier {
    Graph(Gnn),
    /// Graph networks of one recipe from different seeds, their logits averaged.
    Ensemble(GnnEnsemble),
    Image(Cnn),
}

fn class(p: Posture) -> usize {
    Posture::ALL
        .iter()
        .position(|&q| q == p)
        .expect("every posture is in ALL")
}

impl Classifier {
    /// Logits `[B, 3]` of the graphs at `indices`.
    pub fn forward(&self, set: &GraphSet, indices: &[usize], device: &Device) -> Tensor<2> {
        match self {
            Classifier::Graph(g) => g.forward(set.node_tensor(indices, device)),
            Classifier::Ensemble(e) => e.forward(set.node_tensor(indices, device)),
            Classifier::Image(c) => c.forward(set.image_tensor(indices, device)),
        }
    }
}

#[derive(Config, Debug)]
pub struct FitConfig {
    #[config(default = 12)]
    pub epochs: usize,
    #[config(default = 64)]
    pub batch_size: usize,
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    #[config(default = 42)]
    pub seed: u64,
}

/// Mean cross-entropy of logits against class indices.
fn cross_entropy(logits: Tensor<2>, targets: &[usize], device: &Device) -> Tensor<1> {
    let [batch, classes] = logits.dims();
    let mut one_hot = vec![0.0f32; batch * classes];
    for (i, &t) in targets.iter().enumerate() {
        one_hot[i * classes + t] = 1.0;
    }
    let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [batch, classes]), device);
    (log_softmax(logits, 1) * one_hot).sum_dim(1).mean().neg()
}

/// Trains `model` on `train` (on the autodiff `device`); one line of loss per epoch.
pub fn fit(
    mut model: Classifier,
    train: &GraphSet,
    config: &FitConfig,
    device: &Device,
) -> Result<Classifier> {
    if train.is_empty() {
        bail!("no training graphs");
    }
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let targets: Vec<usize> = train.labels.iter().map(|&p| class(p)).collect();
    let steps = train.len().div_ceil(config.batch_size.max(1));
    let mut progress = Progress::new("posture fit", (config.epochs * steps) as u64);
    for epoch in 0..config.epochs {
        progress.epoch(epoch + 1, config.epochs);
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            config.seed ^ (epoch as u64) << 8,
        ));
        let mut total = 0.0;
        for indices in order.chunks(config.batch_size.max(1)) {
            // A batch of one cannot be batch-normalized.
            if indices.len() < 2 {
                continue;
            }
            let logits = model.forward(train, indices, device);
            let batch_targets: Vec<usize> = indices.iter().map(|&i| targets[i]).collect();
            let loss = cross_entropy(logits, &batch_targets, device);
            let value = loss.clone().into_scalar::<f32>();
            if !value.is_finite() {
                bail!("epoch {}: the loss is {value}", epoch + 1);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(config.learning_rate, model, grads);
            total += value as f64;
            progress.step(value);
        }
        progress.end_epoch(total / steps as f64);
    }
    progress.finish();
    Ok(model)
}

/// Accuracy, confusion and per-subject accuracy on a set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// `confusion[true][predicted]`, classes in the order of [`Posture::ALL`].
    pub confusion: [[usize; 3]; 3],
    /// Subject to (correct, total).
    pub per_subject: BTreeMap<u8, (usize, usize)>,
    /// (subject, variant name) to the true class and how often each class was predicted:
    /// which recordings the errors come from (experiment-ii's B1, E3, ...).
    pub per_recording: BTreeMap<(u8, String), (usize, [usize; 3])>,
}

impl Evaluation {
    pub fn total(&self) -> usize {
        self.confusion.iter().flatten().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: usize = (0..3).map(|i| self.confusion[i][i]).sum();
        correct as f64 / self.total().max(1) as f64
    }
}

/// The class probabilities (in the order of [`Posture::ALL`]) `model` (validation mode, plain
/// device) gives every graph of `set`.
pub fn predict(model: &Classifier, set: &GraphSet, device: &Device) -> Vec<[f32; 3]> {
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut out = Vec::with_capacity(set.len());
    for chunk in indices.chunks(256) {
        let logits: Vec<f32> = model
            .forward(set, chunk, device)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("logits are floats");
        for row in logits.chunks_exact(3) {
            let p = spmkd_core::posture::probabilities(row);
            out.push([p[0], p[1], p[2]]);
        }
    }
    out
}

/// Evaluates `model` (validation mode, plain device) on every graph of `set`.
pub fn evaluate(model: &Classifier, set: &GraphSet, device: &Device) -> Evaluation {
    let mut e = Evaluation::default();
    // By (subject, variant index); named once at the end.
    let mut per_recording: BTreeMap<(u8, Option<usize>), (usize, [usize; 3])> = BTreeMap::new();
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(256) {
        let logits = model.forward(set, chunk, device);
        let predicted: Vec<i64> = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("argmax gives integers");
        for (&i, &p) in chunk.iter().zip(&predicted) {
            let truth = class(set.labels[i]);
            e.confusion[truth][p as usize] += 1;
            let s = e.per_subject.entry(set.subjects[i]).or_default();
            s.1 += 1;
            if truth == p as usize {
                s.0 += 1;
            }
            let r = per_recording
                .entry((set.subjects[i], set.variants.get(i).copied()))
                .or_insert((truth, [0; 3]));
            r.1[p as usize] += 1;
        }
    }
    // A set built by hand may carry no variants.
    e.per_recording = per_recording
        .into_iter()
        .map(|((subject, variant), read)| {
            let name = variant.and_then(|v| set.variant_names.get(v));
            ((subject, name.cloned().unwrap_or_default()), read)
        })
        .collect();
    e
}
