"""`shardgrad serve`: run the coordinator until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from shardgrad.worker.console import announce

from .config import MAX_PARAMETERS
from .dashboard_cli import add_dashboard_arguments, serve_dashboard
from .priority import DEFAULT_API_NICE


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_serve_subcommand(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="run the coordinator: the job API and the training loops",
        description=(
            "Run a shardgrad coordinator. It keeps jobs, metrics and checkpoints under "
            "--state-dir and resumes unfinished jobs from their last checkpoint when started "
            "again. Every call needs the bearer token that the first start writes to "
            "<state-dir>/token (or SHARDGRAD_TOKEN). SIGTERM or SIGINT stops it cleanly."
        ),
    )
    p.add_argument("--state-dir", required=True, help="where jobs, datasets and the token live")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=_count,
        default=0,
        help="port to listen on; 0 (default) picks a free one, printed and written to "
        "<state-dir>/coordinator.json",
    )
    p.add_argument(
        "--pool",
        choices=("ray", "grpc", "inprocess"),
        default="grpc",
        help="how gradient workers run (default grpc: `shardgrad worker` processes register)",
    )
    p.add_argument(
        "--local-workers",
        type=_count,
        default=None,
        metavar="N",
        help="grpc: start N `shardgrad worker` processes on this machine; ray: start N actors "
        "(default one per GPU, else 1); inprocess: N threads (default 1)",
    )
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (default: local)")
    p.add_argument(
        "--ray-cpus-per-worker", type=float, default=1.0, help="CPUs each Ray actor reserves"
    )
    p.add_argument("--tls-cert", default=None, help="serve TLS with this certificate (PEM)")
    p.add_argument("--tls-key", default=None, help="private key of --tls-cert (PEM)")
    p.add_argument(
        "--worker-tls-ca", default=None, help="CA certificate to verify TLS gRPC workers with"
    )
    p.add_argument(
        "--max-jobs", type=_positive_int, default=16, help="most pending+running jobs (16)"
    )
    p.add_argument(
        "--max-upload-bytes",
        type=_positive_int,
        default=1 << 30,
        help="largest dataset upload in bytes (default 1 GiB)",
    )
    p.add_argument(
        "--max-parameters",
        type=_positive_int,
        default=MAX_PARAMETERS,
        help="refuse models with more parameters than this (default 100000000), counted from "
        "the spec before anything is built (an --allow-import model once built)",
    )
    p.add_argument(
        "--allow-import",
        action="append",
        default=[],
        metavar="PREFIX",
        help="module prefix user models may be imported from (repeatable)",
    )
    p.add_argument(
        "--compute-threads",
        type=_count,
        default=1,
        help="BLAS threads of every worker for every job (default 1; 0: each worker's share "
        "of its cores). One count everywhere keeps results bitwise identical",
    )
    p.add_argument(
        "--heartbeat-interval", type=_seconds, default=2.0, help="gRPC worker heartbeat (s)"
    )
    p.add_argument(
        "--heartbeat-timeout",
        type=_seconds,
        default=None,
        help="drop a gRPC worker silent this long (default 3 heartbeats + 2 s)",
    )
    p.add_argument(
        "--step-timeout",
        type=_seconds,
        default=120.0,
        help="deadline of one worker's share of a step; past it the work goes elsewhere",
    )
    p.add_argument(
        "--worker-grace",
        type=_seconds,
        default=300.0,
        help="how long a job waits without workers before it fails (s)",
    )
    p.add_argument(
        "--no-shared-memory",
        dest="shared_memory",
        action="store_false",
        help="send every worker's parameters and gradients over the wire, even for workers "
        "on this machine (which otherwise use shared memory)",
    )
    p.add_argument(
        "--api-nice",
        type=int,
        choices=range(20),
        metavar="0-19",
        default=DEFAULT_API_NICE,
        help="how much lower the CPU priority of the threads answering API and dashboard "
        f"requests is than training's (a nice increment; default {DEFAULT_API_NICE}, 0 keeps "
        "them equal), so that busy clients slow their answers before they slow training",
    )
    p.add_argument(
        "--no-api-process",
        dest="api_process",
        action="store_false",
        help="serve the API from the coordinator's own process instead of a process of its "
        "own (where clients share no GIL with the training loops)",
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING, ...")
    add_dashboard_arguments(p)
    p.set_defaults(func=run_serve)
    return p


def run_serve(args: argparse.Namespace) -> int:
    from shardgrad.worker.memory import retain_freed_memory  # noqa: PLC0415

    from .security import CredentialError  # noqa: PLC0415
    from .server import Coordinator, ServeOptions, StateDirBusy  # noqa: PLC0415

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    retain_freed_memory()  # steps allocate and free the same large buffers
    options = ServeOptions(
        state_dir=args.state_dir,
        host=args.host,
        port=args.port,
        pool=args.pool,
        local_workers=args.local_workers,
        ray_address=args.ray_address,
        ray_cpus_per_worker=args.ray_cpus_per_worker,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        worker_tls_ca=args.worker_tls_ca,
        max_jobs=args.max_jobs,
        max_upload_bytes=args.max_upload_bytes,
        max_parameters=args.max_parameters,
        allow_import=tuple(args.allow_import),
        compute_threads=args.compute_threads,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_timeout=args.heartbeat_timeout,
        step_timeout=args.step_timeout,
        worker_grace=args.worker_grace,
        shared_memory=args.shared_memory,
        api_nice=args.api_nice,
        api_process=args.api_process,
    )
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    coordinator = Coordinator(options)
    try:
        coordinator.start()
    except (StateDirBusy, CredentialError, OSError, ValueError) as exc:
        print(f"shardgrad serve: {exc}", file=sys.stderr)
        return 2
    # ray.init() (the Ray pool) installs its own SIGTERM handler: take the signals back so a
    # SIGTERM checkpoints and exits 0 instead of dumping Ray's stack trace.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    announce(f"shardgrad coordinator listening on {coordinator.address}")
    dashboard = None
    try:
        dashboard = serve_dashboard(args, coordinator)
        while not stop.wait(0.5):
            pass
    except OSError as exc:
        print(f"shardgrad serve: {exc}", file=sys.stderr)
        return 2
    finally:
        announce("shardgrad coordinator stopping")
        if dashboard is not None:
            dashboard.stop()
        coordinator.stop()
    announce("shardgrad coordinator stopped")
    return 0
