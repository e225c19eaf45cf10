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

use std::collections::VecDeque;

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

/// How far the median of a stretch's (agreement turned) - (agreement as laid) must lie from 0
/// for [`HeadFootCheck`] to decide. Chosen on validation data only: on experiment-i S9..S10
/// (laid right) every frame's difference lies below -0.06, on experiment-ii S1..S4 as recorded
/// (head at the last row) every one above +0.03, their stretches' medians beyond +-0.15
/// (docs/RESULTS.md, "Head and foot without labels").
pub const HEAD_FOOT_MARGIN: f32 = 0.05;

/// The element message `spmkdpose` posts when [`HeadFootCheck`] finds a mat turned head to
/// foot, and its fields.
pub mod message {
    pub const NAME: &str = "spmkd-orientation";
    /// The orientation the frames were laid by (a name of
    /// [`crate::orientation::Orientation`]).
    pub const ORIENTATION: &str = "orientation";
    /// The orientation to set instead: the same turned half way round.
    pub const SUGGESTED: &str = "suggested";
    /// The stretch's median of (agreement turned) - (agreement as laid), float.
    pub const EVIDENCE: &str = "evidence";
    /// Occupied frames the stretch spanned, uint.
    pub const FRAMES: &str = "frames";
    /// The running time of the frame that decided, `GstClockTime`.
    pub const RUNNING_TIME: &str = "running-time";
}

/// What [`HeadFootCheck`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeadFoot {
    /// The frames lie as the encoder learned.
    AsLaid,
    /// The frames read better turned half way round: the mat lies head to foot. `evidence` is
    /// the stretch's median of (agreement turned) - (agreement as laid).
    Turned { evidence: f32 },
}

/// Whether a mat lies head to foot, from the layout evidence of a stretch of occupied frames:
/// each frame's agreement as laid against its agreement turned half way round. The two read the
/// same encoder's layout, so a frame's own posture (a fetal curl agrees less with the reference
/// whichever way it lies) cancels out; only which way is better remains. Decided once, on the
/// median over the last `frames` frames, when it lies beyond [`HEAD_FOOT_MARGIN`] from 0; until
/// then every frame counts.
#[derive(Debug, Clone)]
pub struct HeadFootCheck {
    frames: usize,
    window: VecDeque<f32>,
    decided: bool,
}

impl HeadFootCheck {
    /// A check over stretches of `frames` frames (0: never checks).
    pub fn new(frames: usize) -> Self {
        Self {
            frames,
            window: VecDeque::with_capacity(frames),
            decided: frames == 0,
        }
    }

    /// Whether frames are still wanted (not yet decided).
    pub fn wants(&self) -> bool {
        !self.decided
    }

    /// Starts again (another mat, another model).
    pub fn reset(&mut self) {
        *self = Self::new(self.frames);
    }

    /// Takes one occupied frame's agreement as laid and turned half way round; the finding, once,
    /// when the stretch decides.
    pub fn push(&mut self, as_laid: f32, turned: f32) -> Option<HeadFoot> {
        let difference = turned - as_laid;
        if self.decided || !difference.is_finite() {
            return None;
        }
        if self.window.len() == self.frames {
            self.window.pop_front();
        }
        self.window.push_back(difference);
        if self.window.len() < self.frames {
            return None;
        }
        let mut sorted: Vec<f32> = self.window.iter().copied().collect();
        sorted.sort_unstable_by(f32::total_cmp);
        let median = sorted[sorted.len() / 2];
        let finding = if median > HEAD_FOOT_MARGIN {
            HeadFoot::Turned { evidence: median }
        } else if median < -HEAD_FOOT_MARGIN {
            HeadFoot::AsLaid
        } else {
            return None;
        };
        self.decided = true;
        Some(finding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_decides_once_and_an_unclear_one_waits() {
        let mut check = HeadFootCheck::new(5);
        assert!(check.wants());
        // Four frames that read better turned: not yet a stretch.
        for _ in 0..4 {
            assert_eq!(check.push(0.6, 0.8), None);
        }
        let found = check.push(0.6, 0.85);
        assert!(
            matches!(found, Some(HeadFoot::Turned { evidence }) if (evidence - 0.2).abs() < 1e-5),
            "{found:?}"
        );
        assert!(!check.wants());
        assert_eq!(check.push(0.6, 0.8), None, "once only");
        // Laid right: decided, nothing to say.
        let mut check = HeadFootCheck::new(3);
        let found: Vec<_> = (0..3).filter_map(|_| check.push(0.8, 0.6)).collect();
        assert_eq!(found, [HeadFoot::AsLaid]);
        // Between the margins it keeps watching; the later frames decide.
        let mut check = HeadFootCheck::new(3);
        for _ in 0..10 {
            assert_eq!(check.push(0.7, 0.72), None);
        }
        assert!(check.wants());
        let found: Vec<_> = (0..3).filter_map(|_| check.push(0.6, 0.9)).collect();
        assert_eq!(found.len(), 1);
        check.reset();
        assert!(check.wants());
        assert!(!HeadFootCheck::new(0).wants());
    }

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
