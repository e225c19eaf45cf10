//! A posture graph network (or ensemble) saved so that it can be trained further: its Burn
//! record (`classifier.bpk`) and the shape it was made with (`classifier.json`), beside each
//! other in a posture run. `spmkd-train calibrate` fine-tunes it on a volunteer's frames.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;

use super::classifier::GnnConfig;
use super::ensemble::GnnEnsemble;
use super::fit::Classifier;

/// The record's file name in a posture run.
pub const RECORD: &str = "classifier.bpk";
/// The shape's file name in a posture run.
pub const SHAPE: &str = "classifier.json";

/// The shape of a saved graph network: its members' config and how many there are.
#[derive(Config, Debug)]
pub struct ClassifierShape {
    pub gnn: GnnConfig,
    /// 1: one network ([`Classifier::Graph`]); more: an ensemble.
    #[config(default = 1)]
    pub members: usize,
}

impl ClassifierShape {
    /// A fresh classifier of this shape.
    pub fn init(&self, device: &Device) -> Result<Classifier> {
        match self.members {
            0 => bail!("a classifier shape with no member"),
            1 => Ok(Classifier::Graph(self.gnn.init(device))),
            n => Ok(Classifier::Ensemble(GnnEnsemble::new(
                (0..n).map(|_| self.gnn.init(device)).collect(),
            ))),
        }
    }
}

/// Saves `model` and its `shape` into the posture run `dir`.
pub fn save(dir: &Path, model: &Classifier, shape: &ClassifierShape) -> Result<()> {
    let path = dir.join(RECORD);
    model
        .clone()
        .save_file(&path)
        .map_err(|e| anyhow::anyhow!("saving {}: {e:?}", path.display()))?;
    let path = dir.join(SHAPE);
    shape
        .save(&path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Where a model directory keeps the posture run its `posture.onnx` was exported from: its
/// `posture/` (as `adapt` writes it and `models/default` ships it), when that holds both files.
pub fn beside(models: &Path) -> Option<PathBuf> {
    let dir = models.join("posture");
    (dir.join(RECORD).is_file() && dir.join(SHAPE).is_file()).then_some(dir)
}

/// Loads the classifier saved in the posture run `dir`.
pub fn load(dir: &Path, device: &Device) -> Result<Classifier> {
    let path = dir.join(SHAPE);
    let shape = ClassifierShape::load(&path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let path = dir.join(RECORD);
    shape
        .init(device)?
        .try_load_file(&path)
        .map_err(|e| anyhow::anyhow!("loading {}: {e:?}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::classifier::GraphKind;

    #[test]
    fn an_ensemble_saved_loads_with_the_same_outputs() {
        let device = Device::flex();
        let shape = ClassifierShape::new(
            GnnConfig::new(GraphKind::Sage, 6)
                .with_hidden(vec![8, 4])
                .with_graph_norm(true),
        )
        .with_members(2);
        let model = shape.init(&device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &model, &shape).unwrap();
        let loaded = load(dir.path(), &device).unwrap();
        let nodes = Tensor::<3>::from_floats(
            [[
                [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                [0.9, 0.1, 0.4, 0.2, 0.3, 0.8],
                [0.5, 0.7, 0.2, 0.6, 0.1, 0.3],
            ]],
            &device,
        );
        let forward = |m: &Classifier| match m {
            Classifier::Ensemble(e) => e.forward(nodes.clone()),
            _ => panic!("an ensemble of two"),
        };
        forward(&loaded).into_data().assert_approx_eq::<f32>(
            &forward(&model).into_data(),
            burn::tensor::Tolerance::absolute(1e-6),
        );
        assert!(beside(dir.path()).is_none(), "not a model directory");
        std::fs::remove_file(dir.path().join(SHAPE)).unwrap();
        let err = load(dir.path(), &device).unwrap_err().to_string();
        assert!(err.contains(SHAPE), "{err}");
    }
}
