//! The fuser's soft-argmax written with the operators ONNX Runtime has kernels for.
//!
//! Burn's exporter writes the fuser (`model::fuser`, `model::encoder::spatial_softmax`) in the
//! operations the training code uses: the spatial softmax as `TopK` (k = 1, for the maximum) /
//! `Sub` / `Exp` / `ReduceSum` / `Div`, the keypoint confidence as another `TopK`, and each
//! keypoint's features `P @ F^T` as a broadcast `Mul` of `[b, k, 1, n]` by `[b, 1, f, n]` and a
//! `ReduceSum` over `n` (the exporter cannot lower the transpose). ONNX Runtime runs those as
//! written: the broadcast product alone materializes `k x f x n` values, and an ONNX Runtime
//! profile of the shipped encoder put the fuser's nodes at about a sixth of a frame
//! (docs/BENCHMARKS.md, "The fuser in three operators"). Rewritten here as `Softmax`,
//! `ReduceMax` and `Transpose` + `MatMul`: the same functions, up to the order of float sums.

use std::collections::{HashMap, HashSet};

use anyhow::{Result, bail};
use onnx_ir::{GraphProto, ModelProto, NodeProto};

use super::graph::{
    add_ints, int, int_attribute, int_list, ints, node, private, producer, readers, remove,
};

/// What [`rewrite`] replaced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Softmaxes written out in five nodes, now one `Softmax`.
    pub softmax: usize,
    /// `TopK` with k = 1 whose indices nothing reads, now `ReduceMax`.
    pub max: usize,
    /// Broadcast products summed over their last axis, now a `MatMul`.
    pub matmul: usize,
}

impl Rewritten {
    pub fn total(&self) -> usize {
        self.softmax + self.max + self.matmul
    }
}

/// `node` is a `TopK` for the largest value alone: `Some((input, axis))`.
fn top_one<'a>(graph: &GraphProto, node: &'a NodeProto) -> Option<(&'a str, i64)> {
    (node.op_type == "TopK"
        && node.input.len() == 2
        && !node.output.is_empty()
        && ints(graph, &node.input[1]).as_deref() == Some(&[1][..])
        && int_attribute(node, "largest", 1) == 1)
        .then(|| (node.input[0].as_str(), int_attribute(node, "axis", -1)))
}

/// `node` is a `ReduceSum` over `axis` alone that keeps the axis, reading `input`.
fn sum_over(graph: &GraphProto, node: &NodeProto, input: &str, axis: i64) -> bool {
    node.op_type == "ReduceSum"
        && node.input.len() == 2
        && node.input[0] == input
        && ints(graph, &node.input[1]).as_deref() == Some(&[axis][..])
        && int_attribute(node, "keepdims", 1) == 1
}

/// The softmax ending in the `Div` at `div`: `e / ReduceSum(e)` with `e = Exp(x - TopK(x))`.
/// Returns the nodes it spans (`TopK`, `Sub`, `Exp`, `ReduceSum`, then the `Div`), its input
/// and axis.
fn softmax_at(graph: &GraphProto, div: usize) -> Option<([usize; 5], String, i64)> {
    let d = &graph.node[div];
    if d.op_type != "Div" || d.input.len() != 2 || d.output.is_empty() {
        return None;
    }
    let (exp_at, exp) = producer(graph, &d.input[0])?;
    let (sum_at, sum) = producer(graph, &d.input[1])?;
    if exp.op_type != "Exp" {
        return None;
    }
    let (sub_at, sub) = producer(graph, exp.input.first()?)?;
    if sub.op_type != "Sub" || sub.input.len() != 2 {
        return None;
    }
    let (top_at, top) = producer(graph, &sub.input[1])?;
    let (x, axis) = top_one(graph, top)?;
    (top.output[0] == sub.input[1]
        && x == sub.input[0]
        && sum_over(graph, sum, &exp.output[0], axis))
    .then(|| ([top_at, sub_at, exp_at, sum_at, div], x.to_owned(), axis))
}

/// The features product ending in the `ReduceSum` at `sum`: `ReduceSum(Reshape(P, [b, k, 1, n])
/// * Reshape(F, [b, 1, f, n]), axes = [3])`, read by one `Reshape`. Returns the nodes (the two
/// reshapes, the `Mul`, the sum), `P`, `F` and `[b, k, f, n]`.
fn product_at(graph: &GraphProto, sum: usize) -> Option<([usize; 4], String, String, [i64; 4])> {
    let s = &graph.node[sum];
    let (mul_at, mul) = producer(graph, s.input.first()?)?;
    if mul.op_type != "Mul" || mul.input.len() != 2 {
        return None;
    }
    if !(sum_over(graph, s, &mul.output[0], 3) || sum_over(graph, s, &mul.output[0], -1)) {
        return None;
    }
    // Only a reshape may read the sum: it gives `[b, k, f, 1]`, the `MatMul` `[b, k, f]`, the
    // same values in the same order. A target with a 0 (copy that axis) could tell them apart.
    let out = s.output.first()?;
    let reshaped_only = graph
        .node
        .iter()
        .filter(|n| n.input.iter().any(|i| i == out))
        .all(|n| {
            n.op_type == "Reshape"
                && n.input[0] == *out
                && ints(graph, &n.input[1]).is_some_and(|t| !t.contains(&0))
        });
    if !reshaped_only || readers(graph, out) != 1 {
        return None;
    }
    let reshape = |name: &str| -> Option<(usize, String, Vec<i64>)> {
        let (at, r) = producer(graph, name)?;
        (r.op_type == "Reshape" && r.input.len() == 2)
            .then(|| Some((at, r.input[0].clone(), ints(graph, &r.input[1])?)))?
    };
    for (left, right) in [(0, 1), (1, 0)] {
        let (Some((p_at, p, ps)), Some((f_at, f, fs))) =
            (reshape(&mul.input[left]), reshape(&mul.input[right]))
        else {
            continue;
        };
        let (&[b, k, 1, n], &[b2, 1, f_len, n2]) = (ps.as_slice(), fs.as_slice()) else {
            continue;
        };
        if b == b2 && n == n2 && [b, k, f_len, n].iter().all(|&d| d > 0) {
            return Some(([p_at, f_at, mul_at, sum], p, f, [b, k, f_len, n]));
        }
    }
    None
}

/// Rewrites the fuser's softmax, maximum and features product (see the module's comment).
/// Only patterns whose intermediate values nothing else reads are rewritten.
pub fn rewrite(model: &mut ModelProto) -> Result<Rewritten> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty())
        .map_or(0, |o| o.version);
    if opset < 13 {
        bail!("rewriting the fuser needs ONNX opset 13 or later (the model has {opset})");
    }
    let Some(graph) = model.graph.as_mut() else {
        bail!("the ONNX model has no graph");
    };
    let mut done = Rewritten::default();

    // Softmax first: its TopK must not be taken for a lone maximum.
    let mut drop = vec![false; graph.node.len()];
    for div in 0..graph.node.len() {
        let Some((nodes, x, axis)) = softmax_at(graph, div) else {
            continue;
        };
        // TopK's value is read by the Sub, the difference by the Exp, the exponential by the
        // sum and the Div, the sum by the Div.
        if !private(graph, &nodes[..4], &[1, 1, 2, 1]) {
            continue;
        }
        let d = &graph.node[div];
        let mut softmax = node(
            "Softmax",
            format!("{}_softmax", d.name),
            &[&x],
            &[&d.output[0]],
        );
        softmax.attribute.push(int("axis", axis));
        graph.node[div] = softmax;
        for &i in &nodes[..4] {
            drop[i] = true;
        }
        done.softmax += 1;
    }
    remove(graph, &drop);

    for at in 0..graph.node.len() {
        let n = &graph.node[at];
        let Some((x, axis)) = top_one(graph, n) else {
            continue;
        };
        let indices_read = n
            .output
            .get(1)
            .is_some_and(|i| !i.is_empty() && readers(graph, i) > 0);
        if indices_read {
            continue;
        }
        let name = format!("{}_max", n.name);
        let (x, output) = (x.to_owned(), n.output[0].clone());
        let mut max = if opset >= 18 {
            let axes = format!("{name}_axes");
            add_ints(graph, &axes, &[axis]);
            node("ReduceMax", name, &[&x, &axes], &[&output])
        } else {
            let mut m = node("ReduceMax", name, &[&x], &[&output]);
            m.attribute.push(int_list("axes", &[axis]));
            m
        };
        max.attribute.push(int("keepdims", 1));
        graph.node[at] = max;
        done.max += 1;
    }

    // The sums the MatMuls replace.
    let mut sums: HashSet<usize> = HashSet::new();
    // MatMuls to place right after the node at the index (the Transpose in the Mul's place:
    // after both reshapes, before the sum's reader).
    let mut after: HashMap<usize, NodeProto> = HashMap::new();
    for sum in 0..graph.node.len() {
        if graph.node[sum].op_type != "ReduceSum" {
            continue;
        }
        let Some((nodes, p, f, [b, k, f_len, n])) = product_at(graph, sum) else {
            continue;
        };
        if !private(graph, &nodes[..3], &[1, 1, 1]) {
            continue;
        }
        let name = graph.node[sum].name.clone();
        let output = graph.node[sum].output[0].clone();
        let (rows, cols, cols_t) = (
            format!("{name}_rows"),
            format!("{name}_columns"),
            format!("{name}_columns_t"),
        );
        let (rows_shape, cols_shape) = (format!("{rows}_shape"), format!("{cols}_shape"));
        add_ints(graph, &rows_shape, &[b, k, n]);
        add_ints(graph, &cols_shape, &[b, f_len, n]);
        let [p_at, f_at, mul, _] = nodes;
        graph.node[p_at] = node(
            "Reshape",
            format!("{name}_reshape_rows"),
            &[&p, &rows_shape],
            &[&rows],
        );
        graph.node[f_at] = node(
            "Reshape",
            format!("{name}_reshape_columns"),
            &[&f, &cols_shape],
            &[&cols],
        );
        let mut transpose = node(
            "Transpose",
            format!("{name}_transpose"),
            &[&cols],
            &[&cols_t],
        );
        transpose.attribute.push(int_list("perm", &[0, 2, 1]));
        graph.node[mul] = transpose;
        after.insert(
            mul,
            node(
                "MatMul",
                format!("{name}_matmul"),
                &[&rows, &cols_t],
                &[&output],
            ),
        );
        sums.insert(sum);
        done.matmul += 1;
    }
    let nodes = std::mem::take(&mut graph.node);
    for (i, n) in nodes.into_iter().enumerate() {
        if !sums.contains(&i) {
            graph.node.push(n);
        }
        graph.node.extend(after.remove(&i));
    }
    remove(graph, &[]);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::graph::{assert_well_formed, exported_encoder};

    fn count(g: &GraphProto, op: &str) -> usize {
        g.node.iter().filter(|n| n.op_type == op).count()
    }

    #[test]
    fn the_fuser_becomes_softmax_max_and_matmul() {
        let (_, mut before) = exported_encoder();
        // As `optimize` runs it: after the h-swish (whose divisions by 6 are not softmaxes).
        super::super::hard_swish::fuse(&mut before).expect("h-swish");
        let g0 = before.graph.as_ref().unwrap();
        // What the exporter writes today (if it changes, so must this rewrite).
        assert_eq!(count(g0, "TopK"), 2);
        assert_eq!(count(g0, "ReduceSum"), 2);

        let mut after = before.clone();
        let done = rewrite(&mut after).expect("rewritten");
        assert_eq!(
            done,
            Rewritten {
                softmax: 1,
                max: 1,
                matmul: 1
            }
        );
        let g1 = after.graph.as_ref().unwrap();
        assert_well_formed(g1);
        for op in ["TopK", "ReduceSum", "Exp", "Div"] {
            assert_eq!(count(g1, op), 0, "{op} left");
        }
        assert_eq!(count(g1, "Softmax"), 1);
        assert_eq!(count(g1, "ReduceMax"), 1);
        assert_eq!(count(g1, "Transpose"), 1);
        assert_eq!(count(g1, "MatMul"), count(g0, "MatMul") + 1);
        // Softmax replaces five nodes, the product four (two reshapes, Mul, sum) by four (two
        // reshapes, Transpose, MatMul); the maximum is one for one.
        assert_eq!(g1.node.len(), g0.node.len() - 4);
        // The outputs are the same tensors.
        assert_eq!(
            g1.output.iter().map(|o| &o.name).collect::<Vec<_>>(),
            g0.output.iter().map(|o| &o.name).collect::<Vec<_>>()
        );
        // Run twice, the rewrite finds nothing more.
        assert_eq!(rewrite(&mut after).expect("rewritten").total(), 0);
    }

    #[test]
    fn a_maximum_whose_position_is_read_is_kept() {
        let (_, mut model) = exported_encoder();
        // The confidence's TopK (the one on the probabilities) gives its indices out too.
        let graph = model.graph.as_mut().unwrap();
        let top = graph
            .node
            .iter()
            .rposition(|n| n.op_type == "TopK")
            .expect("a TopK");
        let mut extra = graph.output[0].clone();
        extra.name = graph.node[top].output[1].clone();
        graph.output.push(extra);
        let done = rewrite(&mut model).expect("rewritten");
        assert_eq!(done.max, 0);
        assert_eq!(done.softmax, 1);
        assert_eq!(count(model.graph.as_ref().unwrap(), "TopK"), 1);
    }

    #[test]
    fn a_malformed_graph_is_left_as_it_is() {
        // Nodes missing their inputs or outputs, as a damaged file may have them: nothing
        // matches, nothing panics.
        // The exported model's opset and initializers, with these nodes in its graph.
        let (_, mut model) = exported_encoder();
        let graph = model.graph.as_mut().unwrap();
        graph.node = vec![
            node("Exp", "exp".into(), &[], &["e"]),
            node("TopK", "top".into(), &["x", "k"], &[]),
            node("Div", "div".into(), &["e", "s"], &[]),
            node("Relu", "relu".into(), &[], &["r"]),
            node("ReduceSum", "sum".into(), &["e", "axes"], &[]),
            node("Mul", "mul".into(), &["e", "r"], &["m"]),
            node("Div", "div6".into(), &["m", "six"], &[]),
        ];
        let before = model.clone();
        assert_eq!(
            super::super::hard_swish::fuse(&mut model).expect("no error"),
            0
        );
        assert_eq!(rewrite(&mut model).expect("no error").total(), 0);
        assert_eq!(
            model.graph.as_ref().unwrap().node,
            before.graph.as_ref().unwrap().node
        );
    }
}
