#!/usr/bin/env bash
# Live: pressure frames from a mat over UDP (RTP, one frame per packet: rtppmatdepay) ->
# keypoints -> overlay on the display, or into files when there is no display (or
# SPMKD_HEADLESS is set).
#
#   pipelines/live.sh [PORT] [OUTDIR] [FRAMERATE]      (5000 out/live, 0/1 = variable)
#   SENSOR_TIMEOUT=seconds (default 5): silence after which the sensor counts as lost
#
# Each datagram is checked on its own: a lost, short, long, late or duplicated one costs at
# most its frame and is reported (spmkd-transport messages, printed). The stream ends when the
# sender marks its end (exit 0), or fails when the sensor goes silent for SENSOR_TIMEOUT
# (spmkd-sensor-lost, exit 1). The frame size comes with the frames. Headless it writes
# OUTDIR/poses.ndjson and OUTDIR/overlay.webm. Try it with the mat simulator in another
# terminal: pipelines/replay.sh data/sample/experiment-i/S12/3.txt
source "$(dirname "$0")/common.sh"
port=${1:-5000}
out=${2:-out/live}
rate=${3:-0/1}
timeout_ns=$(( ${SENSOR_TIMEOUT:-5} * 1000000000 ))

source_part=(
  udpsrc port="$port" caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=X-PMAT"
  ! rtppmatdepay framerate="$rate" sensor-timeout="$timeout_ns" sensor-lost-action=error
  ! spmkdpose ! tee name=t
)
if have_display; then
  # The keypoints go to stdout: no bus messages printed there.
  exec gst-launch-1.0 -e "${source_part[@]}" \
    t. ! queue ! spmkdoverlay ! videoconvert ! autovideosink \
    t. ! queue ! spmkdjsonenc ! fdsink fd=1
fi
mkdir -p "$out"
status=0
gst-launch-1.0 -e -m "${source_part[@]}" \
  t. ! queue ! spmkdoverlay ! videoconvert ! vp8enc deadline=1 ! webmmux \
     ! filesink location="$out/overlay.webm" \
  t. ! queue ! spmkdjsonenc ! filesink location="$out/poses.ndjson" || status=$?
echo "$(wc -l < "$out/poses.ndjson") frames: $out/poses.ndjson, $out/overlay.webm"
exit $status
