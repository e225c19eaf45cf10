#!/usr/bin/env bash
# A pressure mat on the network: plays a recording at its rate as RTP over UDP, one frame per
# packet (rtppmatpay: the payload of spmkd_core::transport, with sequence numbers, so the
# receiver can tell a lost or late frame), and marks the end of the stream when it is done.
#
#   pipelines/replay.sh RECORDING [HOST] [PORT] [FRAMERATE]   (127.0.0.1 5000 1/1)
source "$(dirname "$0")/common.sh"
recording=${1:?usage: $0 RECORDING [HOST] [PORT] [FRAMERATE]}
host=${2:-127.0.0.1}
port=${3:-5000}
rate=${4:-1/1}

# udpsink sync=true sends each frame at its timestamp: the recording's own rate.
gst-launch-1.0 -q pmatsrc location="$recording" framerate="$rate" \
  ! rtppmatpay ! udpsink host="$host" port="$port" sync=true
