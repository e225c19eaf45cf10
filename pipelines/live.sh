#!/usr/bin/env bash
# Live: raw GRAY16_LE frames from a mat over UDP -> keypoints -> overlay on the display, or into
# files when there is no display (or SPMKD_HEADLESS is set).
#
#   pipelines/live.sh [PORT] [WIDTH] [HEIGHT] [FRAMERATE] [OUTDIR] [FRAMES]
#   defaults: 5000 32 64 1/1 out/live, FRAMES 0 = until stopped (Ctrl-C)
#
# Headless it writes OUTDIR/poses.ndjson and OUTDIR/overlay.webm. Try it with the mat
# simulator in another terminal: pipelines/replay.sh data/sample/experiment-i/S12/3.txt
source "$(dirname "$0")/common.sh"
port=${1:-5000}
width=${2:-32}
height=${3:-64}
rate=${4:-1/1}
out=${5:-out/live}
frames=${6:-0}
stride=$(gray16_stride "$width")
limit=()
[ "$frames" -gt 0 ] && limit=(num-buffers="$frames")

source_part=(
  udpsrc port="$port" "${limit[@]}"
  ! rawvideoparse format=gray16-le width="$width" height="$height" framerate="$rate"
    plane-strides="<$stride>"
  ! spmkdpose ! tee name=t
)
if have_display; then
  exec gst-launch-1.0 -e "${source_part[@]}" \
    t. ! queue ! spmkdoverlay ! videoconvert ! autovideosink \
    t. ! queue ! spmkdjsonenc ! fdsink fd=1
fi
mkdir -p "$out"
gst-launch-1.0 -e "${source_part[@]}" \
  t. ! queue ! spmkdoverlay ! videoconvert ! vp8enc deadline=1 ! webmmux \
     ! filesink location="$out/overlay.webm" \
  t. ! queue ! spmkdjsonenc ! filesink location="$out/poses.ndjson"
echo "$(wc -l < "$out/poses.ndjson") frames: $out/poses.ndjson, $out/overlay.webm"
