#!/usr/bin/env bash
# A monitoring video stack: the pressure overlay and the exposure map (each cell's time under
# load, with its legend) composited beside a camera stream (videotestsrc stands in for the ward
# camera), shown or recorded, and the keypoints sent on as NDJSON over TCP for a central
# station, with posture, occupancy, movement, exposure and trust (spmkdmonitor). Bus messages
# are printed: spmkd-occupancy, spmkd-bed-exit, spmkd-edge, spmkd-exposure, spmkd-posture,
# spmkd-reposition, spmkd-repositioned. Runs at the recording's rate, as a live mat would;
# REPOSITION (ns, default 2 hours) sets the reposition interval, EXIT_DELAY (ns, default 60 s)
# how long an empty bed waits before spmkd-bed-exit, EXPOSURE_MAX (ns, default 2 hours) the time
# under load at the top of the exposure map's colour scale.
#
#   pipelines/monitor.sh RECORDING [OUTDIR] [PORT] [FRAMERATE]   (out/monitor 7000 1/1)
#
# A central station reads the keypoints with pipelines/station.sh HOST 7000 station.ndjson, which
# tells a stream that ended (the end record spmkdjsonenc end-record=true writes at EOS) from a
# stack that died or hangs.
# Headless (no display, or SPMKD_HEADLESS set) the composite goes to OUTDIR/monitor.webm.
source "$(dirname "$0")/common.sh"
recording=${1:?usage: $0 RECORDING [OUTDIR] [PORT] [FRAMERATE]}
out=${2:-out/monitor}
port=${3:-7000}
rate=${4:-1/1}

# The overlays of a 32x64 mat at scale 4 are 128x256 each; the camera sits left of them at
# 320x240.
if have_display; then
  sink=(videoconvert ! autovideosink)
else
  mkdir -p "$out"
  sink=(videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location="$out/monitor.webm")
fi
# The camera stand-in stops with the recording, so the composite ends: count the frames first.
frames=$(gst-launch-1.0 pmatsrc location="$recording" ! identity silent=false ! fakesink -v 2>&1 \
  | grep -c 'identity0: last-message = chain' || true)
camera_frames=$(( frames * 10 ))   # a camera 10 times the mat's rate, for as long

exec gst-launch-1.0 -e -m \
  compositor name=mix background=black sink_1::xpos=320 sink_2::xpos=448 \
  ! video/x-raw,width=576,height=256 ! "${sink[@]}" \
  videotestsrc pattern=smpte num-buffers="$camera_frames" \
  ! video/x-raw,width=320,height=240,framerate="$(( ${rate%/*} * 10 ))/${rate#*/}" ! mix.sink_0 \
  pmatsrc location="$recording" framerate="$rate" ! spmkdpose \
  ! spmkdmonitor exit-delay="${EXIT_DELAY:-60000000000}" exposure-map=true \
  ! spmkdposture reposition-interval="${REPOSITION:-7200000000000}" ! tee name=t \
  t. ! queue ! spmkdoverlay scale=4 ! videoconvert ! mix.sink_1 \
  t. ! queue ! spmkdoverlay scale=4 mode=exposure keypoints=false label=false \
     exposure-max="${EXPOSURE_MAX:-7200000000000}" \
     ! videoconvert ! mix.sink_2 \
  t. ! queue ! spmkdjsonenc end-record=true ! tcpserversink host=0.0.0.0 port="$port" sync=true
