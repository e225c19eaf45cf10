#!/usr/bin/env bash
# A monitoring video stack: the pressure overlay composited beside a camera stream (videotestsrc
# stands in for the ward camera), shown or recorded, and the keypoints sent on as NDJSON over
# TCP for a central station, with the posture; posture changes and reposition alerts
# (spmkd-posture, spmkd-reposition) are printed from the bus. Runs at the recording's rate, as a
# live mat would; REPOSITION (ns, default 2 hours) sets the alert's interval.
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

# The overlay of a 32x64 mat at scale 4 is 128x256; the camera sits left of it at 320x240.
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
  compositor name=mix background=black sink_1::xpos=320 \
  ! video/x-raw,width=448,height=256 ! "${sink[@]}" \
  videotestsrc pattern=smpte num-buffers="$camera_frames" \
  ! video/x-raw,width=320,height=240,framerate="$(( ${rate%/*} * 10 ))/${rate#*/}" ! mix.sink_0 \
  pmatsrc location="$recording" framerate="$rate" ! spmkdpose \
  ! spmkdposture reposition-interval="${REPOSITION:-7200000000000}" ! tee name=t \
  t. ! queue ! spmkdoverlay scale=4 ! videoconvert ! mix.sink_1 \
  t. ! queue ! spmkdjsonenc end-record=true ! tcpserversink host=0.0.0.0 port="$port" sync=true
