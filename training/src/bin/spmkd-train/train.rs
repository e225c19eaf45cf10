//! `spmkd-train train`: CRWT, phase 1 (classification), weight transfer, phase 2 (regression),
//! into a run directory that can be resumed.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::Args;
use spmkd_core::dataset::Experiment;
use spmkd_training::augment::AugmentConfig;
use spmkd_training::model::Phase;
use spmkd_training::plot;
use spmkd_training::train::{Run, TrainingConfig};

use crate::args::{DataArgs, ModelArgs, PhaseArg, experiment_i, load, parse_subjects};

#[derive(Args)]
pub struct TrainArgs {
    /// Run directory (config, metrics, checkpoints, plots).
    #[arg(long)]
    run: PathBuf,
    #[arg(long, value_enum, default_value_t = PhaseArg::Both)]
    phase: PhaseArg,
    /// Phase 2 from a fresh network instead of the transferred phase-1 weights (the CRWT
    /// ablation).
    #[arg(long)]
    from_scratch: bool,
    /// Continue a run from its last checkpoint.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 2e-3, value_parser = crate::args::learning_rate)]
    lr: f64,
    #[arg(long, default_value_t = 6)]
    classification_epochs: usize,
    #[arg(long, default_value_t = 6)]
    regression_epochs: usize,
    /// a of a * L2 + b * (1 - SSIM).
    #[arg(long, default_value_t = 1.0)]
    l2_weight: f32,
    /// b of a * L2 + b * (1 - SSIM).
    #[arg(long, default_value_t = 1.0)]
    ssim_weight: f32,
    /// Use every n-th usable frame of each recording.
    #[arg(long, default_value_t = 4)]
    frame_stride: usize,
    /// Cap the steps of every epoch (same budget for every ablation).
    #[arg(long)]
    steps_per_epoch: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Experiment-i subjects to train on, e.g. 1-10 or 1,3,5.
    #[arg(long, default_value = "1-10")]
    train_subjects: String,
    /// Experiment-i subjects to validate on after every epoch (default: none).
    #[arg(long, default_value = "")]
    val_subjects: String,
    /// Train on the frames as read: no label-free augmentation (by default both phases see
    /// each frame as another mat, position and sensor might show it: columns resampled to
    /// 24..36, scale, rotation, shift, flip, head-foot crop/pad, gain, gamma, noise, dead and
    /// saturated cells, coarse quantisation).
    #[arg(long)]
    no_augment: bool,
    /// Leave this augmentation family out (for ablations).
    #[arg(long, conflicts_with = "no_augment")]
    no_geometry: bool,
    #[arg(long, conflicts_with = "no_augment")]
    no_sensor: bool,
    #[arg(long, conflicts_with = "no_augment")]
    no_mat: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = TrainingConfig::new(args.model.config()?)
        .with_batch_size(args.batch)
        .with_learning_rate(args.lr)
        .with_classification_epochs(args.classification_epochs)
        .with_regression_epochs(args.regression_epochs)
        .with_l2_weight(args.l2_weight)
        .with_ssim_weight(args.ssim_weight)
        .with_frame_stride(args.frame_stride)
        .with_steps_per_epoch(args.steps_per_epoch)
        .with_seed(args.seed)
        .with_train_subjects(args.train_subjects.clone())
        .with_augment((!args.no_augment).then(|| {
            AugmentConfig::new()
                .with_geometry(!args.no_geometry)
                .with_sensor(!args.no_sensor)
                .with_mat(!args.no_mat)
        }));
    let train_subjects = parse_subjects(&args.train_subjects)?;
    let val_subjects = parse_subjects(&args.val_subjects)?;
    if let Some(s) = train_subjects
        .iter()
        .chain(&val_subjects)
        .find(|&&s| s > spmkd_core::dataset::LAST_TRAIN_SUBJECT)
    {
        bail!("S{s} is held out for reported results: train and validate on S1..S10 only");
    }
    let index = args.data.index()?;
    let train_set = load(
        &experiment_i(&index, &train_subjects),
        &config.model,
        config.frame_stride,
        Experiment::I.orientation(),
        "training",
    )?;
    let val_set = load(
        &experiment_i(&index, &val_subjects),
        &config.model,
        config.frame_stride,
        Experiment::I.orientation(),
        "validation",
    )?;

    let device = training_device();
    let mut run = Run::open(&args.run, config, args.resume)?;
    let mut model = None;
    if args.phase != PhaseArg::Regression {
        let start = run.phase_start(Phase::Classification, None, &device);
        model =
            Some(run.train_phase(Phase::Classification, start, &train_set, &val_set, &device)?);
    }
    if args.phase != PhaseArg::Classification {
        let phase1 = match (args.from_scratch, model) {
            (true, _) => None,
            (false, Some(m)) => Some(m),
            (false, None) => Some(run.load(Phase::Classification, &device).context(
                "phase 2 with CRWT starts from phase 1: train it first, or pass --from-scratch",
            )?),
        };
        let start = run.phase_start(Phase::Regression, phase1, &device);
        run.train_phase(Phase::Regression, start, &train_set, &val_set, &device)?;
    }
    let series = plot::step_losses(&run.dir.join("steps.csv"), 25)?;
    let png = run.dir.join("loss.png");
    plot::line_chart(
        &png,
        "Training loss",
        "step",
        "loss (running mean of 25 steps)",
        &series,
    )?;
    eprintln!(
        "run in {}; loss curves in {}",
        run.dir.display(),
        png.display()
    );
    Ok(())
}

/// The device training runs on: Burn's CPU backend, or the first CUDA GPU with `--features cuda`.
pub fn training_device() -> Device {
    #[cfg(feature = "cuda")]
    let device = Device::cuda(0);
    #[cfg(not(feature = "cuda"))]
    let device = Device::flex();
    device.autodiff()
}
