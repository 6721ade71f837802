"""The coordinator process: state directory, worker pool, jobs, and the gRPC server.

`Coordinator(options).start()` takes the state directory (one coordinator at a time: it holds
an exclusive lock on it), makes or reads the bearer token, builds the worker pool, binds the
API with the grpc.health.v1 service on the same port, starts local workers if asked, and
resumes every job a previous coordinator left PENDING or RUNNING from its last checkpoint.
`stop()` lets every training loop checkpoint and let go without changing job states, so the
next start carries on where this one stopped.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shardgrad.worker import auth, threads, wire

from . import events, priority, security
from .api import SERVICE, CoordinatorService
from .api_front import FrontProcess
from .config import MAX_PARAMETERS
from .fsutil import atomic_write
from .jobs import JobManager
from .pools.base import WorkerPool
from .priority import DEFAULT_API_NICE
from .trainer import TrainerOptions

log = logging.getLogger(__name__)

POOLS = ("grpc", "ray", "inprocess")
ENDPOINT_FILE = "coordinator.json"
LOCK_FILE = "coordinator.lock"


@dataclass
class ServeOptions:
    """Everything `shardgrad serve` can be told; defaults are the command's defaults."""

    state_dir: str | os.PathLike
    host: str = "127.0.0.1"
    port: int = 0
    pool: str = "grpc"
    # grpc: worker processes started on this machine; ray: actors; inprocess: threads.
    local_workers: int | None = None
    ray_address: str | None = None
    ray_cpus_per_worker: float = 1.0
    tls_cert: str | None = None
    tls_key: str | None = None
    worker_tls_ca: str | None = None
    max_jobs: int = 16
    max_upload_bytes: int = 1 << 30
    max_parameters: int = MAX_PARAMETERS  # the most a submitted model may have
    allow_import: tuple[str, ...] = field(default_factory=tuple)
    # BLAS threads every worker uses for every job: the same count everywhere keeps the
    # arithmetic, and so the parameters, identical for any set of workers.
    compute_threads: int = 1
    heartbeat_interval: float = 2.0
    heartbeat_timeout: float | None = None
    step_timeout: float = 120.0
    worker_grace: float = 300.0
    rpc_threads: int = 64
    # Workers on this machine exchange the step's parameters and gradients through shared
    # memory instead of the wire (see shardgrad.worker.shm); off sends everything over it.
    shared_memory: bool = True
    # How much lower the CPU priority of the threads answering API and dashboard requests is
    # than training's (a nice increment; 0 keeps them equal): see service.priority.
    api_nice: int = DEFAULT_API_NICE
    # Serve the API from a process of its own (see service.api_front): clients then share no
    # GIL with the training loops. `shardgrad serve` turns it on; a coordinator embedded in
    # another program (tests, notebooks) keeps one process unless asked.
    api_process: bool = False


class StateDirBusy(RuntimeError):
    """Another coordinator holds the state directory."""


def _bind_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class Coordinator:
    """One coordinator; `start()` then `stop()` (also as a context manager)."""

    def __init__(self, options: ServeOptions) -> None:
        if options.pool not in POOLS:
            raise ValueError(f"unknown pool {options.pool!r}; use one of {list(POOLS)}")
        self.options = options
        self.state_dir = Path(options.state_dir)
        self.pool: WorkerPool | None = None
        self.manager: JobManager | None = None
        self.api: CoordinatorService | None = None
        self.server: grpc.Server | None = None
        self.health: health.HealthServicer | None = None
        self.port = 0
        self.token = ""
        self.recovered: list[str] = []
        self.front: FrontProcess | None = None  # with api_process: the public API
        self._backend_dir: str | None = None
        self._lock_fd: int | None = None
        self._stopped = False

    # ------------------------------------------------------------------ addresses
    @property
    def address(self) -> str:
        return f"{_bind_host(self.options.host)}:{self.port}"

    @property
    def dial_address(self) -> str:
        """Where processes on this machine reach the API."""
        host = self.options.host
        if host in ("", "0.0.0.0", "::", "[::]"):
            host = "127.0.0.1"
        return f"{_bind_host(host)}:{self.port}"

    # ------------------------------------------------------------------ start
    def start(self) -> Coordinator:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._take_state_dir()
        try:
            self._start()
        except BaseException:
            self.stop(timeout=10.0)
            raise
        return self

    def _take_state_dir(self) -> None:
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateDirBusy(
                f"another coordinator is using {self.state_dir}; stop it or pick another "
                "--state-dir"
            ) from None
        self._lock_fd = fd

    def _start(self) -> None:
        opts = self.options
        self.token = security.ensure_token(self.state_dir)
        server_credentials = security.server_credentials(opts.tls_cert, opts.tls_key)
        self.pool = self._make_pool()
        self.manager = JobManager(
            self.state_dir,
            self.pool,
            TrainerOptions(
                worker_grace_s=opts.worker_grace,
                step_timeout_s=opts.step_timeout,
                allowed_import_prefixes=tuple(opts.allow_import),
                max_parameters=opts.max_parameters,
            ),
        )
        self.api = CoordinatorService(
            self.manager,
            max_jobs=opts.max_jobs,
            max_upload_bytes=opts.max_upload_bytes,
            heartbeat_interval=opts.heartbeat_interval,
        )
        self.server = grpc.server(
            ThreadPoolExecutor(
                max_workers=opts.rpc_threads,
                thread_name_prefix="sg-rpc",
                initializer=functools.partial(priority.lower_this_thread, opts.api_nice),
            ),
            options=wire.grpc_options(),
            interceptors=[auth.BearerAuthInterceptor(self.token)],
        )
        self.server.add_generic_rpc_handlers((self.api.generic_handler(),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if opts.api_process:
            self._start_front()
        else:
            self._bind_public(server_credentials)
            self.server.start()
        for name in ("", SERVICE):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._write_endpoint()
        self._start_local_workers()
        self.recovered = self.manager.recover()
        events.record(self.manager.store, "coordinator_started", self._started_message())
        if self.recovered:
            log.info("resuming jobs %s", ", ".join(self.recovered))

    def _bind_public(self, server_credentials) -> None:
        bind = f"{_bind_host(self.options.host)}:{self.options.port}"
        try:
            if server_credentials is not None:
                self.port = self.server.add_secure_port(bind, server_credentials)
            else:
                self.port = self.server.add_insecure_port(bind)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {bind}: {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot listen on {bind}")

    def _start_front(self) -> None:
        """Serve the API privately on a Unix socket and publicly from the front process."""
        opts = self.options
        self._backend_dir = tempfile.mkdtemp(prefix="sg-api-")  # 0700: this user alone
        backend = f"unix:{self._backend_dir}/api.sock"
        if self.server.add_insecure_port(backend) == 0:
            raise OSError(f"cannot listen on {backend}")
        self.server.start()
        args = [
            "--state-dir",
            str(self.state_dir),
            "--store",
            str(self.manager.store.path),
            "--backend",
            backend,
            "--host",
            _bind_host(opts.host),
            "--nice",
            str(opts.api_nice),
            "--threads",
            str(opts.rpc_threads),
        ]
        if opts.tls_cert:
            args += ["--tls-cert", str(opts.tls_cert), "--tls-key", str(opts.tls_key)]
        self.front = FrontProcess(args, self.token)
        self.port = self.front.start(opts.port)

    def _started_message(self) -> str:
        jobs = len(self.recovered)
        resumed = f"; {jobs} job{'s' if jobs != 1 else ''} resumed" if jobs else ""
        return f"listening on {self.address} with the {self.options.pool} pool{resumed}"

    def _make_pool(self) -> WorkerPool:
        opts = self.options
        if opts.pool == "grpc":
            from .pools.grpc_pool import GrpcPool  # noqa: PLC0415

            return GrpcPool(
                self.token,
                channel_credentials=security.channel_credentials(opts.worker_tls_ca),
                heartbeat_interval=opts.heartbeat_interval,
                heartbeat_timeout=opts.heartbeat_timeout,
                compute_threads=opts.compute_threads,
                rpc_timeout=max(60.0, opts.step_timeout),
                shared_memory=opts.shared_memory,
            )
        if opts.pool == "ray":
            from .pools.ray_pool import RayPool  # noqa: PLC0415

            local_only = opts.ray_address is None and opts.host in ("127.0.0.1", "localhost", "::1")
            if local_only and "ray" not in sys.modules:
                # Without this Ray resolves 127.0.0.1 to the machine's network address.
                os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            return RayPool(
                opts.local_workers,
                address=opts.ray_address,
                # Ray has no authentication: a Ray started for a loopback-only coordinator
                # listens on loopback only.
                init_kwargs={"_node_ip_address": "127.0.0.1"} if local_only else None,
                num_cpus_per_worker=opts.ray_cpus_per_worker,
                compute_threads=opts.compute_threads,
                allowed_import_prefixes=tuple(opts.allow_import),
                shared_memory=opts.shared_memory,
            )
        from .pools.inprocess import InProcessPool  # noqa: PLC0415

        return InProcessPool(
            1 if opts.local_workers is None else opts.local_workers,
            compute_threads=opts.compute_threads or 1,
            allowed_import_prefixes=tuple(opts.allow_import),
        )

    def _start_local_workers(self) -> None:
        opts = self.options
        count = opts.local_workers or 0
        if opts.pool != "grpc" or count <= 0:
            return
        from .launcher import LocalWorkerLauncher  # noqa: PLC0415

        launcher = LocalWorkerLauncher(
            self.dial_address,
            self.state_dir,
            token_file=security.token_path(self.state_dir),
            threads=opts.compute_threads or threads.cpu_share(count),
            allowed_import_prefixes=tuple(opts.allow_import),
            tls_ca=opts.tls_cert,
        )
        self.pool.attach_launcher(launcher)
        self.pool.scale(count)

    def _write_endpoint(self) -> None:
        body = {
            "address": self.address,
            "dial": self.dial_address,
            "port": self.port,
            "pid": os.getpid(),
            "pool": self.options.pool,
            "tls": bool(self.options.tls_cert),
            "token_file": str(security.token_path(self.state_dir)),
        }
        atomic_write(self.state_dir / ENDPOINT_FILE, (json.dumps(body, indent=1) + "\n").encode())

    # ------------------------------------------------------------------ stop
    def stop(self, timeout: float = 60.0) -> None:
        """Checkpoint and let go of every job (states unchanged), stop workers and server."""
        if self._stopped:
            return
        self._stopped = True
        if self.api is not None:
            self.api.closing.set()
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        if self.front is not None:
            self.front.stop()
        if self.manager is not None:
            message = "jobs checkpoint and continue when a coordinator starts on this state"
            events.record(self.manager.store, "coordinator_stopping", message)
            self.manager.shutdown(timeout)
        if self.pool is not None:
            try:
                self.pool.close()
            except Exception:  # noqa: BLE001 - shutting down regardless
                log.exception("closing the %s pool", self.pool.kind)
        if self.server is not None:
            self.server.stop(grace=2.0).wait(timeout=10.0)
        if self.manager is not None:
            self.manager.close(timeout=5.0)
        if self._backend_dir is not None:
            shutil.rmtree(self._backend_dir, ignore_errors=True)
        if self.port:
            (self.state_dir / ENDPOINT_FILE).unlink(missing_ok=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        log.info("coordinator stopped")

    def __enter__(self) -> Coordinator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
