#!/usr/bin/env bash
# The head-to-foot check of spmkdpose (orientation-check, default 30 occupied frames) on
# PmatData: how many streams get spmkd-orientation, and when (docs/RESULTS.md "Head and foot
# without labels").
#
#   pipelines/head-foot-check.sh [DATA]      (../shared/data/pmatdata)
#
# Streams: each experiment-i recording of S1..S13 on its own, laid as recorded (the convention's
# own mat: never a warning wanted); experiment-ii, each mattress's S1..S4 and S5..S8 (each
# subject's labelled frames in file order, one after the other), as recorded (head at the last
# row: a warning wanted) and laid as installed (orientation=180: none wanted). The check's margin
# was chosen on experiment-i S9..S10 and experiment-ii S1..S4; S11..S13 and S5..S8 only report.
source "$(dirname "$0")/common.sh"
data=${1:-${SPMKD_DATA:-../shared/data/pmatdata}}

warned() { # ARGS...: the running time (s) of each spmkd-orientation a pipeline posts
  gst-launch-1.0 -m "$@" 2>&1 | sed -n 's/.*spmkd-orientation.*running-time=(guint64)\([0-9]*\).*/\1/p' \
    | awk '{ printf "%s%d", (NR > 1 ? "," : ""), $1 / 1e9 + 1 }'
}

echo "| stream | laid | streams | warned | at frame |"
echo "|---|---|---|---|---|"
for group in "1 2 3 4 5 6 7 8 9 10" "11 12 13"; do
  streams=0; hits=0; at=""
  for s in $group; do
    for f in "$data/experiment-i/S$s/"*.txt; do
      w=$(warned pmatsrc location="$f" ! spmkdpose ! fakesink)
      streams=$((streams + 1))
      [ -n "$w" ] && { hits=$((hits + 1)); at="$at $w"; }
    done
  done
  echo "| experiment-i S${group// /,} recordings | as recorded | $streams | $hits | ${at:--} |"
done
for mat in Air Sponge; do
  for half in "1 2 3 4" "5 6 7 8"; do
    sources=()
    for s in $half; do
      for f in $(ls "$data/experiment-ii/S$s/${mat}_Mat/"Matrix_${mat}_[B-F]*.txt | sort -V); do
        sources+=(pmatsrc "location=$f" ! c.)
      done
    done
    for laid in identity 180; do
      w=$(warned concat name=c ! spmkdpose orientation=$laid ! fakesink "${sources[@]}")
      what=$([ $laid = identity ] && echo "as recorded" || echo "as installed (180)")
      echo "| experiment-ii $mat S${half// /,} ($(( ${#sources[@]} / 4 )) frames) | $what | 1 | $([ -n "$w" ] && echo 1 || echo 0) | ${w:--} |"
    done
  done
done
