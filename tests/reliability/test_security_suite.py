"""Security: no call gets past the bearer token, TLS with a self-made CA works and plaintext to
a TLS server does not, the token file is private, nothing from the network is unpickled, and
import-path models are held to the coordinator's allow-list."""

from __future__ import annotations

import datetime
import io
import ipaddress
import json
import pickle
import re
import stat
from pathlib import Path

import grpc
import numpy as np
import pytest
from _reliability import InProcessServer, raw_call, rpc_methods
from _servertest import mlp_config, pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shardgrad.protos import coordinator_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
WRONG_TOKENS = [None, "", "Bearer", "Bearer wrong", "Basic Zm9vOmJhcg==", "bearer-without-space"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = InProcessServer(tmp_path_factory.mktemp("sec") / "state")
    try:
        yield s
    finally:
        s.close()


def _metadata(header: str | None, token: str) -> tuple:
    if header is None:
        return ()
    if header == "Bearer wrong":
        return (("authorization", f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}"),)
    return (("authorization", header),)


def test_every_rpc_refuses_a_missing_or_wrong_token(server, figures):
    channel = grpc.insecure_channel(server.address)
    refused = 0
    try:
        for method in rpc_methods():
            request = method[1]()
            for header in WRONG_TOKENS:
                with pytest.raises(grpc.RpcError) as err:
                    raw_call(channel, method, [request], _metadata(header, server.token))
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, (method[0], header)
                refused += 1
        # ...and the right token gets through to the method itself.
        ok = raw_call(
            channel,
            rpc_methods()[[m[0] for m in rpc_methods()].index("ListJobs")],
            [pb.ListJobsRequest()],
            server.api.metadata,
        )
        assert isinstance(ok[0], pb.ListJobsResponse)
    finally:
        channel.close()
    assert server.coordinator.manager.list() == []  # nothing refused changed anything
    figures.add("security", "grpc_token", rpcs=len(rpc_methods()), refused=refused, passed=True)


def test_every_worker_rpc_refuses_a_missing_or_wrong_token(tmp_path, figures):
    from shardgrad.worker.grpc_server import WorkerServer

    token = "a-worker-token-0123456789"
    worker = WorkerServer(None, cache_dir=tmp_path / "cache", token=token).start()
    refused = 0
    try:
        with grpc.insecure_channel(f"127.0.0.1:{worker.port}") as channel:
            for method in rpc_methods("Worker"):
                for header in WRONG_TOKENS:
                    with pytest.raises(grpc.RpcError) as err:
                        raw_call(
                            channel,
                            method,
                            [method[1]()],
                            _metadata(header, token),
                            service="shardgrad.v1.Worker",
                        )
                    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, (method[0], header)
                    refused += 1
    finally:
        worker.stop(grace=None)
    figures.add(
        "security",
        "worker_grpc_token",
        rpcs=len(rpc_methods("Worker")),
        refused=refused,
        passed=True,
    )


def test_every_dashboard_api_route_refuses_a_missing_or_wrong_token(server, figures):
    job = server.api.submit(mlp_config(steps=2))
    server.api.wait_succeeded(job.job_id)
    routes = [
        "/api/v1/overview",
        "/api/v1/jobs",
        "/api/v1/workers",
        "/api/v1/events",
        f"/api/v1/jobs/{job.job_id}",
        f"/api/v1/jobs/{job.job_id}/metrics",
        f"/api/v1/jobs/{job.job_id}/checkpoints",
        "/api/v1/jobs/nope",
        "/api/v2/anything",
        "/metrics",
    ]
    refused = 0
    for route in routes:
        for token in (None, "", "wrong", server.token + "x", server.token[:-1]):
            assert server.dashboard.status(route, token) == 401, (route, token)
            refused += 1
    for route in routes[:6]:
        assert server.dashboard.status(route) == 200, route
    body = server.dashboard.get(f"/api/v1/jobs/{job.job_id}")
    assert body["state"] == "SUCCEEDED"
    figures.add("security", "dashboard_token", routes=len(routes), refused=refused, passed=True)


def test_the_token_file_is_private(server, figures):
    mode = stat.S_IMODE((server.state_dir / "token").stat().st_mode)
    assert mode == 0o600, oct(mode)
    figures.add("security", "token_file_mode", mode=oct(mode), passed=True)


# ---------------------------------------------------------------------------- TLS
def _ca_and_leaf(folder: Path, cn: str = "shardgrad reliability CA"):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "cert.pem").write_bytes(leaf.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "ca.pem", folder / "cert.pem", folder / "key.pem"


def test_tls_with_a_self_made_ca_and_plaintext_is_refused(tmp_path, figures):
    pytest.importorskip("cryptography")
    ca, cert, key = _ca_and_leaf(tmp_path / "pki")
    other_ca, _, _ = _ca_and_leaf(tmp_path / "other", cn="someone else")
    s = InProcessServer(tmp_path / "state", tls_cert=str(cert), tls_key=str(key))
    try:
        metadata = (("authorization", f"Bearer {s.token}"),)
        creds = grpc.ssl_channel_credentials(ca.read_bytes())
        with grpc.secure_channel(s.address, creds) as ch:
            stub = coordinator_pb2_grpc.CoordinatorStub(ch)
            assert stub.ListJobs(pb.ListJobsRequest(), metadata=metadata, timeout=10).jobs == []
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=10
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as err:  # TLS does not replace the token
                stub.ListJobs(pb.ListJobsRequest(), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

        with grpc.insecure_channel(s.address) as ch:  # plaintext to a TLS server
            with pytest.raises(grpc.RpcError) as err:
                coordinator_pb2_grpc.CoordinatorStub(ch).ListJobs(
                    pb.ListJobsRequest(), metadata=metadata, timeout=5
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        untrusted = grpc.ssl_channel_credentials(other_ca.read_bytes())
        with grpc.secure_channel(s.address, untrusted) as ch:  # a CA that did not sign it
            with pytest.raises(grpc.RpcError) as err:
                coordinator_pb2_grpc.CoordinatorStub(ch).ListJobs(
                    pb.ListJobsRequest(), metadata=metadata, timeout=5
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        s.close()
    figures.add(
        "security",
        "tls",
        trusted_ok=True,
        plaintext_refused=True,
        wrong_ca_refused=True,
        passed=True,
    )


# ---------------------------------------------------------------------------- pickle
class _Tripwire:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, name):
        def refuse(*args, **kwargs):
            self.calls.append(name)
            raise AssertionError(f"pickle.{name} was called on a network payload")

        return refuse


def _pickled_npz() -> bytes:
    buf = io.BytesIO()
    x = np.empty(4, dtype=object)
    x[:] = [object(), 1, "a", None]
    np.savez(buf, x=x, y=np.arange(4))
    return buf.getvalue()


def test_no_payload_is_ever_unpickled(server, monkeypatch, figures):
    trip = _Tripwire()
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, trip(name))
    payloads = {
        "object npz": _pickled_npz(),
        "raw pickle": pickle.dumps({"x": np.zeros(3), "y": np.zeros(3)}),
        "pickle in npy": b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
        + b" " * 45
        + b"\n"
        + pickle.dumps([1]),
    }
    refused = 0
    for what, data in payloads.items():
        with pytest.raises(grpc.RpcError) as err:
            server.api.upload(data, name=what)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (what, err.value.details())
        refused += 1
    cfg = mlp_config(steps=1)
    with pytest.raises(grpc.RpcError) as err:
        server.api.submit(cfg, initial_weights=pickle.dumps({"0.weight": np.zeros((16, 8))}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    refused += 1
    job = server.api.submit(cfg)  # a whole job round trip with the tripwire set
    server.api.wait_succeeded(job.job_id)
    server.api.model(job.job_id)
    assert trip.calls == []
    figures.add("security", "no_unpickling", payloads_refused=refused, passed=True)


def test_no_source_loads_pickles_or_allows_them():
    """The static half of the promise: no shipped module calls an unpickler."""
    pattern = re.compile(
        r"pickle\.loads?\(|Unpickler|allow_pickle\s*=\s*True|torch\.load\(|yaml\.load\(|"
        r"cloudpickle\.loads?\(|marshal\.loads?\("
    )
    hits = []
    for folder in ("core", "service", "worker", "client"):
        for path in (REPO / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and not line.lstrip().startswith("#"):
                    hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert hits == []


# ---------------------------------------------------------------------------- allow-list
OUTSIDE = [
    "os:system",
    "subprocess:Popen",
    "builtins:eval",
    "shardgrad.service.server:Coordinator",
    "_slow_modelsx:SlowMLP",  # a prefix is a module boundary, not a string prefix
    "_slow_models_evil.sub:SlowMLP",
    "..etc:passwd",
    "/tmp/x.py:Model",
]


@pytest.mark.parametrize("path", OUTSIDE)
def test_import_paths_outside_the_allow_list_are_refused(server, path):
    cfg = mlp_config(model={"import_path": path, "kwargs": {}}, steps=1)
    before = len(server.coordinator.manager.list())
    with pytest.raises(grpc.RpcError) as err:
        server.api.submit(cfg)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model" in err.value.details()
    assert len(server.coordinator.manager.list()) == before


def test_an_allowed_import_path_trains(server, figures):
    job = server.api.submit(
        mlp_config(model={"import_path": "_slow_models:SlowMLP", "kwargs": {"delay": 0}}, steps=2)
    )
    server.api.wait_succeeded(job.job_id)
    figures.add(
        "security", "import_allow_list", refused=len(OUTSIDE), allowed_trains=True, passed=True
    )


def test_figures_are_json_clean(figures):
    json.dumps(figures.sections)
