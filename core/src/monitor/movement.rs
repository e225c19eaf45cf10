//! Has the person moved: how much the load moved between two frames, and how far the
//! keypoints moved, weighted by how sure the encoder was of them.

use super::levels::Levels;
use crate::schema::Keypoint;

/// Keypoint displacement that counts as much as a complete change of the load: half the
/// grid's diagonal (36 cells on a 32 x 64 mat; at the default threshold 0.15, 5.4 cells move a
/// frame on keypoints alone). Chosen with the threshold on experiment-i S1..S10: keypoint
/// shifts within a recording reach 3.9 cells at the 99.9th percentile (docs/RESULTS.md
/// "Monitoring").
pub const DISPLACEMENT_SCALE: f32 = 0.5;

/// One frame's movement against the frame before it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MovementSample {
    /// How much of the load moved: half the L1 distance between the two frames' load
    /// distributions (0 still, 1 nothing where it was).
    pub pressure: f32,
    /// Confidence-weighted median keypoint displacement in cells, against the last frame whose
    /// keypoints were computed; `None` on a stale frame (keypoints carried over) or the first.
    pub keypoints: Option<f32>,
    /// The larger of `pressure` and the displacement as a share of [`DISPLACEMENT_SCALE`] of the
    /// diagonal (at most 1): what the movement threshold applies to.
    pub score: f32,
    /// `score` reached the threshold.
    pub moved: bool,
    /// Running time since the last frame that moved (or since the first frame), ns.
    pub still_ns: u64,
}

/// Movement over time.
#[derive(Debug, Clone, Default)]
pub struct Movement {
    threshold: f32,
    /// The last frame's load distribution (sums to 1, or all 0 for an empty frame).
    previous: Vec<f32>,
    /// Whether the last frame had any load; `None` before the first frame.
    previous_loaded: Option<bool>,
    current: Vec<f32>,
    /// The last computed keypoints.
    keypoints: Option<Vec<Keypoint>>,
    last_move_ns: Option<u64>,
}

impl Movement {
    pub fn new(threshold: f32) -> Self {
        Self {
            threshold,
            ..Default::default()
        }
    }

    pub fn set_threshold(&mut self, threshold: f32) {
        self.threshold = threshold;
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.threshold);
    }

    /// Takes a frame (`width` x `height` cells), read with `levels`, with its keypoints when
    /// they were computed for it (not carried over), at `now_ns`. A frame of an empty mat
    /// (`occupied` false) counts as no load at all: its noise does not move.
    pub fn push(
        &mut self,
        frame: &[f32],
        (width, height): (usize, usize),
        levels: &Levels,
        occupied: bool,
        keypoints: Option<&[Keypoint]>,
        now_ns: u64,
    ) -> MovementSample {
        let threshold = levels.contact_threshold();
        let keypoints = keypoints.filter(|_| occupied);
        self.current.clear();
        self.current.extend(frame.iter().map(|&v| {
            if occupied && v > threshold {
                v - levels.floor
            } else {
                0.0
            }
        }));
        let total: f64 = self.current.iter().map(|&v| f64::from(v)).sum();
        let loaded = total > 0.0;
        if loaded {
            let inv = (1.0 / total) as f32;
            self.current.iter_mut().for_each(|v| *v *= inv);
        }
        let pressure = match self.previous_loaded {
            Some(before) if self.previous.len() == self.current.len() => match (before, loaded) {
                (true, true) => {
                    let l1: f64 = self
                        .previous
                        .iter()
                        .zip(&self.current)
                        .map(|(a, b)| f64::from((a - b).abs()))
                        .sum();
                    (0.5 * l1).min(1.0) as f32
                }
                // Someone lay down or got up: all of the load moved.
                (true, false) | (false, true) => 1.0,
                (false, false) => 0.0,
            },
            _ => 0.0,
        };
        std::mem::swap(&mut self.previous, &mut self.current);
        self.previous_loaded = Some(loaded);

        let displacement = keypoints.and_then(|now| {
            let before = self.keypoints.replace(now.to_vec())?;
            weighted_displacement(&before, now)
        });
        let diagonal = ((width * width + height * height) as f32).sqrt();
        let score = match displacement {
            Some(d) if diagonal > 0.0 => {
                pressure.max((d / (DISPLACEMENT_SCALE * diagonal)).min(1.0))
            }
            _ => pressure,
        };
        let moved = score >= self.threshold;
        if moved {
            self.last_move_ns = Some(now_ns);
        }
        let since = *self.last_move_ns.get_or_insert(now_ns);
        MovementSample {
            pressure,
            keypoints: displacement,
            score,
            moved,
            still_ns: now_ns.saturating_sub(since),
        }
    }
}

/// Median displacement of the keypoints, each weighted by the lower of its two confidences (a
/// keypoint the encoder was unsure of in either frame says little); the median, not the mean,
/// so that a few keypoints jumping between two spots are not a movement of the body. `None`
/// when the two sets differ in size or carry no confidence.
fn weighted_displacement(before: &[Keypoint], now: &[Keypoint]) -> Option<f32> {
    if before.len() != now.len() {
        return None;
    }
    let mut moves: Vec<(f32, f32)> = before
        .iter()
        .zip(now)
        .map(|(a, b)| {
            let d = ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt();
            (d, a.confidence.min(b.confidence).max(0.0))
        })
        .filter(|(d, w)| d.is_finite() && w.is_finite() && *w > 0.0)
        .collect();
    let total: f32 = moves.iter().map(|m| m.1).sum();
    if total <= 0.0 {
        return None;
    }
    moves.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut acc = 0.0;
    moves
        .iter()
        .find(|(_, w)| {
            acc += w;
            acc >= 0.5 * total
        })
        .map(|m| m.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const LEVELS: Levels = Levels {
        floor: 0.0,
        noise: 1.0,
        scale: 100.0,
    };

    /// An 8 x 8 mat with a 3 x 3 blob of load 50 whose corner is at column `x`.
    fn blob(x: usize) -> Vec<f32> {
        let mut f = vec![0.0; 64];
        for r in 2..5 {
            for c in x..x + 3 {
                f[r * 8 + c] = 50.0;
            }
        }
        f
    }

    fn kp(x: f32, confidence: f32) -> Keypoint {
        Keypoint {
            x,
            y: 3.0,
            confidence,
            pressure: 0.5,
        }
    }

    #[test]
    fn load_that_moves_is_movement_and_still_time_restarts() {
        let mut m = Movement::new(0.2);
        let first = m.push(&blob(0), (8, 8), &LEVELS, true, None, 0);
        assert_eq!(
            (first.pressure, first.moved, first.still_ns),
            (0.0, false, 0)
        );
        let still = m.push(&blob(0), (8, 8), &LEVELS, true, None, 5 * S);
        assert_eq!(
            (still.pressure, still.moved, still.still_ns),
            (0.0, false, 5 * S)
        );
        // One column over: a third of the load left its cells.
        let shifted = m.push(&blob(1), (8, 8), &LEVELS, true, None, 6 * S);
        assert!((shifted.pressure - 1.0 / 3.0).abs() < 1e-5, "{shifted:?}");
        assert!(shifted.moved);
        assert_eq!(
            m.push(&blob(1), (8, 8), &LEVELS, true, None, 9 * S)
                .still_ns,
            3 * S
        );
        // Getting up moves all of it.
        assert_eq!(
            m.push(&[0.0; 64], (8, 8), &LEVELS, true, None, 10 * S)
                .pressure,
            1.0
        );
        assert_eq!(
            m.push(&[0.0; 64], (8, 8), &LEVELS, true, None, 11 * S)
                .pressure,
            0.0
        );
        // An empty mat's noise is no movement, whatever it does.
        assert_eq!(
            m.push(&blob(3), (8, 8), &LEVELS, false, None, 12 * S)
                .pressure,
            0.0
        );
    }

    #[test]
    fn keypoints_count_by_confidence_and_only_when_fresh() {
        let mut m = Movement::new(0.2);
        let frame = blob(2);
        m.push(
            &frame,
            (8, 8),
            &LEVELS,
            true,
            Some(&[kp(1.0, 0.9), kp(1.0, 0.1)]),
            0,
        );
        // A stale frame: no keypoint term at all (not zero).
        let stale = m.push(&frame, (8, 8), &LEVELS, true, None, S);
        assert_eq!((stale.keypoints, stale.moved), (None, false));
        // The sure keypoint stays, the unsure one jumps 9 cells: the weighted median is 0.
        let fresh = m.push(
            &frame,
            (8, 8),
            &LEVELS,
            true,
            Some(&[kp(1.0, 0.9), kp(10.0, 0.1)]),
            2 * S,
        );
        assert_eq!((fresh.keypoints, fresh.moved), (Some(0.0), false));
        // Both move 2 cells (of a diagonal of 11.3): a movement.
        let moved = m.push(
            &frame,
            (8, 8),
            &LEVELS,
            true,
            Some(&[kp(3.0, 0.9), kp(12.0, 0.1)]),
            3 * S,
        );
        assert_eq!(moved.keypoints, Some(2.0));
        assert!(
            moved.moved
                && (moved.score - (2.0 / (DISPLACEMENT_SCALE * 128f32.sqrt())).min(1.0)).abs()
                    < 1e-4
        );
    }
}
