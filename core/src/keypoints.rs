//! From the encoder's outputs to keypoints on the sensor grid: one conversion for the plugin
//! (ONNX Runtime outputs) and the training tools (Burn outputs), so both report the same
//! numbers for the same frame.

use crate::orientation::Orientation;
use crate::preprocess::{Letterbox, bilinear};
use crate::schema::Keypoint;

/// Values per keypoint in the encoder's `keypoints [1, k, 3]` output: value, x, y.
pub const KEYPOINT_VALUES: usize = 3;

/// Decodes one frame's keypoints into `out` (cleared first).
///
/// - `raw`: `k x 3` (value, x, y), x and y as fractions of the model input side S;
/// - `confidence`: `k` peaks of the spatial softmax;
/// - `letterbox`: how the frame sat in the model input;
/// - `normalized`: the frame after [`crate::preprocess::normalize`], `W x H`, for the pressure
///   under each keypoint (bilinear at the keypoint; 0 outside the mat).
///
/// # Panics
/// If the slice lengths disagree with each other or with the letterbox.
pub fn decode(
    raw: &[f32],
    confidence: &[f32],
    letterbox: &Letterbox,
    normalized: &[f32],
    out: &mut Vec<Keypoint>,
) {
    assert_eq!(raw.len(), confidence.len() * KEYPOINT_VALUES, "decode: raw");
    let (w, h) = (letterbox.src_width, letterbox.src_height);
    assert_eq!(normalized.len(), w * h, "decode: normalized frame");
    let side = letterbox.size as f32;
    out.clear();
    out.extend(
        raw.chunks_exact(KEYPOINT_VALUES)
            .zip(confidence)
            .map(|(v, &confidence)| {
                let (x, y) = letterbox.to_sensor(v[1] * side, v[2] * side);
                let inside = (0.0..w as f32).contains(&x) && (0.0..h as f32).contains(&y);
                let pressure = if inside {
                    bilinear(normalized, w, h, x - 0.5, y - 0.5)
                } else {
                    0.0
                };
                Keypoint {
                    x,
                    y,
                    confidence,
                    pressure,
                }
            }),
    );
}

/// `points`, found on a frame laid by `orientation` ([`crate::orientation`]), mapped back to
/// the cells of the `width x height` stream frame they came from.
pub fn to_stream(points: &mut [Keypoint], orientation: Orientation, width: usize, height: usize) {
    if orientation.is_identity() {
        return;
    }
    for k in points {
        (k.x, k.y) = orientation.to_stream(k.x, k.y, width, height);
    }
}

/// Each keypoint's own `f` features into `out` (cleared first), `k x f` row by row: the second
/// half of its `2f` values in the encoder's `fused [1, k, 2f]` output (the first half is the
/// fuser's projection of its value and coordinates).
pub fn own_features(fused: &[f32], features: usize, out: &mut Vec<f32>) {
    out.clear();
    if features == 0 {
        return;
    }
    for node in fused.chunks_exact(2 * features) {
        out.extend_from_slice(&node[features..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_features_are_the_second_half_of_each_fused_row() {
        let fused = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0];
        let mut out = vec![9.0];
        own_features(&fused, 2, &mut out);
        assert_eq!(out, [2.0, 3.0, 12.0, 13.0]);
    }

    #[test]
    fn model_fractions_map_to_sensor_cells() {
        // A 32 x 64 mat in a 64 x 64 input: scale 1, 16 pixels of margin left and right.
        let lb = Letterbox::new(32, 64, 64);
        let mut frame = vec![0.0f32; 32 * 64];
        frame[40 * 32 + 10] = 1.0;
        let raw = [
            0.5,
            26.5 / 64.0,
            40.5 / 64.0, // the centre of cell (row 40, column 10)
            0.1,
            2.0 / 64.0,
            0.5, // in the left margin
        ];
        let mut out = Vec::new();
        decode(&raw, &[0.9, 0.2], &lb, &frame, &mut out);
        assert_eq!(out.len(), 2);
        assert!((out[0].x - 10.5).abs() < 1e-5 && (out[0].y - 40.5).abs() < 1e-5);
        assert_eq!((out[0].confidence, out[0].pressure), (0.9, 1.0));
        assert!(out[1].x < 0.0);
        assert_eq!(out[1].pressure, 0.0);
    }
}
