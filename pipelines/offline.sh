#!/usr/bin/env bash
# Offline, file to file: a pressure recording -> keypoints and posture (NDJSON), the
# reconstruction video and the overlay video (VP8 in WebM, Debian's gstreamer1.0-plugins-good),
# with a progress report. As many frames are inferred at once as there are cores
# (parallel-frames=0): no one waits for a file, so latency does not matter and every core works.
# The queues give parsing and the posture network threads of their own (docs/BENCHMARKS.md).
#
#   pipelines/offline.sh RECORDING [OUTDIR]      (OUTDIR default: out/offline)
#
# OUTDIR/poses.ndjson    one JSON record per frame with its posture (spmkd_core::ndjson reads it)
# OUTDIR/overlay.webm    the frames through viridis, 8x, keypoints and posture drawn
# OUTDIR/recon.webm      each frame rebuilt by the decoder from its keypoints
source "$(dirname "$0")/common.sh"
recording=${1:?usage: $0 RECORDING [OUTDIR]}
out=${2:-out/offline}
mkdir -p "$out"

# progressreport prints the stream position every second of wall time (and the percentage when
# the source knows its duration: .npy, raw and experiment-ii files).
gst-launch-1.0 -e \
  pmatsrc location="$recording" \
  ! progressreport update-freq=1 silent=false \
  ! queue ! spmkdpose name=pose parallel-frames=0 \
  ! queue ! spmkdposture \
  ! tee name=t \
  t. ! queue ! spmkdjsonenc ! filesink location="$out/poses.ndjson" \
  t. ! queue ! spmkdoverlay scale=8 ! videoconvert ! vp8enc deadline=1 \
     ! webmmux ! filesink location="$out/overlay.webm" \
  pose.recon_src ! queue ! videoconvert ! vp8enc deadline=1 \
     ! webmmux ! filesink location="$out/recon.webm"

echo "$(wc -l < "$out/poses.ndjson") frames: $out/poses.ndjson, $out/overlay.webm, $out/recon.webm"
