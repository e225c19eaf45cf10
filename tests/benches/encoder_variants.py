#!/usr/bin/env python3
"""Other ways to run the built-in encoder in ONNX Runtime, timed beside the shipped file: int8
(ONNX Runtime's own static quantization) and several frames per run (a batch axis).

Optional, and not part of CI or set-up: it needs the onnxruntime and onnx Python packages, which
the user installs (`python3 -m venv /tmp/ortpy && /tmp/ortpy/bin/pip install onnxruntime==1.31.1
onnx numpy`), the same ONNX Runtime version as the plugin's. docs/BENCHMARKS.md says what it
showed:

    /tmp/ortpy/bin/python tests/benches/encoder_variants.py [models/default/encoder.onnx]

Each variant runs in a session of its own with the plugin's session options (graph optimization
level all), one intra-op thread unless said, on the same input; the variants take turns, three
rounds of 1000 runs each (frames/s of each round). Calibration for int8: 32 inputs drawn like
preprocessed frames (values in [0, 1], most of the square near 0); the timing does not depend on
the calibrated ranges.
"""
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

ROUNDS, RUNS = 3, 1000
rng = np.random.default_rng(0)


def frame(batch=1):
    return np.clip(rng.normal(0.2, 0.3, (batch, 1, 64, 64)), 0, 1).astype(np.float32)


class Calibration(CalibrationDataReader):
    def __init__(self, name):
        self.name, self.left = name, 32

    def get_next(self):
        if self.left == 0:
            return None
        self.left -= 1
        return {self.name: frame()}


def session(path, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def batched(path, out):
    """The encoder with a batch axis: the exporter fixes batch 1 in its reshapes' targets."""
    model = onnx.load(path)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in inits:
            continue
        target = numpy_helper.to_array(inits[node.input[1]]).copy()
        # Reshapes of activations start with the batch; those of weights (the fuser's linear
        # layer) do not read the input.
        if node.input[0] in inits:
            continue
        target[0] = -1
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(target, node.input[1]))
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del graph.value_info[:]
    onnx.save(model, out)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "models/default/encoder.onnx"
    name = onnx.load(path).graph.input[0].name
    tmp = tempfile.mkdtemp()
    pre = os.path.join(tmp, "pre.onnx")
    # ONNX Runtime's symbolic shape inference does not follow ReduceMax with its axes as an
    # input (opset 18); ONNX's own shape inference does.
    quant_pre_process(path, pre, skip_symbolic_shape=True)
    variants = [("fp32 (shipped file)", path)]
    for label, kwargs in [
        ("int8 QDQ, s8 activations, s8 weights per channel",
         dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8)),
        ("int8 QOperator, u8 activations, s8 weights per channel",
         dict(quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8)),
        ("int8 QDQ, u8 activations, s8 weights per channel",
         dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8)),
    ]:
        out = os.path.join(tmp, f"int8-{len(variants)}.onnx")
        quantize_static(pre, out, Calibration(name), op_types_to_quantize=["Conv"],
                        per_channel=True, weight_type=QuantType.QInt8, **kwargs)
        variants.append((label, out))

    print(f"# The built-in encoder in other forms (ONNX Runtime {ort.__version__}, "
          f"{os.cpu_count()} cores)\n")
    print("## int8 against fp32, one thread, batch 1\n")
    sessions = [(label, session(p)) for label, p in variants]
    x = frame()
    rates = {label: [] for label, _ in sessions}
    for _ in range(ROUNDS):
        for label, s in sessions:
            for _ in range(50):
                s.run(None, {name: x})
            t = time.perf_counter()
            for _ in range(RUNS):
                s.run(None, {name: x})
            rates[label].append(RUNS / (time.perf_counter() - t))
    base = np.mean(rates[variants[0][0]])
    print("| variant | frames/s (three rounds) | of fp32 |")
    print("|---|---|---|")
    for label, r in rates.items():
        print(f"| {label} | {', '.join(f'{v:.0f}' for v in r)} | {np.mean(r) / base:.2f}x |")

    print("\n## Several frames per run (batch axis), fp32\n")
    dynamic = os.path.join(tmp, "batched.onnx")
    batched(path, dynamic)
    # The batch axis changes nothing of a frame's result.
    single, many = session(path), session(dynamic)
    xs = frame(2)
    both = many.run(None, {name: xs})
    for i in range(2):
        for a, b in zip(single.run(None, {name: xs[i:i + 1]}), both):
            assert np.abs(a - b[i:i + 1]).max() < 1e-5, "the batched encoder differs"
    print("| threads | batch | frames/s (three rounds) |")
    print("|---|---|---|")
    for threads in (1, 2):
        s = session(dynamic, threads)
        for batch in (1, 2, 4, 8, 16, 32, 64):
            xb = frame(batch)
            runs = max(RUNS // batch, 20)
            r = []
            for _ in range(ROUNDS):
                s.run(None, {name: xb})
                t = time.perf_counter()
                for _ in range(runs):
                    s.run(None, {name: xb})
                r.append(runs * batch / (time.perf_counter() - t))
            print(f"| {threads} | {batch} | {', '.join(f'{v:.0f}' for v in r)} |")


if __name__ == "__main__":
    sys.exit(main())
