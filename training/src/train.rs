//! CRWT training: phase 1 (classification), weight transfer, phase 2 (regression), with
//! progress bars, metrics as CSV, checkpoints after every epoch and resume.
//!
//! A run directory holds:
//! - `config.json`: the [`TrainingConfig`] (a resumed run must use the same);
//! - `steps.csv`: the loss of every training step; `epochs.csv`: per-epoch means and validation;
//! - `classification.bpk`, `regression.bpk` (+ `-optim.bin`): the latest checkpoint of a phase;
//! - `state.json`: how many epochs of each phase are done;
//! - `loss.png`: the loss curves.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::progress::Progress;
use serde::{Deserialize, Serialize};

use crate::augment::AugmentConfig;
use crate::crwt;
use crate::data::FrameSet;
use crate::eval::{Evaluation, evaluate};
use crate::model::{Efd, EfdConfig, Phase};

#[derive(Config, Debug)]
pub struct TrainingConfig {
    pub model: EfdConfig,
    #[config(default = 32)]
    pub batch_size: usize,
    #[config(default = 2e-3)]
    pub learning_rate: f64,
    #[config(default = 6)]
    pub classification_epochs: usize,
    #[config(default = 6)]
    pub regression_epochs: usize,
    /// `a` and `b` of phase 2's loss `a * L2 + b * (1 - SSIM)`.
    #[config(default = 1.0)]
    pub l2_weight: f32,
    #[config(default = 1.0)]
    pub ssim_weight: f32,
    /// Use every n-th usable frame of each recording.
    #[config(default = 4)]
    pub frame_stride: usize,
    /// Cap on the steps of an epoch (the same budget for every ablation), `None`: all batches.
    #[config(default = "None")]
    pub steps_per_epoch: Option<usize>,
    #[config(default = 42)]
    pub seed: u64,
    /// Experiment-i subjects trained on (`1-10`, `1,3,5`).
    #[config(default = "String::from(\"1-10\")")]
    pub train_subjects: String,
    /// Label-free augmentation of the training frames, both phases; `None` (and in runs made
    /// before it existed): the frames as read.
    #[config(default = "None")]
    pub augment: Option<AugmentConfig>,
    /// Set in runs made by `spmkd-train adapt`: phase 2 continued from another run's model on
    /// unlabelled recordings of a new mat (the subjects and epochs above are then the
    /// adaptation's, not the base model's).
    #[config(default = "None")]
    pub adaptation: Option<crate::adaptation::Adaptation>,
}

impl TrainingConfig {
    /// What the model was trained on, for `spmkd.trained_on` (an adapted run: its base's).
    pub fn trained_on(&self) -> String {
        match &self.adaptation {
            Some(a) => a.base_trained_on.clone(),
            None => format!(
                "PmatData experiment-i S{} (every {}th usable frame), CRWT {} + {} epochs, seed {}{}",
                self.train_subjects,
                self.frame_stride,
                self.classification_epochs,
                self.regression_epochs,
                self.seed,
                if self.augment.as_ref().is_some_and(AugmentConfig::any) {
                    ", label-free augmentation"
                } else {
                    ""
                }
            ),
        }
    }

    /// What an adapted run was adapted to, for `spmkd.adapted_on`; `None` for a trained run.
    pub fn adapted_on(&self, frames: Option<usize>) -> Option<String> {
        self.adaptation
            .as_ref()
            .map(|a| a.describe(self.regression_epochs, frames))
    }

    pub fn epochs(&self, phase: Phase) -> usize {
        match phase {
            Phase::Classification => self.classification_epochs,
            Phase::Regression => self.regression_epochs,
        }
    }

    /// The seed the weights a phase starts from are drawn with. Each phase seeds the device
    /// afresh, so a fresh phase-2 head (or a from-scratch network) is the same whether phase 2
    /// follows phase 1 in one process or in a resumed run.
    pub fn phase_seed(&self, phase: Phase) -> u64 {
        match phase {
            Phase::Classification => self.seed,
            Phase::Regression => self.seed.wrapping_add(1),
        }
    }

    pub fn loss_weights(&self) -> (f32, f32) {
        (self.l2_weight, self.ssim_weight)
    }
}

/// The model id a run's export gets unless told: its shape and the run directory's name.
pub fn run_version(model: &EfdConfig, dir: &Path) -> String {
    let name = dir
        .file_name()
        .map_or("run".into(), |n| n.to_string_lossy().into_owned());
    format!(
        "spmkd-efd-s{}-k{}-f{}-w{}-{name}",
        model.input_size, model.keypoints, model.features, model.decoder_width
    )
}

pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Classification => "classification",
        Phase::Regression => "regression",
    }
}

/// Epochs done per phase.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    pub classification: usize,
    pub regression: usize,
}

impl RunState {
    /// The state saved at `path`; a run with no epoch done yet has none.
    fn read(path: &Path) -> Result<Self> {
        match fs::read_to_string(path) {
            Ok(s) => {
                serde_json::from_str(&s).with_context(|| format!("parsing {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn get(&self, phase: Phase) -> usize {
        match phase {
            Phase::Classification => self.classification,
            Phase::Regression => self.regression,
        }
    }

    fn set(&mut self, phase: Phase, epochs: usize) {
        match phase {
            Phase::Classification => self.classification = epochs,
            Phase::Regression => self.regression = epochs,
        }
    }
}

/// A training run in a directory.
pub struct Run {
    pub dir: PathBuf,
    pub config: TrainingConfig,
    pub state: RunState,
}

impl Run {
    /// Opens `dir`: a new run writes `config`; an existing one is continued only with `resume`
    /// and the same configuration (the epoch budgets may grow).
    pub fn open(dir: &Path, config: TrainingConfig, resume: bool) -> Result<Self> {
        let config_path = dir.join("config.json");
        let state_path = dir.join("state.json");
        let state = if config_path.exists() {
            if !resume {
                bail!(
                    "{} already holds a run: pass --resume to continue it, or choose another --run",
                    dir.display()
                );
            }
            let saved = TrainingConfig::load(&config_path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", config_path.display()))?;
            // Epoch budgets may grow on resume, and an adaptation's encoder recalibration (made
            // after training, from the checkpoint) may be asked for or not; everything else
            // must match.
            let key = |c: &TrainingConfig| {
                let adaptation = c
                    .adaptation
                    .clone()
                    .map(|a| a.with_encoder_recalibrated_on(None));
                c.clone()
                    .with_classification_epochs(0)
                    .with_regression_epochs(0)
                    .with_adaptation(adaptation)
                    .to_string()
            };
            if key(&saved) != key(&config) {
                bail!(
                    "{} was made with another configuration; resume it with the same options \
                     (only the epoch counts may change)",
                    config_path.display()
                );
            }
            fs::write(&config_path, config.to_string())
                .with_context(|| format!("writing {}", config_path.display()))?;
            RunState::read(&state_path)?
        } else {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            fs::write(&config_path, config.to_string())
                .with_context(|| format!("writing {}", config_path.display()))?;
            for (name, header) in [
                ("steps.csv", "phase,epoch,step,loss\n"),
                (
                    "epochs.csv",
                    "phase,epoch,train_loss,val_frames,val_loss,val_f1,val_l1,val_l2,val_ssim\n",
                ),
            ] {
                fs::write(dir.join(name), header)?;
            }
            RunState::default()
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            state,
        })
    }

    /// Opens the run in `dir` to read it (evaluate, export, find keypoints): its
    /// configuration and progress as saved, and nothing in `dir` written.
    pub fn open_existing(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            bail!(
                "{} holds no run (no config.json): make one with spmkd-train train --run {}",
                dir.display(),
                dir.display()
            );
        }
        let config = TrainingConfig::load(&config_path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", config_path.display()))?;
        let state = RunState::read(&dir.join("state.json"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            state,
        })
    }

    pub fn checkpoint(&self, phase: Phase) -> PathBuf {
        self.dir.join(format!("{}.bpk", phase_name(phase)))
    }

    fn optimizer_path(&self, phase: Phase) -> PathBuf {
        self.dir.join(format!("{}-optim.bin", phase_name(phase)))
    }

    fn append(&self, file: &str, line: &str) -> Result<()> {
        let path = self.dir.join(file);
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        f.write_all(line.as_bytes())?;
        Ok(())
    }

    /// The model `phase` starts from when it is not resumed: phase 1 a fresh network; phase 2
    /// `phase1` with CRWT's fresh head, or a fresh network when `phase1` is `None` (from
    /// scratch). The device is seeded with [`TrainingConfig::phase_seed`] first, so the fresh
    /// weights do not depend on what ran before in this process: phase 2 of a resumed run starts
    /// from the same weights as phase 2 right after phase 1.
    pub fn phase_start(&self, phase: Phase, phase1: Option<Efd>, device: &Device) -> Efd {
        device.seed(self.config.phase_seed(phase));
        let model = &self.config.model;
        match (phase, phase1) {
            (Phase::Regression, Some(phase1)) => phase1.transfer(model, phase, device),
            _ => model.init(phase, device),
        }
    }

    /// Loads the checkpoint of `phase` into a model of that phase's shape.
    pub fn load(&self, phase: Phase, device: &Device) -> Result<Efd> {
        let path = self.checkpoint(phase);
        self.config
            .model
            .init(phase, device)
            .try_load_file(&path)
            .map_err(|e| anyhow::anyhow!("loading {}: {e:?}", path.display()))
    }

    /// Trains `phase` to its epoch budget, starting from the phase's own checkpoint when resuming,
    /// else from `start` (phase 2 after CRWT: the transferred phase-1 model; from scratch: a fresh
    /// one). `validation` (possibly empty) is evaluated after every epoch.
    pub fn train_phase(
        &mut self,
        phase: Phase,
        start: Efd,
        train: &FrameSet,
        validation: &FrameSet,
        device: &Device,
    ) -> Result<Efd> {
        let epochs = self.config.epochs(phase);
        let done = self.state.get(phase);
        let (mut model, mut optim): (Efd, ModuleOptimizer) = if done > 0 {
            let model = self.load(phase, device)?;
            let optim = AdamConfig::new()
                .init()
                .load(self.optimizer_path(phase))
                .map_err(|e| anyhow::anyhow!("loading the optimizer state: {e:?}"))?;
            (model, optim)
        } else {
            (start, AdamConfig::new().init())
        };
        if train.is_empty() {
            bail!("no training frames");
        }
        let batch = self.config.batch_size.max(1);
        let batches = train.len().div_ceil(batch);
        let steps = self
            .config
            .steps_per_epoch
            .map_or(batches, |s| s.min(batches));
        let plain = device.clone().inner();
        let mut progress = Progress::new(
            phase_name(phase),
            (epochs.saturating_sub(done) * steps) as u64,
        );
        for epoch in done..epochs {
            progress.epoch(epoch + 1, epochs);
            // The order depends only on the seed and the epoch: a resumed run sees the same.
            let mut order: Vec<usize> = (0..train.len()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(
                self.config.seed ^ (epoch as u64) << 8,
            ));
            let mut total = 0.0;
            let mut lines = String::new();
            for (step, indices) in order.chunks(batch).take(steps).enumerate() {
                let input = match self.config.augment.as_ref().filter(|a| a.any()) {
                    Some(augment) => {
                        // Draws depend on the seed, phase, epoch and step only: a resume sees
                        // the same frames.
                        let seed = self.config.phase_seed(phase)
                            ^ ((epoch as u64) << 20)
                            ^ ((step as u64) << 40);
                        train.batch_augmented(indices, augment, seed, device)
                    }
                    None => train.batch(indices, device),
                };
                let output = model.forward(input.clone()).output;
                let loss = match phase {
                    Phase::Classification => {
                        crwt::classification_loss(output, crwt::pressure_mask(input))
                    }
                    Phase::Regression => {
                        let (a, b) = self.config.loss_weights();
                        crwt::regression_loss(crwt::regression_map(output), input, a, b)
                    }
                };
                let value = loss.clone().into_scalar::<f32>();
                if !value.is_finite() {
                    bail!(
                        "{} epoch {} step {step}: the loss is {value}",
                        phase_name(phase),
                        epoch + 1
                    );
                }
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(self.config.learning_rate, model, grads);
                total += value as f64;
                lines.push_str(&format!(
                    "{},{},{},{value}\n",
                    phase_name(phase),
                    epoch + 1,
                    epoch * steps + step
                ));
                progress.step(value);
            }
            progress.end_epoch(total / steps.max(1) as f64);
            self.append("steps.csv", &lines)?;
            let validation = if validation.is_empty() {
                Evaluation::default()
            } else {
                evaluate(
                    &model.valid(),
                    phase,
                    validation,
                    batch,
                    self.config.loss_weights(),
                    &plain,
                )
            };
            self.append(
                "epochs.csv",
                &format!(
                    "{},{},{},{},{},{},{},{},{}\n",
                    phase_name(phase),
                    epoch + 1,
                    total / steps as f64,
                    validation.frames,
                    validation.loss,
                    validation
                        .fscore
                        .map_or(String::new(), |f| f.f1().to_string()),
                    validation.l1,
                    validation.l2,
                    validation.ssim
                ),
            )?;
            // Batch norms' running statistics keep their last update pending until read in
            // sync, and saving reads them without: sync them first (`valid` does, on the
            // state the training model shares), or the checkpoint would lag the model by one
            // step and a model exported from it differ from the one trained.
            let _ = model.valid();
            model
                .clone()
                .save_file(self.checkpoint(phase))
                .map_err(|e| anyhow::anyhow!("saving the checkpoint: {e:?}"))?;
            optim
                .save(self.optimizer_path(phase))
                .map_err(|e| anyhow::anyhow!("saving the optimizer state: {e:?}"))?;
            self.state.set(phase, epoch + 1);
            fs::write(
                self.dir.join("state.json"),
                serde_json::to_string(&self.state)?,
            )?;
        }
        progress.finish();
        Ok(model)
    }
}
