#!/usr/bin/env bash
# Two builds of the plugin in turns on the same recording: the offline pipelines `spmkdpose`
# alone and `spmkdpose ! queue ! spmkdposture`, wall time of each run, and the ratio in each
# round (machines and their load differ; the ratio within a round is the figure).
#
#   pipelines/plugin-ab.sh BEFORE_DIR AFTER_DIR RECORDING [ROUNDS]
#
# BEFORE_DIR / AFTER_DIR: directories holding libgstspmkd.so, e.g. an older commit built apart:
#   git worktree add /tmp/before COMMIT && (cd /tmp/before && CARGO_TARGET_DIR=/tmp/before-target \
#     cargo build --release -p gst-plugin-spmkd)        # then BEFORE_DIR=/tmp/before-target/release
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
before=$1 after=$2 recording=$3 rounds=${4:-3}
for d in "$before" "$after"; do
  [ -f "$d/libgstspmkd.so" ] || { echo "no libgstspmkd.so in $d" >&2; exit 1; }
done
seconds() { # PLUGIN_DIR PIPELINE
  local start end
  start=$(date +%s.%N)
  GST_PLUGIN_PATH=$1 GST_REGISTRY=$1/registry.bin gst-launch-1.0 -q $2 >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
for elements in "spmkdpose parallel-frames=0" "spmkdpose parallel-frames=0 ! queue ! spmkdposture"; do
  pipeline="pmatsrc location=$recording ! $elements ! fakesink sync=false"
  echo "$elements"
  for round in $(seq "$rounds"); do
    a=$(seconds "$before" "$pipeline")
    b=$(seconds "$after" "$pipeline")
    printf '  round %d: before %.2f s, after %.2f s, after / before %.3f\n' "$round" "$a" "$b" \
      "$(echo "scale=4; $b / $a" | bc)"
  done
done
