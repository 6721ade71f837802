"""Bad input: every RPC's request messages, job configs, model specs and dataset uploads
drawn by hypothesis, and raw garbage on the gRPC and dashboard ports. Every case gets a clear
error, the server stays up, and a job that trains all along ends with the same bytes as an
undisturbed run."""

from __future__ import annotations

import io
import json
import math
import os
import random
import socket
import threading

import grpc
import numpy as np
import pytest
from _reliability import InProcessServer, raw_call, rpc_methods
from _servertest import mlp_config, pb, reference_model, slow_config
from google.protobuf.descriptor import FieldDescriptor as F
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardgrad.service.datasets import npz_bytes

FULL = os.environ.get("SHARDGRAD_RELIABILITY_FULL", "") not in ("", "0")
EXAMPLES = 50 if FULL else 12
# Codes that say "your request is wrong" (or "not now"), each with a message. UNKNOWN, INTERNAL
# and UNAVAILABLE would mean a handler crashed or the server fell over.
CLEAR = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.ALREADY_EXISTS,
}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CANARY = slow_config(delay=0.01, steps=40)
MAX_UPLOAD = 1 << 20


class Tally:
    def __init__(self) -> None:
        self.tried = self.refused = self.accepted = 0
        self.codes: dict[str, int] = {}

    def refusal(self, err: grpc.RpcError, where: str) -> None:
        code = err.code()
        assert code in CLEAR, f"{where}: {code} {err.details()!r}"
        assert err.details() and len(err.details()) > 5, f"{where}: no message"
        self.tried += 1
        self.refused += 1
        self.codes[code.name] = self.codes.get(code.name, 0) + 1

    def ok(self) -> None:
        self.tried += 1
        self.accepted += 1

    def as_dict(self) -> dict:
        return {
            "inputs": self.tried,
            "refused": self.refused,
            "accepted": self.accepted,
            "codes": dict(sorted(self.codes.items())),
        }


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    s = InProcessServer(tmp_path_factory.mktemp("fuzz") / "state", max_upload_bytes=MAX_UPLOAD)
    try:
        s.canary = s.api.submit(CANARY)
        s.tallies = {}
        yield s
    finally:
        s.close()


def _tally(live, name: str) -> Tally:
    return live.tallies.setdefault(name, Tally())


def _alive(live) -> None:
    with grpc.insecure_channel(live.address) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert live.dashboard.get("/healthz", token=None)
    assert live.api.job(live.canary.job_id).state in (
        pb.JOB_STATE_PENDING,
        pb.JOB_STATE_RUNNING,
        pb.JOB_STATE_SUCCEEDED,
    )


# ---------------------------------------------------------------------------- messages
_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "../../etc/passwd",
            "a" * 5000,
            "\x00",
            "job-1",
            "0" * 64,
            "ray",
            "grpc",
            "127.0.0.1:1",
            "[::1]:99999",
            "nan",
            "-1",
        ]
    ),
)
_I32, _U32, _I64, _U64 = (
    (-(2**31), 2**31 - 1),
    (0, 2**32 - 1),
    (-(2**63), 2**63 - 1),
    (0, 2**64 - 1),
)
_BOUNDS = {
    F.TYPE_INT32: _I32,
    F.TYPE_SINT32: _I32,
    F.TYPE_SFIXED32: _I32,
    F.TYPE_UINT32: _U32,
    F.TYPE_FIXED32: _U32,
    F.TYPE_INT64: _I64,
    F.TYPE_SINT64: _I64,
    F.TYPE_SFIXED64: _I64,
    F.TYPE_UINT64: _U64,
    F.TYPE_FIXED64: _U64,
}


def _scalar(field):
    t = field.type
    if t in _BOUNDS:
        lo, hi = _BOUNDS[t]
        return st.one_of(st.sampled_from([0, 1, lo, hi, max(lo, -1)]), st.integers(lo, hi))
    if t in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == F.TYPE_FLOAT else 64)
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t == F.TYPE_STRING:
        return _TEXT
    if t == F.TYPE_BYTES:
        return st.binary(max_size=300)
    if t == F.TYPE_ENUM:
        return st.integers(-3, len(field.enum_type.values) + 3)
    raise AssertionError(field.type)


def message_strategy(cls, depth: int = 0):
    """Any message of `cls`: each field absent or drawn from its type's edge cases."""
    fields = cls.DESCRIPTOR.fields

    @st.composite
    def build(draw):
        msg = cls()
        for field in fields:
            if not draw(st.booleans()):
                continue
            repeated = field.is_repeated
            if field.type == F.TYPE_MESSAGE:
                if field.message_type.GetOptions().map_entry or depth >= 2:
                    continue
                from google.protobuf import message_factory

                sub = message_factory.GetMessageClass(field.message_type)
                values = draw(
                    st.lists(message_strategy(sub, depth + 1), max_size=2 if repeated else 1)
                )
                if repeated:
                    getattr(msg, field.name).extend(values)
                elif values:
                    getattr(msg, field.name).CopyFrom(values[0])
                continue
            if repeated:
                getattr(msg, field.name).extend(draw(st.lists(_scalar(field), max_size=3)))
            else:
                setattr(msg, field.name, draw(_scalar(field)))
        return msg

    return build()


# ScaleWorkers is fuzzed on its own below: random counts would starve the canary of workers.
METHODS = [m for m in rpc_methods() if m[0] != "ScaleWorkers"]


@pytest.mark.parametrize("method", METHODS, ids=[m[0] for m in METHODS])
def test_every_rpc_answers_random_requests_clearly(live, method):
    tally = _tally(live, "rpc_messages")
    channel = grpc.insecure_channel(live.address)
    name = method[0]

    @FUZZ
    @given(st.lists(message_strategy(method[1]), min_size=1, max_size=3 if method[3] else 1))
    def check(requests):
        try:
            raw_call(channel, method, requests, live.api.metadata, timeout=15)
        except grpc.RpcError as err:
            tally.refusal(err, name)
        else:
            tally.ok()

    try:
        check()
    finally:
        channel.close()
    _alive(live)


def test_rpcs_answer_undecodable_bytes_clearly(live):
    tally = _tally(live, "rpc_messages")
    rng = random.Random(5)
    with grpc.insecure_channel(live.address) as ch:
        for name, *_rest in rpc_methods():
            for _ in range(3):
                garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
                call = (ch.stream_unary if name == "UploadDataset" else ch.unary_unary)(
                    f"/shardgrad.v1.Coordinator/{name}"
                )
                arg = iter([garbage]) if name == "UploadDataset" else garbage
                try:
                    out = call(arg, metadata=live.api.metadata, timeout=10)
                except grpc.RpcError as err:
                    tally.refusal(err, name)
                else:
                    assert out is not None
                    tally.ok()
    _alive(live)


def test_scale_workers_refuses_bad_counts_and_pools(live):
    tally = _tally(live, "rpc_messages")
    for req in (
        pb.ScaleWorkersRequest(count=10**6),
        pb.ScaleWorkersRequest(count=4097),
        pb.ScaleWorkersRequest(pool="ray", count=1),
        pb.ScaleWorkersRequest(pool="../x", count=1),
    ):
        with pytest.raises(grpc.RpcError) as err:
            live.api.call("ScaleWorkers", req)
        tally.refusal(err.value, "ScaleWorkers")
    assert len(live.coordinator.pool.describe()) == 1


# ---------------------------------------------------------------------------- job configs
_BAD_VALUES = st.sampled_from(
    [
        None,
        -1,
        0,
        2**70,
        -(2**70),
        1e308,
        float("nan"),
        float("inf"),
        "",
        "x" * 300,
        [],
        {},
        [1, 2],
        {"a": 1},
        True,
        0.5,
        "NaN",
        "1e9",
    ]
)
_KEYS = list(mlp_config())


def _submit_or_refuse(live, tally: Tally, config_json: str, where: str) -> None:
    before = {r.id for r in live.coordinator.manager.list()}
    try:
        job = live.api.call("SubmitJob", pb.SubmitJobRequest(config_json=config_json), timeout=30)
    except grpc.RpcError as err:
        tally.refusal(err, where)
        assert {r.id for r in live.coordinator.manager.list()} == before, "a refusal changed state"
    else:
        tally.ok()  # a legal config: stop it at once so it costs nothing
        live.api.call("StopJob", pb.StopJobRequest(job_id=job.job_id), timeout=60)


@FUZZ
@given(
    key=st.sampled_from(_KEYS + ["unknown_field", "epochs", "lr_scheduler", "loss", "dtype"]),
    value=_BAD_VALUES,
)
def test_job_configs_with_a_bad_field_are_refused(live, key, value):
    cfg = mlp_config()
    cfg[key] = value
    _submit_or_refuse(live, _tally(live, "job_configs"), json.dumps(cfg), f"config {key}={value!r}")


@FUZZ
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        st.sampled_from(["[]", "null", "1", '"x"', "{", '{"model": {}}', "[" * 5000]),
    )
)
def test_config_text_that_is_not_a_config_is_refused(live, text):
    if not text:
        text = " "
    _submit_or_refuse(live, _tally(live, "job_configs"), text, f"config text {text[:40]!r}")


EDGE_TEXTS = [
    "[" * 5000,
    "{" * 5000,
    '{"a":' * 3000,
    "[]",
    "null",
    "1",
    '"x"',
    "{",
    '{"model": {}}',
    '"\\ud800"',
    "NaN",
    "1e999",
    "{" + '"a": 1,' * 10000 + "}",
]


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=range(len(EDGE_TEXTS)))
def test_config_edge_texts_are_refused(live, text):
    _submit_or_refuse(live, _tally(live, "job_configs"), text, f"config text {text[:40]!r}")


# ---------------------------------------------------------------------------- model specs
_LAYERS = st.sampled_from(
    [
        "Linear",
        "Conv2d",
        "ReLU",
        "Sequential",
        "ModuleList",
        "LayerNorm",
        "Embedding",
        "BatchNorm1d",
        "Dropout",
        "NoSuchLayer",
        "Module",
        "Parameter",
        "__class__",
        "eval",
        "",
    ]
)
_ARG = st.one_of(
    st.integers(-5, 40),
    # Sizes numpy refuses at once; sizes that fit in memory are the parameter-budget case below.
    st.sampled_from([2**40, 2**62, -(10**9), 1.5, float("nan"), "8", None, [8, 8], {"x": 1}, True]),
)


@st.composite
def _spec(draw, depth: int = 0):
    layer = draw(_LAYERS)
    if layer in ("Sequential", "ModuleList") and depth < 2:
        return {"type": layer, "modules": draw(st.lists(_spec(depth + 1), max_size=3))}
    spec = {"type": layer}
    if draw(st.booleans()):
        spec["args"] = draw(st.lists(_ARG, max_size=3))
    if draw(st.booleans()):
        keys = st.sampled_from(
            [
                "in_features",
                "out_features",
                "bias",
                "p",
                "num_embeddings",
                "embedding_dim",
                "kernel_size",
                "__init__",
                "dtype",
                "device",
            ]
        )
        spec["kwargs"] = draw(st.dictionaries(keys, _ARG, max_size=3))
    if draw(st.integers(0, 9)) == 0:
        spec["import"] = draw(st.sampled_from(["os:system", "_slow_models:SlowMLP", "x"]))
    return spec


@FUZZ
@given(_spec())
def test_random_model_specs_are_refused_or_built(live, spec):
    cfg = mlp_config(model={"spec": spec}, steps=1)
    _submit_or_refuse(live, _tally(live, "model_specs"), json.dumps(cfg), f"spec {spec}")


def test_huge_models_are_refused_before_they_are_built(live):
    tally = _tally(live, "model_specs")
    for features in (2**40, 2**62):
        spec = {
            "type": "Sequential",
            "modules": [
                {"type": "Linear", "kwargs": {"in_features": 8, "out_features": features}},
                {"type": "Linear", "kwargs": {"in_features": features, "out_features": 3}},
            ],
        }
        with pytest.raises(grpc.RpcError) as err:
            live.api.submit(mlp_config(model={"spec": spec}))
        tally.refusal(err.value, f"Linear({features})")


_SIZE_PROBE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from shardgrad.service.config import JobConfig, ValidationError
from shardgrad.service.datasets import DatasetRegistry
cfg = JobConfig.from_dict(__import__("json").loads(sys.argv[1]))
try:
    cfg.validate(DatasetRegistry(sys.argv[2]))
except ValidationError as exc:
    print(exc.field, "|", exc.message)
else:
    print("accepted")
"""


def test_a_model_over_the_parameter_budget_is_refused_before_allocation(tmp_path):
    """Linear(8, 10**8) wants 3.2 GB of weights. The coordinator must refuse it by counting
    parameters from the spec, not by trying to allocate them (run under a 3 GiB address-space
    cap, so the attempt fails fast instead of taking the machine's memory)."""
    import subprocess
    import sys

    spec = {
        "type": "Sequential",
        "modules": [
            {"type": "Linear", "kwargs": {"in_features": 8, "out_features": 10**8}},
            {"type": "Linear", "kwargs": {"in_features": 10**8, "out_features": 3}},
        ],
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIZE_PROBE,
            json.dumps(mlp_config(model={"spec": spec})),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    field, _, message = out.stdout.strip().partition(" | ")
    assert field.startswith("model"), out.stdout
    assert "allocate" not in message and "parameters" in message, message


# ---------------------------------------------------------------------------- uploads
def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _bad_datasets() -> dict[str, bytes]:
    x = np.random.default_rng(0).standard_normal((30, 8)).astype(np.float32)
    y = np.arange(30) % 3
    nan_x = x.copy()
    nan_x[3, 2] = np.nan
    inf_y = y.astype(np.float64)
    inf_y[0] = np.inf
    good = npz_bytes(x, y)
    return {
        "strings": _npz(x=np.array(["a"] * 30), y=y),
        "complex": _npz(x=x.astype(np.complex64), y=y),
        "datetimes": _npz(x=np.zeros(30, dtype="datetime64[s]"), y=y),
        "structured": _npz(x=np.zeros(30, dtype=[("a", "f4")]), y=y),
        "length mismatch": _npz(x=x, y=y[:29]),
        "scalar x": _npz(x=np.float32(1), y=y),
        "empty": _npz(x=x[:0], y=y[:0]),
        "nan in x": _npz(x=nan_x, y=y),
        "inf in y": _npz(x=x, y=inf_y),
        "no y": _npz(x=x),
        "not a zip": b"PK\x03\x04" + bytes(100),
        "plain npy": good[:0] + _npy(x),
        "truncated npz": good[: len(good) // 2],
        "random bytes": bytes(random.Random(1).randrange(256) for _ in range(500)),
    }


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_bad_dataset_uploads_are_refused(live):
    tally = _tally(live, "dataset_uploads")
    before = len(list(live.coordinator.manager.store.list_datasets()))
    for what, data in _bad_datasets().items():
        with pytest.raises(grpc.RpcError) as err:
            live.api.upload(data, name=what)
        tally.refusal(err.value, what)
    assert len(list(live.coordinator.manager.store.list_datasets())) == before
    _alive(live)


def _stream(live, messages):
    def gen():
        yield from messages

    return live.api.stub.UploadDataset(gen(), metadata=live.api.metadata, timeout=30)


def test_broken_upload_streams_are_refused(live):
    tally = _tally(live, "dataset_uploads")
    x = np.ones((10, 8), np.float32)
    data = npz_bytes(x, np.zeros(10, np.int64))
    H, C = (
        pb.UploadDatasetRequest,
        lambda o, d: pb.UploadDatasetRequest(
            chunk=__import__("shardgrad.protos.common_pb2", fromlist=["Chunk"]).Chunk(
                offset=o, data=d
            )
        ),
    )
    head = H(header=pb.UploadDatasetHeader(name="d", nbytes=len(data)))
    cases = {
        "nothing": [],
        "no header": [C(0, data)],
        "truncated": [head, C(0, data[:-10])],
        "too long": [head, C(0, data + b"xx")],
        "gap": [head, C(0, data[:10]), C(20, data[20:])],
        "overlap": [head, C(0, data[:10]), C(5, data[5:])],
        "two headers": [head, head, C(0, data)],
        "wrong sha256": [
            H(header=pb.UploadDatasetHeader(nbytes=len(data), sha256="0" * 64)),
            C(0, data),
        ],
        "bad sha256 text": [
            H(header=pb.UploadDatasetHeader(nbytes=len(data), sha256="xyz")),
            C(0, data),
        ],
        "huge announced": [H(header=pb.UploadDatasetHeader(nbytes=2**62)), C(0, data)],
        "over the limit": [H(header=pb.UploadDatasetHeader(nbytes=MAX_UPLOAD + 1)), C(0, data)],
        "zero bytes": [H(header=pb.UploadDatasetHeader(nbytes=0))],
        "negative bytes": [H(header=pb.UploadDatasetHeader(nbytes=-5)), C(0, data)],
    }
    for what, messages in cases.items():
        with pytest.raises(grpc.RpcError) as err:
            _stream(live, messages)
        tally.refusal(err.value, what)
    ok = _stream(live, [head, C(0, data)])  # the same bytes, sent right, are taken
    assert ok.sha256
    tally.ok()


def test_a_job_whose_dataset_does_not_fit_the_model_is_refused(live):
    tally = _tally(live, "job_configs")
    x = np.ones((12, 5), np.float32)  # 5 features; the model takes 8
    info = live.api.upload(npz_bytes(x, np.arange(12) % 3))
    for dataset in (
        f"sha256:{info.sha256}",
        "sha256:" + "f" * 64,
        "digits:nope",
        "synthetic:classification:n=-1",
        "synthetic:classification:n=99999999999",
        "file:///etc/passwd",
        "../../state/token",
    ):
        with pytest.raises(grpc.RpcError) as err:
            live.api.submit(mlp_config(dataset=dataset))
        tally.refusal(err.value, dataset)


# ---------------------------------------------------------------------------- raw bytes
def _garbage_payloads(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = [
        b"",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(rng.randrange(256) for _ in range(300)),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
        b"POST /login HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nabc",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(100),  # a TLS hello
        b"GET /api/v1/jobs HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
        b"\r\n" * 5000,
    ]
    while len(out) < count:
        out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))))
    return out


def _throw(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(2)
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass  # the server may hang up on us: that is a fine answer to garbage


@pytest.mark.parametrize("port_name", ["grpc", "dashboard"])
def test_garbage_bytes_on_the_ports_leave_the_server_up(live, port_name):
    port = live.port if port_name == "grpc" else live.dashboard_port
    payloads = _garbage_payloads(7 if port_name == "grpc" else 8, 60 if FULL else 24)
    threads = [threading.Thread(target=_throw, args=(port, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    _alive(live)
    tally = _tally(live, f"garbage_{port_name}")
    tally.tried += len(payloads)
    tally.refused += len(payloads)


# ---------------------------------------------------------------------------- the canary
def test_direct_validation_of_specs_and_configs_raises_only_clear_errors():
    """The validation layer without the server: ValueError (or its ValidationError) only."""
    from shardgrad import nn
    from shardgrad.service.config import JobConfig

    @FUZZ
    @given(_spec())
    def spec(s):
        try:
            nn.from_spec(s, allowed_prefixes=["_slow_models"])
        except (ValueError, TypeError, MemoryError) as exc:
            assert str(exc)

    @FUZZ
    @given(st.sampled_from(_KEYS), _BAD_VALUES)
    def config(key, value):
        cfg = mlp_config()
        cfg[key] = value
        try:
            JobConfig.from_dict(cfg).validate()
        except ValueError as exc:
            assert str(exc)

    spec()
    config()


def test_the_job_that_trained_through_it_all_is_unharmed(live, tmp_path, figures):
    done = live.api.wait_succeeded(live.canary.job_id, timeout=180)
    assert done.step == CANARY["steps"]
    assert live.api.model(live.canary.job_id) == reference_model(tmp_path, CANARY)
    _alive(live)
    total = 0
    for name, tally in sorted(live.tallies.items()):
        figures.add("fuzz", name, **tally.as_dict())
        total += tally.tried
    figures.add("fuzz", "canary_job", inputs=0, unharmed=True, steps=done.step, bitwise_equal=True)
    assert total > 100
    assert not math.isnan(total)
