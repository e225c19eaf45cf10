#!/usr/bin/env bash
# Issue 14's augmentation ablation (docs/RESULTS.md, "Ablation of the augmentation families"):
# the run of the built-in model (runs/augment-1: `train --classification-epochs 8
# --regression-epochs 8`, every family on) made again with one family left out at a time, each
# measured as the full run was: phase-1 F-score and reconstruction on the held-out subjects and
# on experiment-ii, then the shipped posture recipe through its encoder.
#
#   training/scripts/augment-ablation.sh OUT [FAMILY...]     (families: geometry sensor mat)
#
# About 18 minutes of training, 3 of evaluation and 7 of posture per family on 2 cores. Steps
# whose output exists are skipped, so an interrupted ablation is continued by running it again.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?output directory}
shift
families=("$@")
[ ${#families[@]} -gt 0 ] || families=(geometry sensor mat)
data=${SPMKD_DATA:-$here/../shared/data/pmatdata}
S=${SPMKD_TRAIN:-$here/target/release/spmkd-train}
[ -x "$S" ] || { echo "build it first: cargo build --release -p spmkd-training" >&2; exit 1; }
mkdir -p "$out"

for family in "${families[@]}"; do
  case $family in geometry | sensor | mat) ;; *) echo "unknown family: $family" >&2; exit 2 ;; esac
  run=$out/no-$family
  if [ ! -f "$run/regression.bpk" ] || ! grep -q '"regression":8' "$run/state.json" 2>/dev/null; then
    resume=()
    [ -f "$run/state.json" ] && resume=(--resume)
    "$S" train --run "$run" --data "$data" "--no-$family" "${resume[@]}" \
      --classification-epochs 8 --regression-epochs 8
  fi
  if [ ! -f "$run/eval.txt" ]; then
    for split in held-out unfamiliar; do
      "$S" eval --run "$run" --data "$data" --phase classification --split "$split"
      "$S" eval --run "$run" --data "$data" --split "$split"
    done > "$run/eval.txt.part"
    mv "$run/eval.txt.part" "$run/eval.txt"
  fi
  [ -f "$run/export/encoder.onnx" ] || "$S" export --run "$run" --out "$run/export"
  [ -f "$out/posture-no-$family/results.json" ] ||
    "$S" posture --classifier sage --mirror --shift 4 --encoder "$run/export" \
      --run "$out/posture-no-$family" --data "$data"
  echo "== without $family"
  cat "$run/eval.txt"
done

postures=()
for family in "${families[@]}"; do postures+=("$out/posture-no-$family"); done
echo
"$S" posture-table "${postures[@]}" --unfamiliar-subjects 1-4
echo
"$S" posture-table "${postures[@]}" --unfamiliar-subjects 5-8
echo
"$S" posture-table "${postures[@]}"
