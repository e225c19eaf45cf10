#!/usr/bin/python3
"""Reads spmkd keypoints from buffers at an appsink, as an application would.

    GST_PLUGIN_PATH=<dir of libgstspmkd.so> /usr/bin/python3 examples/python/read_keypoints.py \
        data/sample/experiment-i/S12/3.txt [--expect-frames N]

Needs Debian's python3-gi and python3-gst-1.0 (scripts/setup installs them). Prints one line
per frame: timestamp, model, and the most confident keypoint in sensor cells. Exits non-zero
on a pipeline error, on a buffer without a pose, or when the frame count is not the expected.

The pose is a GstCustomMeta named "SpmkdPoseMeta" holding a "spmkd/pose" structure: width and
height of the sensor grid, model, inference_us, stale, optional quality and posture, and the
keypoints as four parallel float arrays x, y, confidence, pressure (docs: README, "spmkdpose").
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def read_pose(buffer):
    """The pose of a buffer as a dict, or None when it has no SpmkdPoseMeta."""
    meta = buffer.get_custom_meta("SpmkdPoseMeta")
    if meta is None:
        return None
    s = meta.get_structure()
    xs, ys = list(s.get_value("x")), list(s.get_value("y"))
    confidence, pressure = list(s.get_value("confidence")), list(s.get_value("pressure"))
    return {
        "width": s.get_value("width"),
        "height": s.get_value("height"),
        "model": s.get_value("model"),
        "stale": s.get_value("stale"),
        "keypoints": [
            {"x": x, "y": y, "confidence": c, "pressure": p}
            for x, y, c, p in zip(xs, ys, confidence, pressure)
        ],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("--expect-frames", type=int)
    args = parser.parse_args()

    Gst.init(None)
    pipeline = Gst.parse_launch(
        "pmatsrc name=src ! spmkdpose ! appsink name=sink sync=false max-buffers=8"
    )
    pipeline.get_by_name("src").set_property("location", args.recording)
    sink = pipeline.get_by_name("sink")
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        sys.exit(f"cannot start: {msg.parse_error()[0].message if msg else 'unknown'}")

    frames = 0
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:  # EOS or error
            break
        buffer = sample.get_buffer()
        pose = read_pose(buffer)
        if pose is None or len(pose["keypoints"]) == 0:
            sys.exit(f"frame {frames}: no keypoints on the buffer")
        best = max(pose["keypoints"], key=lambda k: k["confidence"])
        in_grid = 0 <= best["x"] < pose["width"] and 0 <= best["y"] < pose["height"]
        print(
            f"{buffer.pts / Gst.SECOND:8.3f} s  {pose['model']}  "
            f"{len(pose['keypoints'])} keypoints, best at ({best['x']:.2f}, {best['y']:.2f}) "
            f"confidence {best['confidence']:.3f}{'' if in_grid else '  (off the mat)'}"
        )
        frames += 1

    msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if msg is not None:
        err, debug = msg.parse_error()
        sys.exit(f"pipeline error: {err.message} ({debug})")
    print(f"{frames} frames")
    if args.expect_frames is not None and frames != args.expect_frames:
        sys.exit(f"expected {args.expect_frames} frames, got {frames}")


if __name__ == "__main__":
    main()
