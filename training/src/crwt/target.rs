//! Phase 1's target: which pixels carry pressure.

use burn::prelude::*;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;

/// Normalized readings above this are pressure. PmatData's unloaded cells read 0 and sensor
/// noise stays below 2 % of a frame's maximum.
pub const THRESHOLD: f32 = 0.02;

/// The pressure mask of normalized inputs `[B, 1, S, S]`, as 0.0 / 1.0: threshold, then a 5x5
/// mean filter, then a majority vote (mean >= 0.5). The filter removes isolated noisy cells
/// and fills pinholes inside the body, so the mask is the body's silhouette rather than the
/// sensor's noise.
pub fn pressure_mask(input: Tensor<4>) -> Tensor<4> {
    let above = input.greater_elem(THRESHOLD).float();
    let mean = avg_pool2d(
        above,
        AvgPoolOptions::new([5, 5])
            .with_stride([1, 1])
            .with_padding([2, 2])
            .with_count_include_pad(true),
    );
    mean.greater_equal_elem(0.5).float()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(size: usize, f: impl Fn(usize, usize) -> f32) -> Tensor<4> {
        let data: Vec<f32> = (0..size * size).map(|i| f(i % size, i / size)).collect();
        Tensor::from_data(TensorData::new(data, [1, 1, size, size]), &Device::flex())
    }

    fn at(mask: &[f32], size: usize, x: usize, y: usize) -> f32 {
        mask[y * size + x]
    }

    #[test]
    fn silhouette_without_noise_or_pinholes() {
        // A 10x10 body with a pinhole at (7, 7), and an isolated noisy cell at (1, 1).
        let input = map(16, |x, y| {
            let body = (3..13).contains(&x) && (3..13).contains(&y) && (x, y) != (7, 7);
            if body {
                0.6
            } else if (x, y) == (1, 1) {
                0.9
            } else {
                0.0
            }
        });
        let mask: Vec<f32> = pressure_mask(input).into_data().try_to_vec().unwrap();
        assert_eq!(at(&mask, 16, 7, 7), 1.0, "pinhole filled");
        assert_eq!(at(&mask, 16, 1, 1), 0.0, "noise removed");
        assert_eq!(at(&mask, 16, 5, 9), 1.0, "body kept");
        assert_eq!(at(&mask, 16, 14, 14), 0.0, "background");
    }
}
