//! Self-supervised adaptation to a new mat (`spmkd-train adapt`): phase 2 of CRWT (reconstruct
//! the pressure map from the keypoints) continued from a trained run on unlabelled recordings of
//! the new mat. No label of the new mat is used: the loss is the reconstruction's.
//!
//! An adaptation is a training run of its own (`<out>/run`, resumable like any run) whose
//! [`TrainingConfig::adaptation`] names the base run and the recordings; the model it makes is
//! exported with `spmkd.adapted_on` in its metadata.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use spmkd_core::engine::{Encoder, EngineOptions, ModelSource};
use spmkd_core::orientation::Orientation;
use spmkd_core::{Format, Recording};

use crate::adaptation::Adaptation;
use crate::augment::AugmentConfig;
use crate::data::FrameSet;
use crate::eval::{Evaluation, evaluate};
use crate::model::{Efd, EfdConfig, Phase};
use crate::train::{Run, TrainingConfig, run_version};

/// The run a model directory was made by: `dir` itself when it is a run, else its `run/`
/// (as `adapt` writes it, and as `models/default` ships it), so a model directory can be adapted
/// again.
pub fn run_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("run");
    if !dir.join("config.json").exists() && inner.join("config.json").exists() {
        inner
    } else {
        dir.to_owned()
    }
}

/// The id of the model in `dir`: a model directory's own (its `encoder.onnx`'s
/// `spmkd.version`), else the one a run's export gets.
pub fn model_version(dir: &Path, run: &Run) -> String {
    let options = EngineOptions::cpu(1);
    ModelSource::file(&dir.join("encoder.onnx"))
        .ok()
        .and_then(|source| Encoder::new(&source, &options).ok())
        .map_or_else(|| run_version(&run.config.model, dir), |e| e.meta.version)
}

/// Every recording in `paths`: files as given, directories searched (recursively, in name
/// order) for files `pmatsrc` reads (`.txt`, `.npy`, `.raw`; tables such as a `.csv` of subject
/// information are left out).
pub fn recordings(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading the directory {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading the directory {}", dir.display()))?;
        entries.sort();
        for path in entries {
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                walk(&path, out)?;
            } else if path
                .extension()
                .is_some_and(|e| ["txt", "npy", "raw"].contains(&&*e.to_string_lossy()))
            {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = out.len();
            walk(path, &mut out)?;
            if out.len() == before {
                bail!(
                    "{} holds no recording (.txt, .npy or .raw files)",
                    path.display()
                );
            }
        } else if path.exists() {
            out.push(path.clone());
        } else {
            bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(out)
}

/// The new mat's frames an adaptation learns from.
pub struct Unlabelled {
    pub files: Vec<PathBuf>,
    /// How the frames were laid ([`FrameSet::add_frames`]).
    pub orientation: Orientation,
    pub frames: FrameSet,
}

impl Unlabelled {
    /// The usable frames (every `every`-th) of `files`, preprocessed as `model` takes them.
    /// `raw_size` is the `(width, height)` of `.raw` recordings.
    pub fn load(
        files: Vec<PathBuf>,
        model: &EfdConfig,
        every: usize,
        orientation: Orientation,
        raw_size: Option<(usize, usize)>,
    ) -> Result<Self> {
        let mut frames = FrameSet::for_model(model);
        for file in &files {
            let mut recording = Recording::open(file, Format::Auto, raw_size)
                .with_context(|| format!("opening the recording {}", file.display()))?;
            frames
                .add_frames(&mut recording, None, 0, every, orientation)
                .with_context(|| format!("reading the recording {}", file.display()))?;
        }
        if frames.is_empty() {
            bail!(
                "no usable frame in {} recording(s) (every frame empty or a capture artifact)",
                files.len()
            );
        }
        Ok(Self {
            files,
            orientation,
            frames,
        })
    }
}

/// How an adaptation trains (the base run's model shape and preprocessing are kept).
#[derive(Debug, Clone)]
pub struct AdaptOptions {
    pub epochs: usize,
    pub learning_rate: f64,
    pub batch_size: usize,
    pub seed: u64,
    pub every: usize,
    /// Label-free augmentation of the new mat's frames (`None`: as read).
    pub augment: Option<AugmentConfig>,
    /// After phase 2, measure the encoder's batch norms on the new mat's frames
    /// ([`recalibrate_encoder`]).
    pub recalibrate_encoder: bool,
}

/// What an adaptation did, written as `adaptation.json` beside the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdaptReport {
    pub base: String,
    pub base_version: String,
    pub version: String,
    pub recordings: usize,
    pub frames: usize,
    pub epochs: usize,
    /// Reconstruction of the new mat's frames (not augmented) before and after.
    pub before: Fit,
    pub after: Fit,
}

/// Phase 2's loss and metrics on a set of frames.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Fit {
    pub loss: f64,
    pub l1: f64,
    pub ssim: f64,
}

impl From<Evaluation> for Fit {
    fn from(e: Evaluation) -> Self {
        Self {
            loss: e.loss,
            l1: e.l1,
            ssim: e.ssim,
        }
    }
}

/// What [`adapt`] made.
pub struct Adapted {
    /// The adaptation's training run.
    pub run: Run,
    /// The adapted model (its encoder's batch norms measured on the new mat when asked).
    pub model: Efd,
    /// The model as phase 2 left it, when the encoder was recalibrated after it: the keypoints
    /// of the familiar mat's frames, which the posture network is trained on, come from this
    /// one (its norms follow those frames, the adapted model's the new mat's).
    pub trained: Option<Efd>,
    /// Reconstruction of the new mat's frames (not augmented) before and after.
    pub before: Fit,
    pub after: Fit,
}

/// The most new-mat frames [`recalibrate_encoder`] measures (evenly spaced over them): the
/// statistics of a few hundred frames are steady, and every layer's activations of all of
/// them (and their mirror images) are held at once.
pub const RECALIBRATION_FRAMES: usize = 256;

/// The frames of `n` [`recalibrate_encoder`] measures: at most [`RECALIBRATION_FRAMES`], evenly
/// spaced.
fn recalibration_sample(n: usize) -> Vec<usize> {
    let take = n.min(RECALIBRATION_FRAMES);
    (0..take).map(|i| i * n / take).collect()
}

/// `model` with its encoder's batch norms measured afresh on the new mat's `frames` and their
/// mirror images (AdaBN, [`crate::model::Encoder::recalibrated`]; an even sample of at most
/// [`RECALIBRATION_FRAMES`]). The mirror images keep the statistics left-right symmetric as
/// training's flips made them. No label is read and no weight changes. `device` without
/// autodiff.
pub fn recalibrate_encoder(model: Efd, frames: &FrameSet, batch: usize, device: &Device) -> Efd {
    let inputs = recalibration_sample(frames.len())
        .chunks(batch.max(1))
        .flat_map(|chunk| {
            [
                frames.batch(chunk, device),
                frames.batch_mirrored(chunk, device),
            ]
        })
        .collect();
    Efd {
        encoder: model.encoder.recalibrated(inputs),
        ..model
    }
}

/// Adapts the phase-2 model of `base` (a run, or a model directory with its run, [`run_dir`]) to
/// `data`; the adapted run goes into `dir` (continued with `resume`).
pub fn adapt(
    base: &Path,
    data: &Unlabelled,
    options: &AdaptOptions,
    dir: &Path,
    resume: bool,
    device: &Device,
) -> Result<Adapted> {
    let base_run = Run::open_existing(&run_dir(base))?;
    if base_run.state.regression == 0 {
        bail!(
            "{} has no phase-2 model yet (train it first: spmkd-train train --run {})",
            base.display(),
            base.display()
        );
    }
    let base_config = &base_run.config;
    let frames = &data.frames;
    if frames.size != base_config.model.input_size {
        bail!(
            "frames prepared for S = {}, the base model takes S = {}",
            frames.size,
            base_config.model.input_size
        );
    }
    let start = base_run.load(Phase::Regression, device)?;
    let adaptation = Adaptation::new(
        base.display().to_string(),
        model_version(base, &base_run),
        base_config.trained_on(),
        data.files.iter().map(|f| f.display().to_string()).collect(),
    )
    .with_orientation(data.orientation)
    .with_encoder_recalibrated_on(
        options
            .recalibrate_encoder
            .then(|| recalibration_sample(frames.len()).len()),
    );
    let config = TrainingConfig::new(base_config.model.clone())
        .with_batch_size(options.batch_size)
        .with_learning_rate(options.learning_rate)
        .with_classification_epochs(0)
        .with_regression_epochs(options.epochs)
        .with_l2_weight(base_config.l2_weight)
        .with_ssim_weight(base_config.ssim_weight)
        .with_frame_stride(options.every)
        .with_seed(options.seed)
        .with_train_subjects(String::new())
        .with_augment(options.augment.clone())
        .with_adaptation(Some(adaptation));
    let plain = device.clone().inner();
    // Of a model without autodiff.
    let fit = |model: &Efd| -> Fit {
        evaluate(
            model,
            Phase::Regression,
            frames,
            config.batch_size,
            config.loss_weights(),
            &plain,
        )
        .into()
    };
    let before = fit(&start.valid());
    let mut run = Run::open(dir, config.clone(), resume)?;
    let model = run.train_phase(
        Phase::Regression,
        start,
        frames,
        &FrameSet::new(frames.size),
        device,
    )?;
    let trained = model.valid();
    let (model, trained) = if options.recalibrate_encoder {
        let model = recalibrate_encoder(trained.clone(), frames, config.batch_size, &plain);
        (model, Some(trained))
    } else {
        (trained, None)
    };
    let after = fit(&model);
    // A step too large leaves weights that read the frames as NaN even when every step's loss
    // was finite: such an encoder gives `null` keypoints, so it is no result.
    if ![after.loss, after.l1, after.ssim]
        .iter()
        .all(|v| v.is_finite())
    {
        bail!(
            "the adaptation diverged (reconstruction loss {} after it): no model made; try a smaller learning rate (now {})",
            after.loss,
            options.learning_rate
        );
    }
    Ok(Adapted {
        run,
        model,
        trained,
        before,
        after,
    })
}
