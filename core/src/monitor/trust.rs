//! How far the models can be trusted on a frame, from what they already give: the SSIM of the
//! decoder's reconstruction (when `spmkdpose` computes it), the keypoints' confidences, and
//! whether anyone is on the mat at all.

use crate::schema::Keypoint;

/// Where each piece of evidence maps to 0 and to 1: linear ramps from about half-way (an SSIM
/// of 0.5, a mean confidence of 0.4 of the model's reference) to perfect. Both separate experiment-i S9..S10 from the
/// same frames turned head to foot almost perfectly (ROC AUC 1.0 each, docs/RESULTS.md
/// "Trust"); the operating point is `spmkdposture`'s min-trust, chosen on that validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrustScale {
    pub quality: (f32, f32),
    pub confidence: (f32, f32),
}

pub const TRUST_SCALE: TrustScale = TrustScale {
    quality: (0.5, 1.0),
    confidence: (0.4, 1.0),
};

/// The trust of one frame in `[0, 1]`: 0 when no one is on the mat, otherwise the geometric
/// mean of the evidence there is (reconstruction quality, mean keypoint confidence), each
/// mapped through [`TRUST_SCALE`]. The confidence is taken relative to `reference`, the model's
/// typical confidence on its own training frames (`spmkd.confidence_reference`; models differ
/// in how sharp their heatmaps are), 1 for a model without one. A frame with neither (no
/// keypoints, no quality) gets 1: nothing speaks against it.
pub fn trust(
    occupied: bool,
    quality: Option<f32>,
    keypoints: &[Keypoint],
    reference: Option<f32>,
) -> f32 {
    if !occupied {
        return 0.0;
    }
    let ramp = |v: f32, (lo, hi): (f32, f32)| {
        if v.is_finite() {
            ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let mut product = 1.0f32;
    let mut count = 0;
    if let Some(q) = quality {
        product *= ramp(q, TRUST_SCALE.quality);
        count += 1;
    }
    if !keypoints.is_empty() {
        let mean = keypoints.iter().map(|k| k.confidence).sum::<f32>() / keypoints.len() as f32;
        let reference = reference
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(1.0);
        product *= ramp(mean / reference, TRUST_SCALE.confidence);
        count += 1;
    }
    match count {
        0 => 1.0,
        n => product.powf(1.0 / n as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypoints(confidence: f32) -> Vec<Keypoint> {
        vec![
            Keypoint {
                x: 1.0,
                y: 1.0,
                confidence,
                pressure: 0.5,
            };
            4
        ]
    }

    #[test]
    fn trust_is_the_geometric_mean_of_the_evidence_there_is() {
        assert_eq!(
            trust(false, Some(1.0), &keypoints(1.0), None),
            0.0,
            "an empty mat"
        );
        assert_eq!(
            trust(true, None, &[], None),
            1.0,
            "nothing speaks against it"
        );
        assert!((trust(true, Some(0.75), &[], None) - 0.5).abs() < 1e-6);
        assert!((trust(true, None, &keypoints(0.7), None) - 0.5).abs() < 1e-6);
        // 0.5 and 0.125: geometric mean 0.25.
        assert!((trust(true, Some(0.75), &keypoints(0.475), None) - 0.25).abs() < 1e-6);
        assert_eq!(
            trust(true, Some(0.2), &keypoints(0.9), None),
            0.0,
            "one piece at zero decides"
        );
        assert_eq!(trust(true, Some(f32::NAN), &[], None), 0.0);
    }

    #[test]
    fn confidence_counts_relative_to_the_models_reference() {
        // A model whose heatmaps are broad (typical confidence 0.1) at its typical confidence
        // is trusted fully; at 0.07 (0.7 of it) half, as a sharp model at 0.7.
        assert!((trust(true, None, &keypoints(0.1), Some(0.1)) - 1.0).abs() < 1e-6);
        assert!((trust(true, None, &keypoints(0.07), Some(0.1)) - 0.5).abs() < 1e-5);
        assert_eq!(trust(true, None, &keypoints(0.1), None), 0.0);
        // A nonsense reference counts as none.
        assert_eq!(
            trust(true, None, &keypoints(0.7), Some(f32::NAN)),
            trust(true, None, &keypoints(0.7), None)
        );
    }
}
