#!/usr/bin/env bash
# Runs one pipeline script on the sample recording with headless sinks and checks what it made.
#   pipelines/test.sh offline|live|monitor
# meson test runs each (with the plugin of the build); it can also be run by hand after a build.
source "$(dirname "$0")/common.sh"
here=$(cd "$(dirname "$0")" && pwd)
recording="$here/../data/sample/experiment-i/S12/3.txt"
frames=117   # 119 lines minus the 2 capture artifacts
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export SPMKD_HEADLESS=1

fail() { echo "FAIL: $*" >&2; exit 1; }

# Frames decoded from a WebM file.
decoded() {
  gst-launch-1.0 filesrc location="$1" ! matroskademux ! vp8dec ! identity silent=false \
    ! fakesink -v 2>&1 | grep -c 'identity0: last-message = chain' || true
}

# Checks an NDJSON file of pose records: at least $2 lines, each a record with 32 keypoints.
check_poses() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
path, least = sys.argv[1], int(sys.argv[2])
records = [json.loads(l) for l in open(path) if l.strip()]
assert len(records) >= least, f"{path}: {len(records)} records, expected at least {least}"
for i, r in enumerate(records):
    assert r["schema"] == 1 and len(r["keypoints"]) == 32, f"{path}:{i + 1}: {r}"
    assert {"x", "y", "confidence", "pressure"} <= r["keypoints"][0].keys()
print(f"{path}: {len(records)} pose records")
PY
}

# Keypoints of the first N records of two files are the same (same frames, same model).
same_keypoints() {
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import json, sys
a, b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ka = [json.loads(l)["keypoints"] for l in open(a)][:n]
kb = [json.loads(l)["keypoints"] for l in open(b)][:n]
assert len(ka) == len(kb) == n, (len(ka), len(kb))
assert ka == kb, "keypoints differ"
print(f"the first {n} frames have the same keypoints in {a} and {b}")
PY
}

case "${1:?usage: $0 offline|live|monitor}" in
offline)
  "$here/offline.sh" "$recording" "$work/offline" | tail -1
  [ "$(wc -l < "$work/offline/poses.ndjson")" -eq $frames ] || fail "poses.ndjson: not $frames lines"
  check_poses "$work/offline/poses.ndjson" $frames
  # The sample is a left-side recording: spmkdposture says so for (almost) every frame.
  /usr/bin/python3 - "$work/offline/poses.ndjson" <<'PY'
import collections, json, sys
labels = collections.Counter(json.loads(l)["posture"]["label"] for l in open(sys.argv[1]))
assert labels["left"] >= 0.95 * sum(labels.values()), labels
print(f"postures: {dict(labels)}")
PY
  for video in overlay recon; do
    n=$(decoded "$work/offline/$video.webm")
    [ "$n" -eq $frames ] || fail "$video.webm: $n frames decoded, expected $frames"
    echo "$video.webm: $n frames"
  done
  ;;
live)
  "$here/offline.sh" "$recording" "$work/offline" >/dev/null
  port=$(( 20000 + RANDOM % 20000 ))
  n=100
  timeout 120 "$here/live.sh" $port 32 64 20/1 "$work/live" $n > "$work/live.log" 2>&1 &
  receiver=$!
  sleep 2
  timeout 120 "$here/replay.sh" "$recording" 127.0.0.1 $port 20/1
  wait $receiver || { cat "$work/live.log"; fail "the live pipeline did not end after $n frames"; }
  check_poses "$work/live/poses.ndjson" $n
  # Over UDP or from the file: the same frames, so the same keypoints.
  same_keypoints "$work/offline/poses.ndjson" "$work/live/poses.ndjson" $n
  m=$(decoded "$work/live/overlay.webm")
  [ "$m" -eq $n ] || fail "live overlay.webm: $m frames decoded, expected $n"
  ;;
monitor)
  port=$(( 20000 + RANDOM % 20000 ))
  # 117 frames at 20/s last 5.85 s: a 2 s reposition interval raises one alert.
  REPOSITION=2000000000 timeout 120 "$here/monitor.sh" "$recording" "$work/monitor" $port 20/1 \
    > "$work/monitor.log" 2>&1 &
  stack=$!
  sleep 2
  # The central station: whatever arrives until the stack closes the connection.
  timeout 60 gst-launch-1.0 -q tcpclientsrc port=$port ! filesink location="$work/station.ndjson" \
    || fail "the station's connection did not end"
  wait $stack || { cat "$work/monitor.log"; fail "the monitoring pipeline failed"; }
  check_poses "$work/station.ndjson" 20
  grep -q 'spmkd-posture, posture=(string)left' "$work/monitor.log" \
    || { cat "$work/monitor.log"; fail "no spmkd-posture message saying left"; }
  [ "$(grep -c 'spmkd-reposition, posture=(string)left, since=(guint64)0, duration=(guint64)2000000000' "$work/monitor.log")" -eq 1 ] \
    || { cat "$work/monitor.log"; fail "not exactly one reposition alert at 2 s"; }
  n=$(decoded "$work/monitor/monitor.webm")
  [ "$n" -ge $(( frames * 10 - 10 )) ] || fail "monitor.webm: $n frames decoded"
  echo "monitor.webm: $n frames (camera rate)"
  ;;
*) fail "unknown pipeline $1" ;;
esac
echo "ok: $1"
