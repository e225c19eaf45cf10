//! Which model a command uses: a run's phase-2 checkpoint (read, never written), or a freshly
//! initialized one of a given shape.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use clap::Args;
use spmkd_training::model::{Efd, EfdConfig, Phase};
use spmkd_training::train::Run;

use crate::args::ModelArgs;

#[derive(Args)]
pub struct ModelChoice {
    /// Run whose regression (phase 2) checkpoint to use.
    #[arg(
        long,
        required_unless_present = "untrained",
        conflicts_with = "untrained"
    )]
    run: Option<PathBuf>,
    /// A freshly initialized model of the given shape (for tests of the plugin).
    #[arg(long)]
    untrained: bool,
    #[command(flatten)]
    model: ModelArgs,
    /// Seed of the untrained model's weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Model id written into `spmkd.version` (default: derived from the shape and run).
    #[arg(long)]
    version: Option<String>,
}

/// A chosen model with what its files say about it.
pub struct Chosen {
    pub model: Efd,
    pub config: EfdConfig,
    pub version: String,
    pub trained_on: String,
}

impl ModelChoice {
    pub fn load(&self, device: &Device) -> Result<Chosen> {
        let (model, config, name, trained_on) = match &self.run {
            Some(dir) => {
                let run = Run::open_existing(dir)?;
                let model = run.load(Phase::Regression, device)?;
                let c = &run.config;
                let trained_on = format!(
                    "PmatData experiment-i S{} (every {}th usable frame), CRWT {} + {} epochs, seed {}",
                    c.train_subjects,
                    c.frame_stride,
                    c.classification_epochs,
                    c.regression_epochs,
                    c.seed
                );
                let name = dir
                    .file_name()
                    .map_or("run".into(), |n| n.to_string_lossy().into_owned());
                (model, c.model.clone(), name, trained_on)
            }
            None => {
                let config = self.model.config()?;
                device.seed(self.seed);
                let model = config.init(Phase::Regression, device);
                (
                    model,
                    config,
                    format!("untrained-seed{}", self.seed),
                    "nothing (untrained)".to_owned(),
                )
            }
        };
        let version = self.version.clone().unwrap_or_else(|| {
            format!(
                "spmkd-efd-s{}-k{}-f{}-w{}-{name}",
                config.input_size, config.keypoints, config.features, config.decoder_width
            )
        });
        Ok(Chosen {
            model: model.valid(),
            config,
            version,
            trained_on,
        })
    }
}
