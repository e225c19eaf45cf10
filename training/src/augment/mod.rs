//! Label-free augmentation of raw pressure frames (issue 14): what another mat, mattress,
//! sensor or person would do to a frame, drawn at random per frame. Neither CRWT phase needs a
//! label, so the encoder can see far more variety than labelled data allow.
//!
//! A frame goes through, in order: the mat ([`mat`]: its columns resampled to another count),
//! the geometry ([`geometry`]: per-axis scale, rotation, shift, left-right flip, the head-foot
//! extent cropped or padded) and the sensor ([`sensor`]: gain, gamma, noise, dead and saturated
//! cells, coarse quantisation). The result is a raw frame of possibly another width, which
//! `spmkd_core::preprocess` then normalizes and letterboxes as it does any frame: the model
//! sees what the plugin would make of such a mat.
//!
//! Every draw comes from a seeded generator, so a run (and its resume) sees the same frames.

pub mod geometry;
pub mod mat;
pub mod sensor;

use burn::config::Config;
use rand::rngs::StdRng;

/// Which augmentations, and how strong. Each family can be switched off for ablation; the
/// strengths are the ranges draws come from.
#[derive(Config, Debug, PartialEq)]
pub struct AugmentConfig {
    /// Geometry: per-axis scale, rotation, shifts, flips, head-foot crop/pad.
    #[config(default = true)]
    pub geometry: bool,
    /// Sensor: gain, gamma, noise, dead and saturated cells, quantisation.
    #[config(default = true)]
    pub sensor: bool,
    /// Mat: resampling the columns to another count.
    #[config(default = true)]
    pub mat: bool,
    /// Per-axis scale drawn from `1 +- scale`.
    #[config(default = 0.2)]
    pub scale: f32,
    /// Rotation drawn from `+- rotation` degrees.
    #[config(default = 5.0)]
    pub rotation: f32,
    /// Shift drawn from `+- shift` of the frame's width and height.
    #[config(default = 0.1)]
    pub shift: f32,
    /// Probability of a left-right flip.
    #[config(default = 0.5)]
    pub flip: f32,
    /// Rows cropped from or padded to the head and foot ends, up to this share of the height.
    #[config(default = 0.1)]
    pub head_foot: f32,
    /// Gain drawn from `1 +- gain`.
    #[config(default = 0.3)]
    pub gain: f32,
    /// Gamma drawn from `[1 / (1 + gamma), 1 + gamma]`.
    #[config(default = 0.4)]
    pub gamma: f32,
    /// Additive noise, standard deviation up to this share of the frame's peak.
    #[config(default = 0.02)]
    pub noise: f32,
    /// Share of the cells that read 0 (dead), drawn up to this.
    #[config(default = 0.02)]
    pub dead: f32,
    /// Share of the cells that read the peak (saturated), drawn up to this.
    #[config(default = 0.005)]
    pub saturated: f32,
    /// Probability of quantising to a coarse scale (like 0..100 against 0..1000).
    #[config(default = 0.3)]
    pub quantize: f32,
    /// Column counts drawn from (narrowest, widest).
    #[config(default = "(24, 36)")]
    pub columns: (usize, usize),
}

impl AugmentConfig {
    /// Everything off: frames pass unchanged.
    pub fn none() -> Self {
        Self::new()
            .with_geometry(false)
            .with_sensor(false)
            .with_mat(false)
    }

    pub fn any(&self) -> bool {
        self.geometry || self.sensor || self.mat
    }
}

/// A raw frame: `width x height` values, rows packed.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrame {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

/// `frame` as another mat, position, person and sensor might have shown it.
pub fn augment(frame: &RawFrame, config: &AugmentConfig, rng: &mut StdRng) -> RawFrame {
    let mut out = frame.clone();
    if config.mat {
        out = mat::resample_columns(&out, mat::draw_columns(config, out.width, rng));
    }
    if config.geometry {
        out = geometry::transform(&out, &geometry::draw(config, rng));
    }
    if config.sensor {
        sensor::apply(&mut out.values, &sensor::draw(config, rng), rng);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn body() -> RawFrame {
        let (width, height) = (32, 64);
        let values = (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                let d = ((x - 16.0) / 6.0).powi(2) + ((y - 30.0) / 20.0).powi(2);
                if d < 1.0 { 500.0 * (1.0 - d) } else { 0.0 }
            })
            .collect();
        RawFrame {
            width,
            height,
            values,
        }
    }

    #[test]
    fn nothing_switched_on_changes_nothing() {
        let f = body();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(augment(&f, &AugmentConfig::none(), &mut rng), f);
    }

    #[test]
    fn the_same_seed_gives_the_same_frame_and_the_values_stay_sane() {
        let f = body();
        let config = AugmentConfig::new();
        let a = augment(&f, &config, &mut StdRng::seed_from_u64(7));
        let b = augment(&f, &config, &mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        let mut widths = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let g = augment(&f, &config, &mut StdRng::seed_from_u64(seed));
            assert_eq!(g.values.len(), g.width * g.height);
            assert!((51..=77).contains(&g.height), "{}", g.height);
            assert!((24..=36).contains(&g.width), "{}", g.width);
            assert!(g.values.iter().all(|v| v.is_finite() && *v >= 0.0));
            assert!(
                g.values.iter().any(|&v| v > 0.0),
                "the body is gone (seed {seed})"
            );
            widths.insert(g.width);
        }
        assert!(widths.len() > 5, "widths drawn: {widths:?}");
    }
}
