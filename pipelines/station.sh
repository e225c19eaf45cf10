#!/usr/bin/env bash
# The central station of the monitoring stack (pipelines/monitor.sh): receives the keypoints and
# postures (NDJSON over TCP) into a file, and tells a stream that ended from a stack that was
# lost on the way.
#
#   pipelines/station.sh HOST PORT OUT [SILENCE]      (SILENCE: seconds, default 10)
#
# Exit 0: the stack ended its stream (its last line is the end record spmkdjsonenc
# end-record=true writes at EOS). Exit 2: nothing arrived for SILENCE seconds (the stack hangs
# or the network is gone). Exit 3: the connection closed without the end record (the stack
# died, or was killed).
source "$(dirname "$0")/common.sh"
host=${1:?usage: $0 HOST PORT OUT [SILENCE]}
port=${2:?usage: $0 HOST PORT OUT [SILENCE]}
out=${3:?usage: $0 HOST PORT OUT [SILENCE]}
silence=${4:-10}

# tcpclientsrc's timeout fails the read after SILENCE seconds without data.
if ! gst-launch-1.0 -q tcpclientsrc host="$host" port="$port" timeout="$silence" \
    ! filesink location="$out"; then
  echo "station: no data from $host:$port for ${silence} s: the monitoring stack is lost" >&2
  exit 2
fi
if ! tail -n 1 "$out" | grep -q '"end":true'; then
  echo "station: $host:$port closed the connection without ending its stream: the monitoring" \
    "stack stopped abnormally ($(grep -c . "$out") lines received)" >&2
  exit 3
fi
echo "station: the stream ended after $(( $(grep -c . "$out") - 1 )) records: $out"
