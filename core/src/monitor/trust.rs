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
/// - layout: the fallback for encoders without their own `spmkd.layout_ramp`
///   ([`fit_layout_ramp`] chooses one at export): from an agreement of 0.60 to 0.86, what it
///   chose for spmkd-augmented-2 (whose weights spmkd-default-3 carries), whose reconstruction
///   and confidence hardly tell a turned mat from a right one.
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

/// `spmkdposture`'s default `min-trust`: the operating point chosen on validation (docs/RESULTS.md
/// "Trust"), and the level [`fit_layout_ramp`] keeps right frames above. A double, as the
/// element's property is.
pub const DEFAULT_MIN_TRUST: f64 = 0.37;

/// The most frames laid right that [`fit_layout_ramp`] lets fall below min-trust.
const RAMP_MISSES: f32 = 0.01;

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
    /// The encoder's `spmkd.layout_ramp`; `None`: [`TRUST_SCALE`]'s.
    pub layout_ramp: Option<(f32, f32)>,
}

/// The trust of one frame in `[0, 1]`: 0 when no one is on the mat, otherwise the geometric
/// mean of the evidence there is (reconstruction quality, mean keypoint confidence relative to
/// the model's reference, layout agreement), each mapped through [`TRUST_SCALE`] (the layout
/// through the encoder's own ramp when it has one). A frame with none gets 1: nothing speaks
/// against it.
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
        evidence
            .layout
            .map(|l| ramp(l, evidence.layout_ramp.unwrap_or(TRUST_SCALE.layout))),
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

/// An encoder's layout ramp, fitted on `sets` of frames laid as in training (`spmkd-train
/// export` and `adapt` give it the frames the layout reference is measured on; each set one way
/// of measuring them, e.g. with the decoder's quality and without; the first set's
/// layouts place the top): the ramp reaches 1 at the median agreement of the first set and
/// starts at the highest agreement, in steps of 0.01, at which the layout evidence costs no more
/// than 1 % of the frames of any set: puts them below `min_trust` where full layout evidence
/// would leave them above (a frame its other evidence already condemns is not the ramp's to
/// save). `None` when no frame has a layout or none could be saved.
pub fn fit_layout_ramp(sets: &[Vec<Evidence>], min_trust: f32) -> Option<(f32, f32)> {
    let mut layouts: Vec<f32> = sets
        .first()?
        .iter()
        .filter_map(|e| e.layout)
        .filter(|l| l.is_finite())
        .collect();
    if layouts.is_empty() {
        return None;
    }
    layouts.sort_by(f32::total_cmp);
    let with_ramp = |e: &Evidence, layout_ramp| {
        trust(
            true,
            &Evidence {
                layout_ramp: Some(layout_ramp),
                ..*e
            },
        )
    };
    let saveable: Vec<Vec<&Evidence>> = sets
        .iter()
        .map(|set| {
            set.iter()
                .filter(|e| e.layout.is_some())
                // Full layout evidence: a ramp that every agreement tops.
                .filter(|e| with_ramp(e, (-2.0, -1.0)) >= min_trust)
                .collect()
        })
        .collect();
    if saveable.iter().all(Vec::is_empty) {
        return None;
    }
    // In hundredths, as the ramp is written.
    let top = (layouts[layouts.len() / 2] * 100.0).round() as i32;
    let hi = top as f32 / 100.0;
    ((-100..top).rev())
        .map(|bottom| (bottom as f32 / 100.0, hi))
        .find(|&ramp| {
            saveable.iter().all(|frames| {
                let lost = frames
                    .iter()
                    .filter(|e| with_ramp(e, ramp) < min_trust)
                    .count();
                lost as f32 <= RAMP_MISSES * frames.len() as f32
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN_TRUST: f32 = DEFAULT_MIN_TRUST as f32;

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
                layout_ramp: None,
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
            layout_ramp: None,
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
                    layout_ramp: None,
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

    #[test]
    fn an_encoders_own_layout_ramp_replaces_the_fallback() {
        let kp = keypoints(1.0);
        let laid = |layout, layout_ramp| {
            trust(
                true,
                &Evidence {
                    keypoints: &kp,
                    layout: Some(layout),
                    layout_ramp,
                    ..Default::default()
                },
            )
        };
        // 0.62: a quarter up the ramp 0.6 .. 0.68, near the foot of the fallback 0.60 .. 0.86.
        assert!((laid(0.62, Some((0.6, 0.68))) - 0.5).abs() < 1e-5);
        assert!(laid(0.62, None) < 0.3);
    }

    /// Frames with full confidence and the given layouts.
    fn laid<'a>(layouts: &[f32], kp: &'a [Keypoint]) -> Vec<Evidence<'a>> {
        layouts
            .iter()
            .map(|&l| Evidence {
                keypoints: kp,
                layout: Some(l),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn the_fitted_ramp_tops_at_the_median_and_keeps_all_but_one_percent_above_min_trust() {
        let kp = keypoints(1.0);
        // With full confidence, trust is the square root of the layout evidence.
        let fit = |outliers: usize| {
            let mut layouts = vec![0.9; 100 - outliers];
            layouts.extend(vec![0.0; outliers]);
            fit_layout_ramp(&[laid(&layouts, &kp)], MIN_TRUST).unwrap()
        };
        // One frame in a hundred may fall below min-trust: the ramp starts just under the top.
        assert_eq!(fit(1), (0.89, 0.9));
        // Two may not: the ramp must start low enough to lift an agreement of 0 to min-trust,
        // sqrt(-lo / (0.9 - lo)) >= 0.37, lo <= -0.1427..: the highest hundredth is -0.15.
        assert_eq!(fit(2), (-0.15, 0.9));
        let trusted = |l: f32| {
            trust(
                true,
                &Evidence {
                    keypoints: &kp,
                    layout: Some(l),
                    layout_ramp: Some(fit(2)),
                    ..Default::default()
                },
            )
        };
        assert!(trusted(0.0) >= MIN_TRUST && trusted(-0.01) < MIN_TRUST);
    }

    #[test]
    fn every_set_is_held_to_the_rule_and_no_layout_fits_nothing() {
        let sharp = keypoints(1.0);
        let vague = keypoints(0.55);
        let layouts: Vec<f32> = (0..100).map(|i| 0.6 + i as f32 * 0.003).collect();
        let alone = fit_layout_ramp(&[laid(&layouts, &sharp)], MIN_TRUST).unwrap();
        // Weaker confidence in a second set of the same frames asks for a lower start.
        let both =
            fit_layout_ramp(&[laid(&layouts, &sharp), laid(&layouts, &vague)], MIN_TRUST).unwrap();
        assert_eq!(alone.1, both.1, "the top comes from the first set");
        assert!(both.0 < alone.0, "{both:?} against {alone:?}");
        let unlaid = vec![Evidence {
            keypoints: &sharp,
            ..Default::default()
        }];
        assert_eq!(fit_layout_ramp(&[unlaid], MIN_TRUST), None);
        assert_eq!(fit_layout_ramp(&[], MIN_TRUST), None);
        // Confidence so low that no layout ramp saves the frames.
        let hopeless = keypoints(0.1);
        assert_eq!(
            fit_layout_ramp(&[laid(&layouts, &hopeless)], MIN_TRUST),
            None
        );
    }

    #[test]
    fn frames_the_other_evidence_condemns_do_not_pull_the_ramp_down() {
        let sharp = keypoints(1.0);
        let hopeless = keypoints(0.1);
        let mut frames = laid(&[0.9; 99], &sharp);
        // Two frames laid nothing like the reference, which no layout ramp could save.
        frames.extend(laid(&[0.0, 0.0], &hopeless));
        assert_eq!(fit_layout_ramp(&[frames], MIN_TRUST), Some((0.89, 0.9)));
    }
}
