#!/usr/bin/env bash
# Issue 14's adaptation protocol (docs/RESULTS.md, "Adaptation"), subject-disjoint: a model is
# adapted without labels to experiment-ii S1..S4 (both mats, turned as installed) and tested on
# S5..S8, and the reverse; the posture network is refitted on experiment-i labels through each
# adapted encoder. Beside it the same base model zero-shot, on the same halves.
#
#   training/scripts/adapt-protocol.sh BASE_RUN OUT [adapt options...]
#
# e.g. training/scripts/adapt-protocol.sh runs/augment-1 runs/protocol --no-augment
# About 10 minutes per direction on 2 cores, plus one zero-shot posture run (7 minutes) unless
# OUT/zero-shot already holds one. Options are chosen on the adapted side of each split (its
# labels are validation data); the other side is the reported test.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
base=${1:?base run}
out=${2:?output directory}
shift 2
data=${SPMKD_DATA:-$here/../shared/data/pmatdata}
S=$here/target/release/spmkd-train
[ -x "$S" ] || { echo "build it first: cargo build --release -p spmkd-training" >&2; exit 1; }
mkdir -p "$out"

if [ ! -f "$out/zero-shot/results.json" ]; then
  "$S" export --run "$base" --out "$out/zero-shot-model"
  # The built-in posture model's recipe (models/default/README.md), as adapt refits it.
  "$S" posture --classifier sage --mirror --shift 4 --graph-norm --ensemble 3 \
    --hidden 64,128,64,32 --encoder "$out/zero-shot-model" --run "$out/zero-shot" --data "$data"
fi
for half in 1-4 5-8; do
  a=${half%-*}; b=${half#*-}
  dirs=()
  for s in $(seq "$a" "$b"); do dirs+=("$data/experiment-ii/S$s"); done
  "$S" adapt --from "$base" --recordings "${dirs[@]}" --orientation 180 --out "$out/adapt-$half" \
    --data "$data" "$@"
done

for pair in "1-4 5-8" "5-8 1-4"; do
  set -- $pair
  echo
  echo "### Adapted on experiment-ii S$1; S$1 is validation, S$2 the test"
  for side in "$1" "$2"; do
    echo
    "$S" posture-table "$out/zero-shot" "$out/adapt-$1/posture" --unfamiliar-subjects "$side"
  done
done
