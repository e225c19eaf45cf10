#!/usr/bin/env bash
# The measurements behind spmkdmonitor's defaults and spmkdposture's min-trust
# (docs/RESULTS.md "Monitoring" and "Trust"): spmkdpose (with the decoder's reconstruction
# quality) and spmkdmonitor over whole PmatData recordings, one NDJSON per set, then
# pipelines/monitor_summary.py prints the tables.
#
#   pipelines/monitor-calibration.sh [DATA] [OUTDIR] [MODELDIR]
#   (../shared/data/pmatdata, out/calibration, the built-in models; MODELDIR: a directory with
#   encoder.onnx and decoder.onnx, such as models/plain)
#
# Sets: experiment-i S1..S13, each subject's 17 recordings concatenated in order (a recording
# boundary is a change of posture); experiment-i S9, S10 turned head to foot (videoflip), the
# validation stand-in for a mat laid the other way; experiment-ii, each subject on each mat, as
# recorded (head at the other end) and turned by 180 degrees (as it would be installed).
# Choices are made on S1..S10 and the flipped S9..S10 only; S11..S13 and experiment-ii are
# reported, never tuned on.
source "$(dirname "$0")/common.sh"
data=${1:-${SPMKD_DATA:-../shared/data/pmatdata}}
out=${2:-out/calibration}
here=$(cd "$(dirname "$0")/.." && pwd)
models=${3:-$here/models/default}
# The built-in encoder is models/default's; another directory's is named.
encoder=()
[ -n "${3:-}" ] && encoder=(model="$models/encoder.onnx")
mkdir -p "$out"

run() { # NAME FLIP FILE...: with the decoder's quality, and for the trust sets also without
  local name=$1 flip=$2; shift 2
  local sources=() f
  for f in "$@"; do sources+=(pmatsrc "location=$f" ! c.); done
  gst-launch-1.0 -q concat name=c ! $flip spmkdpose "${encoder[@]}" decoder="$models/decoder.onnx" \
    quality=true ! spmkdmonitor ! spmkdjsonenc ! filesink location="$out/$name.ndjson" \
    "${sources[@]}" >/dev/null
  case $name in i-S[1-8]) ;; *)
    gst-launch-1.0 -q concat name=c ! $flip spmkdpose "${encoder[@]}" ! spmkdmonitor ! spmkdjsonenc \
      ! filesink location="$out/$name-nodecoder.ndjson" "${sources[@]}" >/dev/null ;;
  esac
  echo "$name: $(wc -l < "$out/$name.ndjson") frames" >&2
}

for s in $(seq 1 13); do
  files=()
  for r in $(seq 1 17); do files+=("$data/experiment-i/S$s/$r.txt"); done
  run "i-S$s" "" "${files[@]}"
  if [ "$s" = 9 ] || [ "$s" = 10 ]; then
    run "i-S$s-flipped" "videoflip video-direction=vert !" "${files[@]}"
  fi
done
for s in $(seq 1 8); do
  for mat in Air Sponge; do
    mapfile -t files < <(ls "$data/experiment-ii/S$s/${mat}_Mat/"*.txt | sort -V)
    run "ii-S$s-$mat" "" "${files[@]}"
    run "ii-S$s-$mat-turned" "videoflip video-direction=180 !" "${files[@]}"
  done
done
# The tables at spmkdposture's own default, as the element reports it.
min_trust=$(gst-inspect-1.0 spmkdposture | sed -n '/min-trust/,/Default/p' | grep -o 'Default: *[0-9.]*' | awk '{print $2}')
python3 "$here/pipelines/monitor_summary.py" "$out" "$min_trust"
