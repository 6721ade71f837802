"""`shardgrad worker` processes on the coordinator's own machine (`serve --local-workers N`).

Each process is an ordinary gRPC worker: it registers with the coordinator over loopback and
from then on is treated like any other worker. The launcher only starts and stops them, keeps
their output in `<state-dir>/logs/`, and tells the pool when one printed its address or exited
(so a crashed local worker is dropped at once rather than after missed heartbeats).

On Linux every process is started with a parent-death signal (SIGTERM), so workers do not
outlive a coordinator that was killed with SIGKILL. The signal fires when the *thread* that
forked the child ends, so all processes are forked from one launcher thread that lives as
long as the launcher. The signal is set by a few lines of Python that then exec the worker,
rather than by a preexec_fn, which would make subprocess fork (not vfork) a process full of
gRPC threads.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

LISTENING = "shardgrad worker listening on "


# Runs first in each child: ask the kernel for SIGTERM when the parent goes (the setting
# survives exec), give up if the parent is already gone, then become the worker.
_EXEC_WITH_PARENT_DEATH_SIGNAL = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)
os.execv(sys.argv[2], sys.argv[2:])
"""


def with_parent_death_signal(cmd: list[str]) -> list[str]:
    """`cmd` started so that it gets SIGTERM when this process dies, even by SIGKILL (Linux;
    elsewhere `cmd` as it is): a killed coordinator leaves no worker or API process behind."""
    if not sys.platform.startswith("linux"):
        return cmd
    return [sys.executable, "-c", _EXEC_WITH_PARENT_DEATH_SIGNAL, str(os.getpid()), *cmd]


@dataclass
class LocalProcess:
    """One worker process and what the launcher learnt about it."""

    index: int
    popen: subprocess.Popen
    log_path: Path
    address: str | None = None
    stopping: bool = False
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.popen.pid


class LocalWorkerLauncher:
    """Starts and stops `shardgrad worker` processes that join `coordinator`."""

    def __init__(
        self,
        coordinator: str,
        state_dir: str | os.PathLike,
        *,
        token_file: str | os.PathLike | None = None,
        threads: int = 1,
        allowed_import_prefixes: Sequence[str] = (),
        tls_ca: str | None = None,
        drain_timeout: float = 30.0,
        on_address: Callable[[LocalProcess], None] | None = None,
        on_exit: Callable[[LocalProcess], None] | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.state_dir = Path(state_dir)
        self.log_dir = self.state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir = self.state_dir / "worker-cache"
        self.token_file = token_file
        self.threads = max(1, int(threads))
        self.allowed_import_prefixes = tuple(allowed_import_prefixes)
        self.tls_ca = tls_ca
        self.drain_timeout = drain_timeout
        self.on_address = on_address
        self.on_exit = on_exit
        self._forker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sg-launcher")
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._procs: dict[int, LocalProcess] = {}
        self._closed = False

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "shardgrad.client.cli",
            "worker",
            "--coordinator",
            self.coordinator,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--cache-dir",
            str(self.cache_dir),
            "--threads",
            str(self.threads),
            "--drain-timeout",
            str(self.drain_timeout),
        ]
        if self.token_file is not None:
            cmd += ["--token-file", str(self.token_file)]
        for prefix in self.allowed_import_prefixes:
            cmd += ["--allow-import", prefix]
        if self.tls_ca:
            cmd += ["--tls-ca", self.tls_ca]
        return cmd

    # ------------------------------------------------------------------ start
    def spawn(self) -> LocalProcess:
        """Start one worker process (it registers by itself once it listens)."""
        if self._closed:
            raise RuntimeError("the launcher is closed")
        return self._forker.submit(self._spawn).result()

    def _spawn(self) -> LocalProcess:
        index = next(self._ids)
        log_path = self.log_dir / f"worker-{index}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        popen = subprocess.Popen(
            with_parent_death_signal(self.command()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            close_fds=True,
        )
        proc = LocalProcess(index, popen, log_path)
        with self._lock:
            self._procs[index] = proc
        threading.Thread(
            target=self._pump, args=(proc,), name=f"sg-local-worker-{index}", daemon=True
        ).start()
        log.info("started local worker %d (pid %d)", index, popen.pid)
        return proc

    def _pump(self, proc: LocalProcess) -> None:
        """Copy the process's output to its log, note its address, report its exit."""
        with open(proc.log_path, "a", buffering=1) as out:
            for line in proc.popen.stdout:
                out.write(line)
                if proc.address is None and line.startswith(LISTENING):
                    proc.address = line[len(LISTENING) :].strip()
                    if self.on_address is not None:
                        self.on_address(proc)
        code = proc.popen.wait()
        proc.exited.set()
        with self._lock:
            self._procs.pop(proc.index, None)
        level = logging.INFO if proc.stopping else logging.WARNING
        log.log(level, "local worker %d (pid %d) exited with %s", proc.index, proc.pid, code)
        if self.on_exit is not None:
            self.on_exit(proc)

    # ------------------------------------------------------------------ stop
    def processes(self) -> list[LocalProcess]:
        with self._lock:
            return list(self._procs.values())

    def terminate(self, proc: LocalProcess) -> None:
        """Ask a worker to drain: it finishes the request in flight, deregisters, exits."""
        proc.stopping = True
        if proc.popen.poll() is None:
            try:
                proc.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:  # pragma: no cover - exited meanwhile
                pass

    def close(self, timeout: float = 30.0) -> None:
        """Drain every worker; kill the ones still running after `timeout` seconds."""
        self._closed = True
        procs = self.processes()
        for proc in procs:
            self.terminate(proc)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("local worker %d did not drain in time; killing it", proc.index)
                proc.popen.kill()
                proc.popen.wait()
        self._forker.shutdown(wait=False)
