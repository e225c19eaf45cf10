//! The losses and the metric of both phases.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, sigmoid};

use crate::ssim::ssim;

/// Phase 1: per-pixel cross-entropy of the 2-channel logits `[B, 2, S, S]` against the mask
/// `[B, 1, S, S]` (1 = pressure). Returns the mean over pixels and batch.
pub fn classification_loss(logits: Tensor<4>, mask: Tensor<4>) -> Tensor<1> {
    let log_p = log_softmax(logits, 1);
    let [batch, _, h, w] = log_p.dims();
    let log_none = log_p.clone().narrow(1, 0, 1);
    let log_pressure = log_p.narrow(1, 1, 1);
    let nll = (mask.clone() * log_pressure + (mask.ones_like() - mask) * log_none).neg();
    nll.reshape([batch * h * w]).mean()
}

/// Precision, recall and F-score of the "pressure" class.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FScore {
    pub true_positive: f64,
    pub false_positive: f64,
    pub false_negative: f64,
}

impl FScore {
    pub fn add(&mut self, other: FScore) {
        self.true_positive += other.true_positive;
        self.false_positive += other.false_positive;
        self.false_negative += other.false_negative;
    }

    pub fn precision(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_positive)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }

    /// F1; 1.0 when there is nothing to find and nothing was found.
    pub fn f1(&self) -> f64 {
        let denominator = 2.0 * self.true_positive + self.false_positive + self.false_negative;
        ratio(2.0 * self.true_positive, denominator)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 1.0 }
}

/// Counts for the F-score of phase 1's logits against the mask.
pub fn fscore(logits: Tensor<4>, mask: Tensor<4>) -> FScore {
    let predicted = logits
        .clone()
        .narrow(1, 1, 1)
        .greater(logits.narrow(1, 0, 1))
        .float();
    let sum = |t: Tensor<4>| -> f64 { t.sum().into_scalar::<f32>() as f64 };
    let tp = sum(predicted.clone() * mask.clone());
    FScore {
        true_positive: tp,
        false_positive: sum(predicted) - tp,
        false_negative: sum(mask) - tp,
    }
}

/// Phase 2's map from the decoder's 1-channel output: a sigmoid keeps it in `[0, 1]`, the
/// range of the normalized input it rebuilds.
pub fn regression_map(output: Tensor<4>) -> Tensor<4> {
    sigmoid(output)
}

/// Phase 2: `a * L2 + b * (1 - SSIM)` between the rebuilt map and the input, both `[B, 1, S, S]`.
pub fn regression_loss(map: Tensor<4>, target: Tensor<4>, a: f32, b: f32) -> Tensor<1> {
    let l2 = (map.clone() - target.clone()).powi_scalar(2).mean();
    let ssim = ssim(map, target).mean();
    l2 * a + (ssim.ones_like() - ssim) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(data: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(data, shape), &Device::flex())
    }

    #[test]
    fn cross_entropy_rewards_the_right_class() {
        let mask = tensor(vec![1.0, 0.0], [1, 1, 1, 2]);
        // Channel 0 = no pressure, channel 1 = pressure; pixel 0 is pressure, pixel 1 is not.
        let right = tensor(vec![-5.0, 5.0, 5.0, -5.0], [1, 2, 1, 2]);
        let wrong = tensor(vec![5.0, -5.0, -5.0, 5.0], [1, 2, 1, 2]);
        let l_right: f32 = classification_loss(right, mask.clone()).into_scalar();
        let l_wrong: f32 = classification_loss(wrong, mask).into_scalar();
        assert!(
            l_right < 1e-3 && (l_wrong - 10.0).abs() < 1e-3,
            "{l_right} {l_wrong}"
        );
    }

    #[test]
    fn fscore_counts() {
        // Predictions: pressure at pixels 0, 1; mask: pressure at pixels 1, 2.
        let logits = tensor(vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0], [1, 2, 1, 4]);
        let mask = tensor(vec![0.0, 1.0, 1.0, 0.0], [1, 1, 1, 4]);
        let f = fscore(logits, mask);
        assert_eq!(
            (f.true_positive, f.false_positive, f.false_negative),
            (1.0, 1.0, 1.0)
        );
        assert!((f.f1() - 0.5).abs() < 1e-9);
        assert_eq!(FScore::default().f1(), 1.0);
    }

    #[test]
    fn regression_loss_is_zero_for_a_perfect_map() {
        let data: Vec<f32> = (0..256).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let map = tensor(data.clone(), [1, 1, 16, 16]);
        let target = tensor(data, [1, 1, 16, 16]);
        let same: f32 = regression_loss(map.clone(), target.clone(), 1.0, 1.0).into_scalar();
        let off: f32 = regression_loss(map * 0.5, target, 1.0, 1.0).into_scalar();
        assert!(same.abs() < 1e-5 && off > 0.01, "{same} {off}");
    }
}
