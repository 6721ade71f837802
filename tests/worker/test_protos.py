"""The generated protobuf modules are current, import as shardgrad.protos.*, and stay light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"


def _generated(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))
    }


def test_checked_in_code_matches_the_proto_files(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_protos.sh"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    fresh, checked_in = _generated(tmp_path), _generated(PROTOS)
    assert sorted(fresh) == sorted(checked_in), "run `make proto` and add the generated files"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"stale generated code {stale}: run `make proto`"


def test_generated_modules_import_under_the_package_and_are_versioned():
    from shardgrad.protos import common_pb2, coordinator_pb2_grpc, worker_pb2, worker_pb2_grpc

    assert worker_pb2.DESCRIPTOR.package == "shardgrad.v1"
    assert worker_pb2.DESCRIPTOR.name == "shardgrad/protos/worker.proto"
    assert common_pb2.DESCRIPTOR.package == "shardgrad.v1"
    assert hasattr(worker_pb2_grpc, "WorkerStub")
    for rpc in ("RegisterWorker", "Heartbeat", "DeregisterWorker", "FetchDataset", "SubmitJob"):
        assert hasattr(coordinator_pb2_grpc.CoordinatorServicer, rpc)


def test_importing_shardgrad_and_its_worker_core_loads_no_grpc():
    code = (
        "import sys, shardgrad, shardgrad.worker.compute, shardgrad.worker.ray_actor;"
        "print(sorted(m for m in ('grpc', 'ray', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
