#!/usr/bin/env bash
# What a posture model costs the offline pipeline: `concat` of experiment-i S1..S10 (every
# recording, parsed from text) through `spmkdpose parallel-frames=0 ! queue ! spmkdposture
# model=MODEL ! fakesink`, against `spmkdpose parallel-frames=0` alone, each MODEL in turn and
# the whole round ROUNDS times (the machine's speed drifts: compare within a round).
# Issue 13's goal: spmkdposture keeps the pipeline at >= 0.8 of spmkdpose alone.
#
#   pipelines/posture-cost.sh DATA MODEL... (ROUNDS=2 by default; models/default/posture.onnx is
#                                            the built-in model)
source "$(dirname "$0")/common.sh"
data=${1:?usage: $0 DATA MODEL...}
shift
[ $# -gt 0 ] || { echo "usage: $0 DATA MODEL..." >&2; exit 1; }
for m in "$@"; do
  [ -f "$m" ] || { echo "$m: no such model" >&2; exit 1; }
done
rounds=${ROUNDS:-2}
sources=()
for s in $(seq 1 10); do
  for f in $(ls -v "$data/experiment-i/S$s"/*.txt); do sources+=(pmatsrc "location=$f" ! c.); done
done

# Seconds of one pipeline over all the recordings.
run() {
  local start end
  start=$(date +%s.%N)
  gst-launch-1.0 -q concat name=c ! "$@" ! fakesink sync=false "${sources[@]}" >/dev/null
  end=$(date +%s.%N)
  printf '%.2f' "$(echo "$end - $start" | bc)"
}

echo "| round | model | seconds | spmkdpose alone / with the model |"
echo "|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  alone=$(run spmkdpose parallel-frames=0)
  echo "| $round | (spmkdpose alone) | $alone | - |"
  for m in "$@"; do
    with=$(run spmkdpose parallel-frames=0 ! queue ! spmkdposture "model=$m")
    echo "| $round | $m | $with | $(printf '%.2f' "$(echo "scale=4; $alone / $with" | bc)") |"
  done
done
