//! `spmkd-train eval`: a run's model on a split of the evaluation protocol: phase-1 F-score,
//! or phase-2 L1, L2 and SSIM. The run is read, never written.

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::prelude::*;
use clap::{Args, ValueEnum};
use spmkd_core::dataset::Split;
use spmkd_training::eval::evaluate;
use spmkd_training::model::Phase;
use spmkd_training::train::{Run, phase_name};

use crate::args::{DataArgs, OrientationArgs, PhaseArg, load};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitArg {
    /// Experiment-i S11..S13.
    HeldOut,
    /// Experiment-i S1..S10.
    Train,
    /// Experiment-ii (another mat and mattress).
    Unfamiliar,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::HeldOut => Split::HeldOut,
            SplitArg::Train => Split::Train,
            SplitArg::Unfamiliar => Split::Unfamiliar,
        }
    }
}

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    run: PathBuf,
    /// Which phase's checkpoint (default: regression when the run has one).
    #[arg(long, value_enum)]
    phase: Option<PhaseArg>,
    #[arg(long, value_enum, default_value_t = SplitArg::HeldOut)]
    split: SplitArg,
    #[command(flatten)]
    data: DataArgs,
    /// Use every n-th usable frame.
    #[arg(long, default_value_t = 1)]
    frame_stride: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[command(flatten)]
    orientation: OrientationArgs,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let run = Run::open_existing(&args.run)?;
    let phase = match args.phase {
        Some(p) => match p.single() {
            Some(phase) => phase,
            None => bail!("evaluate one phase: classification or regression"),
        },
        None if run.checkpoint(Phase::Regression).exists() => Phase::Regression,
        None => Phase::Classification,
    };
    let device = Device::flex();
    let model = run.load(phase, &device)?.valid();
    let index = args.data.index()?;
    let split = Split::from(args.split);
    let entries: Vec<_> = index.split(split).collect();
    let name = format!("{split} {}", split.description());
    let set = load(
        &entries,
        &run.config.model,
        args.frame_stride,
        args.orientation.orientation,
        &name,
    )?;
    let e = evaluate(
        &model,
        phase,
        &set,
        args.batch,
        run.config.loss_weights(),
        &device,
    );
    println!(
        "run {} phase {} on {name}: {} frames",
        args.run.display(),
        phase_name(phase),
        e.frames
    );
    println!("  loss {:.5}", e.loss);
    match e.fscore {
        Some(f) => println!(
            "  F-score {:.2} %  (precision {:.2} %, recall {:.2} %)",
            100.0 * f.f1(),
            100.0 * f.precision(),
            100.0 * f.recall()
        ),
        None => println!("  L1 {:.5}  L2 {:.5}  SSIM {:.4}", e.l1, e.l2, e.ssim),
    }
    Ok(())
}
