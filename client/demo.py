"""The end-to-end demo (`make demo`): a real coordinator, real workers, a real training job.

`run_demo("ray")` starts `shardgrad serve` as a child process with its own temporary state
directory and two local workers (Ray actors, or `shardgrad worker` processes with "grpc"),
then acts as a user would, through the SDK alone: it uploads the training part of the
digits dataset shipped with shardgrad, submits a small CNN, follows the job with a progress
bar while the dashboard shows it live, fetches the trained model, measures its accuracy on
the held-out test digits (which never leave this process), saves it, and stops the
coordinator, which checkpoints and stops its workers.

The coordinator runs as its own process because that is how it runs for real, and because
the SDK never imports the service. Every number the demo prints comes from the run; with the
same seed the trained parameters are the same bytes for any number of workers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

BACKENDS = ("ray", "grpc")
DEFAULT_BACKEND_ENV = "DEMO_BACKEND"
MIN_ACCURACY = 0.97
MODEL_FILE = "digits_cnn.safetensors"
_READY_STATES = ("IDLE", "BUSY")


@dataclass(frozen=True)
class DemoResult:
    """What a demo run measured and where it left the model."""

    backend: str
    workers: int
    job_id: str
    state: str
    steps: int
    train_samples: int
    test_samples: int
    test_accuracy: float
    final_loss: float | None
    train_seconds: float
    total_seconds: float
    dashboard: str | None
    model_path: Path
    clean_shutdown: bool


# ---------------------------------------------------------------------- the data and model


def shifted_copies(images: np.ndarray) -> np.ndarray:
    """`images` [N, 1, 8, 8] and four copies moved by one pixel (right, left, down, up),
    zero-filled: 5N images. Handwriting is not centred exactly, so the shifts teach the
    network that a digit one pixel off is the same digit."""
    out = [images]
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        moved = np.zeros_like(images)
        h, w = images.shape[-2:]
        moved[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
            ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
        out.append(moved)
    return np.concatenate(out)


def digits_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training inputs (shift-augmented) and labels, test inputs and labels; inputs are
    standardised with the training set's mean and standard deviation."""
    from shardgrad.data import load_digits  # noqa: PLC0415

    x_train, y_train = load_digits("train", shape="image")
    x_test, y_test = load_digits("test", shape="image")
    mean, std = x_train.mean(), x_train.std()
    x_train = shifted_copies((x_train - mean) / std).astype(np.float32)
    y_train = np.concatenate([y_train] * 5)
    x_test = ((x_test - mean) / std).astype(np.float32)
    return x_train, y_train, x_test, y_test


def digits_cnn():
    """Two 3x3 convolutions, a 2x2 max-pool and two linear layers: 38k parameters."""
    from shardgrad import nn  # noqa: PLC0415

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    import shardgrad  # noqa: PLC0415

    model.eval()
    with shardgrad.no_grad():
        predicted = model(shardgrad.from_numpy(x)).argmax(dim=1).numpy()
    return float((predicted == y).mean())


# ---------------------------------------------------------------------- the coordinator


class LocalCoordinator:
    """`shardgrad serve` in a child process, stopped the way an operator would stop it."""

    def __init__(
        self,
        state_dir: Path,
        backend: str,
        workers: int,
        ray_address: str | None = None,
        start_timeout: float = 180.0,
    ) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir / "serve.log"
        self.command = [
            sys.executable,
            "-m",
            "shardgrad.client.cli",
            "serve",
            "--state-dir",
            str(state_dir),
            "--pool",
            backend,
            "--local-workers",
            str(workers),
            "--log-level",
            "WARNING",
        ]
        if ray_address:
            self.command += ["--ray-address", ray_address]
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.endpoint: dict = {}

    def start(self) -> LocalCoordinator:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        deadline = time.monotonic() + self.start_timeout
        endpoint_file = self.state_dir / "coordinator.json"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the coordinator exited with status {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                self.endpoint = json.loads(endpoint_file.read_text())
            except (OSError, ValueError):
                self.endpoint = {}
            if self.endpoint.get("dial") and "dashboard" in self.endpoint:
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the coordinator did not come up in {self.start_timeout:g} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    @property
    def dashboard(self) -> str | None:
        return self.endpoint.get("dashboard")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 90.0) -> bool:
        """Ask the coordinator to stop (SIGINT, as Ctrl-C would); True when it exited 0 in
        time. A coordinator that does not is killed, so no process outlives the demo."""
        clean = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                clean = self.proc.wait(timeout) == 0
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        elif self.proc is not None:
            clean = self.proc.returncode == 0
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        return clean

    def __enter__(self) -> LocalCoordinator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for_workers(client, count: int, timeout: float = 180.0) -> list:
    """The ready workers once `count` of them are, else TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        ready = [w for w in client.workers() if w.state in _READY_STATES]
        if len(ready) >= count:
            return ready
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(ready)} of {count} workers came up in {timeout:g} s")
        time.sleep(0.2)


# ---------------------------------------------------------------------- the demo


def run_demo(
    backend: str = "ray",
    *,
    workers: int = 2,
    epochs: int = 3,
    ray_address: str | None = None,
    out: str | os.PathLike = "demo-output",
    progress: bool = True,
    file: IO[str] | None = None,
    seed: int = 0,
) -> DemoResult:
    """Train the digits CNN through a fresh local coordinator with `workers` workers of the
    given backend ("ray" or "grpc"); save the model under `out`; return what was measured.

    `ray_address` joins an existing Ray cluster instead of starting a local one ("auto" on a
    cluster node).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if workers < 1 or epochs < 1:
        raise ValueError("workers and epochs must be at least 1")
    import shardgrad  # noqa: PLC0415
    from shardgrad import nn, optim  # noqa: PLC0415
    from shardgrad.nn import from_spec  # noqa: PLC0415

    from .sdk import Client  # noqa: PLC0415

    out_file = file or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out_file, flush=True)

    started = time.perf_counter()
    x_train, y_train, x_test, y_test = digits_data()
    shardgrad.manual_seed(seed)
    model = digits_cnn()
    batch_size = 64
    steps = epochs * -(-len(x_train) // batch_size)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    n_params = sum(p.numel() for p in model.parameters())

    say(f"shardgrad demo: a {n_params:,}-parameter CNN learns handwritten digits")
    say(
        f"  data      {len(x_train)} training images ({len(x_train) // 5} digits and their "
        "1-pixel shifts),"
    )
    say(f"            {len(x_test)} test digits kept here, never sent")
    workers_kind = "Ray actors" if backend == "ray" else "gRPC worker processes"
    say(f"  workers   {workers} {workers_kind}")

    out_dir = Path(out)
    model_path = out_dir / MODEL_FILE
    with tempfile.TemporaryDirectory(prefix="shardgrad-demo-") as tmp:
        coordinator = LocalCoordinator(Path(tmp) / "state", backend, workers, ray_address)
        say("  starting a coordinator ...")
        try:
            coordinator.start()
            with Client(state_dir=coordinator.state_dir) as client:
                say(f"  coordinator {client.address}")
                ready = wait_for_workers(client, workers)
                devices = sorted({w.device or "cpu" for w in ready})
                say(f"  {len(ready)} workers ready on {', '.join(devices)}")
                job = client.submit(
                    model,
                    (x_train, y_train),
                    loss=nn.CrossEntropyLoss(),
                    optimizer=optimizer,
                    lr_scheduler=schedule,
                    batch_size=batch_size,
                    epochs=epochs,
                    workers=workers,
                    seed=seed,
                    name="digits-cnn",
                    progress=progress,
                )
                if coordinator.dashboard:
                    say(f"  dashboard {coordinator.dashboard}/jobs/{job.id}")
                    say(f"            sign in with the token in {coordinator.state_dir / 'token'}")
                say(f"  job {job.id}: {epochs} epochs of batches of {batch_size}, {steps} steps")
                t0 = time.perf_counter()
                status = job.wait(progress=progress)
                train_seconds = time.perf_counter() - t0
                loss = f"{status.last_loss:.4f}" if status.last_loss is not None else "-"
                say(f"  job {status.state} after {status.step} steps in {train_seconds:.1f} s")
                say(f"  final training loss {loss}")
                test_accuracy = accuracy(job.model(), x_test, y_test)
                say(f"  test accuracy {test_accuracy:.2%} on {len(x_test)} unseen digits")
                job.download(model_path)
        finally:
            say("  stopping the coordinator and its workers ...")
            clean = coordinator.stop()
            if not clean:
                say(coordinator.log_tail())

    # The saved file is the model: rebuilt from its spec and weights alone, it scores the same.
    meta = json.loads(Path(f"{model_path}.json").read_text())
    reloaded = from_spec(meta["model"]["spec"])
    reloaded.load_state_dict(shardgrad.load(model_path))
    if accuracy(reloaded, x_test, y_test) != test_accuracy:
        raise RuntimeError(f"the model saved in {model_path} does not reproduce the result")

    result = DemoResult(
        backend=backend,
        workers=workers,
        job_id=job.id,
        state=status.state,
        steps=status.step,
        train_samples=len(x_train),
        test_samples=len(x_test),
        test_accuracy=test_accuracy,
        final_loss=status.last_loss,
        train_seconds=train_seconds,
        total_seconds=time.perf_counter() - started,
        dashboard=coordinator.dashboard,
        model_path=model_path,
        clean_shutdown=clean,
    )
    say(f"  model saved to {model_path} (+ .json with its spec)")
    say(f"  shut down {'cleanly' if clean else 'NOT cleanly'}; {result.total_seconds:.0f} s in all")
    return result


# ---------------------------------------------------------------------- command line


def add_demo_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    default = os.environ.get(DEFAULT_BACKEND_ENV) or "ray"
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help=f"how workers run: Ray actors or gRPC processes (default ${DEFAULT_BACKEND_ENV} "
        "or ray)",
    )
    parser.add_argument("--workers", type=int, default=2, help="how many workers (default 2)")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the data (default 3)")
    parser.add_argument(
        "--ray-address", default=None, help="join this Ray cluster ('auto' on a cluster node)"
    )
    parser.add_argument(
        "--out", default="demo-output", help="folder for the trained model (default demo-output)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_parser() -> argparse.ArgumentParser:
    return add_demo_arguments(
        argparse.ArgumentParser(
            prog="demo",
            description="Train a CNN on the digits dataset across local shardgrad workers.",
        )
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run the demo; exit status 0 when the model reached the promised accuracy."""
    result = run_demo(
        args.backend,
        workers=args.workers,
        epochs=args.epochs,
        ray_address=args.ray_address,
        out=args.out,
        progress=not args.no_progress,
    )
    if result.state != "SUCCEEDED" or result.test_accuracy < MIN_ACCURACY:
        print(
            f"demo failed: job {result.state}, accuracy {result.test_accuracy:.2%} "
            f"(expected at least {MIN_ACCURACY:.0%})",
            file=sys.stderr,
        )
        return 1
    return 0 if result.clean_shutdown else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run_from_args(build_parser().parse_args(argv))
