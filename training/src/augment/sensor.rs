//! Another sensor: gain, a gamma curve, additive noise, dead and saturated cells, and a coarse
//! scale (a mat that reports 0..100 where PmatData's reports 0..1000 and more).

use rand::RngExt;
use rand::rngs::StdRng;

use super::AugmentConfig;

/// One draw of the sensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensor {
    pub gain: f32,
    pub gamma: f32,
    /// Standard deviation as a share of the peak.
    pub noise: f32,
    /// Shares of the cells that read 0 and the peak.
    pub dead: f32,
    pub saturated: f32,
    /// Levels of the coarse scale, if quantised.
    pub levels: Option<u32>,
}

pub fn draw(config: &AugmentConfig, rng: &mut StdRng) -> Sensor {
    let upto = |rng: &mut StdRng, top: f32| {
        if top > 0.0 {
            rng.random_range(0.0..=top)
        } else {
            0.0
        }
    };
    let gain = if config.gain > 0.0 {
        rng.random_range(1.0 - config.gain..=1.0 + config.gain)
    } else {
        1.0
    };
    let gamma = if config.gamma > 0.0 {
        // Symmetric on a log scale: as likely to lift low readings as to press them down.
        let g = (1.0 + config.gamma).ln();
        rng.random_range(-g..=g).exp()
    } else {
        1.0
    };
    Sensor {
        gain: gain.max(0.01),
        gamma,
        noise: upto(rng, config.noise),
        dead: upto(rng, config.dead),
        saturated: upto(rng, config.saturated),
        levels: rng
            .random_bool(f64::from(config.quantize.clamp(0.0, 1.0)))
            .then(|| rng.random_range(16..=128)),
    }
}

/// A draw from roughly N(0, 1): the sum of four uniforms, scaled (Irwin-Hall), bounded at
/// +-3.5 standard deviations, which is all sensor noise needs.
fn gaussian(rng: &mut StdRng) -> f32 {
    let sum: f32 = (0..4).map(|_| rng.random_range(0.0f32..1.0)).sum();
    (sum - 2.0) * 3.0f32.sqrt()
}

/// Applies `s` to the readings in place. A frame without any reading above 0 stays as it is.
pub fn apply(values: &mut [f32], s: &Sensor, rng: &mut StdRng) {
    let peak = values.iter().copied().fold(0.0f32, f32::max);
    if peak <= 0.0 {
        return;
    }
    let top = peak * s.gain;
    let sd = s.noise * top;
    let step = s.levels.map(|l| top / l as f32);
    for v in values.iter_mut() {
        let mut x = top * (*v / peak).max(0.0).powf(s.gamma);
        if sd > 0.0 {
            x += sd * gaussian(rng);
        }
        let roll = rng.random_range(0.0f32..1.0);
        if roll < s.dead {
            x = 0.0;
        } else if roll < s.dead + s.saturated {
            x = top;
        }
        if let Some(step) = step {
            x = (x / step).round() * step;
        }
        *v = x.clamp(0.0, top);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const PLAIN: Sensor = Sensor {
        gain: 1.0,
        gamma: 1.0,
        noise: 0.0,
        dead: 0.0,
        saturated: 0.0,
        levels: None,
    };

    #[test]
    fn gain_gamma_and_quantisation_do_what_they_say() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut v = vec![0.0, 250.0, 500.0, 1000.0];
        apply(&mut v, &PLAIN, &mut rng);
        assert_eq!(v, [0.0, 250.0, 500.0, 1000.0]);
        apply(
            &mut v,
            &Sensor {
                gain: 0.5,
                gamma: 2.0,
                ..PLAIN
            },
            &mut rng,
        );
        assert_eq!(v, [0.0, 31.25, 125.0, 500.0]);
        let mut q = vec![0.0, 13.0, 49.0, 100.0];
        apply(
            &mut q,
            &Sensor {
                levels: Some(10),
                ..PLAIN
            },
            &mut rng,
        );
        assert_eq!(q, [0.0, 10.0, 50.0, 100.0]);
    }

    #[test]
    fn dead_saturated_and_noise_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut v: Vec<f32> = (0..10_000).map(|i| (i % 100) as f32).collect();
        let s = Sensor {
            noise: 0.05,
            dead: 0.1,
            saturated: 0.1,
            ..PLAIN
        };
        apply(&mut v, &s, &mut rng);
        assert!(v.iter().all(|&x| (0.0..=99.0).contains(&x)));
        let dead = v.iter().filter(|&&x| x == 0.0).count();
        let full = v.iter().filter(|&&x| x == 99.0).count();
        assert!((800..1300).contains(&dead), "{dead}");
        assert!((800..1300).contains(&full), "{full}");
        let mut empty = vec![0.0; 5];
        apply(&mut empty, &s, &mut rng);
        assert_eq!(empty, [0.0; 5]);
    }
}
