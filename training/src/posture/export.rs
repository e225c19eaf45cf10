//! ONNX export of a posture graph network (or an ensemble of them), for `spmkdposture`:
//! `[1, k, 4 + f]` nodes to `[1, classes]` logits, with the `spmkd.*` metadata of the encoder
//! whose keypoints it reads.

use anyhow::{Result, bail};
use burn::module::Module;
use burn::prelude::*;
use burn_onnx::export::OnnxExporter;
use spmkd_core::model_meta::ModelMetadata;
use spmkd_core::posture::BASE_FEATURES;

use super::classifier::Gnn;
use super::ensemble::GnnEnsemble;
use super::fit::Classifier;
use super::stacked::StackedSage;
use crate::export::with_metadata;

/// A posture graph network or ensemble as ONNX bytes. `metadata` is the encoder's whose
/// keypoints it reads, with kind `posture` and the classes.
pub fn posture_onnx(
    model: &Classifier,
    metadata: &ModelMetadata,
    device: &Device,
) -> Result<Vec<u8>> {
    let nodes = BASE_FEATURES + metadata.features;
    let sample = Tensor::<3>::zeros([1, metadata.keypoints, nodes], device);
    let exporter = OnnxExporter::new();
    let onnx = match model.valid() {
        Classifier::Graph(g) => exporter.export(&g, sample, |g: &Gnn, x| g.forward(x)),
        // GraphSAGE members as one network, each layer a single operator for all of them.
        Classifier::Ensemble(e) => match StackedSage::new(&e) {
            Some(s) => exporter.export(&s, sample, |s: &StackedSage, x| s.forward(x)),
            None => exporter.export(&e, sample, |e: &GnnEnsemble, x| e.forward(x)),
        },
        Classifier::Image(_) => bail!("the raw-image baseline has no spmkdposture model"),
    }
    .map_err(|e| anyhow::anyhow!("exporting the posture model: {e}"))?;
    with_metadata(onnx.as_bytes(), metadata)
}
