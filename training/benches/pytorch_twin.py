#!/usr/bin/env python3
"""The shipped SPMKD network in PyTorch, layer for layer: the anchor training speed is
measured against.

Optional, and not part of CI or set-up: it needs PyTorch, which the user installs
(`python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy`). It prints the
same tables as `cargo bench -p spmkd-training --bench step_profile` (whole CRWT steps, the
network's parts forward and backward, its distinct convolutions) and the encoder's inference
rate, so the two can be run back to back on one machine and compared row by row:

    cargo bench -p spmkd-training --bench step_profile > burn.md
    /tmp/torch/bin/python training/benches/pytorch_twin.py > torch.md

The network is training/src/model/ as written there: the same layers, shapes, activations
(h-swish, ReLU), batch norms (running statistics), bilinear resampling with half-pixel
centres, the same losses (per-pixel cross-entropy against the 5x5-voted pressure mask;
sigmoid, L2 and 1 - SSIM with the 11x11 Gaussian window of sigma 1.5), Adam at lr 2e-3,
batch 32, inputs uniform in [0, 1] as in the Burn profile. `--check` prints the parameter
count (batch-norm statistics included, as Burn counts them) to compare with
`spmkd-train info`. `--keep-freed-memory` gives glibc's malloc the settings `spmkd-train` and
the Burn profile use (training/src/memory.rs), to compare like with like; without it malloc keeps
glibc's defaults, as a PyTorch user has them.
"""
import argparse
import ctypes
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

S, K, FEAT, WIDTH, FC_CHANNELS, CELL = 64, 32, 16, 16, 4, 4
BATCH = 32
STEM = 16
# kernel, expanded, out, activation, stride (training/src/model/encoder.rs BLOCKS)
BLOCKS = [
    (3, 16, 16, "relu", 2),
    (3, 72, 24, "relu", 2),
    (3, 88, 24, "relu", 1),
    (5, 96, 40, "hswish", 1),
    (5, 240, 40, "hswish", 1),
    (5, 120, 48, "hswish", 1),
    (5, 288, 96, "hswish", 1),
]


class ConvNorm(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1, dilation=1, act="relu"):
        super().__init__()
        pad = dilation * (k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, dilation, groups, bias=False)
        self.norm = nn.BatchNorm2d(cout)
        self.act = {"relu": nn.ReLU(), "hswish": nn.Hardswish(), "identity": nn.Identity()}[act]

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class InvertedResidual(nn.Module):
    def __init__(self, cin, expanded, cout, k, stride, act):
        super().__init__()
        self.expand = ConvNorm(cin, expanded, 1, act=act) if expanded != cin else None
        self.depthwise = ConvNorm(expanded, expanded, k, stride, groups=expanded, act=act)
        self.project = ConvNorm(expanded, cout, 1, act="identity")
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return y + x if self.residual else y


def cell_centres(side):
    i = torch.arange(side * side)
    x, y = (i % side).float(), (i // side).float()
    return torch.stack([(x + 0.5) / side, (y + 0.5) / side], 1).unsqueeze(0)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvNorm(1, STEM, 3, act="hswish")
        blocks, c = [], STEM
        for k, e, o, a, st in BLOCKS:
            blocks.append(InvertedResidual(c, e, o, k, st, a))
            c = o
        self.blocks = nn.ModuleList(blocks)
        self.heatmaps = nn.Conv2d(c, K, 1)
        self.cell_features = nn.Conv2d(1, FEAT, CELL, CELL)
        self.register_buffer("grid", cell_centres(S // CELL), persistent=False)

    def forward(self, x):
        b = x.shape[0]
        cells = (S // CELL) ** 2
        y = self.stem(x)
        for block in self.blocks:
            y = block(y)
        logits = self.heatmaps(y).reshape(b, K, cells)
        probabilities = torch.softmax(logits, 2)
        values = F.max_pool2d(x, CELL, CELL).reshape(b, cells, 1)
        features = self.cell_features(x).reshape(b, FEAT, cells)
        return probabilities, values, features


class Fuser(nn.Module):
    def __init__(self):
        super().__init__()
        self.coordinates = nn.Linear(3, FEAT)

    def forward(self, probabilities, values, grid, features):
        b = probabilities.shape[0]
        keypoints = torch.cat([probabilities @ values, probabilities @ grid], 2)
        # The same broadcast product and sum as training/src/model/fuser.rs.
        feats = (probabilities.reshape(b, K, 1, -1) * features.reshape(b, 1, FEAT, -1)).sum(3)
        return keypoints, torch.cat([self.coordinates(keypoints), feats], 2)


def resample(x, size):
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Expansion(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.branches = nn.ModuleList([ConvNorm(c, c, 3, dilation=d) for d in (1, 3, 5)])
        self.upsample = ConvNorm(3 * c, c, 3)

    def forward(self, x):
        h, w = x.shape[2:]
        y = torch.cat([b(x) for b in self.branches], 1)
        return self.upsample(resample(y, (2 * h, 2 * w)))


class Exchange(nn.Module):
    def __init__(self, c, n):
        super().__init__()
        self.mix = nn.ModuleList([ConvNorm(n * c, c, 3) for _ in range(n)])

    def forward(self, branches):
        return [
            mix(torch.cat([resample(b, target.shape[2:]) for b in branches], 1))
            for mix, target in zip(self.mix, branches)
        ]


class Decoder(nn.Module):
    def __init__(self, out_channels):
        super().__init__()
        self.base = S // 4
        self.fc = nn.Linear(2 * FEAT * K, FC_CHANNELS * self.base * self.base)
        self.widen = ConvNorm(FC_CHANNELS, WIDTH, 1)
        self.expand = nn.ModuleList([Expansion(WIDTH) for _ in range(2)])
        self.exchange = nn.ModuleList([Exchange(WIDTH, 2), Exchange(WIDTH, 3)])
        self.head = nn.Conv2d(WIDTH, out_channels, 1)

    def forward(self, fused):
        b = fused.shape[0]
        b0 = F.relu(self.fc(fused.reshape(b, -1))).reshape(b, FC_CHANNELS, self.base, self.base)
        branches = [self.widen(b0)]
        for expand, exchange in zip(self.expand, self.exchange):
            branches.append(expand(branches[-1]))
            branches = exchange(branches)
        return self.head(branches[-1])


class Efd(nn.Module):
    def __init__(self, out_channels):
        super().__init__()
        self.encoder = Encoder()
        self.fuser = Fuser()
        self.decoder = Decoder(out_channels)

    def encode(self, x):
        p, v, f = self.encoder(x)
        return self.fuser(p, v, self.encoder.grid, f)

    def forward(self, x):
        _, fused = self.encode(x)
        return self.decoder(fused)


def pressure_mask(x):
    above = (x > 0.02).float()
    return (F.avg_pool2d(above, 5, 1, 2, count_include_pad=True) >= 0.5).float()


def classification_loss(logits, mask):
    log_p = F.log_softmax(logits, 1)
    return -(mask * log_p[:, 1:2] + (1 - mask) * log_p[:, 0:1]).mean()


def gaussian_window():
    r = 5
    taps = torch.tensor([math.exp(-((i - r) ** 2) / (2 * 1.5 * 1.5)) for i in range(11)])
    taps = taps / taps.sum()
    return torch.outer(taps, taps).reshape(1, 1, 11, 11)


WINDOW = gaussian_window()
C1, C2 = 0.01**2, 0.03**2


def ssim(x, y):
    f = lambda t: F.conv2d(t, WINDOW)
    mx, my = f(x), f(y)
    xx, yy, xy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    m = ((2 * mx * my + C1) * (2 * xy + C2)) / ((mx * mx + my * my + C1) * (xx + yy + C2))
    return m.flatten(1).mean(1)


def regression_loss(out, x):
    m = torch.sigmoid(out)
    return ((m - x) ** 2).mean() + (1 - ssim(m, x).mean())


def parameters_with_statistics(module):
    params = sum(p.numel() for p in module.parameters())
    stats = sum(b.numel() for n, b in module.named_buffers() if "running" in n)
    return params + stats


def ms(seconds):
    return seconds * 1e3


def time_part(reps, shape, part):
    """Forward and backward (of the output's weighted sum) of `part`, medians in seconds."""
    fwd, bwd = [], []
    for rep in range(reps + 1):
        x = torch.rand(shape, requires_grad=True)
        t = time.perf_counter()
        y = part(x)
        f = time.perf_counter() - t
        loss = (y * torch.rand(y.shape)).sum()
        t = time.perf_counter()
        loss.backward()
        b = time.perf_counter() - t
        if rep > 0:
            fwd.append(f)
            bwd.append(b)
    return statistics.median(fwd), statistics.median(bwd)


def row(name, what, t, step):
    total = t[0] + t[1]
    print(f"| {name} | {what} | {ms(t[0]):.2f} | {ms(t[1]):.2f} | {ms(total):.2f} | {100 * total / step:.1f} % |")


def keep_freed_memory():
    """training/src/memory.rs's mallopt calls, through ctypes: keep freed blocks up to 32 MiB
    in malloc's heaps and never trim them. Whether glibc took them."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return (libc.mallopt(m_mmap_threshold, 32 << 20) == 1
            and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions instead of 10")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads")
    ap.add_argument("--check", action="store_true", help="parameter counts only")
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="glibc malloc settings of spmkd-train (training/src/memory.rs)")
    args = ap.parse_args()
    kept = args.keep_freed_memory and keep_freed_memory()
    if args.keep_freed_memory and not kept:
        sys.exit("--keep-freed-memory: this system's malloc is not glibc's")
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    reps = 3 if args.quick else 10

    if args.check:
        m = Efd(1)
        enc = parameters_with_statistics(m.encoder) + parameters_with_statistics(m.fuser)
        print(f"encoder {enc}, decoder {parameters_with_statistics(m.decoder)}")
        return

    malloc = "malloc keeping freed memory" if kept else "malloc's own settings"
    print("# A training step of the shipped network, part by part (PyTorch twin)\n")
    print(f"S = {S}, k = {K}, f = {FEAT}, decoder width {WIDTH}, batch {BATCH}, PyTorch "
          f"{torch.__version__} (CPU), {malloc}, "
          f"{torch.get_num_threads()} threads, {reps} repetitions, medians.\n")
    x = torch.rand(BATCH, 1, S, S)
    steps = []
    for phase, out, loss_fn in [
        ("1 (classification)", 2, lambda o: classification_loss(o, pressure_mask(x))),
        ("2 (regression)", 1, lambda o: regression_loss(o, x)),
    ]:
        model = Efd(out).train()
        optim = torch.optim.Adam(model.parameters(), lr=2e-3)
        times = []
        for rep in range(reps + 1):
            t = time.perf_counter()
            loss = loss_fn(model(x))
            loss.item()
            optim.zero_grad()
            loss.backward()
            optim.step()
            if rep > 0:
                times.append(time.perf_counter() - t)
        steps.append((phase, statistics.median(times)))
    print("| phase | step | samples/s |")
    print("|---|---|---|")
    for phase, t in steps:
        print(f"| {phase} | {ms(t):.1f} ms | {BATCH / t:.1f} |")
    step1 = steps[0][1]

    print("\n## Parts (phase 1 network; shares of the phase-1 step)\n")
    print("| part | input | forward ms | backward ms | total ms | share of step |")
    print("|---|---|---|---|---|---|")
    model = Efd(2).train()
    e = model.encoder
    row(f"encoder stem (3x3, 1 -> 16)", f"{S}x{S}", time_part(reps, (BATCH, 1, S, S), e.stem), step1)
    shape = (BATCH, STEM, S, S)
    for i, block in enumerate(e.blocks):
        with torch.no_grad():
            out = block(torch.rand(shape)).shape
        k = block.depthwise.conv.kernel_size[0]
        name = (f"encoder block {i + 1} ({shape[1]} -> {out[1]}, depthwise {k}x{k}"
                f"{', stride 2' if out[2] < shape[2] else ''})")
        row(name, f"{shape[2]}x{shape[3]}", time_part(reps, shape, block), step1)
        shape = tuple(out)
    row("encoder heatmaps (1x1)", f"{shape[2]}x{shape[3]}", time_part(reps, shape, e.heatmaps), step1)
    row("encoder + fuser", f"{S}x{S}", time_part(reps, (BATCH, 1, S, S), lambda x: model.encode(x)[1]), step1)
    fused = (BATCH, K, 2 * FEAT)
    d = model.decoder
    row("decoder whole", "k x 2f", time_part(reps, fused, d), step1)
    row("decoder fc", "k x 2f", time_part(reps, fused, lambda f: F.relu(d.fc(f.reshape(BATCH, -1)))), step1)
    base = S // 4
    row("decoder expansion 1 (3 dilated 3x3, x2, 3x3)", f"{base}x{base}",
        time_part(reps, (BATCH, WIDTH, base, base), d.expand[0]), step1)
    row("decoder expansion 2", f"{2 * base}x{2 * base}",
        time_part(reps, (BATCH, WIDTH, 2 * base, 2 * base), d.expand[1]), step1)

    def exchange(n):
        def part(x0):
            sizes = [base, 2 * base, S][:n]
            branches = [x0] + [torch.rand(BATCH, WIDTH, s, s) for s in sizes[1:]]
            return torch.cat([t.flatten(1) for t in d.exchange[n - 2](branches)], 1)
        return part

    row("decoder exchange 1 (2 branches)", f"{base}, {2 * base}",
        time_part(reps, (BATCH, WIDTH, base, base), exchange(2)), step1)
    row("decoder exchange 2 (3 branches)", f"{base}, {2 * base}, {S}",
        time_part(reps, (BATCH, WIDTH, base, base), exchange(3)), step1)
    row("phase-1 loss (cross-entropy)", f"{S}x{S}",
        time_part(reps, (BATCH, 2, S, S), lambda o: classification_loss(o, pressure_mask(x))), step1)
    row("phase-2 loss (sigmoid, L2 + SSIM)", f"{S}x{S}",
        time_part(reps, (BATCH, 1, S, S), lambda o: regression_loss(o, x)), step1)

    print("\n## Convolutions alone (no norm, no activation; shares of the phase-1 step)\n")
    print("Every distinct convolution shape of the network with more than 1 % of the step, and how "
          "often it occurs; the share counts every occurrence.\n")
    print("| convolution | in -> out | input | times | forward ms | backward ms | share of step |")
    print("|---|---|---|---|---|---|---|")
    convs = [
        ("stem 3x3", 1, 16, 3, 1, 1, 1, S, 1),
        ("depthwise 3x3 stride 2", 16, 16, 3, 2, 16, 1, S, 1),
        ("depthwise 3x3 stride 2", 72, 72, 3, 2, 72, 1, S // 2, 1),
        ("depthwise 5x5", 240, 240, 5, 1, 240, 1, S // 4, 1),
        ("depthwise 5x5", 288, 288, 5, 1, 288, 1, S // 4, 1),
        ("1x1 expansion", 40, 240, 1, 1, 1, 1, S // 4, 1),
        ("1x1 expansion", 48, 288, 1, 1, 1, 1, S // 4, 1),
        ("1x1 projection", 288, 96, 1, 1, 1, 1, S // 4, 1),
        ("decoder 3x3 (upsample, mix)", 48, 16, 3, 1, 1, 1, S, 2),
        ("decoder 3x3 (upsample, mix)", 48, 16, 3, 1, 1, 1, S // 2, 2),
        ("decoder 3x3 dilated (1, 3, 5)", 16, 16, 3, 1, 1, 3, S // 2, 3),
    ]
    for name, cin, cout, k, stride, groups, dil, size, times in convs:
        conv = nn.Conv2d(cin, cout, k, stride, dil * (k // 2), dil, groups, bias=False)
        f, b = time_part(reps, (BATCH, cin, size, size), conv)
        print(f"| {name} | {cin} -> {cout} | {size}x{size} | {times} | {ms(f):.2f} | {ms(b):.2f} | "
              f"{100 * times * (f + b) / step1:.1f} % |")

    print("\n## Encoder inference (encoder + fuser, eval mode, no gradients)\n")
    print("| batch | frames/s |")
    print("|---|---|")
    model.eval()
    best = (0.0, 0)
    with torch.no_grad():
        for batch in (1, 2, 4, 8, 16, 32, 64):
            xb = torch.rand(batch, 1, S, S)
            model.encode(xb)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < (0.5 if args.quick else 2.0):
                model.encode(xb)
                n += batch
            rate = n / (time.perf_counter() - t0)
            best = max(best, (rate, batch))
            print(f"| {batch} | {rate:.0f} |")
    print(f"\nbest: {best[0]:.0f} frames/s at batch {best[1]}")


if __name__ == "__main__":
    sys.exit(main())
