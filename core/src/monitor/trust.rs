//! How far the models can be trusted on a frame, from what they already give: the SSIM of the
//! decoder's reconstruction (when `spmkdpose` computes it), the keypoints' confidences, how the
//! keypoints lie head to foot against the encoder's reference layout (for encoders that carry
//! one), and whether anyone is on the mat at all.

use crate::schema::Keypoint;

/// Where each piece of evidence maps to 0 and to 1 (linear ramps), chosen on validation
/// (experiment-i S9..S10 as recorded and turned head to foot; docs/RESULTS.md "Trust"):
/// - quality and confidence: from about half-way (an SSIM of 0.5, a mean confidence of 0.4 of
///   the model's reference) to perfect; they separate the two sets for spmkd-default-2 (ROC AUC
///   1.0 each), and `spmkdposture`'s min-trust is the operating point chosen there;
/// - layout: from an agreement of 0.60 (the highest that leaves no more than 1 % of the
///   validation frames as recorded below that min-trust, with the decoder and without) to 0.86
///   (their median), measured for spmkd-augmented-2, whose reconstruction and confidence hardly
///   tell a turned mat from a right one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrustScale {
    pub quality: (f32, f32),
    pub confidence: (f32, f32),
    pub layout: (f32, f32),
}

pub const TRUST_SCALE: TrustScale = TrustScale {
    quality: (0.5, 1.0),
    confidence: (0.4, 1.0),
    layout: (0.60, 0.86),
};

/// What a frame offers to judge it by.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// Reconstruction SSIM, when computed.
    pub quality: Option<f32>,
    /// The keypoints (empty when there is no pose).
    pub keypoints: &'a [Keypoint],
    /// The model's typical mean keypoint confidence on its own training frames
    /// (`spmkd.confidence_reference`; models differ in how sharp their heatmaps are); 1 for a
    /// model without one.
    pub confidence_reference: Option<f32>,
    /// The keypoints' agreement with the encoder's reference layout
    /// ([`crate::layout::agreement`]), for encoders that carry one.
    pub layout: Option<f32>,
}

/// The trust of one frame in `[0, 1]`: 0 when no one is on the mat, otherwise the geometric
/// mean of the evidence there is (reconstruction quality, mean keypoint confidence relative to
/// the model's reference, layout agreement), each mapped through [`TRUST_SCALE`]. A frame with
/// none gets 1: nothing speaks against it.
pub fn trust(occupied: bool, evidence: &Evidence) -> f32 {
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
    let keypoints = evidence.keypoints;
    let confidence = (!keypoints.is_empty()).then(|| {
        let mean = keypoints.iter().map(|k| k.confidence).sum::<f32>() / keypoints.len() as f32;
        let reference = evidence
            .confidence_reference
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(1.0);
        ramp(mean / reference, TRUST_SCALE.confidence)
    });
    let pieces = [
        evidence.quality.map(|q| ramp(q, TRUST_SCALE.quality)),
        confidence,
        evidence.layout.map(|l| ramp(l, TRUST_SCALE.layout)),
    ];
    let (product, count) = pieces
        .into_iter()
        .flatten()
        .fold((1.0f32, 0), |(p, n), v| (p * v, n + 1));
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

    fn t(quality: Option<f32>, keypoints: &[Keypoint], reference: Option<f32>) -> f32 {
        trust(
            true,
            &Evidence {
                quality,
                keypoints,
                confidence_reference: reference,
                layout: None,
            },
        )
    }

    #[test]
    fn trust_is_the_geometric_mean_of_the_evidence_there_is() {
        let everything = Evidence {
            quality: Some(1.0),
            keypoints: &keypoints(1.0),
            confidence_reference: None,
            layout: Some(1.0),
        };
        assert_eq!(trust(false, &everything), 0.0, "an empty mat");
        assert_eq!(trust(true, &everything), 1.0);
        assert_eq!(t(None, &[], None), 1.0, "nothing speaks against it");
        assert!((t(Some(0.75), &[], None) - 0.5).abs() < 1e-6);
        assert!((t(None, &keypoints(0.7), None) - 0.5).abs() < 1e-6);
        // 0.5 and 0.125: geometric mean 0.25.
        assert!((t(Some(0.75), &keypoints(0.475), None) - 0.25).abs() < 1e-6);
        assert_eq!(
            t(Some(0.2), &keypoints(0.9), None),
            0.0,
            "one piece at zero decides"
        );
        assert_eq!(t(Some(f32::NAN), &[], None), 0.0);
    }

    #[test]
    fn a_layout_turned_over_takes_the_trust_away() {
        let laid = |layout| {
            trust(
                true,
                &Evidence {
                    quality: Some(1.0),
                    keypoints: &keypoints(1.0),
                    confidence_reference: None,
                    layout: Some(layout),
                },
            )
        };
        assert_eq!(laid(0.9), 1.0, "laid as in training");
        assert_eq!(laid(-0.8), 0.0, "upside down");
        // Half-way up the ramp: the cube root of one half.
        let half = (TRUST_SCALE.layout.0 + TRUST_SCALE.layout.1) / 2.0;
        assert!((laid(half) - 0.5f32.cbrt()).abs() < 1e-5);
        assert_eq!(laid(f32::NAN), 0.0);
    }

    #[test]
    fn confidence_counts_relative_to_the_models_reference() {
        // A model whose heatmaps are broad (typical confidence 0.1) at its typical confidence
        // is trusted fully; at 0.07 (0.7 of it) half, as a sharp model at 0.7.
        assert!((t(None, &keypoints(0.1), Some(0.1)) - 1.0).abs() < 1e-6);
        assert!((t(None, &keypoints(0.07), Some(0.1)) - 0.5).abs() < 1e-5);
        assert_eq!(t(None, &keypoints(0.1), None), 0.0);
        // A nonsense reference counts as none.
        assert_eq!(
            t(None, &keypoints(0.7), Some(f32::NAN)),
            t(None, &keypoints(0.7), None)
        );
    }
}
