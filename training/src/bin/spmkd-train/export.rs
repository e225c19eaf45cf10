//! `spmkd-train export`: a run's model (or an untrained one) as encoder.onnx and decoder.onnx.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use clap::Args;

use crate::choice::ModelChoice;

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    choice: ModelChoice,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let device = Device::flex();
    let c = args.choice.load(&device)?;
    spmkd_training::export::export(
        &c.model,
        &c.config,
        &c.version,
        &c.trained_on,
        &args.out,
        &device,
    )?;
    println!(
        "{}/encoder.onnx and decoder.onnx: {}, trained on {}",
        args.out.display(),
        c.version,
        c.trained_on
    );
    Ok(())
}
