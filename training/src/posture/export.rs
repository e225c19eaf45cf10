//! ONNX export of a posture graph network, for `spmkdposture`: `[1, k, 4 + f]` nodes to
//! `[1, classes]` logits, with the `spmkd.*` metadata of the encoder whose keypoints it reads.

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use burn_onnx::export::OnnxExporter;
use spmkd_core::model_meta::ModelMetadata;
use spmkd_core::posture::BASE_FEATURES;

use super::classifier::Gnn;
use crate::export::with_metadata;

/// A posture graph network as ONNX bytes. `metadata` is the encoder's whose keypoints it
/// reads, with kind `posture` and the classes.
pub fn posture_onnx(model: &Gnn, metadata: &ModelMetadata, device: &Device) -> Result<Vec<u8>> {
    let model = model.valid();
    let nodes = BASE_FEATURES + metadata.features;
    let sample = Tensor::<3>::zeros([1, metadata.keypoints, nodes], device);
    let onnx = OnnxExporter::new()
        .export(&model, sample, |g: &Gnn, x| g.forward(x))
        .map_err(|e| anyhow::anyhow!("exporting the posture model: {e}"))?;
    with_metadata(onnx.as_bytes(), metadata)
}
