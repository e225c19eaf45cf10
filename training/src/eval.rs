//! Evaluation of an EFD model on a frame set: phase 1's F-score, phase 2's L1, L2 and SSIM.

use burn::prelude::*;

use crate::crwt::{self, FScore};
use crate::data::FrameSet;
use crate::model::{Efd, Phase};
use crate::ssim::ssim;

/// Means over the frames of a set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evaluation {
    pub frames: usize,
    /// The training loss of the phase.
    pub loss: f64,
    /// Phase 1: pressure / no pressure classification.
    pub fscore: Option<FScore>,
    /// Phase 2: reconstruction against the input, per pixel (L1, L2) and per frame (SSIM).
    pub l1: f64,
    pub l2: f64,
    pub ssim: f64,
}

/// Evaluates `model` (in validation mode, on a plain device) on every frame of `data`.
pub fn evaluate(
    model: &Efd,
    phase: Phase,
    data: &FrameSet,
    batch_size: usize,
    (l2_weight, ssim_weight): (f32, f32),
    device: &Device,
) -> Evaluation {
    let mut sum = Evaluation::default();
    let mut fscore = FScore::default();
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let n = chunk.len() as f64;
        let input = data.batch(chunk, device);
        let output = model.forward(input.clone()).output;
        let scalar = |t: Tensor<1>| t.into_scalar::<f32>() as f64;
        match phase {
            Phase::Classification => {
                let mask = crwt::pressure_mask(input);
                sum.loss += n * scalar(crwt::classification_loss(output.clone(), mask.clone()));
                fscore.add(crwt::fscore(output, mask));
            }
            Phase::Regression => {
                let map = crwt::regression_map(output);
                let diff = map.clone() - input.clone();
                sum.l1 += n * scalar(diff.clone().abs().mean());
                sum.l2 += n * scalar(diff.powi_scalar(2).mean());
                sum.ssim += scalar(ssim(map.clone(), input.clone()).sum());
                sum.loss += n * scalar(crwt::regression_loss(map, input, l2_weight, ssim_weight));
            }
        }
        sum.frames += chunk.len();
    }
    let n = sum.frames.max(1) as f64;
    Evaluation {
        frames: sum.frames,
        loss: sum.loss / n,
        fscore: (phase == Phase::Classification).then_some(fscore),
        l1: sum.l1 / n,
        l2: sum.l2 / n,
        ssim: sum.ssim / n,
    }
}
