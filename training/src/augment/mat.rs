//! Another mat: the same body seen by a sensor grid of another column count (PmatData's mats
//! have 32 and 27; others have more or fewer), by linear interpolation across the columns.

use rand::RngExt;
use rand::rngs::StdRng;

use super::{AugmentConfig, RawFrame};

/// A column count from the configured range.
pub fn draw_columns(config: &AugmentConfig, _width: usize, rng: &mut StdRng) -> usize {
    let (lo, hi) = config.columns;
    let (lo, hi) = (lo.max(2), hi.max(lo.max(2)));
    rng.random_range(lo..=hi)
}

/// `frame` with its columns resampled to `width` (cell centres mapped onto each other).
pub fn resample_columns(frame: &RawFrame, width: usize) -> RawFrame {
    if width == frame.width || width == 0 || frame.width == 0 {
        return frame.clone();
    }
    let ratio = frame.width as f32 / width as f32;
    let last = frame.width - 1;
    // Per output column: the two source columns and the weight of the second.
    let taps: Vec<(usize, usize, f32)> = (0..width)
        .map(|j| {
            let x = ((j as f32 + 0.5) * ratio - 0.5).clamp(0.0, last as f32);
            let i = x.floor() as usize;
            (i, (i + 1).min(last), x - i as f32)
        })
        .collect();
    let values = frame
        .values
        .chunks_exact(frame.width)
        .flat_map(|row| {
            taps.iter()
                .map(move |&(a, b, t)| row[a] * (1.0 - t) + row[b] * t)
        })
        .collect();
    RawFrame {
        width,
        height: frame.height,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_a_ramp_a_ramp_and_the_same_count_changes_nothing() {
        let f = RawFrame {
            width: 4,
            height: 2,
            values: vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0],
        };
        assert_eq!(resample_columns(&f, 4), f);
        let wide = resample_columns(&f, 8);
        assert_eq!((wide.width, wide.height), (8, 2));
        // Cell centres of the new grid, on the old one: 0.5 * j - 0.25 (clamped at 0 and 3).
        let want = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0];
        for (v, w) in wide.values[..8].iter().zip(want) {
            assert!((v - w).abs() < 1e-6, "{:?}", wide.values);
        }
        let narrow = resample_columns(&f, 2);
        assert_eq!(narrow.values, [0.5, 2.5, 0.5, 2.5]);
    }
}
