"""CPU cost of the coordinator's read API: what each GetJob, ListJobs, ListWorkers and
StreamMetrics(Batches) call takes from the machine that also trains.

A coordinator (service.server.Coordinator, the object behind `shardgrad serve`) runs in this
process with one in-process worker. It trains ~20 small jobs to their end, and two more jobs
are seeded as running with a few thousand metrics rows each (a train record every step, an
eval record every 10 steps), the shape of the load test's mix. Then each RPC is called over a
real gRPC channel on loopback, the way tests/reliability/test_load.py's clients call it:

- GetJob of a seeded job;
- ListJobs of every job;
- ListWorkers;
- StreamMetrics of a seeded job from 20 steps before its latest, follow=false;
- StreamMetricsBatches, the same events in one message (what the SDK asks for).

The calls come from a client in a second process, so this process's CPU time
(time.process_time) over the calls is the coordinator's alone: the CPU that serving takes
from training. Per call it reports that server CPU, the client process's CPU, the wall time,
and the CPU of the handler alone (the service method called directly, without gRPC: the
part the handlers' own code decides). The RPCs run interleaved in --rounds rounds of --calls
calls each; every figure is the median over the rounds, so load from elsewhere on the shared
machine weighs on every RPC alike.

    python benchmarks/api_cost.py [--label after] [--calls 200] [--rounds 5] [--profile]

Writes benchmarks/results/api_cost.json, keeping the runs of other labels already there, so
one file holds the before and after of a change. --profile prints a cProfile of the handlers.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

SMALL_JOBS = 20
SEEDED_JOBS = 2
SEEDED_STEPS = 3000
EVAL_EVERY = 10
STREAM_BACK = 20
DATASET = "synthetic:classification:n=90,features=8,classes=3,seed=3"
RPCS = ("GetJob", "ListJobs", "ListWorkers", "StreamMetrics", "StreamMetricsBatches")
STREAMS = ("StreamMetrics", "StreamMetricsBatches")


def small_config(**changes) -> dict:
    from shardgrad import nn

    spec = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).spec()
    cfg = {
        "model": {"spec": spec},
        "dataset": DATASET,
        "optimizer": {"name": "SGD", "kwargs": {"lr": 0.05, "momentum": 0.9}},
        "batch_size": 20,
        "steps": 2,
        "micro_shards": 2,
        "checkpoint_interval": 0,
    }
    cfg.update(changes)
    return cfg


def train_values(step: int) -> dict:
    """A train record as the training loop writes it (service/trainer.py `_record`)."""
    return {
        "loss": 2.0 / (1.0 + 0.001 * step),
        "lr": 0.05,
        "samples": 1024,
        "samples_per_s": 20480.0 + step % 7,
        "step_seconds": 0.05,
        "workers": 2,
        "worker_compute_seconds": {"w-0": 0.021 + step % 3 * 1e-4, "w-1": 0.022},
        "bytes_sent": 1_080_000,
        "bytes_received": 1_080_000,
        "bytes_shared": 0,
    }


def seed_job(store, config_json: str, name: str, steps: int) -> str:
    """A job the store shows RUNNING at `steps` with its metrics, without a training loop."""
    from shardgrad.service.store import JobState

    rec = store.create_job(config_json, name=name)
    store.set_state(rec.id, JobState.RUNNING)
    for step in range(1, steps + 1):
        store.add_metrics(rec.id, step, "train", train_values(step))
        if step % EVAL_EVERY == 0:
            store.add_metrics(rec.id, step, "eval", {"samples": 200, "loss": 1.5, "accuracy": 0.6})
    store.set_progress(rec.id, steps, 1_000_000)
    return rec.id


class _Context:
    """The little of a grpc.ServicerContext the read handlers use."""

    def abort(self, code, details):
        raise RuntimeError(f"{code}: {details}")

    def is_active(self) -> bool:
        return True

    def time_remaining(self):
        return None


def build(state_dir: Path):
    """Start the coordinator, train the small jobs, seed the running ones."""
    from shardgrad.protos import coordinator_pb2 as pb
    from shardgrad.protos import coordinator_pb2_grpc
    from shardgrad.service.config import JobConfig
    from shardgrad.service.server import Coordinator, ServeOptions

    coordinator = Coordinator(
        ServeOptions(
            state_dir=state_dir,
            pool="inprocess",
            local_workers=1,
            compute_threads=1,
            max_jobs=SMALL_JOBS + SEEDED_JOBS + 4,
        )
    ).start()
    channel = grpc.insecure_channel(coordinator.dial_address)
    stub = coordinator_pb2_grpc.CoordinatorStub(channel)
    md = (("authorization", f"Bearer {coordinator.token}"),)
    small = [
        stub.SubmitJob(
            pb.SubmitJobRequest(config_json=json.dumps(small_config(seed=i, name=f"small-{i}"))),
            metadata=md,
            timeout=60,
        ).job_id
        for i in range(SMALL_JOBS)
    ]
    for job_id in small:
        done = coordinator.manager.wait(job_id, timeout=120)
        if done.state.value != "SUCCEEDED":
            raise RuntimeError(f"job {job_id} ended {done.state.value}: {done.reason}")
    config_json = JobConfig.from_dict(small_config(steps=1_000_000)).to_json()
    store = coordinator.manager.store
    seeded = [seed_job(store, config_json, f"seeded-{i}", SEEDED_STEPS) for i in range(SEEDED_JOBS)]
    return coordinator, channel, stub, md, seeded


def requests(pb, job_id: str, latest: int) -> dict:
    return {
        "GetJob": pb.GetJobRequest(job_id=job_id),
        "ListJobs": pb.ListJobsRequest(),
        "ListWorkers": pb.ListWorkersRequest(),
        "StreamMetrics": pb.StreamMetricsRequest(
            job_id=job_id, from_step=max(0, latest - STREAM_BACK)
        ),
        "StreamMetricsBatches": pb.StreamMetricsRequest(
            job_id=job_id, from_step=max(0, latest - STREAM_BACK)
        ),
    }


def over_grpc(stub, md, name: str, request):
    call = getattr(stub, name)
    if name in STREAMS:
        return list(call(request, metadata=md, timeout=30))
    return call(request, metadata=md, timeout=30)


def direct(api, name: str, request, context):
    out = getattr(api, name)(request, context)
    return list(out) if name in STREAMS else out


def measure(fn, calls: int) -> tuple[float, float]:
    """(CPU us, wall us) per call of fn()."""
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    return (
        (time.process_time() - c0) / calls * 1e6,
        (time.perf_counter() - w0) / calls * 1e6,
    )


def client_main(address: str, token: str, job_id: str, latest: int) -> None:
    """The client process: reads `NAME CALLS` lines, makes the calls, answers with its own
    CPU and wall microseconds per call."""
    from shardgrad.protos import coordinator_pb2 as pb
    from shardgrad.protos import coordinator_pb2_grpc

    channel = grpc.insecure_channel(address)
    stub = coordinator_pb2_grpc.CoordinatorStub(channel)
    md = (("authorization", f"Bearer {token}"),)
    reqs = requests(pb, job_id, latest)
    for line in sys.stdin:
        name, calls = line.split()
        cpu, wall = measure(lambda n=name: over_grpc(stub, md, n, reqs[n]), int(calls))
        print(f"{cpu} {wall}", flush=True)
    channel.close()


class ClientProcess:
    """A client in its own process, so that this process's CPU time is the coordinator's."""

    def __init__(self, address: str, token: str, job_id: str, latest: int) -> None:
        args = ["--client", address, token, job_id, str(latest)]
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def calls(self, name: str, calls: int) -> tuple[float, float, float]:
        """(server CPU us, client CPU us, wall us) per call."""
        c0 = time.process_time()
        self.proc.stdin.write(f"{name} {calls}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        server = (time.process_time() - c0) / calls * 1e6
        client, wall = map(float, answer.split())
        return server, client, wall

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run(calls: int, rounds: int, profile: bool) -> dict:
    from shardgrad.protos import coordinator_pb2 as pb

    with tempfile.TemporaryDirectory(prefix="sg-api-cost-") as tmp:
        t0 = time.perf_counter()
        coordinator, channel, stub, md, seeded = build(Path(tmp) / "state")
        setup_s = time.perf_counter() - t0
        client = None
        try:
            api = coordinator.api
            latest = coordinator.manager.store.job(seeded[0]).step
            reqs = requests(pb, seeded[0], latest)
            ctx = _Context()
            answers = {name: over_grpc(stub, md, name, reqs[name]) for name in RPCS}
            shape = {
                "jobs_listed": len(answers["ListJobs"].jobs),
                "workers_listed": len(answers["ListWorkers"].workers),
                "events_streamed": len(answers["StreamMetrics"]),
                "batches_streamed": len(answers["StreamMetricsBatches"]),
                "metrics_rows_per_seeded_job": SEEDED_STEPS + SEEDED_STEPS // EVAL_EVERY,
            }
            client = ClientProcess(coordinator.dial_address, coordinator.token, seeded[0], latest)
            for name in RPCS:  # warm both paths
                client.calls(name, 20)
                for _ in range(20):
                    direct(api, name, reqs[name], ctx)
            samples: dict[str, dict[str, list[float]]] = {
                n: {"server": [], "client": [], "wall": [], "handler": []} for n in RPCS
            }
            for _ in range(rounds):
                for name in RPCS:
                    server, client_cpu, wall = client.calls(name, calls)
                    handler, _ = measure(lambda n=name: direct(api, n, reqs[n], ctx), calls)
                    samples[name]["server"].append(server)
                    samples[name]["client"].append(client_cpu)
                    samples[name]["wall"].append(wall)
                    samples[name]["handler"].append(handler)
            if profile:
                prof = cProfile.Profile()
                prof.enable()
                for name in RPCS:
                    for _ in range(calls):
                        direct(api, name, reqs[name], ctx)
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        finally:
            if client is not None:
                client.close()
            channel.close()
            coordinator.stop(timeout=10.0)
    rows = {
        name: {
            "server_cpu_us_per_call": round(statistics.median(s["server"]), 1),
            "client_cpu_us_per_call": round(statistics.median(s["client"]), 1),
            "wall_us_per_call": round(statistics.median(s["wall"]), 1),
            "handler_cpu_us_per_call": round(statistics.median(s["handler"]), 1),
            "rounds_server_cpu_us": [round(x, 1) for x in s["server"]],
        }
        for name, s in samples.items()
    }
    return {"setup_s": round(setup_s, 1), "shape": shape, "rpcs": rows}


def table(label: str, rows: dict, before: dict | None) -> str:
    head = "| RPC | server CPU us/call | client CPU us/call | wall us/call | handler CPU us/call |"
    sep = "| --- | --- | --- | --- | --- |"
    if before:
        head += " server CPU before | after / before |"
        sep += " --- | --- |"
    lines = [f"{label}:", head, sep]
    for name, r in rows.items():
        line = (
            f"| {name} | {r['server_cpu_us_per_call']:.0f} | {r['client_cpu_us_per_call']:.0f} | "
            f"{r['wall_us_per_call']:.0f} | {r['handler_cpu_us_per_call']:.0f} |"
        )
        if before and name in before:
            b = before[name]["server_cpu_us_per_call"]
            line += f" {b:.0f} | {r['server_cpu_us_per_call'] / b:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="current", help="the run's name in the JSON file")
    ap.add_argument("--compare", default="before", help="label to compare against, if present")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "api_cost.json"))
    ap.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        address, token, job_id, latest = args.client
        client_main(address, token, job_id, int(latest))
        return

    result = run(args.calls, args.rounds, args.profile)
    result.update(
        date=time.strftime("%Y-%m-%d"),
        calls=args.calls,
        rounds=args.rounds,
        python=sys.version.split()[0],
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
    )
    path = Path(args.json)
    stored = json.loads(path.read_text()) if path.exists() else {}
    runs = stored.get("runs", {})
    runs[args.label] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": runs}, indent=1, sort_keys=True) + "\n")
    compare = runs.get(args.compare) if args.compare != args.label else None
    print(
        f"setup {result['setup_s']} s; {result['shape']}; median of {args.rounds} rounds of "
        f"{args.calls} calls"
    )
    print(table(args.label, result["rpcs"], compare["rpcs"] if compare else None))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
