//! `spmkd-train info`: parameters and FLOPs of the encoder and decoder at an input size.

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use clap::Args;
use spmkd_training::model::Phase;

use crate::args::ModelArgs;

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: &InfoArgs) -> Result<()> {
    let config = args.model.config()?;
    let device = Device::flex();
    let model = config.init(Phase::Regression, &device);
    let s = config.input_size;
    println!(
        "SPMKD at S = {s}, k = {}, f = {}, decoder width {}",
        config.keypoints, config.features, config.decoder_width
    );
    println!(
        "{:<10} {:>12} {:>14} {:>12}",
        "part", "parameters", "MACs/frame", "GFLOPs"
    );
    for (name, params, macs) in [
        (
            "encoder",
            model.encoder.num_params() + model.fuser.num_params(),
            model.encoder.macs(),
        ),
        ("decoder", model.decoder.num_params(), model.decoder.macs()),
    ] {
        println!(
            "{name:<10} {params:>12} {macs:>14} {:>12.4}",
            2.0 * macs as f64 / 1e9
        );
    }
    if s == 256 {
        println!(
            "paper (S = 256, k = 128): encoder 0.613 GFLOPs, 0.07 M parameters; the reference code measures 0.613 G MACs and 138,400 parameters"
        );
    }
    Ok(())
}
