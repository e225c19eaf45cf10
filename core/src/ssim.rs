//! Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) of two maps in `[0, 1]`: the
//! constants and window shared by the training loss (Burn tensors) and the plugin's
//! reconstruction quality (this plain implementation).
//!
//! Gaussian window of sigma 1.5 (11 taps, as scikit-image's `truncate = 3.5`), K1 = 0.01,
//! K2 = 0.03, data range 1, population (not sample) covariances, averaged over the windows that
//! lie inside the image. `core/tests/ssim.rs` checks it against scikit-image.

pub const SIGMA: f64 = 1.5;
/// Side of the window, in pixels.
pub const WINDOW: usize = 11;
pub const C1: f32 = 0.01 * 0.01;
pub const C2: f32 = 0.03 * 0.03;

/// The normalized 1-D Gaussian; the 2-D window is its outer product with itself.
pub fn gaussian_taps() -> [f32; WINDOW] {
    let r = (WINDOW / 2) as f64;
    let taps: [f64; WINDOW] =
        std::array::from_fn(|i| (-((i as f64 - r).powi(2)) / (2.0 * SIGMA * SIGMA)).exp());
    let sum: f64 = taps.iter().sum();
    taps.map(|t| (t / sum) as f32)
}

/// The normalized `WINDOW x WINDOW` Gaussian, row-major.
pub fn gaussian_window() -> Vec<f32> {
    let taps = gaussian_taps();
    taps.iter()
        .flat_map(|a| taps.iter().map(move |b| a * b))
        .collect()
}

/// Reusable buffers, so a stream computes SSIM frame after frame without allocating.
#[derive(Debug, Default)]
pub struct Ssim {
    /// The five filtered maps (x, y, xx, yy, xy), after the horizontal pass.
    rows: Vec<f32>,
}

impl Ssim {
    /// SSIM of `x` and `y`, both `width x height` row-major. `None` when the image is smaller
    /// than the window (no window lies inside it).
    ///
    /// # Panics
    /// If the slices do not hold `width * height` values.
    pub fn compute(&mut self, x: &[f32], y: &[f32], width: usize, height: usize) -> Option<f32> {
        assert_eq!(x.len(), width * height, "ssim: x");
        assert_eq!(y.len(), width * height, "ssim: y");
        if width < WINDOW || height < WINDOW {
            return None;
        }
        let taps = gaussian_taps();
        let ow = width - WINDOW + 1;
        let oh = height - WINDOW + 1;
        // Separable filter: horizontal pass over every row into `rows` (5 maps of height x ow),
        // then the vertical pass per output pixel.
        self.rows.clear();
        self.rows.resize(5 * height * ow, 0.0);
        let plane = height * ow;
        for r in 0..height {
            let (xr, yr) = (&x[r * width..][..width], &y[r * width..][..width]);
            for c in 0..ow {
                let mut acc = [0.0f32; 5];
                for (t, &w) in taps.iter().enumerate() {
                    let (a, b) = (xr[c + t], yr[c + t]);
                    acc[0] += w * a;
                    acc[1] += w * b;
                    acc[2] += w * a * a;
                    acc[3] += w * b * b;
                    acc[4] += w * a * b;
                }
                for (m, v) in acc.into_iter().enumerate() {
                    self.rows[m * plane + r * ow + c] = v;
                }
            }
        }
        let mut total = 0.0f64;
        for r in 0..oh {
            for c in 0..ow {
                let mut acc = [0.0f32; 5];
                for (t, &w) in taps.iter().enumerate() {
                    for (m, a) in acc.iter_mut().enumerate() {
                        *a += w * self.rows[m * plane + (r + t) * ow + c];
                    }
                }
                let [mx, my, xx, yy, xy] = acc;
                let (vx, vy, cxy) = (xx - mx * mx, yy - my * my, xy - mx * my);
                let s = ((2.0 * mx * my + C1) * (2.0 * cxy + C2))
                    / ((mx * mx + my * my + C1) * (vx + vy + C2));
                total += s as f64;
            }
        }
        Some((total / (ow * oh) as f64) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_normalized_and_symmetric() {
        let w = gaussian_window();
        assert_eq!(w.len(), WINDOW * WINDOW);
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(w[0], w[WINDOW * WINDOW - 1]);
        assert!(w[WINDOW * WINDOW / 2] > w[0]);
    }

    #[test]
    fn identical_maps_give_one_and_small_maps_none() {
        let x: Vec<f32> = (0..16 * 12).map(|i| (i % 7) as f32 / 7.0).collect();
        let s = Ssim::default().compute(&x, &x, 16, 12).unwrap();
        assert!((s - 1.0).abs() < 1e-5, "{s}");
        assert_eq!(Ssim::default().compute(&x[..100], &x[..100], 10, 10), None);
        let flipped: Vec<f32> = x.iter().map(|v| 1.0 - v).collect();
        assert!(Ssim::default().compute(&x, &flipped, 16, 12).unwrap() < 0.0);
    }
}
