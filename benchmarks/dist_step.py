"""Distributed training-step time: shardgrad's Ray and gRPC pools beside PyTorch DDP.

Workload W1: MLP 784-512-512-10 (670k float32 parameters, 2.7 MB), global batch 256,
SGD with momentum, cross-entropy. Measured in one run, on the same machine:

- single-process shardgrad: the core's forward, backward and optimizer step on all 256 rows;
- PyTorch DDP: 2 ranks (torch.multiprocessing, gloo on loopback), 128 rows each;
- shardgrad through a real coordinator (service.server.Coordinator, the object behind
  `shardgrad serve`) with 1 and 2 workers of each pool: `ray` (actors) and `grpc`
  (`shardgrad worker` processes over loopback). The job is submitted to the coordinator's
  JobManager and timed from its own metrics. Workers on the coordinator's machine exchange
  parameters and gradients through shared memory (the default); the 2-worker runs are
  repeated with `--no-shared-memory` ("wire"), where both travel through gRPC or Ray's
  object store, to show what that path costs.

Every worker, rank and the single process runs 1 BLAS thread. ms/step is the median time
between consecutive steps' metrics records (everything the loop does per step). The whole
sequence runs --rounds times, interleaved, and each figure is the median over the rounds, so
that load from elsewhere on the machine weighs on every system alike. "worker
compute" is the slowest worker's own compute time in that step; the coordinator overhead
is step time minus that, as a share of the step: what the coordinator adds around the
slowest worker (sending parameters, waiting for and reducing gradients, the optimizer step,
metrics).

    python benchmarks/dist_step.py [--steps 40] [--warmup 5] [--rounds 3] [--micro-shards 2]
                                   [--no-wire]
Writes benchmarks/results/dist_step.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# A local Ray for the benchmark stays on loopback (read when Ray is first imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

SIZES = (784, 512, 512, 10)
BATCH = 256
LR, MOMENTUM = 0.01, 0.9
DATASET = "synthetic:classification:n=4096,features=784,classes=10,seed=0"
TARGETS = {"ray_vs_ddp": 1.0, "grpc_vs_ddp": 1.3, "overhead_share": 0.15}


def one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def data(n: int = BATCH, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, SIZES[0])).astype(np.float32), rng.integers(0, 10, n)


# ---------------------------------------------------------------------------- single process
def bench_single(steps: int, warmup: int) -> float:
    """ms per step of the core alone: one process, the whole batch."""
    one_thread()
    import shardgrad as sg
    from shardgrad import nn, optim

    sg.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(SIZES[0], SIZES[1]),
        nn.ReLU(),
        nn.Linear(SIZES[1], SIZES[2]),
        nn.ReLU(),
        nn.Linear(SIZES[2], SIZES[3]),
    )
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    x, y = data()
    xt, yt = sg.tensor(x), sg.tensor(y.astype(np.int64))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


# ---------------------------------------------------------------------------- DDP
def _ddp_rank(rank: int, world: int, port: int, steps: int, warmup: int, out) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    layers = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = DistributedDataParallel(torch.nn.Sequential(*layers[:-1]))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = data()
    part = BATCH // world
    xs = torch.from_numpy(x[rank * part : (rank + 1) * part])
    ys = torch.from_numpy(y[rank * part : (rank + 1) * part].astype(np.int64))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(xs), ys).backward()  # gradients are all-reduced inside backward
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    dist.barrier()
    if rank == 0:
        out.put(statistics.median(times) * 1e3)
    dist.destroy_process_group()


def bench_ddp(steps: int, warmup: int, world: int = 2) -> float:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    mp.start_processes(
        _ddp_rank, args=(world, port, steps, warmup, out), nprocs=world, start_method="spawn"
    )
    return out.get(timeout=60)


# ---------------------------------------------------------------------------- shardgrad
def bench_pool(
    pool: str, workers: int, steps: int, warmup: int, k: int, state_root, shared: bool = True
) -> dict:
    """One job through a real coordinator; numbers from its per-step metrics."""
    from shardgrad import nn
    from shardgrad.service.config import Component, JobConfig, ModelSource
    from shardgrad.service.server import Coordinator, ServeOptions

    state = Path(state_root) / f"{pool}-{workers}-{'shm' if shared else 'wire'}"
    coordinator = Coordinator(
        ServeOptions(
            state_dir=state,
            pool=pool,
            local_workers=workers,
            compute_threads=1,
            heartbeat_interval=1.0,
            shared_memory=shared,
        )
    ).start()
    try:
        if not coordinator.pool.wait_for_workers(workers, timeout=120):
            raise RuntimeError(f"{pool}: {workers} workers did not come up")
        spec = nn.Sequential(
            nn.Linear(SIZES[0], SIZES[1]),
            nn.ReLU(),
            nn.Linear(SIZES[1], SIZES[2]),
            nn.ReLU(),
            nn.Linear(SIZES[2], SIZES[3]),
        ).spec()
        config = JobConfig(
            model=ModelSource(spec=spec),
            dataset=DATASET,
            loss=Component("CrossEntropyLoss"),
            optimizer=Component("SGD", {"lr": LR, "momentum": MOMENTUM}),
            batch_size=BATCH,
            steps=warmup + steps,
            micro_shards=k,
            checkpoint_interval=0,
            min_workers=workers,
        )
        mgr = coordinator.manager
        rec = mgr.submit(config)
        done = mgr.wait(rec.id, timeout=600)
        if done.state.value != "SUCCEEDED":
            raise RuntimeError(f"{pool}: job ended {done.state.value}: {done.reason}")
        records = mgr.store.metrics(rec.id, kind="train")
    finally:
        coordinator.stop()
    timed = records[warmup:]
    gaps = [b.time - a.time for a, b in zip(records[warmup - 1 :], timed)]
    compute = [max(m.values["worker_compute_seconds"].values()) for m in timed]
    overhead = [g - c for g, c in zip(gaps, compute)]
    used = {m.values["workers"] for m in timed}
    step = statistics.median(gaps)
    return {
        "pool": pool,
        "workers": workers,
        "transport": "shared memory" if shared else "wire",
        "workers_used": sorted(used),
        "ms_per_step": step * 1e3,
        "loop_ms_per_step": statistics.median(m.values["step_seconds"] for m in timed) * 1e3,
        "worker_compute_ms": statistics.median(compute) * 1e3,
        "overhead_ms": statistics.median(overhead) * 1e3,
        "overhead_share": statistics.median(o / g for o, g in zip(overhead, gaps)),
    }


# ---------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--micro-shards", type=int, default=2, help="K (default 2: one per worker)")
    ap.add_argument("--pools", default="ray,grpc")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument(
        "--no-wire",
        dest="wire",
        action="store_false",
        help="skip the 2-worker runs without shared memory",
    )
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "dist_step.json"))
    args = ap.parse_args()

    from shardgrad.worker.memory import retain_freed_memory

    retain_freed_memory()  # as `shardgrad serve` does
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "workload": "W1 MLP 784-512-512-10, global batch 256, SGD momentum, 1 BLAS thread each",
        "steps": args.steps,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "micro_shards": args.micro_shards,
    }
    singles, ddps, by_config = [], [], {}
    pools = args.pools.split(",")
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="sg-dist-step-") as root:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}: single process, DDP", flush=True)
            singles.append(bench_single(args.steps, args.warmup))
            ddps.append(bench_ddp(args.steps, args.warmup))
            for pool in pools:
                configs = [(n, True) for n in counts] + ([(2, False)] if args.wire else [])
                for n, shared in configs:
                    how = "shared memory" if shared else "wire"
                    print(f"round {r + 1}/{args.rounds}: {pool} pool, {n} worker(s), {how}")
                    run = bench_pool(
                        pool,
                        n,
                        args.steps,
                        args.warmup,
                        args.micro_shards,
                        Path(root) / f"round{r}",
                        shared,
                    )
                    by_config.setdefault((pool, n, shared), []).append(run)
            if "ray" in pools:
                import ray

                if ray.is_initialized():
                    ray.shutdown()
    results["single_ms"] = statistics.median(singles)
    results["ddp_ms"] = statistics.median(ddps)
    results["rounds_ms"] = {"single": singles, "ddp": ddps}
    runs = []
    for (pool, n, shared), rounds in by_config.items():
        merged = {"pool": pool, "workers": n, "transport": rounds[0]["transport"]}
        for key in (
            "ms_per_step",
            "loop_ms_per_step",
            "worker_compute_ms",
            "overhead_ms",
            "overhead_share",
        ):
            merged[key] = statistics.median(r[key] for r in rounds)
        merged["workers_used"] = sorted({w for r in rounds for w in r["workers_used"]})
        merged["rounds_ms_per_step"] = [r["ms_per_step"] for r in rounds]
        runs.append(merged)
        label = f"{pool}-{n}" if shared else f"{pool}-{n}-wire"
        results["rounds_ms"][label] = merged["rounds_ms_per_step"]
    results["runs"] = runs
    ddp = results["ddp_ms"]
    for r in runs:
        r["vs_ddp"] = r["ms_per_step"] / ddp
    checks = {}
    for r in runs:
        if r["workers"] == 2 and r["transport"] == "shared memory":
            target = TARGETS[f"{r['pool']}_vs_ddp"]
            checks[f"{r['pool']} 2 workers <= {target}x DDP"] = r["vs_ddp"] <= target
            checks[f"{r['pool']} 2 workers overhead <= 15%"] = (
                r["overhead_share"] <= TARGETS["overhead_share"]
            )
    results["targets"] = checks

    print()
    print(
        f"W1 MLP 784-512-512-10, batch 256, K={args.micro_shards}: median of {args.steps} steps, "
        f"median of {args.rounds} rounds"
    )
    print(f"{'system':<34}{'ms/step':>9}{'vs DDP':>8}{'compute':>9}{'overhead':>10}{'share':>7}")
    print(
        f"{'single-process shardgrad':<34}{results['single_ms']:>9.2f}"
        f"{results['single_ms'] / ddp:>8.2f}"
    )
    print(f"{'PyTorch DDP, 2 ranks':<34}{ddp:>9.2f}{1.0:>8.2f}")
    for r in runs:
        name = f"shardgrad {r['pool']}, {r['workers']} worker{'s' if r['workers'] > 1 else ''}"
        if r["transport"] == "wire":
            name += " (wire)"
        print(
            f"{name:<34}{r['ms_per_step']:>9.2f}{r['vs_ddp']:>8.2f}{r['worker_compute_ms']:>9.2f}"
            f"{r['overhead_ms']:>10.2f}{r['overhead_share']:>7.0%}"
        )
    print()
    for name, ok in checks.items():
        print(f"  {'met ' if ok else 'MISS'}  {name}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
