#!/usr/bin/env bash
# The measurements behind spmkd_core::layout::HEAD_FOOT_MARGIN, on validation data only: each
# occupied frame's layout agreement turned half way round less as laid (spmkdpose orientation=180
# against orientation=identity, the same frames), on experiment-i S9..S10 as recorded (laid
# right) and experiment-ii S1..S4 as recorded (head at the last row), both mattresses
# (docs/RESULTS.md "Head and foot without labels").
#
#   pipelines/head-foot-margin.sh [DATA]      (../shared/data/pmatdata)
source "$(dirname "$0")/common.sh"
data=${1:-${SPMKD_DATA:-../shared/data/pmatdata}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

layouts() { # NAME SOURCES...: the records of the sources concatenated, laid identity and 180
  local name=$1; shift
  for laid in identity 180; do
    gst-launch-1.0 -q concat name=c ! spmkdpose orientation=$laid orientation-check=0 \
      ! spmkdjsonenc ! filesink location="$tmp/$name-$laid.ndjson" "$@" >/dev/null
  done
}

for s in 9 10; do
  for f in "$data/experiment-i/S$s/"*.txt; do
    layouts "i-S$s-$(basename "$f" .txt)" pmatsrc location="$f" ! c.
  done
done
for mat in Air Sponge; do
  for s in 1 2 3 4; do
    sources=()
    for f in $(ls "$data/experiment-ii/S$s/${mat}_Mat/"Matrix_${mat}_[B-F]*.txt | sort -V); do
      sources+=(pmatsrc "location=$f" ! c.)
    done
    layouts "ii-$mat-S$s" "${sources[@]}"
  done
done
python3 - "$tmp" <<'PY'
import json, pathlib, statistics, sys
tmp = pathlib.Path(sys.argv[1])
groups = {"experiment-i S9..S10, as recorded (laid right)": "i-", "experiment-ii S1..S4, as recorded (head to foot)": "ii-"}
print("| validation streams | streams | frames | per-frame difference: min / max | stream medians: min / max |")
print("|---|---|---|---|---|")
for title, prefix in groups.items():
    frames, medians = [], []
    for a in sorted(tmp.glob(prefix + "*-identity.ndjson")):
        b = a.with_name(a.name.replace("-identity", "-180"))
        d = [json.loads(y)["layout"] - json.loads(x)["layout"]
             for x, y in zip(open(a), open(b))
             if json.loads(x).get("occupied") and "layout" in json.loads(x) and "layout" in json.loads(y)]
        frames += d
        medians.append(statistics.median(d))
    print(f"| {title} | {len(medians)} | {len(frames)} | {min(frames):+.3f} / {max(frames):+.3f} | {min(medians):+.3f} / {max(medians):+.3f} |")
PY
