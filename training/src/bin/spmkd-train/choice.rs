//! Which model a command uses: a run's phase-2 checkpoint (read, never written), or a freshly
//! initialized one of a given shape.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use clap::Args;
use spmkd_training::model::{Efd, EfdConfig, Phase};
use spmkd_training::train::{Run, TrainingConfig, run_version};

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
    /// An adapted run's adaptation (`spmkd.adapted_on`).
    pub adapted_on: Option<String>,
    /// The run's configuration (`None`: untrained).
    pub training: Option<TrainingConfig>,
}

impl ModelChoice {
    pub fn load(&self, device: &Device) -> Result<Chosen> {
        let (model, config, version, trained_on, adapted_on, training) = match &self.run {
            Some(dir) => {
                let run = Run::open_existing(dir)?;
                let model = run.load(Phase::Regression, device)?;
                let c = &run.config;
                (
                    model,
                    c.model.clone(),
                    run_version(&c.model, dir),
                    c.trained_on(),
                    c.adapted_on(None),
                    Some(c.clone()),
                )
            }
            None => {
                let config = self.model.config()?;
                device.seed(self.seed);
                let model = config.init(Phase::Regression, device);
                let version =
                    run_version(&config, Path::new(&format!("untrained-seed{}", self.seed)));
                (
                    model,
                    config,
                    version,
                    "nothing (untrained)".to_owned(),
                    None,
                    None,
                )
            }
        };
        let version = self.version.clone().unwrap_or(version);
        Ok(Chosen {
            model: model.valid(),
            config,
            version,
            trained_on,
            adapted_on,
            training,
        })
    }
}
