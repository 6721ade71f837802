"""The coordinator's API served from a process of its own (`shardgrad serve` does this unless
told `--no-api-process`; `ServeOptions.api_process`).

In one process, the threads answering clients share the GIL with the training loops. A
handler thread that the OS has set aside while it holds the GIL (it runs below training's
priority, see service.priority) makes a loop wait for it: under 20 clients the loop's own work
between steps went from 0.5 to 4 ms (docs/reliability.md). This process takes the clients
instead, at low priority and with a GIL of its own.

It binds the public address and authenticates every call as the coordinator does. Calls that
only read the job database (GetJob, ListJobs, StreamMetrics, StreamMetricsBatches, ListEvents,
ListCheckpoints, ListDatasets) are answered here, by the coordinator's own handlers over the same SQLite file
(WAL lets this process read while the coordinator writes). ListWorkers is answered from the
coordinator's last answer when that is younger than `WORKERS_FRESH_S`. Every other call
changes state or needs the worker pool: it is passed through, bytes untouched, to the
coordinator's API on a Unix socket, with the caller's metadata and remaining deadline, and its
answer or status comes back as the coordinator gave it.

The process exits when the coordinator does (started with the parent-death signal, as local
workers are, and checking its parent), so a killed coordinator never leaves its port taken.

    python -m shardgrad.service.api_front --state-dir D --backend unix:/path --port 0
Prints `listening on PORT` once it serves.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shardgrad.protos import coordinator_pb2
from shardgrad.worker import auth, wire

from . import security
from .api import SERVICE, CoordinatorService
from .launcher import with_parent_death_signal
from .store import Store

log = logging.getLogger(__name__)

LOCAL = frozenset(
    {
        "GetJob",
        "ListJobs",
        "StreamMetrics",
        "StreamMetricsBatches",
        "ListEvents",
        "ListCheckpoints",
        "ListDatasets",
    }
)
WORKERS_FRESH_S = 0.5
_NO_DEADLINE_S = 1e9
_BIND_WAIT_S = 10.0
_FORWARDED_HEADERS = ("authorization",)


def _metadata(context) -> tuple[tuple[str, str], ...]:
    return tuple(
        (k, v) for k, v in context.invocation_metadata() if k.lower() in _FORWARDED_HEADERS
    )


def _timeout(context) -> float | None:
    """The caller's remaining deadline; None when it set none (gRPC then reports ~2**63)."""
    left = context.time_remaining()
    if left is None or left > _NO_DEADLINE_S:
        return None
    return max(left, 0.001)


class Forwarder:
    """Passes calls through to the coordinator's API, bytes untouched."""

    def __init__(self, backend: str) -> None:
        self.channel = grpc.insecure_channel(backend, options=wire.grpc_options())
        self._workers: tuple[float, bytes] | None = None
        self._workers_lock = threading.Lock()

    def handler(self, name: str, client_streaming: bool, server_streaming: bool):
        path = f"/{SERVICE}/{name}"
        if not client_streaming and not server_streaming:
            call = self.channel.unary_unary(path)
            if name == "ListWorkers":
                return grpc.unary_unary_rpc_method_handler(self._list_workers(call))

            def unary(request: bytes, context):
                try:
                    return call(request, metadata=_metadata(context), timeout=_timeout(context))
                except grpc.RpcError as exc:
                    context.abort(exc.code(), exc.details() or "")
                finally:
                    self._forget_workers()  # a call that may have changed them

            return grpc.unary_unary_rpc_method_handler(unary)
        if not client_streaming:
            call = self.channel.unary_stream(path)

            def unary_stream(request: bytes, context):
                replies = call(request, metadata=_metadata(context), timeout=_timeout(context))
                context.add_callback(replies.cancel)
                try:
                    yield from replies
                except grpc.RpcError as exc:
                    context.abort(exc.code(), exc.details() or "")

            return grpc.unary_stream_rpc_method_handler(unary_stream)
        if not server_streaming:
            call = self.channel.stream_unary(path)

            def stream_unary(requests, context):
                try:
                    return call(requests, metadata=_metadata(context), timeout=_timeout(context))
                except grpc.RpcError as exc:
                    context.abort(exc.code(), exc.details() or "")

            return grpc.stream_unary_rpc_method_handler(stream_unary)
        raise ValueError(f"{name}: streaming both ways is not forwarded")

    def _forget_workers(self) -> None:
        with self._workers_lock:
            self._workers = None

    def _list_workers(self, call):
        """ListWorkers from the coordinator's answer of the last WORKERS_FRESH_S seconds (a
        listing polled by many clients need not reach the pool for each of them). Any call
        passed through (scaling, a worker registering, leaving or heartbeating) forgets that
        answer, so a client sees the effect of its own call at once."""

        def list_workers(request: bytes, context):
            now = time.monotonic()
            plain = request == b""  # the request has no fields: anything else is checked
            with self._workers_lock:
                held = self._workers
            if plain and held is not None and now - held[0] < WORKERS_FRESH_S:
                return held[1]
            try:
                reply = call(request, metadata=_metadata(context), timeout=_timeout(context))
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details() or "")
            if plain:
                with self._workers_lock:
                    self._workers = (now, reply)
            return reply

        return list_workers

    def close(self) -> None:
        self.channel.close()


def generic_handler(reader: CoordinatorService, forwarder: Forwarder) -> grpc.GenericRpcHandler:
    """The local readers' handlers for LOCAL, pass-through for every other method."""
    local = reader.generic_handler()
    service = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"]
    methods = {}
    for m in service.methods:
        if m.name in LOCAL:
            continue
        methods[m.name] = forwarder.handler(m.name, m.client_streaming, m.server_streaming)
    passed = grpc.method_handlers_generic_handler(service.full_name, methods)

    class _Both(grpc.GenericRpcHandler):
        def service(self, handler_call_details):
            name = handler_call_details.method.rsplit("/", 1)[-1]
            if name in LOCAL:
                return local.service(handler_call_details)
            return passed.service(handler_call_details)

    return _Both()


class FrontProcess:
    """The coordinator's side: starts the front on the public address, starts it again on
    the same port if it dies, and stops it."""

    def __init__(self, args: list[str], token: str) -> None:
        self.args = args
        self.env = {**os.environ, security.TOKEN_ENV: token}  # not on the command line
        self.port = 0
        self.popen: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self, port: int, timeout: float = 60.0) -> int:
        """Start the front on `port` (0: any free one); returns the port it serves on."""
        self.port = self._spawn(port, timeout)
        self._watcher = threading.Thread(target=self._watch, name="sg-api-front", daemon=True)
        self._watcher.start()
        return self.port

    def _spawn(self, port: int, timeout: float) -> int:
        cmd = [sys.executable, "-m", "shardgrad.service.api_front", *self.args, "--port"]
        self.popen = subprocess.Popen(
            with_parent_death_signal([*cmd, str(port), "--parent", str(os.getpid())]),
            stdout=subprocess.PIPE,
            env=self.env,
            text=True,
        )
        line = _read_line(self.popen.stdout, timeout)
        if not line.startswith("listening on "):
            self.popen.kill()
            self.popen.wait()
            raise OSError(f"the API process did not start (it said {line!r})")
        return int(line.split()[-1])

    def _watch(self) -> None:
        while not self._stopping.is_set():
            if self.popen.poll() is None:
                self._stopping.wait(0.5)
                continue
            log.error("the API process exited (%s); starting it again", self.popen.returncode)
            try:
                self._spawn(self.port, 60.0)
            except OSError as exc:
                log.error("%s; trying again", exc)
                self._stopping.wait(1.0)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout)
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _read_line(stream, timeout: float) -> str:
    """The first line `stream` gives within `timeout` seconds ("" when none came)."""
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return out[0].strip() if out else ""


def _listen(args, token, credentials, handler, checks, wait_s: float = _BIND_WAIT_S):
    """(started server, port), or (None, 0) when the address stays taken for `wait_s`.

    The port is never shared (no SO_REUSEPORT): an API process of a coordinator that was
    just killed may still hold it for a moment, and while both listened, callers would
    be spread over the two and half of them sent to a coordinator that is gone."""
    bind = f"{args.host}:{args.port}"
    deadline = time.monotonic() + wait_s
    while True:
        server = grpc.server(
            ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="sg-front"),
            options=[*wire.grpc_options(), ("grpc.so_reuseport", 0)],
            interceptors=[auth.BearerAuthInterceptor(token)],
        )
        server.add_generic_rpc_handlers((handler,))
        health_pb2_grpc.add_HealthServicer_to_server(checks, server)
        try:
            if credentials is not None:
                port = server.add_secure_port(bind, credentials)
            else:
                port = server.add_insecure_port(bind)
        except RuntimeError:
            port = 0
        if port:
            server.start()
            return server, port
        if args.port == 0 or time.monotonic() >= deadline:
            return None, 0
        time.sleep(0.1)


def serve(args: argparse.Namespace) -> int:
    if os.getppid() != args.parent:  # the coordinator died before this process started
        return 0
    if args.nice > 0:
        os.nice(args.nice)  # the whole process: it shares no GIL with the training loops
    state_dir = args.state_dir
    token = security.ensure_token(state_dir)
    credentials = security.server_credentials(args.tls_cert, args.tls_key)
    store = Store(args.store)
    reader = CoordinatorService(
        SimpleNamespace(store=store, pool=None, datasets=None, state_dir=state_dir, options=None),
        max_followers=args.max_followers,
    )
    forwarder = Forwarder(args.backend)

    # Exit at once when the coordinator is gone (the parent-death signal is SIGTERM): its
    # restart may be taking this port right now, and there is nothing left to pass calls to.
    def on_term(*_) -> None:
        if os.getppid() != args.parent:
            os._exit(0)
        stop.set()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if os.getppid() != args.parent:
        return 0
    checks = health.HealthServicer()
    server, port = _listen(args, token, credentials, generic_handler(reader, forwarder), checks)
    if server is None:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 1
    for name in ("", SERVICE):
        checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    print(f"listening on {port}", flush=True)
    while not stop.wait(1.0):
        if os.getppid() != args.parent:  # the coordinator is gone
            os._exit(0)
    reader.closing.set()
    checks.enter_graceful_shutdown()
    server.stop(grace=1.0).wait(timeout=5.0)
    forwarder.close()
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shardgrad.service.api_front")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--store", required=True, help="the job database")
    p.add_argument("--backend", required=True, help="the coordinator's API, e.g. unix:/path")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert", default=None)
    p.add_argument("--tls-key", default=None)
    p.add_argument("--nice", type=int, default=0)
    p.add_argument("--threads", type=int, default=64)
    p.add_argument("--max-followers", type=int, default=32)
    p.add_argument("--parent", type=int, required=True)
    logging.basicConfig(level=logging.WARNING)
    return serve(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
