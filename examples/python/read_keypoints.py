#!/usr/bin/python3
"""Reads spmkd keypoints, posture and bed monitoring from buffers at an appsink, as an application would.

    GST_PLUGIN_PATH=<dir of libgstspmkd.so> /usr/bin/python3 examples/python/read_keypoints.py \
        data/sample/experiment-i/S12/3.txt [--expect-frames N]

Needs Debian's python3-gi and python3-gst-1.0 (scripts/setup installs them). Prints one line
per frame: timestamp, model, the most confident keypoint in sensor cells, the posture (or
"none" for an empty bed, "uncertain" for a frame the models are not trusted on), occupancy,
trust, time since the last movement and the longest time a region has been under load. Exits
non-zero on a pipeline error, on a buffer without a pose, or when the frame count is not the
expected.

The pose is a GstCustomMeta named "SpmkdPoseMeta" holding a "spmkd/pose" structure (schema 2):
width and height of the sensor grid, model, inference_us, stale, optional quality and posture
(label, probabilities), the keypoints as four parallel float arrays x, y, confidence, pressure,
and with spmkdmonitor upstream a nested "spmkd/monitor" structure under "monitor" (occupied,
trust, movement, still_ns, loaded_cells, regions as parallel arrays region_x, region_y,
region_cells, region_under_load_ns, region_dose, ...; docs: README, "Bed monitoring").
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
    pose = {
        "schema": s.get_value("schema"),
        "width": s.get_value("width"),
        "height": s.get_value("height"),
        "model": s.get_value("model"),
        "stale": s.get_value("stale"),
        "posture": s.get_value("posture") if s.has_field("posture") else None,
        "keypoints": [
            {"x": x, "y": y, "confidence": c, "pressure": p}
            for x, y, c, p in zip(xs, ys, confidence, pressure)
        ],
        "monitor": None,
    }
    if s.has_field("monitor"):
        m = s.get_value("monitor")
        under_load = list(m.get_value("region_under_load_ns"))
        pose["monitor"] = {
            "occupied": m.get_value("occupied"),
            "trust": m.get_value("trust"),
            "moved": m.get_value("moved"),
            "still_ns": m.get_value("still_ns"),
            "longest_under_load_ns": max(under_load, default=0),
        }
    return pose


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("--expect-frames", type=int)
    args = parser.parse_args()

    Gst.init(None)
    pipeline = Gst.parse_launch(
        "pmatsrc name=src ! spmkdpose ! spmkdmonitor ! spmkdposture "
        "! appsink name=sink sync=false max-buffers=8"
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
        m = pose["monitor"]
        if m is None or pose["posture"] is None:
            sys.exit(f"frame {frames}: no monitoring or posture on the buffer")
        print(
            f"{buffer.pts / Gst.SECOND:8.3f} s  {pose['model']}  "
            f"{len(pose['keypoints'])} keypoints, best at ({best['x']:.2f}, {best['y']:.2f}) "
            f"confidence {best['confidence']:.3f}{'' if in_grid else '  (off the mat)'}  "
            f"{pose['posture']:9}  {'occupied' if m['occupied'] else 'empty'}, "
            f"trust {m['trust']:.2f}, still {m['still_ns'] / Gst.SECOND:.0f} s, "
            f"longest under load {m['longest_under_load_ns'] / Gst.SECOND:.0f} s"
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
