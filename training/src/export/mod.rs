//! ONNX export of a trained EFD: the encoder (with the fuser) and the decoder as two models,
//! each carrying the `spmkd.*` metadata of docs/DESIGN.md and the data attribution.
//!
//! - encoder: `input [1, 1, S, S]` (preprocessed by spmkd-core) -> `keypoints [1, k, 3]`
//!   (value, x, y; x, y as fractions of S), `confidence [1, k]`, `fused [1, k, 2f]`;
//! - decoder: `fused [1, k, 2f]` -> `map [1, 1, S, S]` in `[0, 1]` (the phase-2 sigmoid included).
//!
//! Batch norms run on their running statistics (the module is exported in validation mode), so
//! a frame's keypoints never depend on another frame.

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::prelude::*;
use burn_onnx::export::OnnxExporter;
use onnx_ir::{Message, ModelProto};
use spmkd_core::keypoints::KEYPOINT_VALUES;
use spmkd_core::model_meta::{ModelKind, ModelMetadata};
use spmkd_core::monitor::trust::{DEFAULT_MIN_TRUST, Evidence, fit_layout_ramp};
use spmkd_core::pmat::ATTRIBUTION;
use spmkd_core::preprocess::normalization_name;
use spmkd_core::schema::Keypoint;
use spmkd_core::ssim::Ssim;

mod graph;
pub mod hard_swish;
pub mod scaling;
pub mod soft_argmax;

pub use soft_argmax::Rewritten;

use crate::crwt::regression_map;
use crate::data::FrameSet;
use crate::model::{Decoder, Efd, EfdConfig, Encoder, Fuser};

/// The encoder half on its own, so its ONNX file carries none of the decoder's weights.
#[derive(Module, Debug)]
struct KeypointNet {
    encoder: Encoder,
    fuser: Fuser,
}

/// The metadata of a model of `kind` exported from `config`.
pub fn metadata(
    config: &EfdConfig,
    kind: ModelKind,
    version: &str,
    trained_on: &str,
) -> ModelMetadata {
    ModelMetadata {
        kind,
        input_size: config.input_size,
        keypoints: config.keypoints,
        features: config.features,
        normalization: normalization_name(config.is_body_centred()).to_owned(),
        classes: Vec::new(),
        version: version.to_owned(),
        trained_on: trained_on.to_owned(),
        adapted_on: None,
        confidence_reference: None,
        layout_reference: None,
        layout_ramp: None,
        orientation: Default::default(),
        calibrated_on: None,
    }
}

/// Adds `metadata` as `metadata_props` and the attribution as the model's doc string.
pub fn with_metadata(onnx: &[u8], metadata: &ModelMetadata) -> Result<Vec<u8>> {
    let mut model =
        ModelProto::parse_from_bytes(onnx).context("the exporter's ONNX does not parse")?;
    for (key, value) in metadata.to_props() {
        model.metadata_props.retain(|e| e.key != key);
        model.metadata_props.push(Default::default());
        let entry = model.metadata_props.last_mut().expect("just pushed");
        entry.key = key.to_owned();
        entry.value = value;
    }
    model.doc_string = format!(
        "spmkd {} model. Trained on data: {ATTRIBUTION}",
        metadata.kind
    );
    model.producer_name = "spmkd-train".to_owned();
    Ok(model.write_to_bytes()?)
}

/// What [`optimize`] changed in a graph.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Optimized {
    /// h-swish activations now one `HardSwish` node each.
    pub hard_swish: usize,
    /// The fuser's operations rewritten (an encoder's; a decoder has none).
    pub fuser: Rewritten,
}

/// The exporter's graph made faster to run, computing the same: h-swish as one `HardSwish` node
/// (see [`hard_swish`]) and the fuser's soft-argmax in `Softmax`, `ReduceMax` and `MatMul` (see
/// [`soft_argmax`]). Metadata and everything else in the model are kept. Running it on its own
/// result changes nothing.
pub fn optimize(onnx: &[u8]) -> Result<(Vec<u8>, Optimized)> {
    let mut model = ModelProto::parse_from_bytes(onnx).context("the ONNX model does not parse")?;
    let hard_swish = hard_swish::fuse(&mut model)?;
    let fuser = soft_argmax::rewrite(&mut model)?;
    Ok((model.write_to_bytes()?, Optimized { hard_swish, fuser }))
}

/// The encoder graph (encoder + fuser) as ONNX bytes.
pub fn encoder_onnx(model: &Efd, metadata: &ModelMetadata, device: &Device) -> Result<Vec<u8>> {
    let (onnx, _) = optimize(&encoder_graph(model, metadata, device)?)?;
    with_metadata(&onnx, metadata)
}

/// The encoder graph as Burn's exporter writes it, before [`optimize`] and without metadata
/// (what `encoder_onnx` starts from; for comparisons).
pub fn encoder_graph(model: &Efd, metadata: &ModelMetadata, device: &Device) -> Result<Vec<u8>> {
    let net = KeypointNet {
        encoder: model.encoder.valid(),
        fuser: model.fuser.valid(),
    };
    let s = metadata.input_size;
    let sample = Tensor::<4>::zeros([1, 1, s, s], device);
    let onnx = OnnxExporter::new()
        .export(&net, sample, |m: &KeypointNet, x| {
            let e = Efd::encode_with(&m.encoder, &m.fuser, x);
            (e.keypoints, e.confidence, e.fused)
        })
        .map_err(|e| anyhow::anyhow!("exporting the encoder: {e}"))?;
    Ok(onnx.as_bytes().to_vec())
}

/// The decoder graph (fused keypoints to the `[0, 1]` map) as ONNX bytes.
pub fn decoder_onnx(model: &Efd, metadata: &ModelMetadata, device: &Device) -> Result<Vec<u8>> {
    let decoder = model.decoder.valid();
    let sample = Tensor::<3>::zeros([1, metadata.keypoints, 2 * metadata.features], device);
    let onnx = OnnxExporter::new()
        .export(&decoder, sample, |d: &Decoder, fused| {
            regression_map(d.forward(fused))
        })
        .map_err(|e| anyhow::anyhow!("exporting the decoder: {e}"))?;
    with_metadata(onnx.as_bytes(), metadata)
}

/// What an exported model says about where it came from (its `spmkd.*` metadata beyond the
/// shape).
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub version: String,
    pub trained_on: String,
    /// An adaptation (`spmkd-train adapt`).
    pub adapted_on: Option<String>,
    /// [`TrustReferences`] on the frames the model was trained or adapted on.
    pub references: TrustReferences,
}

/// What `spmkdmonitor`'s trust measures a frame against, measured on the frames an encoder was
/// trained or adapted on: `spmkd.confidence_reference`, `spmkd.layout_reference` and
/// `spmkd.layout_ramp`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustReferences {
    /// The median over the frames of the mean keypoint confidence.
    pub confidence: Option<f32>,
    /// Each keypoint's mean standardized row ([`spmkd_core::layout::reference`]).
    pub layout: Option<Vec<f32>>,
    /// Where the layout evidence rises from 0 to 1 for this encoder
    /// ([`spmkd_core::monitor::trust::fit_layout_ramp`] at the default min-trust, over the same
    /// frames with the decoder's quality and without, as `spmkdpose quality=true` and `false`
    /// give them).
    pub layout_ramp: Option<(f32, f32)>,
}

/// Frames per forward pass while measuring.
const CHUNK: usize = 64;

/// [`TrustReferences`] of `model` over `frames`.
pub fn trust_references(model: &Efd, frames: &FrameSet, device: &Device) -> TrustReferences {
    let indices: Vec<usize> = (0..frames.len()).collect();
    let size = model.encoder.input_size;
    let side = size as f32;
    let mut ssim = Ssim::default();
    // Each frame's keypoints on the model grid (layout agreement standardizes the rows per
    // frame, so the letterbox's shift and scale to the sensor grid change nothing) and the
    // SSIM of its reconstruction, as spmkdpose computes it.
    let mut poses: Vec<Vec<Keypoint>> = Vec::with_capacity(frames.len());
    let mut qualities: Vec<Option<f32>> = Vec::with_capacity(frames.len());
    for chunk in indices.chunks(CHUNK) {
        let input = frames.batch(chunk, device);
        let encoded = model.encode(input.clone());
        let map = regression_map(model.decoder.forward(encoded.fused));
        let (Ok(raw), Ok(confidence), Ok(map), Ok(input)) = (
            encoded.keypoints.into_data().try_to_vec::<f32>(),
            encoded.confidence.into_data().try_to_vec::<f32>(),
            map.into_data().try_to_vec::<f32>(),
            input.into_data().try_to_vec::<f32>(),
        ) else {
            return TrustReferences::default();
        };
        let k = confidence.len() / chunk.len();
        for (i, confidence) in confidence.chunks_exact(k).enumerate() {
            poses.push(
                raw[i * k * KEYPOINT_VALUES..][..k * KEYPOINT_VALUES]
                    .chunks_exact(KEYPOINT_VALUES)
                    .zip(confidence)
                    .map(|(v, &confidence)| Keypoint {
                        x: v[1] * side,
                        y: v[2] * side,
                        confidence,
                        pressure: 0.0,
                    })
                    .collect(),
            );
            let cells = size * size;
            qualities.push(ssim.compute(
                &map[i * cells..][..cells],
                &input[i * cells..][..cells],
                size,
                size,
            ));
        }
    }
    let mut means: Vec<f32> = poses
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.iter().map(|k| k.confidence).sum::<f32>() / p.len() as f32)
        .filter(|v| v.is_finite())
        .collect();
    means.sort_by(f32::total_cmp);
    let confidence = means
        .get(means.len() / 2)
        .map(|m| m.clamp(f32::MIN_POSITIVE, 1.0));
    let rows: Vec<Vec<f32>> = poses
        .iter()
        .map(|p| p.iter().map(|k| k.y).collect())
        .collect();
    let layout = spmkd_core::layout::reference(rows.iter().map(Vec::as_slice));
    let layout_ramp = layout.as_deref().and_then(|reference| {
        let evidence = |with_quality: bool| -> Vec<Evidence> {
            poses
                .iter()
                .zip(&qualities)
                .map(|(keypoints, quality)| Evidence {
                    quality: quality.filter(|_| with_quality),
                    keypoints,
                    confidence_reference: confidence,
                    layout: spmkd_core::layout::agreement(keypoints, reference),
                    layout_ramp: None,
                })
                .collect()
        };
        fit_layout_ramp(&[evidence(true), evidence(false)], DEFAULT_MIN_TRUST as f32)
    });
    TrustReferences {
        confidence,
        layout,
        layout_ramp,
    }
}

/// Writes `encoder.onnx` and `decoder.onnx` into `dir`, with `provenance` in their metadata.
pub fn export(
    model: &Efd,
    config: &EfdConfig,
    provenance: &Provenance,
    dir: &Path,
    device: &Device,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (kind, file) in [
        (ModelKind::Encoder, "encoder.onnx"),
        (ModelKind::Decoder, "decoder.onnx"),
    ] {
        let meta = ModelMetadata {
            adapted_on: provenance.adapted_on.clone(),
            confidence_reference: provenance.references.confidence,
            layout_reference: provenance.references.layout.clone(),
            layout_ramp: provenance.references.layout_ramp,
            ..metadata(config, kind, &provenance.version, &provenance.trained_on)
        };
        let bytes = match kind {
            ModelKind::Encoder => encoder_onnx(model, &meta, device)?,
            _ => decoder_onnx(model, &meta, device)?,
        };
        let path = dir.join(file);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
