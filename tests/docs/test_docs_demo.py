"""`make demo` runs examples/demo.py: a real coordinator and workers train the digits CNN. The
demo's promises are checked as a user sees them: its output, its accuracy, the saved model,
and that it leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shardgrad.client.demo import MIN_ACCURACY, build_parser, shifted_copies

ROOT = Path(__file__).resolve().parents[2]


def _run_demo(tmp_path: Path, *args: str, env_backend: str | None = None) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHARDGRAD_", "DEMO_"))}
    if env_backend:
        env["DEMO_BACKEND"] = env_backend
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--out", str(tmp_path / "out"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


def _check_output(out: str, tmp_path: Path, backend_words: str) -> float:
    assert f"2 {backend_words}" in out
    assert re.search(r"2 workers ready on cpu", out)
    assert re.search(r"dashboard http://127\.0\.0\.1:\d+/jobs/[0-9a-f]+", out)
    assert "job SUCCEEDED after 339 steps" in out
    assert "shut down cleanly" in out
    accuracy = float(re.search(r"test accuracy ([0-9.]+)% on 359 unseen digits", out).group(1))
    assert accuracy >= MIN_ACCURACY * 100
    model = tmp_path / "out" / "digits_cnn.safetensors"
    meta = json.loads(Path(f"{model}.json").read_text())
    assert meta["step"] == 339 and meta["model"]["spec"]["type"] == "Sequential"
    return accuracy


def test_demo_with_grpc_workers_trains_saves_and_stops_cleanly(tmp_path):
    out = _run_demo(tmp_path, env_backend="grpc")  # DEMO_BACKEND picks the backend
    _check_output(out, tmp_path, "gRPC worker processes")
    # README.md shows a run; what does not depend on the machine must match this one.
    readme = (ROOT / "README.md").read_text()
    for line in out.splitlines()[:3] + [l for l in out.splitlines() if "339 steps" in l][:1]:
        assert re.sub(r"[0-9a-f]{16}", "", line) in re.sub(r"[0-9a-f]{16}", "", readme), line
    # Every process the demo started (coordinator, workers) named its state directory.
    state = re.search(r"sign in with the token in (\S+)/token", out).group(1)
    assert not Path(state).exists(), "the temporary state directory is removed"
    leftovers = subprocess.run(["pgrep", "-f", state], capture_output=True, text=True)
    assert leftovers.stdout == "", f"processes left behind: {leftovers.stdout}"


@pytest.mark.slow
def test_demo_with_ray_actors_gives_the_same_model(tmp_path):
    ray_out = _run_demo(tmp_path / "ray", "--backend", "ray", "--no-progress")
    grpc_out = _run_demo(tmp_path / "grpc", "--backend", "grpc", "--no-progress")
    ray_acc = _check_output(ray_out, tmp_path / "ray", "Ray actors")
    grpc_acc = _check_output(grpc_out, tmp_path / "grpc", "gRPC worker processes")
    assert ray_acc == grpc_acc
    ray_model = (tmp_path / "ray" / "out" / "digits_cnn.safetensors").read_bytes()
    grpc_model = (tmp_path / "grpc" / "out" / "digits_cnn.safetensors").read_bytes()
    assert ray_model == grpc_model, "the same job trains the same bytes on either pool"


def test_demo_backend_defaults_to_ray_and_follows_demo_backend(monkeypatch):
    monkeypatch.delenv("DEMO_BACKEND", raising=False)
    assert build_parser().parse_args([]).backend == "ray"
    monkeypatch.setenv("DEMO_BACKEND", "grpc")
    assert build_parser().parse_args([]).backend == "grpc"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--backend", "mpi"])


def test_shifted_copies_move_each_image_by_one_pixel():
    images = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3) + 1
    out = shifted_copies(images)
    assert out.shape == (10, 1, 3, 3)
    np.testing.assert_array_equal(out[:2], images)
    right, left, down, up = (out[2 * i + 2 : 2 * i + 4, 0] for i in range(4))
    img = images[:, 0]
    np.testing.assert_array_equal(right[:, :, 1:], img[:, :, :-1])
    assert (right[:, :, 0] == 0).all()
    np.testing.assert_array_equal(left[:, :, :-1], img[:, :, 1:])
    np.testing.assert_array_equal(down[:, 1:], img[:, :-1])
    np.testing.assert_array_equal(up[:, :-1], img[:, 1:])
    assert (up[:, -1] == 0).all()
