//! Few-shot: a trained posture network fitted further to a new mat on a volunteer's few
//! labelled graphs and their mirror images (what `spmkd-train calibrate` does to the posture
//! model). A few epochs at a small learning rate: the network keeps what ten people on
//! experiment-i taught it and learns how this mat shows the volunteer's postures.

use anyhow::Result;
use burn::prelude::*;
use spmkd_core::dataset::Mat;
use spmkd_core::posture::Posture;

use super::fit::{Classifier, FitConfig, fit};
use super::graphs::GraphSet;

#[derive(Config, Debug)]
pub struct FewShotConfig {
    #[config(default = 10)]
    pub epochs: usize,
    #[config(default = 1e-4)]
    pub learning_rate: f64,
    #[config(default = 8)]
    pub batch_size: usize,
    #[config(default = 42)]
    pub seed: u64,
}

/// Graphs (`keypoints x node_features` values each) with their labels, as a [`GraphSet`].
pub fn graph_set(
    keypoints: usize,
    node_features: usize,
    graphs: impl IntoIterator<Item = (Vec<f32>, Posture)>,
) -> GraphSet {
    let mut set = GraphSet {
        keypoints,
        node_features,
        ..GraphSet::default()
    };
    let variant = set.variant("volunteer");
    for (nodes, label) in graphs {
        debug_assert_eq!(nodes.len(), keypoints * node_features);
        set.nodes.extend_from_slice(&nodes);
        set.labels.push(label);
        set.subjects.push(0);
        set.mats.push(Mat::Air);
        set.variants.push(variant);
    }
    set
}

/// `model` (on the autodiff `device`) trained further on `graphs`; returned for inference.
pub fn fine_tune(
    model: Classifier,
    graphs: &GraphSet,
    config: &FewShotConfig,
    device: &Device,
) -> Result<Classifier> {
    let fit_config = FitConfig::new()
        .with_epochs(config.epochs)
        .with_learning_rate(config.learning_rate)
        .with_batch_size(config.batch_size)
        .with_seed(config.seed);
    Ok(fit(model, graphs, &fit_config, device)?.valid())
}

/// The heads (the last layer, graph embedding to logits) of every member of a graph network.
#[derive(Module, Debug)]
pub struct Heads {
    pub heads: Vec<burn::nn::Linear>,
}

fn members(model: &Classifier) -> Result<Vec<&super::classifier::Gnn>> {
    match model {
        Classifier::Graph(g) => Ok(vec![g]),
        Classifier::Ensemble(e) => Ok(e.members.iter().collect()),
        Classifier::Image(_) => anyhow::bail!("the raw-image baseline is not fine-tuned"),
    }
}

/// Only the heads of `model` (plain device) refitted on `graphs`, every layer before them (and
/// its batch norms) as it was: the members' logits averaged as the ensemble reads them, the
/// cross-entropy on the graphs plus `pull` times the squared distance of the heads' weights from
/// where they started. `start` is the same model on the autodiff `device` (its heads train).
pub fn fine_tune_heads(
    model: Classifier,
    start: &Classifier,
    graphs: &GraphSet,
    config: &FewShotConfig,
    pull: f32,
    device: &Device,
) -> Result<Classifier> {
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
    use burn::tensor::activation::log_softmax;
    let plain = Device::flex();
    let all: Vec<usize> = (0..graphs.len()).collect();
    let nodes = graphs.node_tensor(&all, &plain);
    let embedded: Vec<Tensor<2>> = members(&model)?
        .iter()
        .map(|m| Tensor::from_data(m.embed(nodes.clone()).into_data(), device))
        .collect();
    let mut heads = Heads {
        heads: members(start)?.iter().map(|m| m.head.clone()).collect(),
    };
    let initial: Vec<Tensor<2>> = heads
        .heads
        .iter()
        .map(|h| h.weight.val().detach())
        .collect();
    let classes = 3;
    let mut one_hot = vec![0.0f32; graphs.len() * classes];
    for (i, label) in graphs.labels.iter().enumerate() {
        one_hot[i * classes + label.index()] = 1.0;
    }
    let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [graphs.len(), classes]), device);
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let n = heads.heads.len() as f32;
    for _ in 0..config.epochs {
        let logits = heads
            .heads
            .iter()
            .zip(&embedded)
            .map(|(h, e)| h.forward(e.clone()))
            .reduce(|a, b| a + b)
            .expect("a network has a head")
            / n;
        let fit = (log_softmax(logits, 1) * one_hot.clone())
            .sum_dim(1)
            .mean()
            .neg();
        let stay = heads
            .heads
            .iter()
            .zip(&initial)
            .map(|(h, w0)| (h.weight.val() - w0.clone()).powi_scalar(2).sum())
            .reduce(|a, b| a + b)
            .expect("a network has a head");
        let loss = fit + stay * pull;
        let grads = GradientsParams::from_grads(loss.backward(), &heads);
        heads = optim.step(config.learning_rate, heads, grads);
    }
    let trained = heads.valid().heads;
    Ok(match model {
        Classifier::Graph(mut g) => {
            g.head = trained.into_iter().next().expect("one head");
            Classifier::Graph(g)
        }
        Classifier::Ensemble(mut e) => {
            for (m, h) in e.members.iter_mut().zip(trained) {
                m.head = h;
            }
            Classifier::Ensemble(e)
        }
        Classifier::Image(c) => Classifier::Image(c),
    })
}
