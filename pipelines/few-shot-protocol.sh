#!/usr/bin/env bash
# Few-shot fits of the posture network on one volunteer's frames, on the new-mat protocol of
# docs/RESULTS.md "A new mat": the built-in posture recipe fitted again with its Burn checkpoint
# kept (the shipped posture.onnx has none), then spmkd-train calibrate-protocol --fine-tune with
# the whole network (net:EPOCHS:LR) or only its heads (heads:STEPS:LR:PULL) trained further,
# and the heads fitted on the test frames themselves (heads-bound: what the embedding allows).
# About 7 minutes on 2 cores (5 for the posture fit, once; RUN keeps it).
#
#   pipelines/few-shot-protocol.sh [FRAMES]      (3 frames a posture; RUN=runs/posture-4)
set -euo pipefail
cd "$(dirname "$0")/.."
S=target/release/spmkd-train
run=${RUN:-runs/posture-4}
frames=${1:-3}
cargo build --release -q -p spmkd-training
if [ ! -f "$run/classifier.json" ]; then
  $S posture --classifier sage --mirror --shift 4 --graph-norm --encoder models/default \
    --ensemble 3 --hidden 64,128,64,32 --run "$run" --version spmkd-posture-4
fi
models=$(mktemp -d)
trap 'rm -rf "$models"' EXIT
mkdir "$models/posture"
cp models/default/encoder.onnx "$run/posture.onnx" "$models/"
cp "$run/classifier.bpk" "$run/classifier.json" "$models/posture/"
$S calibrate-protocol --from "$models" --frames "$frames" --shrink 0.2 \
  --fine-tune net:5:1e-4,net:20:1e-3,heads:50:1e-2:0.1,heads:200:1e-2:0.01,heads-bound:500:3e-2:0
