"""`shardgrad worker`: run a gRPC gradient worker that joins a coordinator."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .console import announce


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_worker_subcommand(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "worker",
        help="run a gradient worker that registers with a coordinator",
        description=(
            "Serve gradient computations for a shardgrad coordinator. The worker registers "
            "with the coordinator, heartbeats, and drains on SIGTERM or when the coordinator "
            "asks (a scale-down): it finishes the request "
            "in flight, deregisters and exits. The bearer token is read from SHARDGRAD_TOKEN "
            "or --token-file."
        ),
    )
    p.add_argument("--coordinator", required=True, metavar="HOST:PORT")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument(
        "--advertise-host", default=None, help="host the coordinator dials (default: --host)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="BLAS threads (default: cores / --per-host)"
    )
    p.add_argument(
        "--per-host", type=int, default=1, help="workers sharing this host's cores (default 1)"
    )
    p.add_argument("--cache-dir", default=None, help="dataset cache (default ~/.cache/shardgrad)")
    p.add_argument("--token-file", default=None, help="file holding the bearer token")
    p.add_argument(
        "--allow-import",
        action="append",
        default=[],
        metavar="PREFIX",
        help="module prefix user models may be imported from (repeatable)",
    )
    p.add_argument(
        "--max-jobs",
        type=_positive_int,
        default=4,
        help="jobs this worker holds at once (default 4). A worker that is full drops its "
        "least recently used idle job to load another; the coordinator loads it again when "
        "it needs it",
    )
    p.add_argument(
        "--no-local-channel",
        dest="local_channel",
        action="store_false",
        help="do not serve steps on a Unix socket to a coordinator on this machine (they then "
        "go over gRPC; the results are the same)",
    )
    p.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to finish work")
    p.add_argument("--tls-ca", default=None, help="CA certificate to verify the coordinator")
    p.add_argument("--tls-cert", default=None, help="certificate to serve with (needs --tls-key)")
    p.add_argument("--tls-key", default=None, help="private key of --tls-cert")
    p.set_defaults(func=run_worker)
    return p


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def run_worker(args: argparse.Namespace) -> int:
    import grpc  # noqa: PLC0415 - keep `shardgrad --help` light

    from . import auth, threads  # noqa: PLC0415
    from .grpc_server import WorkerServer  # noqa: PLC0415
    from .memory import retain_freed_memory  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    retain_freed_memory()  # this process is the worker's own: steps reuse their pages
    if args.device != "cpu":
        from shardgrad import backend  # noqa: PLC0415

        if not backend.cuda_is_available():
            print(f"shardgrad worker: --device {args.device} but no CUDA GPU", file=sys.stderr)
            return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("shardgrad worker: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    server_creds = (
        grpc.ssl_server_credentials([(_read(args.tls_key), _read(args.tls_cert))])
        if args.tls_cert
        else None
    )
    channel_creds = grpc.ssl_channel_credentials(_read(args.tls_ca)) if args.tls_ca else None
    server = WorkerServer(
        args.coordinator,
        host=args.host,
        port=args.port,
        advertise_host=args.advertise_host,
        device=args.device,
        threads_share=args.threads or threads.cpu_share(args.per_host),
        cache_dir=args.cache_dir,
        token=auth.read_token(args.token_file),
        allowed_import_prefixes=args.allow_import,
        server_credentials=server_creds,
        channel_credentials=channel_creds,
        max_jobs=args.max_jobs,
        local_channel=args.local_channel,
    ).start()
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A drain the coordinator asks for (the pool was scaled down) takes the SIGTERM path.
    server.on_drain_request = stop.set
    announce(f"shardgrad worker listening on {server.address}")
    while not stop.wait(0.5):
        pass
    asked = " (asked by the coordinator)" if server.drain_requested.is_set() else ""
    announce(f"shardgrad worker draining{asked}")
    finished = server.drain(args.drain_timeout)
    announce("shardgrad worker stopped")
    return 0 if finished else 1
