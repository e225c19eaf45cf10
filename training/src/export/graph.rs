//! Reading and editing an ONNX graph for the rewrites of [`super::optimize`]: constants, who
//! writes and who reads a tensor, and removing what a rewrite left unused.

use onnx_ir::{AttributeProto, AttributeType, GraphProto, NodeProto, TensorProto};

/// ONNX's `TensorProto.DataType` for f32.
const FLOAT: i32 = 1;
/// ONNX's `TensorProto.DataType` for i64.
const INT64: i32 = 7;

/// The initializer called `name`.
fn initializer<'a>(graph: &'a GraphProto, name: &str) -> Option<&'a TensorProto> {
    graph.initializer.iter().find(|t| t.name == name)
}

/// The value of a one-element f32 initializer called `name`, if there is one.
pub fn scalar(graph: &GraphProto, name: &str) -> Option<f32> {
    let t = initializer(graph, name)?;
    if t.data_type != FLOAT || t.dims.iter().product::<i64>() != 1 {
        return None;
    }
    match (t.float_data.first(), t.raw_data.len()) {
        (Some(&v), _) => Some(v),
        (None, 4) => Some(f32::from_le_bytes(t.raw_data[..4].try_into().ok()?)),
        _ => None,
    }
}

/// The values of an i64 initializer called `name` (a shape, axes, a count), if there is one.
pub fn ints(graph: &GraphProto, name: &str) -> Option<Vec<i64>> {
    let t = initializer(graph, name)?;
    if t.data_type != INT64 || t.dims.len() > 1 {
        return None;
    }
    if !t.int64_data.is_empty() {
        return Some(t.int64_data.clone());
    }
    if !t.raw_data.len().is_multiple_of(8) {
        return None;
    }
    Some(
        t.raw_data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
    )
}

/// A new one-dimensional i64 initializer `name` holding `values`.
pub fn add_ints(graph: &mut GraphProto, name: &str, values: &[i64]) {
    let mut t = TensorProto::new();
    t.name = name.to_owned();
    t.data_type = INT64;
    t.dims = vec![values.len() as i64];
    t.int64_data = values.to_vec();
    graph.initializer.push(t);
}

/// A new f32 initializer `name` of shape `dims` holding `values`.
pub fn add_floats(graph: &mut GraphProto, name: &str, dims: &[i64], values: &[f32]) {
    let mut t = TensorProto::new();
    t.name = name.to_owned();
    t.data_type = FLOAT;
    t.dims = dims.to_vec();
    t.float_data = values.to_vec();
    graph.initializer.push(t);
}

/// The integer attribute `name` of `node`, or `default` when the node doesn't set it.
pub fn int_attribute(node: &NodeProto, name: &str, default: i64) -> i64 {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or(default, |a| a.i)
}

/// An integer attribute.
pub fn int(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.to_owned();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

/// An integer-list attribute.
pub fn int_list(name: &str, values: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.to_owned();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    a
}

/// A node of `op` from `inputs` to `outputs`.
pub fn node(op: &str, name: String, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.to_owned();
    n.name = name;
    n.input = inputs.iter().map(|&s| s.to_owned()).collect();
    n.output = outputs.iter().map(|&s| s.to_owned()).collect();
    n
}

/// The node that writes `output`, with its index.
pub fn producer<'a>(graph: &'a GraphProto, output: &str) -> Option<(usize, &'a NodeProto)> {
    graph
        .node
        .iter()
        .enumerate()
        .find(|(_, n)| n.output.iter().any(|o| o == output))
}

/// How many times the graph reads `name` (node inputs and graph outputs).
pub fn readers(graph: &GraphProto, name: &str) -> usize {
    let by_nodes: usize = graph
        .node
        .iter()
        .map(|n| n.input.iter().filter(|i| *i == name).count())
        .sum();
    by_nodes + graph.output.iter().filter(|o| o.name == name).count()
}

/// Whether every output of the nodes at `nodes` is read exactly as often as `reads` says
/// (matched by position), so that replacing them changes nothing else in the graph.
pub fn private(graph: &GraphProto, nodes: &[usize], reads: &[usize]) -> bool {
    nodes.iter().zip(reads).all(|(&i, &r)| {
        let n = &graph.node[i];
        n.output.first().is_some_and(|o| readers(graph, o) == r)
            && n.output[1..]
                .iter()
                .all(|o| o.is_empty() || readers(graph, o) == 0)
    })
}

/// Removes the nodes marked in `drop`, then the initializers and value infos nothing reads or
/// writes any more.
pub fn remove(graph: &mut GraphProto, drop: &[bool]) {
    let mut at = 0;
    graph.node.retain(|_| {
        at += 1;
        !drop.get(at - 1).copied().unwrap_or(false)
    });
    let keep: Vec<bool> = graph
        .initializer
        .iter()
        .map(|t| readers(graph, &t.name) > 0)
        .collect();
    let mut at = 0;
    graph.initializer.retain(|_| {
        at += 1;
        keep[at - 1]
    });
    let written: Vec<bool> = graph
        .value_info
        .iter()
        .map(|v| producer(graph, &v.name).is_some())
        .collect();
    let mut at = 0;
    graph.value_info.retain(|_| {
        at += 1;
        written[at - 1]
    });
}

/// Asserts that every node input is a graph input, an initializer or an output of a node
/// before it, and that every initializer is read: a rewrite left nothing dangling or out of
/// order.
#[cfg(test)]
pub fn assert_well_formed(graph: &GraphProto) {
    let mut known: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    known.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    for n in &graph.node {
        for i in &n.input {
            assert!(
                i.is_empty() || known.contains(&i.as_str()),
                "{i} of {} is read before it is written",
                n.op_type
            );
        }
        known.extend(n.output.iter().map(String::as_str));
    }
    for o in &graph.output {
        assert!(
            known.contains(&o.name.as_str()),
            "output {} unwritten",
            o.name
        );
    }
    for t in &graph.initializer {
        assert!(readers(graph, &t.name) > 0, "{} unused", t.name);
    }
}

/// An untrained network of the shipped shape and its encoder graph as Burn's exporter writes
/// it (before any rewrite): what the rewrites' tests start from.
#[cfg(test)]
pub fn exported_encoder() -> (crate::model::Efd, onnx_ir::ModelProto) {
    use burn::prelude::*;
    use onnx_ir::Message;
    use spmkd_core::model_meta::ModelKind;

    use crate::model::{EfdConfig, Phase};

    let device = Device::flex();
    let config = EfdConfig::new();
    let model = config.init(Phase::Regression, &device);
    let meta = super::metadata(&config, ModelKind::Encoder, "test", "nothing");
    let raw = super::encoder_graph(&model, &meta, &device).expect("exported");
    let proto = onnx_ir::ModelProto::parse_from_bytes(&raw).expect("parses");
    (model, proto)
}
