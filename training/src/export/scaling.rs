//! A posture model's answers recalibrated for a new mat (`spmkd-train calibrate`): per class a
//! scale and a bias on its log-probabilities, `z'_c = s_c log p_c + b_c`, appended to the
//! exported graph as `LogSoftmax`, `Mul` and `Add` so that `spmkdposture` runs the calibrated
//! model as it runs any posture model.

use anyhow::{Context, Result, bail};
use onnx_ir::{Message, ModelProto};

use super::graph::{add_floats, int, node, producer};

/// Per-class scale and bias on a posture model's log-probabilities.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scaling {
    pub scale: [f32; 3],
    pub bias: [f32; 3],
}

impl Default for Scaling {
    fn default() -> Self {
        Self {
            scale: [1.0; 3],
            bias: [0.0; 3],
        }
    }
}

/// Log-probabilities below this count as this: a confident model's tiny probabilities would
/// otherwise dominate a fit of a few frames.
const FLOOR: f32 = -20.0;

impl Scaling {
    /// The recalibrated logits of log-probabilities `log_p`.
    pub fn apply(&self, log_p: &[f32; 3]) -> [f32; 3] {
        std::array::from_fn(|c| self.scale[c] * log_p[c].max(FLOOR) + self.bias[c])
    }

    /// The class `apply` makes most probable.
    pub fn class(&self, log_p: &[f32; 3]) -> usize {
        let z = self.apply(log_p);
        (0..3).fold(0, |best, c| if z[c] > z[best] { c } else { best })
    }

    /// The scaling that best explains `samples` (log-probabilities, true class) by mean
    /// cross-entropy, pulled toward the identity by `shrink` (the weight of the squared
    /// distance of the scales from 1 and of the biases from 0): convex, so plain gradient
    /// descent from the identity finds it.
    pub fn fit(samples: &[([f32; 3], usize)], shrink: f32) -> Self {
        let mut s = Self::default();
        if samples.is_empty() {
            return s;
        }
        let n = samples.len() as f32;
        // A step within the curvature's bound (half the largest squared input of the softmax's
        // linear map, plus the pull's), so the descent never overshoots.
        let widest = samples
            .iter()
            .map(|(log_p, _)| 1.0 + log_p.iter().map(|v| v.max(FLOOR).powi(2)).sum::<f32>())
            .fold(0.0f32, f32::max);
        let step = 1.0 / (0.5 * widest + 2.0 * shrink);
        for _ in 0..3000 {
            let (mut gs, mut gb) = ([0.0f32; 3], [0.0f32; 3]);
            for (log_p, truth) in samples {
                let z = s.apply(log_p);
                let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: [f32; 3] = std::array::from_fn(|c| (z[c] - max).exp());
                let total: f32 = e.iter().sum();
                for c in 0..3 {
                    let d = e[c] / total - if c == *truth { 1.0 } else { 0.0 };
                    gs[c] += d * log_p[c].max(FLOOR) / n;
                    gb[c] += d / n;
                }
            }
            for c in 0..3 {
                s.scale[c] -= step * (gs[c] + 2.0 * shrink * (s.scale[c] - 1.0));
                s.bias[c] -= step * (gb[c] + 2.0 * shrink * s.bias[c]);
            }
        }
        s
    }
}

/// The posture model `onnx` with `scaling` appended to its one output (which keeps its name).
pub fn scaled(onnx: &[u8], scaling: &Scaling) -> Result<Vec<u8>> {
    let mut model =
        ModelProto::parse_from_bytes(onnx).context("the posture model does not parse")?;
    let graph = model
        .graph
        .as_mut()
        .context("the posture model has no graph")?;
    if graph.output.len() != 1 {
        bail!(
            "a posture model has one output, this one {}",
            graph.output.len()
        );
    }
    let out = graph.output[0].name.clone();
    let raw = format!("{out}_before_calibration");
    let (at, _) = producer(graph, &out).context("nothing writes the posture model's output")?;
    for o in graph.node[at].output.iter_mut().filter(|o| **o == out) {
        o.clone_from(&raw);
    }
    let (log_p, scaled) = (format!("{out}_log_p"), format!("{out}_scaled"));
    let (scale, bias) = ("calibration_scale", "calibration_bias");
    add_floats(graph, scale, &[1, 3], &scaling.scale);
    add_floats(graph, bias, &[1, 3], &scaling.bias);
    let mut soft = node("LogSoftmax", "calibration_log_p".into(), &[&raw], &[&log_p]);
    soft.attribute.push(int("axis", -1));
    graph.node.push(soft);
    // The floor the fit used: Max with a constant.
    let floor = "calibration_floor";
    add_floats(graph, floor, &[1], &[FLOOR]);
    let floored = format!("{out}_floored");
    graph.node.push(node(
        "Max",
        "calibration_floor".into(),
        &[&log_p, floor],
        &[&floored],
    ));
    graph.node.push(node(
        "Mul",
        "calibration_scale".into(),
        &[&floored, scale],
        &[&scaled],
    ));
    graph.node.push(node(
        "Add",
        "calibration_bias".into(),
        &[&scaled, bias],
        &[&out],
    ));
    Ok(model.write_to_bytes()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fit_moves_a_biased_model_toward_the_truth_and_shrinks_toward_the_identity() {
        // A model that reads supine frames as "left" a little too often.
        let ln = |p: [f32; 3]| p.map(f32::ln);
        let samples = vec![
            (ln([0.40, 0.55, 0.05]), 0),
            (ln([0.45, 0.50, 0.05]), 0),
            (ln([0.80, 0.15, 0.05]), 0),
            (ln([0.10, 0.85, 0.05]), 1),
            (ln([0.05, 0.05, 0.90]), 2),
        ];
        let before = samples
            .iter()
            .filter(|(p, t)| Scaling::default().class(p) == *t)
            .count();
        assert_eq!(before, 3);
        let fit = Scaling::fit(&samples, 0.01);
        let after = samples.iter().filter(|(p, t)| fit.class(p) == *t).count();
        assert_eq!(after, 5, "{fit:?}");
        // A strong pull toward the identity leaves it nearly as it was.
        let held = Scaling::fit(&samples, 100.0);
        assert!(held.bias.iter().all(|b| b.abs() < 0.01), "{held:?}");
        assert_eq!(Scaling::fit(&[], 0.01), Scaling::default());
    }
}
