//! Options several commands share: where the data is, the model's shape, which phase, and
//! the loading of preprocessed frames.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use spmkd_core::dataset::{DatasetIndex, Entry, Experiment};
use spmkd_core::orientation::Orientation;
use spmkd_training::data::FrameSet;
use spmkd_training::model::{EfdConfig, Phase};
use spmkd_training::progress::Progress;

#[derive(Args, Clone)]
pub struct DataArgs {
    /// The pmatdata folder (default: $SPMKD_DATA, else ../shared/data/pmatdata).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    pub fn index(&self) -> Result<DatasetIndex> {
        let root = match &self.data {
            Some(r) => r.clone(),
            None => DatasetIndex::locate(&std::env::current_dir()?),
        };
        Ok(DatasetIndex::scan(&root)?)
    }
}

/// How the mat of the recordings a command reads lies.
#[derive(Args, Clone, Copy)]
pub struct OrientationArgs {
    /// How the mat of these recordings lies: the transform that brings its frames into the
    /// models' convention (row 0 at the head end; column 0 at the left, the last column at the
    /// right of a patient lying on their back), named as videoflip's video-direction: identity,
    /// 90r, 180, 90l, horiz (columns numbered the other way round), vert, ul-lr, ur-ll; as
    /// `spmkdpose orientation` takes it. Experiment-ii's mat, as recorded: 180.
    #[arg(long, default_value = "identity")]
    pub orientation: Orientation,
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Model input side S (frames are letterboxed into S x S).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Keypoints k.
    #[arg(long, default_value_t = 32)]
    pub keypoints: usize,
    /// Features f per cell.
    #[arg(long, default_value_t = 16)]
    pub features: usize,
    /// Channels of the decoder branches.
    #[arg(long, default_value_t = 16)]
    pub decoder_width: usize,
    /// Ablation: decoder without dilated convolutions.
    #[arg(long)]
    pub no_dilation: bool,
    /// Ablation: decoder without exchange layers.
    #[arg(long)]
    pub no_exchange: bool,
    /// Frame every input on the body: each frame placed in the square with its load, not the
    /// mat, in the middle (issue 14's canonical input; recorded in the model's metadata).
    #[arg(long)]
    pub body_centred: bool,
}

/// The largest model input side: twice the paper's largest (256). Beyond it a model's
/// activations alone outgrow the memory of the machines spmkd runs on (S = 100,000 asked for
/// 10 TB and aborted).
pub const MAX_SIZE: usize = 512;

/// The most keypoints, features or decoder channels.
pub const MAX_WIDTH: usize = 1024;

/// A learning rate: finite, above 0 and at most 1 (`--lr`). A rate that makes the loss
/// non-finite is not caught by this; the training loops stop on it.
pub fn learning_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(lr) if lr.is_finite() && lr > 0.0 && lr <= 1.0 => Ok(lr),
        Ok(lr) => Err(format!("a learning rate above 0 and at most 1, got {lr}")),
        Err(_) => Err(format!("a learning rate such as 5e-4, got {s:?}")),
    }
}

impl ModelArgs {
    pub fn config(&self) -> Result<EfdConfig> {
        if !self.size.is_multiple_of(4) || !(16..=MAX_SIZE).contains(&self.size) {
            bail!(
                "--size must be a multiple of 4 from 16 to {MAX_SIZE} (got {})",
                self.size
            );
        }
        for (name, value) in [
            ("--keypoints", self.keypoints),
            ("--features", self.features),
            ("--decoder-width", self.decoder_width),
        ] {
            if !(1..=MAX_WIDTH).contains(&value) {
                bail!("{name} must be from 1 to {MAX_WIDTH} (got {value})");
            }
        }
        Ok(EfdConfig::new()
            .with_input_size(self.size)
            .with_keypoints(self.keypoints)
            .with_features(self.features)
            .with_decoder_width(self.decoder_width)
            .with_dilation(!self.no_dilation)
            .with_exchange(!self.no_exchange)
            .with_body_centred(Some(self.body_centred)))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    /// Phase 1, transfer, phase 2.
    Both,
    Classification,
    Regression,
}

impl PhaseArg {
    /// The one phase this names; `None` for both.
    pub fn single(self) -> Option<Phase> {
        match self {
            PhaseArg::Both => None,
            PhaseArg::Classification => Some(Phase::Classification),
            PhaseArg::Regression => Some(Phase::Regression),
        }
    }
}

/// A graph network's layer widths as given (`--hidden`, `--posture-hidden`).
pub fn widths(given: Option<&[u16]>) -> Option<Vec<usize>> {
    given.map(|w| w.iter().map(|&w| usize::from(w)).collect())
}

/// `1-10`, `1,3,5`, `11-13,2` or empty.
pub fn parse_subjects(spec: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow::anyhow!("bad subject list {spec:?}: expected e.g. 1-10 or 1,3,5");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u8, u8) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// Frames of `entries` preprocessed as `model` takes them, with a progress bar.
/// Every `every`-th usable frame of `entries`, each laid by `orientation`.
pub fn load(
    entries: &[&Entry],
    model: &EfdConfig,
    every: usize,
    orientation: Orientation,
    what: &str,
) -> Result<FrameSet> {
    let mut bar = Progress::items(
        &format!("loading {what}"),
        entries.len() as u64,
        "recordings",
    );
    let mut set = FrameSet::for_model(model);
    for entry in entries {
        set.add_recording(entry, every, orientation)?;
        bar.inc();
    }
    bar.finish();
    eprintln!(
        "{what}: {} frames from {} recordings",
        set.len(),
        entries.len()
    );
    Ok(set)
}

/// The experiment-i recordings of `subjects`.
pub fn experiment_i<'a>(index: &'a DatasetIndex, subjects: &[u8]) -> Vec<&'a Entry> {
    index
        .entries
        .iter()
        .filter(|e| e.experiment == Experiment::I && subjects.contains(&e.subject))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rates_outside_0_to_1_and_not_numbers_are_refused() {
        assert_eq!(learning_rate("5e-4"), Ok(5e-4));
        assert_eq!(learning_rate("1"), Ok(1.0));
        for bad in ["0", "-1", "1e30", "nan", "inf", "fast"] {
            assert!(learning_rate(bad).is_err(), "{bad}");
        }
    }
}
