"""Training-step time on one CUDA GPU: shardgrad (cupy) beside torch CUDA eager.

Workloads (the CUDA backend's targets):
  G1  MLP 784-512-512-10, batch 128, SGD momentum           report
  G2  MLP 784-512-512-10, batch 4096, SGD momentum          target <= 1.5x torch
  G3  CNN (W3 of core_step.py) on 28x28, batch 256          report
  G4  transformer-block MLP 4096->16384->4096 (GELU), batch 64, float32   target <= 1.5x torch
  G5  2 transformer encoder layers, d_model 256, 8 heads, 32 x 128 tokens, Adam   report

Both systems start from identical weights. Each step ends with a device synchronize so the
timings are wall-clock GPU time; blocks of steps are interleaved between the two systems.
`--dry-run` runs every workload on the CPU for a couple of steps to check the script itself.

Usage: python benchmarks/gpu_step.py [--dry-run] [--out results/gpu_step.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from core_step import cnn_weights, mlp_weights  # noqa: E402


def build_models(lib, kind, weights, device):
    nn = lib.nn
    if kind == "mlp":
        layers = []
        for i in range(0, len(weights), 2):
            layers += [nn.Linear(weights[i].shape[1], weights[i].shape[0]), nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
    elif kind == "block":
        model = nn.Sequential(nn.Linear(4096, 16384), nn.GELU(), nn.Linear(16384, 4096))
    else:
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
    with lib.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(lib.from_numpy(w.copy()))
    return model.to(device)


def block_weights(rng):
    def u(shape, fan_in):
        b = 1 / np.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)

    return [u((16384, 4096), 4096), u((16384,), 4096), u((4096, 16384), 16384), u((4096,), 16384)]


def workload(name, rng, dry):
    if name == "G1":
        return "mlp", mlp_weights([784, 512, 512, 10], rng), (128, 784), 10
    if name == "G2":
        return "mlp", mlp_weights([784, 512, 512, 10], rng), (4096 if not dry else 64, 784), 10
    if name == "G3":
        return "cnn", cnn_weights(rng), (256 if not dry else 8, 1, 28, 28), 10
    return "block", block_weights(rng), (64 if not dry else 2, 4096), None


def make_step(lib, kind, weights, xshape, n_classes, device, rng_seed):
    rng = np.random.default_rng(rng_seed)
    model = build_models(lib, kind, weights, device)
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = lib.from_numpy(rng.standard_normal(xshape).astype(np.float32)).to(device)
    if n_classes:
        y = lib.from_numpy(rng.integers(0, n_classes, xshape[0])).to(device)
        loss_fn = lib.nn.CrossEntropyLoss()
    else:
        y = lib.from_numpy(rng.standard_normal((xshape[0], 4096)).astype(np.float32)).to(device)
        loss_fn = lib.nn.MSELoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def transformer_steps(device, dry: bool) -> dict:
    """G5: the same encoder in both libraries, torch's weights copied into shardgrad's,
    mean-pooled into a linear classifier, Adam."""
    import torch

    import shardgrad as sg

    batch, tokens, width, heads = (4, 8, 32, 4) if dry else (32, 128, 256, 8)

    def model(lib):
        layer = lib.nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True
        )
        return lib.nn.ModuleDict(
            {"encoder": lib.nn.TransformerEncoder(layer, 2), "head": lib.nn.Linear(width, 10)}
        )

    torch.manual_seed(0)
    theirs = model(torch)
    mine = model(sg)
    mine.load_state_dict({k: sg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, tokens, width)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    steps = {}
    for name, lib, m in (("shardgrad", sg, mine), ("torch", torch, theirs)):
        m = m.to(device)
        opt = lib.optim.Adam(m.parameters(), lr=1e-3)
        loss_fn = lib.nn.CrossEntropyLoss()
        xs, ys = lib.from_numpy(x).to(device), lib.from_numpy(y).to(device)

        def step(m=m, opt=opt, loss_fn=loss_fn, xs=xs, ys=ys):
            opt.zero_grad()
            loss = loss_fn(m["head"](m["encoder"](xs).mean(1)), ys)
            loss.backward()
            opt.step()
            return loss

        steps[name] = step
    return steps


def sync(lib, device):
    if device != "cpu":
        lib.cuda.synchronize()


def time_pair(steps, device, blocks, per_block):
    import torch

    import shardgrad as sg

    libs = {"shardgrad": sg, "torch": torch}
    for name, fn in steps.items():
        for _ in range(3):
            fn()
        sync(libs[name], device)
    times = {name: [] for name in steps}
    for _ in range(blocks):
        for name, fn in steps.items():
            sync(libs[name], device)
            t0 = time.perf_counter()
            for _ in range(per_block):
                fn()
            sync(libs[name], device)
            times[name].append((time.perf_counter() - t0) / per_block)
    return {k: statistics.median(v) for k, v in times.items()}


TARGETS = {"G1": None, "G2": 1.5, "G3": None, "G4": 1.5, "G5": None}
DESCS = {
    "G1": "MLP 784-512-512-10 b128",
    "G2": "MLP 784-512-512-10 b4096",
    "G3": "CNN 28x28 b256",
    "G4": "MLP 4096-16384-4096 b64 fp32",
    "G5": "2 encoder layers d256 32x128",
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--dry-run", action="store_true", help="run on the CPU, a few steps, to check the script"
    )
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_step.json"))
    args = ap.parse_args()

    import torch

    import shardgrad as sg
    import shardgrad.nn  # noqa: F401
    import shardgrad.optim  # noqa: F401

    device = "cpu" if args.dry_run else "cuda"
    blocks, per_block = (1, 2) if args.dry_run else (args.blocks, args.steps)
    card = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    print(f"device: {card}")
    print(
        f"{'':4} {'workload':30} {'shardgrad ms':>13} {'torch ms':>10} {'ratio':>7} {'target':>7}"
    )
    rows = []
    for name in ("G1", "G2", "G3", "G4", "G5"):
        try:
            if name == "G5":
                steps = transformer_steps(device, args.dry_run)
            else:
                kind, weights, xshape, n_classes = workload(
                    name, np.random.default_rng(0), args.dry_run
                )
                steps = {
                    "shardgrad": make_step(sg, kind, weights, xshape, n_classes, device, 1),
                    "torch": make_step(torch, kind, weights, xshape, n_classes, device, 1),
                }
            res = time_pair(steps, device, blocks, per_block)
            ratio = res["shardgrad"] / res["torch"]
            target = TARGETS[name]
            flag = "" if target is None or ratio <= target else " MISS"
            print(
                f"{name:4} {DESCS[name]:30} {res['shardgrad'] * 1e3:13.3f} {res['torch'] * 1e3:10.3f} "
                f"{ratio:7.2f} {target if target else '-':>7}{flag}"
            )
            rows.append(
                dict(
                    workload=name,
                    desc=DESCS[name],
                    shardgrad_ms=res["shardgrad"] * 1e3,
                    torch_ms=res["torch"] * 1e3,
                    ratio=ratio,
                    target=target,
                )
            )
        except Exception as exc:  # one broken workload must not hide the others
            traceback.print_exc()
            print(f"{name:4} {DESCS[name]:30} ERROR {type(exc).__name__}: {exc}")
            rows.append(dict(workload=name, desc=DESCS[name], error=f"{type(exc).__name__}: {exc}"))
    out = dict(date=time.strftime("%Y-%m-%d"), device=card, dry_run=args.dry_run, results=rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
