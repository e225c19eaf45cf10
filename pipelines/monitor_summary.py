#!/usr/bin/env python3
"""Tables for docs/RESULTS.md "Monitoring" and "Trust" from what pipelines/monitor-calibration.sh
wrote (one NDJSON per set). Standard library only.

  python3 pipelines/monitor_summary.py OUTDIR
"""
import json
import sys
from pathlib import Path


def records(path):
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "end" not in r:
                yield r


def pct(values, *ps):
    v = sorted(values)
    if not v:
        return ["-"] * len(ps)
    return [f"{v[min(len(v) - 1, int(p / 100 * len(v)))]:.3f}" for p in ps]


def load(out, names):
    return {n: list(records(out / f"{n}.ndjson")) for n in names if (out / f"{n}.ndjson").exists()}


def movement(sets):
    """Frames within a recording against the first frame of the next one (a change of posture)."""
    within, boundary = {"p": [], "k": []}, {"p": [], "k": []}
    for rs in sets.values():
        for i, r in enumerate(rs):
            if i == 0:
                continue
            m = r["monitor"]
            side = boundary if r.get("pts_ns") == 0 else within
            side["p"].append(m["pressure_change"])
            if m.get("keypoint_shift") is not None:
                side["k"].append(m["keypoint_shift"])
    print("| frames | n | load moved p50 / p99 / p99.9 / max | keypoint shift (cells) p50 / p99 / p99.9 / max |")
    print("|---|---|---|---|")
    for name, side in (("within a recording", within), ("first of the next recording", boundary)):
        print(f"| {name} | {len(side['p'])} | {' / '.join(pct(side['p'], 50, 99, 99.9, 100))} "
              f"| {' / '.join(pct(side['k'], 50, 99, 99.9, 100))} |")
    print("(boundary p1 / p5: load moved", " / ".join(pct(boundary["p"], 1, 5)),
          "; keypoint shift", " / ".join(pct(boundary["k"], 1, 5)), ")")


def moved_and_offloaded(sets):
    within_moved = boundary_moved = within_n = boundary_n = offloaded = 0
    for rs in sets.values():
        for i, r in enumerate(rs[1:], 1):
            m = r["monitor"]
            if r.get("pts_ns") == 0:
                boundary_n += 1
                boundary_moved += m["moved"]
            else:
                within_n += 1
                within_moved += m["moved"]
            offloaded += m["offloaded"]
    print(f"moved: {within_moved} of {within_n} frames within recordings, "
          f"{boundary_moved} of {boundary_n} first frames after a change; "
          f"offloading repositions: {offloaded}")


def occupancy(sets):
    n = sum(len(rs) for rs in sets.values())
    occ = sum(r["monitor"]["occupied"] for rs in sets.values() for r in rs)
    return f"{occ} of {n} ({100 * occ / max(n, 1):.1f} %)"


def trust_values(sets):
    return [r["monitor"]["trust"] for s in sets.values() for r in s if r["monitor"]["occupied"]]


def choose_min_trust(flipped):
    """The operating point, on validation only: the trust below which 3 in 4 frames of the
    validation mat turned head to foot fall (the whole of a wrongly laid mat need not be
    flagged for the problem to show, and none of the validation frames as recorded is)."""
    return float(pct(trust_values(flipped), 75)[0])


def trust_table(groups, min_trust):
    print("| set | frames | trust p10 / p50 / p90 | below min-trust | quality p50 | confidence p50 | layout p50 |")
    print("|---|---|---|---|---|---|---|")
    for name, sets in groups:
        rs = [r for s in sets.values() for r in s if r["monitor"]["occupied"]]
        t = [r["monitor"]["trust"] for r in rs]
        q = [r["quality"] for r in rs if "quality" in r]
        c = [sum(k["confidence"] for k in r["keypoints"]) / len(r["keypoints"]) for r in rs if r["keypoints"]]
        lay = [r["layout"] for r in rs if "layout" in r]
        below = sum(x < min_trust for x in t)
        print(f"| {name} | {len(rs)} | {' / '.join(pct(t, 10, 50, 90))} | "
              f"{100 * below / max(len(t), 1):.1f} % | {pct(q, 50)[0]} | {pct(c, 50)[0]} | {pct(lay, 50)[0]} |")


# TRUST_SCALE's ramps (core/src/monitor/trust.rs); an encoder's own spmkd.layout_ramp, carried
# in the records as layout_ramp, replaces the layout one.
QUALITY_RAMP, CONFIDENCE_RAMP, LAYOUT_RAMP = (0.5, 1.0), (0.4, 1.0), (0.60, 0.86)


def recomputed_trust(r, layout_ramp=None):
    """A record's trust as core/src/monitor/trust.rs computes it, with `layout_ramp` for the
    layout evidence (default: the record's own, else TRUST_SCALE's; checked against the
    records' own trust in main)."""
    layout_ramp = layout_ramp or tuple(r.get("layout_ramp") or LAYOUT_RAMP)
    if not r["monitor"]["occupied"]:
        return 0.0

    def ramp(v, lo_hi):
        lo, hi = lo_hi
        return min(1.0, max(0.0, (v - lo) / (hi - lo)))
    pieces = []
    if "quality" in r:
        pieces.append(ramp(r["quality"], QUALITY_RAMP))
    if r["keypoints"]:
        mean = sum(k["confidence"] for k in r["keypoints"]) / len(r["keypoints"])
        pieces.append(ramp(mean / (r.get("confidence_reference") or 1.0), CONFIDENCE_RAMP))
    if "layout" in r:
        pieces.append(ramp(r["layout"], layout_ramp))
    product = 1.0
    for p in pieces:
        product *= p
    return product ** (1 / len(pieces)) if pieces else 1.0


def choose_layout_ramp(validation, min_trust):
    """The layout ramp fit_layout_ramp (core/src/monitor/trust.rs) would choose on these frames
    (experiment-i S9..S10 as recorded, with the decoder and without): it reaches 1 at the median
    layout of the first set, and starts at the highest agreement (in steps of 0.01) that costs no
    more than 1 % of the frames min-trust where full layout evidence would keep them above it."""
    frames = [[r for s in sets.values() for r in s if r["monitor"]["occupied"] and "layout" in r]
              for sets in validation]
    layouts = sorted(r["layout"] for r in frames[0])
    if not layouts:
        return None
    saveable = [[r for r in rs if recomputed_trust(r, (-2.0, -1.0)) >= min_trust] for rs in frames]
    hi = round(layouts[len(layouts) // 2], 2)
    for lo in (x / 100 for x in range(round(hi * 100) - 1, -101, -1)):
        if all(sum(recomputed_trust(r, (lo, hi)) < min_trust for r in rs) <= 0.01 * len(rs)
               for rs in saveable):
            return lo, hi
    return None


def auc(a, b):
    """Probability that a value of `a` is above one of `b` (ties count half)."""
    import bisect
    bs = sorted(b)
    wins = sum(bisect.bisect_left(bs, v) + 0.5 * (bisect.bisect_right(bs, v) - bisect.bisect_left(bs, v)) for v in a)
    return wins / max(len(a) * len(b), 1)


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/calibration")
    min_trust = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3
    train = load(out, [f"i-S{s}" for s in range(1, 11)])
    held = load(out, [f"i-S{s}" for s in range(11, 14)])
    unfamiliar = load(out, [f"ii-S{s}-{m}" for s in range(1, 9) for m in ("Air", "Sponge")])
    print("## Movement, experiment-i S1..S10 (choice)\n")
    movement(train)
    moved_and_offloaded(train)
    print("\n## Movement, experiment-i S11..S13 (held out)\n")
    movement(held)
    moved_and_offloaded(held)
    print("\n## Occupancy (every frame has someone on the mat)\n")
    print(f"experiment-i S1..S13: {occupancy({**train, **held})} read occupied; "
          f"experiment-ii: {occupancy(unfamiliar)}")
    validation = [load(out, [f"i-S9{suffix}", f"i-S10{suffix}"]) for suffix in ("", "-nodecoder")]
    layout_ramp = choose_layout_ramp(validation, min_trust)
    sets = validation + [load(out, [f"i-S9-flipped{suffix}", f"i-S10-flipped{suffix}"])
                         for suffix in ("", "-nodecoder")]
    records = [r for v in sets for rs in v.values() for r in rs]
    in_use = {tuple(r.get("layout_ramp") or LAYOUT_RAMP) for r in records if "layout" in r}
    off = max((abs(recomputed_trust(r) - r["monitor"]["trust"]) for r in records), default=0.0)
    source = ("the encoder's own" if any("layout_ramp" in r for r in records)
              else "core's fallback")
    ramps = ", ".join(f"{lo:.2f} .. {hi:.2f}" for lo, hi in in_use)
    print(f"\n## Layout ramp in use: {ramps} ({source}; trust recomputed from the records "
          f"differs from theirs by at most {off:.5f})")
    if layout_ramp:
        print(f"Chosen on these validation frames as recorded: {layout_ramp[0]:.2f} .. {layout_ramp[1]:.2f}")
    for suffix, what in (("", "with the decoder's quality (spmkdpose quality=true)"),
                         ("-nodecoder", "keypoint confidence only (no decoder)")):
        val = load(out, [f"i-S9{suffix}", f"i-S10{suffix}"])
        flipped = load(out, [f"i-S9-flipped{suffix}", f"i-S10-flipped{suffix}"])
        held = load(out, [f"i-S{s}{suffix}" for s in range(11, 14)])
        unfamiliar = load(out, [f"ii-S{s}-{m}{suffix}" for s in range(1, 9) for m in ("Air", "Sponge")])
        turned = load(out, [f"ii-S{s}-{m}-turned{suffix}" for s in range(1, 9) for m in ("Air", "Sponge")])
        chosen = choose_min_trust(flipped)
        print(f"\n## Trust, {what}\n")
        print(f"ROC AUC, validation as recorded against turned: "
              f"{auc(trust_values(val), trust_values(flipped)):.4f}; min-trust chosen on it "
              f"(3 in 4 turned frames below): {chosen:.3f}; the table at min-trust {min_trust}\n")
        trust_table([
            ("experiment-i S9..S10 (validation)", val),
            ("S9..S10 turned head to foot (validation)", flipped),
            ("experiment-i S11..S13 (held out)", held),
            ("experiment-ii, untouched (unfamiliar)", unfamiliar),
            ("experiment-ii, turned 180 degrees (unfamiliar, as installed)", turned),
        ], min_trust)


if __name__ == "__main__":
    main()
