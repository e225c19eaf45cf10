//! `spmkd-train export`: a run's model (or an untrained one) as encoder.onnx and decoder.onnx.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use clap::Args;
use spmkd_core::dataset::Experiment;
use spmkd_training::export::{Provenance, TrustReferences, trust_references};

use crate::args::{DataArgs, experiment_i, load, parse_subjects};
use crate::choice::ModelChoice;

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    choice: ModelChoice,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Where the run's training frames are (for `spmkd.confidence_reference`,
    /// `spmkd.layout_reference` and `spmkd.layout_ramp`, measured on them).
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let device = Device::flex();
    let c = args.choice.load(&device)?;
    // What trust measures frames against, on the trained model's own training frames (an
    // untrained one has nothing worth keeping; an adapted run's frames are not at hand here,
    // `adapt` writes its own).
    let references = match &c.training {
        Some(training) if training.adaptation.is_none() => {
            let index = args.data.index()?;
            let subjects = parse_subjects(&training.train_subjects)?;
            let frames = load(
                &experiment_i(&index, &subjects),
                &training.model,
                training.frame_stride,
                Experiment::I.orientation(),
                "training frames (for the trust references)",
            )?;
            trust_references(&c.model, &frames, &device)
        }
        _ => TrustReferences::default(),
    };
    let provenance = Provenance {
        version: c.version.clone(),
        trained_on: c.trained_on.clone(),
        adapted_on: c.adapted_on.clone(),
        references,
    };
    spmkd_training::export::export(&c.model, &c.config, &provenance, &args.out, &device)?;
    println!(
        "{}/encoder.onnx and decoder.onnx: {}, trained on {}{}{}",
        args.out.display(),
        c.version,
        c.trained_on,
        provenance
            .references
            .confidence
            .map_or(String::new(), |r| format!(", confidence reference {r:.4}")),
        provenance
            .references
            .layout_ramp
            .map_or(String::new(), |(lo, hi)| format!(
                ", layout ramp {lo:.2} .. {hi:.2}"
            ))
    );
    Ok(())
}
