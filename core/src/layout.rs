//! How a frame's keypoints lie head to foot compared with how the encoder laid them out on the
//! frames it learned from: evidence that a mat is laid the right way round that survives
//! augmentation.
//!
//! An encoder trained on shifted, scaled and mirrored frames reconstructs a mat laid head to
//! foot about as well as one laid right, and is about as confident on it, so reconstruction
//! quality and confidence no longer tell the two apart. But its keypoints follow the body: on a
//! turned mat the keypoint that sat at the shoulders on its training frames moves towards the
//! other end with them, and the order of the keypoints along the mat's long axis turns over.
//! The encoder's reference layout (`spmkd.layout_reference`) is where each keypoint sat along
//! that axis on its training frames, standardized; a frame's agreement is the correlation of its
//! own standardized rows with it: near 1 laid as in training, lower the more the layout is
//! turned. Standardizing per frame makes it blind to where the body lies and how tall it is,
//! and to the mat's resolution along the axis.

use crate::schema::Keypoint;

/// `values` shifted and scaled to mean 0 and variance 1; `None` when they do not vary (every
/// keypoint on one row: no layout to speak of) or are not finite.
fn standardized(values: impl ExactSizeIterator<Item = f32> + Clone) -> Option<Vec<f32>> {
    let n = values.len() as f32;
    if n < 2.0 {
        return None;
    }
    let mean = values.clone().sum::<f32>() / n;
    let variance = values.clone().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let sd = variance.sqrt();
    (sd.is_finite() && sd > 1e-6).then(|| values.map(|v| (v - mean) / sd).collect())
}

/// The reference layout of an encoder: each keypoint's mean standardized row over `frames`
/// (one slice of keypoint rows per frame, all of one length), standardized again. `None` when
/// no frame has a layout or the frames disagree in length.
pub fn reference<'a>(frames: impl IntoIterator<Item = &'a [f32]>) -> Option<Vec<f32>> {
    let mut sum: Vec<f32> = Vec::new();
    let mut count = 0usize;
    for rows in frames {
        if sum.is_empty() {
            sum = vec![0.0; rows.len()];
        }
        if rows.len() != sum.len() {
            return None;
        }
        if let Some(z) = standardized(rows.iter().copied()) {
            sum.iter_mut().zip(z).for_each(|(s, v)| *s += v);
            count += 1;
        }
    }
    if count == 0 {
        return None;
    }
    standardized(sum.iter().map(|s| s / count as f32))
}

/// The agreement of `keypoints`' rows with `reference` in `[-1, 1]` (1: laid out as the encoder
/// learned; -1: exactly upside down); `None` when the counts differ or the keypoints do not vary
/// along the mat.
pub fn agreement(keypoints: &[Keypoint], reference: &[f32]) -> Option<f32> {
    if keypoints.len() != reference.len() {
        return None;
    }
    let rows = standardized(keypoints.iter().map(|k| k.y))?;
    let correlation =
        rows.iter().zip(reference).map(|(a, b)| a * b).sum::<f32>() / rows.len() as f32;
    Some(correlation.clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypoints(rows: &[f32]) -> Vec<Keypoint> {
        rows.iter()
            .map(|&y| Keypoint {
                x: 10.0,
                y,
                confidence: 0.5,
                pressure: 0.5,
            })
            .collect()
    }

    #[test]
    fn a_frame_as_trained_agrees_and_the_same_frame_turned_disagrees() {
        let frames: [&[f32]; 2] = [&[5.0, 20.0, 40.0, 60.0], &[10.0, 22.0, 35.0, 50.0]];
        let reference = reference(frames).unwrap();
        assert!((reference.iter().sum::<f32>()).abs() < 1e-5);
        // Shifted down the mat and shorter: the same layout.
        let moved = agreement(&keypoints(&[20.0, 28.0, 38.0, 50.0]), &reference).unwrap();
        assert!(moved > 0.98, "{moved}");
        // Head to foot on a 64-row mat.
        let turned = agreement(&keypoints(&[59.0, 44.0, 24.0, 4.0]), &reference).unwrap();
        assert!(turned < -0.98, "{turned}");
        // Keypoints scattered without the order: in between.
        let mixed = agreement(&keypoints(&[30.0, 10.0, 50.0, 20.0]), &reference).unwrap();
        assert!(mixed.abs() < 0.8, "{mixed}");
    }

    #[test]
    fn no_layout_is_no_evidence() {
        let r = reference([&[1.0f32, 2.0, 3.0][..]]).unwrap();
        assert_eq!(agreement(&keypoints(&[7.0, 7.0, 7.0]), &r), None);
        assert_eq!(agreement(&keypoints(&[1.0, 2.0]), &r), None);
        assert_eq!(agreement(&keypoints(&[f32::NAN, 2.0, 3.0]), &r), None);
        assert_eq!(reference([&[4.0f32, 4.0, 4.0][..]]), None);
        assert_eq!(reference([&[1.0f32, 2.0][..], &[1.0, 2.0, 3.0][..]]), None);
    }
}
