"""Training-step time of the shardgrad core beside PyTorch CPU eager and hand-written numpy.

Workloads (from the core's performance targets):
  W1  MLP 784-512-512-10, batch 128, SGD momentum          target <= 1.05x torch
  W2  MLP 32-64-64-10, batch 32 (overhead-bound)            target <= 1.0x torch
  W3  CNN conv(1->16)-relu-pool-conv(16->32)-relu-pool-fc, 28x28, batch 64   target <= 1.5x torch
  W4  per-node overhead: (x*w+b).sum().backward() on tiny tensors           target <= 1.0x torch
  W5  2 transformer encoder layers (d 64, 4 heads, ff 128), 32x32 tokens, Adam   reported

Every system starts from identical weights and runs the same thread count. Systems are timed
in short blocks, interleaved (sg, torch, numpy, sg, ...), with a busy-wait between blocks,
because OpenBLAS/OpenMP threads keep spinning ~0.2 s after a call and would slow whichever
library ran next. The median block time per step is reported.

Usage: python benchmarks/core_step.py [--blocks 7] [--threads N] [--only W1,W3] [--quick]
Writes benchmarks/results/core_step.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


# ---------------------------------------------------------------- models
def mlp_weights(sizes, rng):
    ws = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        ws.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        ws.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    return ws


def make_mlp_sg(weights):
    import shardgrad as sg
    import shardgrad.nn
    import shardgrad.optim  # noqa: F401

    layers = []
    for i in range(0, len(weights), 2):
        lin = sg.nn.Linear(weights[i].shape[1], weights[i].shape[0])
        lin.weight.data = sg.tensor(weights[i])
        lin.bias.data = sg.tensor(weights[i + 1])
        layers += [lin, sg.nn.ReLU()]
    return sg.nn.Sequential(*layers[:-1])


def make_mlp_torch(weights):
    import torch

    layers = []
    for i in range(0, len(weights), 2):
        lin = torch.nn.Linear(weights[i].shape[1], weights[i].shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weights[i]))
            lin.bias.copy_(torch.from_numpy(weights[i + 1]))
        layers += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


class NumpyMLP:
    """Hand-written forward/backward and SGD-momentum: the floor for any engine."""

    def __init__(self, weights, lr=0.01, momentum=0.9):
        self.w = [w.copy() for w in weights]
        self.buf = [np.zeros_like(w) for w in weights]
        self.lr, self.m = lr, momentum

    def step(self, x, y):
        acts = [x]
        n_layers = len(self.w) // 2
        h = x
        for i in range(n_layers):
            h = h @ self.w[2 * i].T + self.w[2 * i + 1]
            if i < n_layers - 1:
                h = np.maximum(h, 0)
            acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(len(y)), y]).mean()
        g = p
        g[np.arange(len(y)), y] -= 1
        g /= len(y)
        grads = [None] * len(self.w)
        for i in reversed(range(n_layers)):
            a = acts[i]
            grads[2 * i] = g.T @ a
            grads[2 * i + 1] = g.sum(0)
            if i:
                g = g @ self.w[2 * i]
                g *= acts[i] > 0
        for w, b, gr in zip(self.w, self.buf, grads):
            b *= self.m
            b += gr
            w -= self.lr * b
        return loss


def cnn_weights(rng):
    def u(shape, fan_in):
        b = 1 / np.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)

    return [
        u((16, 1, 3, 3), 9),
        u((16,), 9),
        u((32, 16, 3, 3), 144),
        u((32,), 144),
        u((10, 1568), 1568),
        u((10,), 1568),
    ]


def make_cnn(lib, weights):
    nn = lib.nn
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1568, 10),
    )
    params = list(model.parameters())
    with lib.no_grad():
        for p, w in zip(params, weights):
            p.copy_(lib.from_numpy(w.copy()))
    return model


class NumpyCNN:
    """im2col + GEMM forward/backward with SGD momentum, written by hand."""

    def __init__(self, weights, lr=0.01, momentum=0.9):
        self.w = [w.copy() for w in weights]
        self.buf = [np.zeros_like(w) for w in weights]
        self.lr, self.m = lr, momentum

    @staticmethod
    def conv(x, w, b):
        n, c, h, wd = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # n c h w 3 3
        cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * 9)
        out = cols @ w.reshape(w.shape[0], -1).T + b
        return out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), cols

    @staticmethod
    def conv_back(g, cols, w, x_shape):
        n, c, h, wd = x_shape
        g2 = g.transpose(0, 2, 3, 1).reshape(n * h * wd, -1)
        gw = (g2.T @ cols).reshape(w.shape)
        gb = g2.sum(0)
        gcols = (g2 @ w.reshape(w.shape[0], -1)).reshape(n, h, wd, c, 3, 3)
        gx = np.zeros((n, c, h + 2, wd + 2), dtype=g.dtype)
        for i in range(3):
            for j in range(3):
                gx[:, :, i : i + h, j : j + wd] += gcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        return gx[:, :, 1:-1, 1:-1], gw, gb

    @staticmethod
    def pool(x):
        n, c, h, w = x.shape
        r = x.reshape(n, c, h // 2, 2, w // 2, 2)
        out = r.max(axis=(3, 5))
        mask = r == out[:, :, :, None, :, None]
        return out, mask

    @staticmethod
    def pool_back(g, mask):
        n, c, h2, _, w2, _ = mask.shape
        return (mask * g[:, :, :, None, :, None]).reshape(n, c, h2 * 2, w2 * 2)

    def step(self, x, y):
        w1, b1, w2, b2, w3, b3 = self.w
        c1, cols1 = self.conv(x, w1, b1)
        r1 = np.maximum(c1, 0)
        p1, m1 = self.pool(r1)
        c2, cols2 = self.conv(p1, w2, b2)
        r2 = np.maximum(c2, 0)
        p2, m2 = self.pool(r2)
        f = p2.reshape(len(x), -1)
        logits = f @ w3.T + b3
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        loss = -np.log(p[np.arange(len(y)), y]).mean()
        g = p
        g[np.arange(len(y)), y] -= 1
        g /= len(y)
        gw3, gb3 = g.T @ f, g.sum(0)
        g = (g @ w3).reshape(p2.shape)
        g = self.pool_back(g, m2) * (c2 > 0)
        g, gw2, gb2 = self.conv_back(g, cols2, w2, p1.shape)
        g = self.pool_back(g, m1) * (c1 > 0)
        _, gw1, gb1 = self.conv_back(g, cols1, w1, x.shape)
        for w, b, gr in zip(self.w, self.buf, (gw1, gb1, gw2, gb2, gw3, gb3)):
            b *= self.m
            b += gr
            w -= self.lr * b
        return loss


# ---------------------------------------------------------------- step closures
def training_steps(kind, weights, x, y):
    """One closure per system that runs a full step (forward, loss, backward, SGD update)."""
    import torch

    import shardgrad as sg
    import shardgrad.nn
    import shardgrad.optim  # noqa: F401

    if kind == "mlp":
        sg_model, t_model, np_model = (
            make_mlp_sg(weights),
            make_mlp_torch(weights),
            NumpyMLP(weights),
        )
    else:
        sg_model, t_model, np_model = (
            make_cnn(sg, weights),
            make_cnn(torch, weights),
            NumpyCNN(weights),
        )
    sg_opt = sg.optim.SGD(sg_model.parameters(), lr=0.01, momentum=0.9)
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.01, momentum=0.9)
    sg_loss, t_loss = sg.nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    sx, sy = sg.from_numpy(x), sg.from_numpy(y)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def sg_step():
        sg_opt.zero_grad()
        loss = sg_loss(sg_model(sx), sy)
        loss.backward()
        sg_opt.step()

    def torch_step():
        t_opt.zero_grad()
        loss = t_loss(t_model(tx), ty)
        loss.backward()
        t_opt.step()

    def np_step():
        np_model.step(x, y)

    return {"shardgrad": sg_step, "torch": torch_step, "numpy": np_step}


def overhead_steps():
    """W4: a handful of graph nodes on tiny tensors, so only the engine's own cost shows."""
    import torch

    import shardgrad as sg
    import shardgrad.nn
    import shardgrad.optim  # noqa: F401

    rng = np.random.default_rng(0)
    xs, ws, bs = (rng.standard_normal(4).astype(np.float32) for _ in range(3))
    sx, sw, sb = sg.tensor(xs), sg.tensor(ws, requires_grad=True), sg.tensor(bs, requires_grad=True)
    tx, tw, tb = (
        torch.tensor(xs),
        torch.tensor(ws, requires_grad=True),
        torch.tensor(bs, requires_grad=True),
    )

    def sg_step():
        (sx * sw + sb).sum().backward()

    def torch_step():
        (tx * tw + tb).sum().backward()

    return {"shardgrad": sg_step, "torch": torch_step}


def transformer_steps():
    """W5: two post-norm transformer encoder layers (d_model 64, 4 heads, feed-forward 128) on
    32 sequences of 32 tokens, mean-pooled into a linear classifier, Adam. torch's weights are
    copied into shardgrad's model, so both run the same numbers."""
    import torch

    import shardgrad as sg

    def model(lib):
        layer = lib.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
        return lib.nn.ModuleDict(
            {"encoder": lib.nn.TransformerEncoder(layer, 2), "head": lib.nn.Linear(64, 10)}
        )

    torch.manual_seed(0)
    t_model = model(torch)
    s_model = model(sg)
    s_model.load_state_dict({k: sg.tensor(v.numpy()) for k, v in t_model.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 32, 64)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    steps = {}
    for name, lib, m in (("shardgrad", sg, s_model), ("torch", torch, t_model)):
        opt = lib.optim.Adam(m.parameters(), lr=1e-3)
        loss_fn = lib.nn.CrossEntropyLoss()
        xs, ys = lib.tensor(x), lib.tensor(y)

        def step(m=m, opt=opt, loss_fn=loss_fn, xs=xs, ys=ys):
            opt.zero_grad()
            logits = m["head"](m["encoder"](xs).mean(1))
            loss_fn(logits, ys).backward()
            opt.step()

        steps[name] = step
    return steps


# ---------------------------------------------------------------- timing
def time_interleaved(steps: dict, steps_per_block: int, blocks: int, gap: float) -> dict:
    for fn in steps.values():  # warm-up: first calls allocate and fill caches
        for _ in range(max(2, steps_per_block // 4)):
            fn()
    times = {name: [] for name in steps}
    for _ in range(blocks):
        for name, fn in steps.items():
            busy_wait(gap)
            t0 = time.perf_counter()
            for _ in range(steps_per_block):
                fn()
            times[name].append((time.perf_counter() - t0) / steps_per_block)
    return {name: statistics.median(ts) for name, ts in times.items()}


WORKLOADS = {
    "W1": dict(desc="MLP 784-512-512-10, batch 128, SGD momentum", target=1.05, steps=20),
    "W2": dict(desc="MLP 32-64-64-10, batch 32 (overhead-bound)", target=1.0, steps=300),
    "W3": dict(desc="CNN 2x(conv3x3-relu-maxpool2)-fc on 28x28, batch 64", target=1.5, steps=5),
    "W4": dict(
        desc="per-node overhead: (x*w+b).sum().backward(), 4 elements", target=1.0, steps=2000
    ),
    "W5": dict(
        desc="2 transformer encoder layers, d 64, 4 heads, 32x32 tokens, Adam", target=None, steps=5
    ),
}


def build(name: str):
    rng = np.random.default_rng(0)
    if name == "W1":
        x = rng.standard_normal((128, 784)).astype(np.float32)
        y = rng.integers(0, 10, 128)
        return training_steps("mlp", mlp_weights([784, 512, 512, 10], rng), x, y)
    if name == "W2":
        x = rng.standard_normal((32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 32)
        return training_steps("mlp", mlp_weights([32, 64, 64, 10], rng), x, y)
    if name == "W3":
        x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 64)
        return training_steps("cnn", cnn_weights(rng), x, y)
    if name == "W5":
        return transformer_steps()
    return overhead_steps()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", default="W1,W2,W3,W4,W5")
    parser.add_argument("--quick", action="store_true", help="fewer blocks, for a smoke run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "core_step.json"))
    args = parser.parse_args()
    set_threads(args.threads)
    blocks = 3 if args.quick else args.blocks
    rows = []
    print(f"threads={args.threads} blocks={blocks}  (median ms/step; ratio = x / torch)")
    print(
        f"{'':4} {'shardgrad':>10} {'torch':>10} {'numpy':>10} {'sg/torch':>9} {'np/torch':>9} {'target':>7}"
    )
    for name in args.only.split(","):
        spec = WORKLOADS[name]
        steps = build(name)
        per_block = max(1, spec["steps"] // (4 if args.quick else 1))
        res = time_interleaved(steps, per_block, blocks, gap=0.25)
        ratio = res["shardgrad"] / res["torch"]
        np_ratio = res["numpy"] / res["torch"] if "numpy" in res else None
        target = spec["target"]  # None: reported, no target
        ok = target is None or ratio <= target
        print(
            f"{name:4} {res['shardgrad'] * 1e3:10.3f} {res['torch'] * 1e3:10.3f} "
            f"{(res['numpy'] * 1e3 if 'numpy' in res else float('nan')):10.3f} {ratio:9.2f} "
            f"{(np_ratio if np_ratio is not None else float('nan')):9.2f} "
            f"{'report' if target is None else f'{target:6.2f}'}{'' if ok else ' MISS'}"
        )
        rows.append(
            dict(
                workload=name,
                desc=spec["desc"],
                ms=dict((k, v * 1e3) for k, v in res.items()),
                ratio_vs_torch=ratio,
                numpy_ratio_vs_torch=np_ratio,
                target=spec["target"],
                met=ok,
            )
        )
    out = dict(
        date=time.strftime("%Y-%m-%d"),
        machine=f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        python=sys.version.split()[0],
        threads=args.threads,
        blocks=blocks,
        results=rows,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
