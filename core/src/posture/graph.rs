//! The graph a posture model sees of a frame (one node per keypoint), and its answers as
//! probabilities and a class: the same functions for `spmkdposture` and the training tools.

use super::Posture;
use crate::schema::Keypoint;

/// Values per node before the keypoint's encoder features: pressure, x / width, y / height,
/// confidence.
pub const BASE_FEATURES: usize = 4;

/// Appends one frame's graph to `out`: per keypoint its pressure, x / `width`, y / `height`
/// (sensor coordinates over the grid, so mats of different widths share one scale, and a
/// rescaled pose gives the same graph), confidence, then its `features` (`k x f` row by row).
///
/// # Panics
/// If `features` is not a whole number of values per keypoint.
pub fn nodes(
    keypoints: &[Keypoint],
    features: &[f32],
    width: u32,
    height: u32,
    out: &mut Vec<f32>,
) {
    let f = if keypoints.is_empty() {
        0
    } else {
        features.len() / keypoints.len()
    };
    assert_eq!(f * keypoints.len(), features.len(), "nodes: features");
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    for (i, k) in keypoints.iter().enumerate() {
        out.extend_from_slice(&[k.pressure, k.x / w, k.y / h, k.confidence]);
        out.extend_from_slice(&features[i * f..(i + 1) * f]);
    }
}

/// Probabilities from a posture model's logits (softmax).
pub fn probabilities(logits: &[f32]) -> Vec<f32> {
    let mut p = logits.to_vec();
    softmax(&mut p);
    p
}

/// Logits to probabilities in place.
pub fn softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in values.iter_mut() {
        *v = (*v - max).exp();
    }
    let sum: f32 = values.iter().sum();
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// The most probable posture (classes in the order of [`Posture::ALL`]).
pub fn most_probable(probabilities: &[f32]) -> Posture {
    let best = probabilities
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 { (i, p) } else { best }
        })
        .0;
    Posture::ALL[best.min(Posture::ALL.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_hold_pressure_position_over_the_grid_confidence_and_features() {
        let k = [
            Keypoint {
                x: 16.0,
                y: 32.0,
                confidence: 0.5,
                pressure: 0.25,
            },
            Keypoint {
                x: 8.0,
                y: 64.0,
                confidence: 1.0,
                pressure: 0.0,
            },
        ];
        let mut out = vec![];
        nodes(&k, &[1.0, 2.0, 3.0, 4.0], 32, 64, &mut out);
        assert_eq!(
            out,
            [0.25, 0.5, 0.5, 0.5, 1.0, 2.0, 0.0, 0.25, 1.0, 1.0, 3.0, 4.0]
        );
    }

    #[test]
    fn probabilities_sum_to_one_and_pick_the_largest_logit() {
        let p = probabilities(&[1.0, 3.0, -2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(most_probable(&p), Posture::Left);
    }
}
