#!/usr/bin/env bash
# Peak RSS of N beds in one gst-launch-1.0 process, each `pmatsrc ! spmkdpose ! spmkdposture !
# fakesink` (30 frames at 10/s, in real time): what a bed costs in memory, and so what sharing
# the models saves (docs/BENCHMARKS.md, "A ward in one process").
#
#   pipelines/beds-rss.sh [N ...]          (default: 1 10 50)
#
# Prints N, peak RSS in MiB, and MiB per bed added to the first N.
source "$(dirname "$0")/common.sh"

recording="$(cd "$(dirname "$0")/.." && pwd)/data/sample/experiment-i/S12/1.txt"
[ $# -gt 0 ] || set -- 1 10 50
first_n=""
first_mib=""
printf '%5s %10s %12s\n' beds "peak MiB" "MiB/bed+"
for n in "$@"; do
  args=()
  for _ in $(seq "$n"); do
    args+=(pmatsrc location="$recording" loop=true framerate=10/1 num-buffers=30
      ! spmkdpose ! spmkdposture ! fakesink sync=true)
  done
  # The child's peak RSS, as the kernel accounted it.
  kib=$(python3 - "${args[@]}" <<'PY'
import resource, subprocess, sys
subprocess.run(["gst-launch-1.0", "-q", *sys.argv[1:]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
)
  mib=$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')
  if [ -z "$first_n" ]; then
    first_n=$n; first_mib=$mib; per="-"
  else
    per=$(awk -v a="$mib" -v b="$first_mib" -v n="$n" -v m="$first_n" 'BEGIN { printf "%.2f", (a - b) / (n - m) }')
  fi
  printf '%5s %10s %12s\n' "$n" "$mib" "$per"
done
