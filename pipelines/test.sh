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

# Checks an NDJSON file of pose records: at least $2 lines, each a record with 32 keypoints
# (and, with a third argument, spmkdmonitor's findings: someone in bed, trusted, a posture).
check_poses() {
  /usr/bin/python3 - "$1" "$2" "${3:-}" <<'PY'
import json, sys
path, least, monitored = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "monitor"
records = [json.loads(l) for l in open(path) if l.strip()]
records = [r for r in records if not r.get("end")]  # the end record of end-record=true
assert len(records) >= least, f"{path}: {len(records)} records, expected at least {least}"
for i, r in enumerate(records):
    assert r["schema"] == 2 and len(r["keypoints"]) == 32, f"{path}:{i + 1}: {r}"
    assert {"x", "y", "confidence", "pressure"} <= r["keypoints"][0].keys()
    if monitored:
        m = r["monitor"]
        assert m["occupied"] and m["trust"] > 0 and m["regions"], f"{path}:{i + 1}: {m}"
        assert r["posture"]["label"] in ("supine", "left", "right", "uncertain"), r["posture"]
print(f"{path}: {len(records)} pose records{' with monitoring' if monitored else ''}")
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

  # A recording that goes bad after 9 good frames: the pipeline fails, and every good frame
  # is in poses.ndjson (parallel-frames=0, one lane per core, holds frames back for their batch
  # when the error comes).
  head -n 11 "$recording" > "$work/bad.txt"
  printf '1\t2\tthree\r\n' >> "$work/bad.txt"
  if "$here/offline.sh" "$work/bad.txt" "$work/bad" > "$work/bad.log" 2>&1; then
    fail "a malformed recording did not fail the pipeline"
  fi
  grep -q 'bad.txt:12: ' "$work/bad.log" || { cat "$work/bad.log"; fail "no error naming line 12"; }
  [ "$(wc -l < "$work/bad/poses.ndjson")" -eq 9 ] \
    || fail "$(wc -l < "$work/bad/poses.ndjson") of the 9 good frames in poses.ndjson"
  echo "bad recording: the error names line 12, poses.ndjson has all 9 good frames"

  # From a pipe: `cat rec.raw | pmatsrc location=/dev/stdin format=raw`, the same keypoints.
  gst-launch-1.0 -q pmatsrc location="$recording" ! filesink location="$work/rec.raw"
  cat "$work/rec.raw" | gst-launch-1.0 -q pmatsrc location=/dev/stdin format=raw width=32 height=64 \
    ! spmkdpose ! spmkdjsonenc ! filesink location="$work/stdin.ndjson"
  /usr/bin/python3 - "$work/offline/poses.ndjson" "$work/stdin.ndjson" <<'PY'
import json, sys
a = [json.loads(l)["keypoints"] for l in open(sys.argv[1])]
b = [json.loads(l)["keypoints"] for l in open(sys.argv[2])]
assert len(a) == len(b) == 117 and a == b, (len(a), len(b))
print("from /dev/stdin: the same 117 poses as from the file")
PY
  ;;
live)
  "$here/offline.sh" "$recording" "$work/offline" >/dev/null
  port=$(( 20000 + RANDOM % 20000 ))
  network=$(( port + 1 ))
  # A network that spoils datagrams on the way: frame 10 lost, 20 short, 30 long, 41 overtakes
  # 40, 50 replaced by a valid frame of another size (1x1), 60 twice, noise after 70, an end
  # mark of another sender after 80, a second sender's copy of 90. Each costs at most its own
  # frame, and is counted; neither the forged end nor the odd size stops the stream.
  SENSOR_TIMEOUT=5 timeout 120 "$here/live.sh" $port "$work/live" 20/1 > "$work/live.log" 2>&1 &
  receiver=$!
  /usr/bin/python3 "$here/udp-faults.py" $network 127.0.0.1 $port --drop 10 --truncate 20 \
    --extend 30 --swap 40 --odd-size 50 --duplicate 60 --garbage 70 --forged-end 80 \
    --second-sender 90 2> "$work/faults.log" &
  faults=$!
  sleep 2
  timeout 120 "$here/replay.sh" "$recording" 127.0.0.1 $network 20/1
  wait $receiver || { cat "$work/live.log"; fail "the live pipeline did not end with the sender"; }
  wait $faults
  cat "$work/faults.log"
  grep -q 'frames=(guint64)112, lost=(guint64)1, late=(guint64)1, duplicates=(guint64)1, malformed=(guint64)3, restarts=(guint64)0, other-source=(guint64)2, wrong-size=(guint64)1, refused-ends=(guint64)0' \
    "$work/live.log" || { cat "$work/live.log"; fail "transport stats"; }
  grep 'spmkd-transport-stats' "$work/live.log"
  check_poses "$work/live/poses.ndjson" 112
  # Every frame that came through is the frame sent: the same keypoints as from the file.
  /usr/bin/python3 - "$work/offline/poses.ndjson" "$work/live/poses.ndjson" <<'PY'
import json, sys
sent = [json.loads(l)["keypoints"] for l in open(sys.argv[1])]
got = [json.loads(l)["keypoints"] for l in open(sys.argv[2])]
kept = [k for i, k in enumerate(sent) if i not in (10, 20, 30, 40, 50)]
assert len(got) == len(kept) == 112, (len(got), len(kept))
wrong = sum(a != b for a, b in zip(kept, got))
assert wrong == 0, f"{wrong} of {len(got)} frames have other keypoints than the frame sent"
print(f"{len(got)} frames received, each with the keypoints of the frame sent")
PY
  m=$(decoded "$work/live/overlay.webm")
  [ "$m" -eq 112 ] || fail "live overlay.webm: $m frames decoded, expected 112"

  # A sender that dies mid-stream: the receiver reports the silent sensor and fails.
  SENSOR_TIMEOUT=2 timeout 120 "$here/live.sh" $port "$work/dead" 20/1 > "$work/dead.log" 2>&1 &
  receiver=$!
  sleep 2
  timeout 2 "$here/replay.sh" "$recording" 127.0.0.1 $port 20/1 || true
  if wait $receiver; then cat "$work/dead.log"; fail "the receiver of a dead sender exited 0"; fi
  grep -q 'spmkd-sensor-lost' "$work/dead.log" || { cat "$work/dead.log"; fail "no spmkd-sensor-lost"; }
  grep -q 'the sensor went silent' "$work/dead.log" || { cat "$work/dead.log"; fail "no error"; }
  echo "dead sender: $(grep -o 'spmkd-sensor-lost.*' "$work/dead.log" | head -1)"
  ;;
monitor)
  port=$(( 20000 + RANDOM % 20000 ))
  # 117 frames at 20/s last 5.85 s: a 2 s reposition interval raises one alert.
  REPOSITION=2000000000 timeout 120 "$here/monitor.sh" "$recording" "$work/monitor" $port 20/1 \
    > "$work/monitor.log" 2>&1 &
  stack=$!
  sleep 2
  # The central station: whatever arrives until the stack ends its stream.
  timeout 60 "$here/station.sh" 127.0.0.1 $port "$work/station.ndjson" \
    || fail "the station did not see the stream end"
  wait $stack || { cat "$work/monitor.log"; fail "the monitoring pipeline failed"; }
  check_poses "$work/station.ndjson" 20 monitor
  tail -n 1 "$work/station.ndjson"
  grep -q 'spmkd-occupancy, occupied=(boolean)true, running-time=(guint64)0;' "$work/monitor.log" \
    || { cat "$work/monitor.log"; fail "no spmkd-occupancy message at the start"; }
  grep -q 'spmkd-posture, posture=(string)left' "$work/monitor.log" \
    || { cat "$work/monitor.log"; fail "no spmkd-posture message saying left"; }
  [ "$(grep -c 'spmkd-reposition, posture=(string)left, since=(guint64)0, duration=(guint64)2000000000' "$work/monitor.log")" -eq 1 ] \
    || { cat "$work/monitor.log"; fail "not exactly one reposition alert at 2 s"; }
  n=$(decoded "$work/monitor/monitor.webm")
  [ "$n" -ge $(( frames * 10 - 10 )) ] || fail "monitor.webm: $n frames decoded"
  echo "monitor.webm: $n frames (camera rate)"

  # A stack that dies mid-stream: the station says so and fails.
  port=$(( port + 1 ))
  timeout 120 "$here/monitor.sh" "$recording" "$work/killed" $port 20/1 > /dev/null 2>&1 &
  stack=$!
  sleep 2
  ( sleep 2; kill $stack ) &
  code=0
  timeout 60 "$here/station.sh" 127.0.0.1 $port "$work/killed.ndjson" 2> "$work/killed.log" || code=$?
  cat "$work/killed.log"
  [ $code -eq 3 ] || fail "a killed stack: the station exited $code, not 3"

  # A stack that hangs (stopped, its connection open): the station gives up after the silence.
  port=$(( port + 1 ))
  timeout 120 "$here/monitor.sh" "$recording" "$work/hung" $port 20/1 > /dev/null 2>&1 &
  stack=$!
  sleep 2
  # $stack is timeout(1); the stack is its child (monitor.sh execs gst-launch-1.0).
  ( sleep 2; pkill -STOP -P $stack ) &
  code=0
  timeout 60 "$here/station.sh" 127.0.0.1 $port "$work/hung.ndjson" 3 2> "$work/hung.log" || code=$?
  pkill -KILL -P $stack 2>/dev/null || true
  { wait $stack; } 2>/dev/null || true
  cat "$work/hung.log"
  [ $code -eq 2 ] || fail "a hung stack: the station exited $code, not 2"
  ;;
*) fail "unknown pipeline $1" ;;
esac
echo "ok: $1"
