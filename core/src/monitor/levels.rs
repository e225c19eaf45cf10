//! The mat's own levels, estimated from the frames themselves: the noise floor (what an
//! unloaded cell reads), the noise around it, and the scale of a body's load on it.
//!
//! Mats differ: PmatData experiment-i reads exactly 0 where nothing lies and a body peaks in the
//! thousands; experiment-ii's mat sits at about 44 with noise of about 2 and peaks near 1500.
//! Nothing here is a constant of one mat. Each frame gives its low quantiles (even with a person
//! on it, at least a quarter of a bed mat is unloaded) and its 99th percentile; the stream's
//! levels follow them with a short moving average, and the load scale is the highest recent
//! 99th percentile above the floor, decaying slowly so that an empty hour forgets it. What
//! raises the scale is the median of the last [`SCALE_WINDOW`] frames' 99th percentiles, not
//! one frame's: a glitch frame (a row read as 65535) would otherwise set the scale for half an
//! hour and, the contact threshold being a share of it, empty the bed.

/// The levels in the units of the frame's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    /// What an unloaded cell reads.
    pub floor: f32,
    /// The spread of unloaded cells around the floor (a robust standard deviation).
    pub noise: f32,
    /// A body's load above the floor: the recent highest 99th percentile.
    pub scale: f32,
}

/// Noise-floor multiples above which a cell is in contact: with Gaussian noise about 1 cell in
/// 3,000 of an empty mat passes.
const NOISE_MULTIPLE: f32 = 4.0;
/// A cell is never in contact below this share of the load scale: sparse sensor noise of a few
/// units on a mat that reads 0 at rest (experiment-i) has no spread to measure.
const SCALE_SHARE: f32 = 0.02;
/// Frames the moving average of the floor and the noise spans once warmed up.
const AVERAGE_FRAMES: f32 = 16.0;
/// Per-frame decay of the load scale: after an hour of empty mat at 1 Hz it is 3 % of what it was.
const SCALE_DECAY: f32 = 0.999;
/// Frames whose median 99th percentile may raise the load scale: up to 4 outlier frames in a
/// row are outvoted, and a heavier body raises it from its 5th frame (5 s at 1 Hz).
pub const SCALE_WINDOW: usize = 9;

impl Levels {
    /// The value above which a cell counts as in contact.
    pub fn contact_threshold(&self) -> f32 {
        self.floor + (NOISE_MULTIPLE * self.noise).max(SCALE_SHARE * self.scale)
    }

    /// A value as load above the floor, in units of the scale (0 when at or below the floor).
    pub fn load(&self, value: f32) -> f32 {
        if self.scale > 0.0 {
            ((value - self.floor) / self.scale).max(0.0)
        } else {
            0.0
        }
    }
}

/// The stream's levels, updated frame by frame; `reset` when the mat may have changed (caps).
#[derive(Debug, Clone, Default)]
pub struct LevelEstimator {
    levels: Option<Levels>,
    frames: u32,
    scratch: Vec<f32>,
    /// The last frames' 99th percentiles (values, not above the floor), oldest first.
    recent_peaks: std::collections::VecDeque<f32>,
}

impl LevelEstimator {
    /// Forgets the mat (a new stream, new caps).
    pub fn reset(&mut self) {
        self.levels = None;
        self.frames = 0;
        self.recent_peaks.clear();
    }

    /// The median of the recent frames' 99th percentiles, `peak` (this frame's) among them.
    fn median_peak(&mut self, peak: f32) -> f32 {
        if self.recent_peaks.len() == SCALE_WINDOW {
            self.recent_peaks.pop_front();
        }
        self.recent_peaks.push_back(peak);
        let mut sorted = [0.0f32; SCALE_WINDOW];
        let n = self.recent_peaks.len();
        for (to, &from) in sorted.iter_mut().zip(&self.recent_peaks) {
            *to = from;
        }
        let sorted = &mut sorted[..n];
        sorted.sort_unstable_by(f32::total_cmp);
        sorted[n / 2]
    }

    /// Takes one frame's values and returns the levels to read it with. An empty frame leaves
    /// them as they were.
    pub fn update(&mut self, frame: &[f32]) -> Levels {
        let Some(seen) = self.frame_levels(frame) else {
            return self.levels.unwrap_or(Levels {
                floor: 0.0,
                noise: 0.0,
                scale: 0.0,
            });
        };
        self.frames = self.frames.saturating_add(1);
        let peak = self.median_peak(seen.scale + seen.floor);
        let levels = match self.levels {
            None => seen,
            Some(old) => {
                let a = 1.0 / (self.frames as f32).min(AVERAGE_FRAMES);
                let floor = old.floor + a * (seen.floor - old.floor);
                Levels {
                    floor,
                    noise: old.noise + a * (seen.noise - old.noise),
                    scale: (old.scale * SCALE_DECAY).max(peak - floor),
                }
            }
        };
        self.levels = Some(levels);
        levels
    }

    /// One frame's own levels: floor at the 25th percentile, noise from the spread between the
    /// 5th and the 25th (0.97 standard deviations for Gaussian noise) or, where the sensor clips
    /// at zero and that spread vanishes, from the mean deviation of the lower half; scale from
    /// the 99th percentile.
    fn frame_levels(&mut self, frame: &[f32]) -> Option<Levels> {
        let n = frame.len();
        if n == 0 {
            return None;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(frame);
        let (i5, i25, i50, i99) = (n * 5 / 100, n / 4, n / 2, n * 99 / 100);
        // Successive selections, each within the part the last one left: linear time overall.
        let (lower, _, upper) = self.scratch.select_nth_unstable_by(i50, f32::total_cmp);
        let q99 = match i99.checked_sub(i50 + 1) {
            Some(i) if i < upper.len() => *upper.select_nth_unstable_by(i, f32::total_cmp).1,
            _ => frame.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        };
        if lower.is_empty() {
            // One or two cells: nothing to tell noise from load.
            return Some(Levels {
                floor: q99,
                noise: 0.0,
                scale: 0.0,
            });
        }
        let (below, &mut q25, _) = lower.select_nth_unstable_by(i25, f32::total_cmp);
        let q5 = match below.len() {
            0 => q25,
            _ => *below.select_nth_unstable_by(i5, f32::total_cmp).1,
        };
        let floor = q25;
        let spread = (q25 - q5) / 0.97;
        let mean_deviation =
            lower.iter().map(|&x| (x - floor).abs()).sum::<f32>() / lower.len() as f32;
        let noise = spread.max(1.25 * mean_deviation);
        Some(Levels {
            floor,
            noise,
            scale: (q99 - floor).max(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for Gaussian noise (sum of uniforms), for reproducible tests.
    fn noise(seed: u64, n: usize, mean: f32, sd: f32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                let mut acc = 0.0;
                for _ in 0..12 {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    acc += (s >> 40) as f32 / (1u64 << 24) as f32;
                }
                mean + sd * (acc - 6.0)
            })
            .collect()
    }

    #[test]
    fn an_offset_mat_has_its_floor_and_noise_found() {
        // Experiment-ii-like: floor about 44, noise 2, no one on it.
        let mut e = LevelEstimator::default();
        let mut levels = e.update(&noise(1, 64 * 27, 44.0, 2.0));
        for seed in 2..20 {
            levels = e.update(&noise(seed, 64 * 27, 44.0, 2.0));
        }
        assert!((levels.floor - 42.7).abs() < 1.0, "{levels:?}");
        assert!((levels.noise - 2.0).abs() < 0.5, "{levels:?}");
        let above = noise(99, 64 * 27, 44.0, 2.0)
            .iter()
            .filter(|&&v| v > levels.contact_threshold())
            .count();
        assert!(above < 5, "{above} noise cells read as contact");
    }

    #[test]
    fn a_body_on_a_third_of_the_mat_does_not_lift_the_floor() {
        let mut frame = noise(3, 2048, 10.0, 1.0);
        for v in &mut frame[..700] {
            *v += 300.0;
        }
        let levels = LevelEstimator::default().update(&frame);
        assert!(levels.floor < 11.0 && levels.noise < 2.0, "{levels:?}");
        assert!(levels.scale > 250.0, "{levels:?}");
        assert!(levels.load(310.0) > 0.9 && levels.load(5.0) == 0.0);
    }

    #[test]
    fn clipped_sparse_noise_is_not_contact() {
        // Zeros with a sprinkle of isolated small readings, as experiment-i reads where no one
        // lies: no spread to measure, but no cell touches another.
        let frame: Vec<f32> = (0..2048)
            .map(|i| if i % 7 == 0 { (i % 5) as f32 } else { 0.0 })
            .collect();
        let levels = LevelEstimator::default().update(&frame);
        assert_eq!(levels.floor, 0.0);
        let contact = super::super::occupancy::measure(&frame, 32, &levels, 5);
        assert_eq!(contact.area, 0.0, "{levels:?}");
    }

    #[test]
    fn reset_forgets_the_mat_and_empty_frames_change_nothing() {
        let mut e = LevelEstimator::default();
        e.update(&noise(5, 100, 44.0, 2.0));
        let before = e.update(&[]);
        assert!(before.floor > 40.0);
        e.reset();
        let after = e.update(&noise(6, 100, 0.0, 0.5));
        assert!(after.floor < 1.0, "{after:?}");
    }

    #[test]
    fn one_glitch_frame_does_not_set_the_scale_and_a_heavier_body_soon_does() {
        let body = |seed, load: f32| {
            let mut frame = noise(seed, 2048, 10.0, 1.0);
            for v in &mut frame[700..1400] {
                *v += load;
            }
            frame
        };
        let mut e = LevelEstimator::default();
        let mut before = e.update(&body(1, 300.0));
        for seed in 2..60 {
            before = e.update(&body(seed, 300.0));
        }
        // A row read as 65535 (32 cells: more than the 1 % the 99th percentile leaves out).
        let mut glitch = body(60, 300.0);
        for v in &mut glitch[..32] {
            *v = 65535.0;
        }
        let at = e.update(&glitch);
        let after = e.update(&body(61, 300.0));
        for levels in [at, after] {
            assert!(
                (levels.scale - before.scale).abs() < 0.05 * before.scale,
                "{before:?} -> {levels:?}"
            );
        }
        // A heavier body is taken up by its 5th frame at the latest (its 4th here: the glitch
        // frame is still in the window, above the median), not by its first.
        let heavier: Vec<Levels> = (0..5).map(|i| e.update(&body(70 + i, 600.0))).collect();
        assert!(heavier[0].scale < 400.0, "{heavier:?}");
        assert!(heavier[4].scale > 550.0, "{heavier:?}");
    }
}
