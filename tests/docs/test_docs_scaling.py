"""docs/scaling.md quotes measurements; the tables in it must be exactly what the stored
measurement files (docs/measurements/*.json) say, so the page cannot drift from the data."""

from __future__ import annotations

import json
from pathlib import Path

from docstest_helpers import DOCS

PAGE = DOCS / "scaling.md"
MEASUREMENTS = DOCS / "measurements"


def _gbs(value: float) -> str:
    return f"{value / 1e9:.2f}"


def transport_table(data: dict) -> str:
    rows = [
        "| model | raw gRPC stream | shardgrad gRPC | Ray bare round trip | shardgrad Ray | numpy memcpy |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in data["results"].values():
        rows.append(
            f"| {r['model_bytes'] / 2**20:.0f} MiB | {_gbs(r['raw_grpc_stream'])} | "
            f"{_gbs(r['shardgrad_grpc_transport'])} | {_gbs(r['ray_bare_round_trip'])} | "
            f"{_gbs(r['shardgrad_ray_transport'])} | {_gbs(r['memcpy'])} |"
        )
    return "\n".join(rows)


def dist_step_table(data: dict) -> str:
    rows = [
        "| system | workers | ms per step | slowest worker's compute, ms | coordinator share |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| shardgrad core, one process | - | {data['single_ms']:.1f} | - | - |",
        f"| PyTorch DDP (gloo) | 2 ranks | {data['ddp_ms']:.1f} | - | - |",
    ]
    for run in data["runs"]:
        wire = " (wire)" if run.get("transport") == "wire" else ""
        rows.append(
            f"| shardgrad, {run['pool']} pool{wire} | {run['workers']} | {run['ms_per_step']:.1f} | "
            f"{run['worker_compute_ms']:.1f} | {run['overhead_share']:.0%} |"
        )
    return "\n".join(rows)


def _load(name: str) -> dict:
    return json.loads((MEASUREMENTS / name).read_text())


def test_transport_table_matches_the_measurement():
    data = _load("transport.json")
    assert transport_table(data) in PAGE.read_text()
    assert data["machine"] in PAGE.read_text()


def test_dist_step_table_matches_the_measurement():
    data = _load("dist_step.json")
    assert dist_step_table(data) in PAGE.read_text()
    assert data["workload"] in PAGE.read_text()


def test_measurement_files_are_named_on_the_page():
    text = PAGE.read_text()
    for path in MEASUREMENTS.glob("*.json"):
        assert f"measurements/{path.name}" in text
        assert f"benchmarks/{Path(path.name).stem}.py" in text
