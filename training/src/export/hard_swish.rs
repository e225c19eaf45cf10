//! h-swish as one ONNX `HardSwish` node in an exported graph.
//!
//! Burn's exporter has no HardSwish (nor HardSigmoid or Clip), so the model writes h-swish as
//! `x * (relu(x + 3) - relu(x - 3)) / 6` (`model::conv_norm::Activation::apply`), which exports
//! as seven nodes. ONNX Runtime runs those as seven passes over the tensor, and because its
//! blocked-layout (NCHWc) convolutions cannot take them along, it converts the layout back and
//! forth around each: on the shipped encoder those nodes and conversions were half of a frame's
//! time (docs/BENCHMARKS.md). `HardSwish` (ONNX opset 14) is the same function, which ONNX Runtime
//! fuses into the convolution before it.

use anyhow::{Result, bail};
use onnx_ir::{GraphProto, ModelProto, NodeProto};

use super::graph::{private, producer, remove, scalar};

/// One h-swish found: the indices of its seven nodes (the last is the `Div` that gives its
/// output) and its input.
struct Found {
    nodes: [usize; 7],
    input: String,
}

/// Whether `node` is `op(first, <scalar initializer equal to value>)`.
fn with_scalar(graph: &GraphProto, node: &NodeProto, op: &str, first: &str, value: f32) -> bool {
    node.op_type == op
        && node.input.len() == 2
        && node.input[0] == first
        && scalar(graph, &node.input[1]) == Some(value)
}

/// The h-swish ending in node `div`, if `div` ends one:
/// `Div(Mul(x, Sub(Relu(Add(x, 3)), Relu(Sub(x, 3)))), 6)`.
fn match_at(graph: &GraphProto, div: usize) -> Option<Found> {
    let d = &graph.node[div];
    if d.op_type != "Div"
        || d.input.len() != 2
        || d.output.is_empty()
        || scalar(graph, &d.input[1]) != Some(6.0)
    {
        return None;
    }
    let (mul_at, mul) = producer(graph, &d.input[0])?;
    if mul.op_type != "Mul" || mul.input.len() != 2 {
        return None;
    }
    // Mul is commutative: either input may be x.
    for (x, gate) in [(0, 1), (1, 0)] {
        let (x, gate) = (&mul.input[x], &mul.input[gate]);
        let Some((sub_at, sub)) = producer(graph, gate) else {
            continue;
        };
        if sub.op_type != "Sub" || sub.input.len() != 2 {
            continue;
        }
        let (Some((high_at, high)), Some((low_at, low))) = (
            producer(graph, &sub.input[0]),
            producer(graph, &sub.input[1]),
        ) else {
            continue;
        };
        if high.op_type != "Relu" || low.op_type != "Relu" {
            continue;
        }
        let (Some((add_at, add)), Some((minus_at, minus))) = (
            high.input.first().and_then(|i| producer(graph, i)),
            low.input.first().and_then(|i| producer(graph, i)),
        ) else {
            continue;
        };
        if with_scalar(graph, add, "Add", x, 3.0) && with_scalar(graph, minus, "Sub", x, 3.0) {
            return Some(Found {
                nodes: [add_at, minus_at, high_at, low_at, sub_at, mul_at, div],
                input: x.clone(),
            });
        }
    }
    None
}

/// Replaces every h-swish written out in Burn's seven nodes by one `HardSwish` node and drops
/// the constants only they used. Returns how many were replaced. Only patterns whose
/// intermediate values nothing else reads are replaced, so the graph computes the same.
pub fn fuse(model: &mut ModelProto) -> Result<usize> {
    if !model
        .opset_import
        .iter()
        .any(|o| o.domain.is_empty() && o.version >= 14)
    {
        bail!("HardSwish needs ONNX opset 14 or later");
    }
    let Some(graph) = model.graph.as_mut() else {
        bail!("the ONNX model has no graph");
    };
    let mut found = Vec::new();
    for div in 0..graph.node.len() {
        let Some(f) = match_at(graph, div) else {
            continue;
        };
        // Each intermediate is read only inside the pattern (x - 3 and x + 3 once, the relus
        // once, the gate once, the product once).
        if private(graph, &f.nodes[..6], &[1; 6]) {
            found.push(f);
        }
    }
    let mut drop = vec![false; graph.node.len()];
    for f in &found {
        let div = f.nodes[6];
        let output = graph.node[div].output[0].clone();
        let name = format!("{}_hard_swish", graph.node[div].name);
        let node = &mut graph.node[div];
        *node = NodeProto::new();
        node.op_type = "HardSwish".to_owned();
        node.name = name;
        node.input = vec![f.input.clone()];
        node.output = vec![output];
        for &i in &f.nodes[..6] {
            drop[i] = true;
        }
    }
    remove(graph, &drop);
    Ok(found.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::graph::{assert_well_formed, exported_encoder};
    use crate::model::conv_norm::{Activation, ConvNorm};

    #[test]
    fn every_h_swish_becomes_one_node() {
        let (model, before) = exported_encoder();

        // The network's h-swish activations, counted on the model.
        let e = &model.encoder;
        let units: Vec<&ConvNorm> = std::iter::once(&e.stem)
            .chain(e.blocks.iter().flat_map(|b| {
                b.expand
                    .iter()
                    .chain([&b.depthwise, &b.project])
                    .collect::<Vec<_>>()
            }))
            .collect();
        let expected = units
            .iter()
            .filter(|u| u.activation == Activation::HardSwish)
            .count();
        assert!(expected > 0);

        let mut after = before.clone();
        let fused = fuse(&mut after).expect("fused");
        assert_eq!(fused, expected);
        let (g0, g1) = (
            before.graph.as_ref().unwrap(),
            after.graph.as_ref().unwrap(),
        );
        let count = |g: &GraphProto, op: &str| g.node.iter().filter(|n| n.op_type == op).count();
        assert_eq!(count(g1, "HardSwish"), expected);
        assert_eq!(g1.node.len(), g0.node.len() - 6 * expected);
        // The divisions by 6 were the h-swish's only ones.
        assert_eq!(count(g1, "Div"), count(g0, "Div") - expected);
        assert_well_formed(g1);
        // Run twice, the rewrite finds nothing more.
        assert_eq!(fuse(&mut after).expect("fused"), 0);
    }
}
