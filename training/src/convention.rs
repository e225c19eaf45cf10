//! The models' convention ([`spmkd_core::orientation`]) checked on PmatData: which column a
//! patient lying on their back has their right side at, told by the lateral recordings.
//!
//! In a lateral posture the knees bend toward the side the patient faces, and lying on their
//! right side a patient faces toward where their right side was when they lay on their back.
//! So on a mat laid as the convention says, the knees of a right-lateral recording lie toward
//! the last column from the hips, those of a left-lateral one toward column 0. The knee shift
//! of a recording is measured on its mean frame, along the body as found on the mat: the load's
//! mean column over 65..85 % of the body's length from the head end, less that over 40..60 %
//! (the hips).

use std::path::Path;

use anyhow::{Context, Result};
use spmkd_core::dataset::{DatasetIndex, Entry, Experiment, Mat};
use spmkd_core::orientation::Orientation;
use spmkd_core::posture::Posture;
use spmkd_core::{Format, Recording};

/// Where the hips and the knees lie along the body, as shares of its length from the head end.
const HIPS: (f32, f32) = (0.40, 0.60);
const KNEES: (f32, f32) = (0.65, 0.85);
/// A row belongs to the body when it carries at least this share of the most loaded row.
const BODY_ROW_SHARE: f32 = 0.02;

/// The rows (first, one past the last) of the hips and of the knees in `frame` (`width x
/// height`, laid in the convention): shares of the body's length from its first loaded row.
/// `None` without a body.
pub fn bands(frame: &[f32], width: usize, height: usize) -> Option<[(usize, usize); 2]> {
    let load = Load::of(frame, width, height)?;
    let rows: Vec<f32> = frame
        .chunks_exact(width)
        .map(|row| row.iter().map(|&v| load.above(v)).sum())
        .collect();
    let most = rows.iter().copied().fold(0.0f32, f32::max);
    if most <= 0.0 {
        return None;
    }
    let body: Vec<usize> = (0..height)
        .filter(|&r| rows[r] >= BODY_ROW_SHARE * most)
        .collect();
    let (top, bottom) = (*body.first()?, *body.last()?);
    let length = (bottom - top + 1) as f32;
    let rows = |(from, to): (f32, f32)| {
        let first = top + (from * length) as usize;
        (
            first,
            (top + (to * length) as usize).max(first + 1).min(height),
        )
    };
    Some([rows(HIPS), rows(KNEES)])
}

/// A frame's readings above its median: an empty mat's reading, whatever the sensor's floor.
struct Load {
    median: f32,
}

impl Load {
    fn of(frame: &[f32], width: usize, height: usize) -> Option<Self> {
        if width == 0 || frame.is_empty() || frame.len() != width * height {
            return None;
        }
        let mut sorted = frame.to_vec();
        sorted.sort_unstable_by(f32::total_cmp);
        Some(Self {
            median: sorted[sorted.len() / 2],
        })
    }

    fn above(&self, v: f32) -> f32 {
        (v - self.median).max(0.0)
    }
}

/// How far (cells, positive toward the last column) the knees lie from the hips in `frame`
/// (`width x height`, laid in the convention): the load's mean column over the knees' rows
/// less that over the hips' ([`bands`]). `None` without a body.
pub fn knee_shift(frame: &[f32], width: usize, height: usize) -> Option<f32> {
    let load = Load::of(frame, width, height)?;
    let [hips, knees] = bands(frame, width, height)?;
    let column = |(first, last): (usize, usize)| -> Option<f32> {
        let (mut mass, mut moment) = (0.0f64, 0.0f64);
        for row in frame[first * width..last * width].chunks_exact(width) {
            for (x, &v) in row.iter().enumerate() {
                let l = f64::from(load.above(v));
                mass += l;
                moment += l * (x as f64 + 0.5);
            }
        }
        (mass > 0.0).then(|| (moment / mass) as f32)
    };
    Some(column(knees)? - column(hips)?)
}

/// The mean of a recording's usable frames, laid by `orientation`; its size.
pub fn mean_frame(path: &Path, orientation: Orientation) -> Result<(Vec<f32>, usize, usize)> {
    let mut recording = Recording::open(path, Format::Auto, None)
        .with_context(|| format!("opening {}", path.display()))?;
    let (w, h) = (recording.width(), recording.height());
    let mut sum = vec![0.0f64; w * h];
    let mut frames = 0usize;
    while let Some(frame) = recording.next_frame()? {
        if frame.artifact.is_some() {
            continue;
        }
        for (s, &v) in sum.iter_mut().zip(frame.frame.data()) {
            *s += f64::from(v);
        }
        frames += 1;
    }
    anyhow::ensure!(frames > 0, "{}: no usable frame", path.display());
    let mean: Vec<f32> = sum.iter().map(|&s| (s / frames as f64) as f32).collect();
    let mut laid = Vec::new();
    let (lw, lh) = orientation.apply(&mean, w, h, &mut laid);
    Ok((laid, lw, lh))
}

/// One subject's lateral recordings on one mat, laid one way.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectCheck {
    pub experiment: Experiment,
    pub subject: u8,
    pub mat: Mat,
    pub orientation: Orientation,
    /// Knee shift of each right- and left-lateral recording (cells toward the last column).
    pub right: Vec<f32>,
    pub left: Vec<f32>,
}

impl SubjectCheck {
    fn mean(v: &[f32]) -> f32 {
        v.iter().sum::<f32>() / v.len().max(1) as f32
    }

    /// How much further toward the last column the right recordings' knees lie than the left
    /// ones': positive when the subject's recordings agree with the convention.
    pub fn separation(&self) -> f32 {
        Self::mean(&self.right) - Self::mean(&self.left)
    }

    pub fn agrees(&self) -> bool {
        !self.right.is_empty() && !self.left.is_empty() && self.separation() > 0.0
    }

    /// Recordings whose own knee shift has the sign the convention says (right: toward the
    /// last column, left: toward column 0), of all.
    pub fn recordings_agreeing(&self) -> (usize, usize) {
        let right = self.right.iter().filter(|&&s| s > 0.0).count();
        let left = self.left.iter().filter(|&&s| s < 0.0).count();
        (right + left, self.right.len() + self.left.len())
    }
}

/// Every subject's lateral recordings of `experiment` (each mat apart), laid by `orientation`.
pub fn check(
    index: &DatasetIndex,
    experiment: Experiment,
    orientation: Orientation,
) -> Result<Vec<SubjectCheck>> {
    let mut checks: Vec<SubjectCheck> = Vec::new();
    let lateral = index
        .entries
        .iter()
        .filter(|e: &&Entry| e.experiment == experiment)
        .filter_map(|e| Some((e, e.posture?)))
        .filter(|(_, p)| *p != Posture::Supine);
    for (entry, posture) in lateral {
        let (frame, w, h) = mean_frame(&entry.path, orientation)?;
        let Some(shift) = knee_shift(&frame, w, h) else {
            continue;
        };
        let at = match checks
            .iter()
            .position(|c| c.subject == entry.subject && c.mat == entry.mat)
        {
            Some(i) => i,
            None => {
                checks.push(SubjectCheck {
                    experiment,
                    subject: entry.subject,
                    mat: entry.mat,
                    orientation,
                    right: Vec::new(),
                    left: Vec::new(),
                });
                checks.len() - 1
            }
        };
        match posture {
            Posture::Right => checks[at].right.push(shift),
            _ => checks[at].left.push(shift),
        }
    }
    checks.sort_by_key(|c| (c.mat, c.subject));
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20 x 40 mat with a body from row 4 to row 35: hips at column 10, knees at `knees`.
    fn body(knees: usize) -> Vec<f32> {
        let (w, h) = (20, 40);
        let mut frame = vec![5.0; w * h];
        for y in 4..36 {
            let centre = if (24..31).contains(&y) { knees } else { 10 };
            for x in centre - 2..=centre + 2 {
                frame[y * w + x] = 100.0;
            }
        }
        frame
    }

    #[test]
    fn the_knees_are_found_where_they_bend() {
        let shift = knee_shift(&body(14), 20, 40).unwrap();
        assert!(shift > 2.0, "{shift}");
        let shift = knee_shift(&body(6), 20, 40).unwrap();
        assert!(shift < -2.0, "{shift}");
        // Mirrored, the same frame's knees bend the other way.
        let mut mirrored = Vec::new();
        Orientation::FlipHorizontal.apply(&body(14), 20, 40, &mut mirrored);
        assert!(knee_shift(&mirrored, 20, 40).unwrap() < -2.0);
        assert_eq!(knee_shift(&[3.0; 800], 20, 40), None);
        assert_eq!(knee_shift(&[3.0; 10], 20, 40), None);
    }
}
