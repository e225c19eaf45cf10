//! Keypoints of recorded frames by the Burn model, through spmkd-core's preprocessing and
//! decoding: the numbers `spmkdpose` must give for the same frames with ONNX Runtime.

use burn::prelude::*;
use spmkd_core::keypoints::{KEYPOINT_VALUES, decode};
use spmkd_core::orientation::Orientation;
use spmkd_core::preprocess::{Letterbox, preprocess_framed_into};
use spmkd_core::schema::{Keypoint, PoseRecord, SCHEMA_VERSION};

use crate::model::Efd;

/// The keypoints of one `width x height` frame laid by `orientation` before the model, in the
/// frame's own cells, as `spmkdpose orientation` gives them (`model` in validation mode;
/// `body_centred`: the model takes its input framed on the body,
/// [`crate::model::EfdConfig::body_centred`]).
pub fn frame_keypoints(
    model: &Efd,
    body_centred: bool,
    orientation: Orientation,
    frame: &[u16],
    width: usize,
    height: usize,
    device: &Device,
) -> Vec<Keypoint> {
    let size = model.encoder.input_size;
    let mut laid = Vec::new();
    let (laid_width, laid_height) = orientation.apply(frame, width, height, &mut laid);
    let mut normalized = Vec::new();
    let mut input = vec![0.0; size * size];
    let letterbox = preprocess_framed_into(
        &laid,
        &Letterbox::new(laid_width, laid_height, size),
        body_centred,
        &mut normalized,
        &mut Vec::new(),
        &mut input,
    );
    let encoded = model.encode(Tensor::<4>::from_data(
        TensorData::new(input, [1, 1, size, size]),
        device,
    ));
    let raw: Vec<f32> = encoded
        .keypoints
        .into_data()
        .try_to_vec()
        .expect("f32 keypoints");
    let confidence: Vec<f32> = encoded
        .confidence
        .into_data()
        .try_to_vec()
        .expect("f32 confidence");
    debug_assert_eq!(raw.len(), confidence.len() * KEYPOINT_VALUES);
    let mut out = Vec::new();
    decode(&raw, &confidence, &letterbox, &normalized, &mut out);
    spmkd_core::keypoints::to_stream(&mut out, orientation, width, height);
    out
}

/// The JSON record of a frame's keypoints as the plugin writes it (no timing: the Burn model's
/// time is not the plugin's; no features: only the keypoints are compared).
pub fn record(
    model_id: &str,
    (width, height): (usize, usize),
    orientation: Orientation,
    keypoints: Vec<Keypoint>,
) -> PoseRecord {
    PoseRecord {
        schema: SCHEMA_VERSION,
        pts_ns: None,
        duration_ns: None,
        running_time_ns: None,
        width: width as u32,
        height: height as u32,
        model: model_id.to_owned(),
        inference_us: 0,
        stale: false,
        quality: None,
        confidence_reference: None,
        layout: None,
        layout_ramp: None,
        orientation,
        occupied: None,
        posture: None,
        monitor: None,
        keypoints,
        features: Vec::new(),
    }
}
