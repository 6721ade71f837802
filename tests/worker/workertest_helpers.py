"""Helpers for the worker tests: jobs on random data, micro-shard cuts, a fake coordinator."""

from __future__ import annotations

import io
import threading
from concurrent import futures
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOKEN = "test-token"  # the bearer token of the fake coordinator and the workers it serves


def make_job(
    model,
    n: int = 64,
    features: int = 4,
    classes: int = 3,
    k: int = 8,
    seed: int = 0,
    job_id: str = "job-1",
    loss: str = "CrossEntropyLoss",
    compression: str = "none",
    dataset_sha256: str = "",
    model_source: dict | None = None,
):
    """(JobSpec, dataset arrays, flat float parameters) for `model` on random data."""
    from shardgrad.worker.job import JobSpec
    from shardgrad.worker.layout import ParamLayout

    rng = np.random.default_rng(seed)
    data = {
        "x": rng.standard_normal((n, features)).astype(np.float32),
        "y": rng.integers(0, classes, n).astype(np.int64),
    }
    layout = ParamLayout.from_module(model)
    flat = layout.flatten({name: p.detach().numpy() for name, p in model.named_parameters()})
    spec = JobSpec(
        job_id=job_id,
        model=model_source or {"spec": model.spec()},
        loss={"name": loss},
        layout=layout,
        num_micro_shards=k,
        seed=seed,
        compression=compression,
        compute_threads=1,
        dataset_sha256=dataset_sha256,
    )
    return spec, data, flat


def cut(n: int, k: int) -> list[tuple[int, np.ndarray]]:
    """Micro-shards of a batch 0..n-1, as the coordinator cuts them."""
    return [(i, s.astype(np.int64)) for i, s in enumerate(np.array_split(np.arange(n), k))]


def npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class FakeCoordinator:
    """The coordinator's worker-facing calls, enough to register, heartbeat and serve data."""

    def __init__(self, token: str | None, heartbeat_interval: float = 0.2) -> None:
        import grpc

        from shardgrad.protos import coordinator_pb2_grpc
        from shardgrad.worker import auth, wire

        self.token = token
        self.interval = heartbeat_interval
        self.datasets: dict[str, bytes] = {}
        self.registered: list = []
        self.heartbeats: list = []
        self.deregistered: list = []
        self.fetches: list[str] = []
        self.forget = False
        self.drain = False  # answer heartbeats with drain=True
        self.changed = threading.Condition()
        outer = self

        class Servicer(coordinator_pb2_grpc.CoordinatorServicer):
            def RegisterWorker(self, request, context):  # noqa: N802
                from shardgrad.protos import coordinator_pb2

                with outer.changed:
                    outer.registered.append(request)
                    outer.forget = False
                    outer.changed.notify_all()
                return coordinator_pb2.RegisterWorkerResponse(
                    worker_id=request.worker_id or f"w{len(outer.registered)}",
                    heartbeat_interval_seconds=outer.interval,
                )

            def Heartbeat(self, request, context):  # noqa: N802
                from shardgrad.protos import coordinator_pb2

                with outer.changed:
                    outer.heartbeats.append(request)
                    outer.changed.notify_all()
                    return coordinator_pb2.HeartbeatResponse(
                        known=not outer.forget, drain=outer.drain
                    )

            def DeregisterWorker(self, request, context):  # noqa: N802
                from shardgrad.protos import coordinator_pb2

                with outer.changed:
                    outer.deregistered.append(request)
                    outer.changed.notify_all()
                return coordinator_pb2.DeregisterWorkerResponse()

            def FetchDataset(self, request, context):  # noqa: N802
                from shardgrad.protos import common_pb2, coordinator_pb2

                outer.fetches.append(request.sha256)
                data = outer.datasets.get(request.sha256)
                if data is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"no dataset {request.sha256}")
                yield coordinator_pb2.FetchDatasetResponse(
                    info=coordinator_pb2.DatasetInfo(sha256=request.sha256, nbytes=len(data))
                )
                for a in range(0, len(data), 4096):
                    yield coordinator_pb2.FetchDatasetResponse(
                        chunk=common_pb2.Chunk(offset=a, data=data[a : a + 4096])
                    )

        interceptors = [auth.BearerAuthInterceptor(token)] if token else []
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            options=wire.grpc_options(),
            interceptors=interceptors,
        )
        coordinator_pb2_grpc.add_CoordinatorServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"
        self.server.start()

    def add_dataset(self, arrays: dict) -> str:
        import hashlib

        data = npz_bytes(arrays)
        sha = hashlib.sha256(data).hexdigest()
        self.datasets[sha] = data
        return sha

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout=timeout)

    def stop(self) -> None:
        self.server.stop(None).wait(timeout=5)
