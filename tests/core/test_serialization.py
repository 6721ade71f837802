"""safetensors reading/writing and shardgrad.save/load.

The `safetensors` package (the reference implementation) and torch are the oracles: files
must cross between them and shardgrad in both directions with equal values, and shardgrad
writes the same bytes as the reference for contiguous input.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy as st_numpy
import safetensors.torch as st_torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shardgrad as sg
from shardgrad.serialization import (
    MAX_HEADER_SIZE,
    load_safetensors_bytes,
    save_safetensors_bytes,
)

DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]
SHAPES = [(), (0,), (2, 0, 3), (5,), (3, 4), (2, 1, 3)]


def sample(dtype: str, shape: tuple, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.startswith("float"):
        return np.asarray(rng.standard_normal(shape) * 100, dtype=dtype)
    info = np.iinfo(dtype)
    return np.asarray(rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype))


def header_of(blob: bytes) -> dict:
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + n])


def raw_header(head: bytes, data: bytes = b"") -> bytes:
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + data


def with_header(header: dict, data: bytes = b"") -> bytes:
    return raw_header(json.dumps(header).encode(), data)


# --------------------------------------------------------------------------- raw format
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trip_every_dtype_and_shape(dtype, shape):
    arr = sample(dtype, shape)
    out = load_safetensors_bytes(save_safetensors_bytes({"t": sg.from_numpy(arr), "a": arr}))
    for key in ("t", "a"):
        got = out[key]
        assert isinstance(got, sg.Tensor)
        assert got.dtype == sg.as_tensor(arr).dtype
        assert tuple(got.shape) == shape
        np.testing.assert_array_equal(got.numpy(), arr)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bytes_equal_the_reference_writer(dtype):
    arrays = {
        "weight": sample(dtype, (3, 4), 1),
        "bias": sample(dtype, (4,), 2),
        "scalar": sample(dtype, (), 3),
        "empty": sample(dtype, (0, 2), 4),
        "other_dtype": sample("int8", (3,), 5),
        "wide": sample("float64", (2,), 6),
    }
    meta = {"format": "pt"}
    assert save_safetensors_bytes(arrays, meta) == st_numpy.save(arrays, metadata=meta)
    assert save_safetensors_bytes(arrays) == st_numpy.save(arrays)


def test_header_layout_and_ordering():
    blob = save_safetensors_bytes(
        {"b": np.zeros(3, np.uint8), "a": np.zeros(1, np.float32), "c": np.zeros(1, np.int64)},
        metadata={"z": "1", "m": "2", "a": "3"},
    )
    (n,) = struct.unpack("<Q", blob[:8])
    head = blob[8 : 8 + n]
    assert n % 8 == 0 and head.rstrip(b" ").endswith(b"}") and len(head.rstrip(b" ")) > n - 8
    header = header_of(blob)
    # Largest dtype first, then by name; metadata first with sorted keys (deterministic).
    assert list(header) == ["__metadata__", "c", "a", "b"]
    assert list(header["__metadata__"]) == ["a", "m", "z"]
    assert header["c"] == {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}
    assert header["b"]["data_offsets"] == [12, 15]
    assert len(blob) == 8 + n + 15


def test_non_contiguous_big_endian_and_cuda_free_inputs_are_written_in_logical_order():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    arrays = {
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "big_endian": np.arange(5, dtype=">i4"),
        "fortran": np.asfortranarray(base.astype(np.float32)),
        "tensor_view": sg.from_numpy(base).t(),
    }
    blob = save_safetensors_bytes(arrays)
    for loaded in (load_safetensors_bytes(blob), st_numpy.load(blob)):
        for key, value in arrays.items():
            np.testing.assert_array_equal(np.asarray(loaded[key]), np.asarray(value))


def test_tensors_that_require_grad_are_saved_without_history():
    w = sg.randn(3, 2, requires_grad=True)
    y = (w * 2).sum()
    out = load_safetensors_bytes(save_safetensors_bytes({"w": w, "y": y}))
    assert not out["w"].requires_grad
    np.testing.assert_array_equal(out["w"].numpy(), w.detach().numpy())
    assert out["y"].item() == pytest.approx(y.item())


def test_loaded_tensors_are_views_of_the_buffer():
    blob = save_safetensors_bytes({"x": np.arange(6, dtype=np.float32), "y": np.ones(2, np.int64)})
    frozen = load_safetensors_bytes(blob)
    arr = frozen["x"].numpy()
    assert np.shares_memory(arr, np.frombuffer(blob, np.uint8))
    assert not arr.flags.writeable
    buf = bytearray(blob)
    live = load_safetensors_bytes(buf)
    live["x"].numpy()[0] = 42.0
    assert load_safetensors_bytes(buf)["x"][0].item() == 42.0
    assert load_safetensors_bytes(memoryview(buf))["y"].tolist() == [1, 1]


def test_misaligned_tensors_from_other_writers_are_copied_to_aligned_memory():
    # A hand-made file with a float64 tensor at byte 1 of the data section.
    header = {
        "u": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
        "f": {"dtype": "F64", "shape": [2], "data_offsets": [1, 17]},
    }
    blob = with_header(header, b"\x07" + np.array([1.5, -2.0]).tobytes())
    out = load_safetensors_bytes(blob)
    assert out["f"].numpy().flags.aligned
    assert out["f"].tolist() == [1.5, -2.0] and out["u"].tolist() == [7]


def test_rejects_what_it_cannot_store():
    with pytest.raises(TypeError, match="dtype uint32"):
        save_safetensors_bytes({"x": np.zeros(2, np.uint32)})
    with pytest.raises(TypeError, match="expected a Tensor or an array"):
        save_safetensors_bytes({"x": [1, 2]})
    with pytest.raises(TypeError, match="names must be str"):
        save_safetensors_bytes({1: np.zeros(2)})
    with pytest.raises(ValueError, match="reserved"):
        save_safetensors_bytes({"__metadata__": np.zeros(2)})
    with pytest.raises(TypeError, match="metadata"):
        save_safetensors_bytes({"x": np.zeros(2)}, metadata={"n": 1})


# --------------------------------------------------------------------------- interop
def test_files_written_by_shardgrad_load_in_safetensors_and_torch(tmp_path):
    state = {name: sg.from_numpy(sample(name, (3, 2), i)) for i, name in enumerate(DTYPES)}
    state["scalar"] = sg.tensor(2.5, dtype=sg.float64)
    state["empty"] = sg.zeros(0, 4)
    path = tmp_path / "model.safetensors"
    path.write_bytes(save_safetensors_bytes(state, metadata={"format": "pt"}))

    as_numpy = st_numpy.load_file(str(path))
    as_torch = st_torch.load_file(str(path))
    assert set(as_numpy) == set(as_torch) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(as_numpy[key], value.numpy())
        assert as_numpy[key].dtype == value.numpy().dtype
        assert torch.equal(as_torch[key], torch.from_numpy(value.numpy().copy()))

    # shardgrad.save of a flat state_dict is an ordinary safetensors file under the same keys.
    sg.save(state, tmp_path / "saved.safetensors")
    again = st_torch.load_file(str(tmp_path / "saved.safetensors"))
    assert set(again) == set(state)
    for key, value in state.items():
        assert torch.equal(again[key], torch.from_numpy(value.numpy().copy()))


def test_files_written_by_safetensors_torch_load_in_shardgrad(tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {
        "linear.weight": torch.randn(4, 3, dtype=torch.float64, generator=gen),
        "linear.bias": torch.randn(4, generator=gen),
        "half": torch.randn(5, generator=gen).half(),
        "steps": torch.tensor(7),
        "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "i16": torch.tensor([-3, 4], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
        "nothing": torch.zeros(0, 2),
    }
    path = tmp_path / "torch.safetensors"
    st_torch.save_file(state, str(path), metadata={"format": "pt"})
    for loaded in (sg.load(path), sg.load(str(path)), load_safetensors_bytes(path.read_bytes())):
        assert set(loaded) == set(state)
        for key, value in state.items():
            assert loaded[key].dtype == sg.as_tensor(value.numpy()).dtype
            np.testing.assert_array_equal(loaded[key].numpy(), value.numpy())


def test_bfloat16_from_torch_is_widened_to_float32_exactly():
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    out = load_safetensors_bytes(st_torch.save({"x": x}))["x"]
    assert out.dtype == sg.float32
    np.testing.assert_array_equal(out.numpy(), x.float().numpy())


# --------------------------------------------------------------------------- malformed input
def valid_blob() -> bytes:
    return save_safetensors_bytes({"a": np.arange(4, dtype=np.float32), "b": np.ones(2, np.int64)})


MALFORMED = {
    "empty": b"",
    "shorter than the length field": b"\x10\x00\x00",
    "header cut off": valid_blob()[:20],
    "data cut off": valid_blob()[:-3],
    "trailing bytes": valid_blob() + b"\x00" * 8,
    "huge header length": struct.pack("<Q", 2**63) + b"{}",
    "header length over the limit": struct.pack("<Q", MAX_HEADER_SIZE + 1) + b"{" + b" " * 64,
    "not JSON": struct.pack("<Q", 8) + b"{oops!! ",
    "not an object": raw_header(b"[1, 2]"),
    "not UTF-8": struct.pack("<Q", 8) + b"{\xff\xfe}    ",
    "deeply nested": raw_header(b'{"x":' + b"[" * 100000 + b"]" * 100000 + b"}"),
    "duplicate key": raw_header(
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
        b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
        b"\x00",
    ),
    "unknown dtype": with_header(
        {"a": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
    ),
    "dtype not a str": with_header(
        {"a": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
    ),
    "dtype a list": with_header(
        {"a": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
    ),
    "shape not a list": with_header(
        {"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}}, b"\x00" * 4
    ),
    "unsupported dtype": with_header(
        {"a": {"dtype": "U32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
    ),
    "wrong dtype for the byte count": with_header(
        {"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
    ),
    "shape too big": with_header(
        {"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}}, b"\x00" * 4
    ),
    "negative shape": with_header(
        {"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"\x00"
    ),
    "float shape": with_header(
        {"a": {"dtype": "U8", "shape": [1.0], "data_offsets": [0, 1]}}, b"\x00"
    ),
    "too many dims": with_header(
        {"a": {"dtype": "U8", "shape": [1] * 65, "data_offsets": [0, 1]}}, b"\x00"
    ),
    "missing field": with_header({"a": {"dtype": "U8", "shape": [1]}}, b"\x00"),
    "entry not an object": with_header({"a": [1, 2]}),
    "offsets reversed": with_header(
        {"a": {"dtype": "U8", "shape": [0], "data_offsets": [1, 0]}}, b"\x00"
    ),
    "offsets of three": with_header(
        {"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}, b"\x00"
    ),
    "overlapping offsets": with_header(
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        },
        b"\x00" * 12,
    ),
    "gap between tensors": with_header(
        {
            "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
            "b": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]},
        },
        b"\x00" * 6,
    ),
    "offsets past the end": with_header(
        {"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}, b"\x00" * 4
    ),
    "bad BOOL bytes": with_header(
        {"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x05"
    ),
    "metadata not str to str": with_header({"__metadata__": {"a": 1}}),
    "metadata not an object": with_header({"__metadata__": "x"}),
    "unpadded header with junk start": struct.pack("<Q", 3) + b" {}",
    "torch.save pickle": pickle.dumps({"a": 1}),
}


@pytest.mark.parametrize("blob", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_value_error(blob, tmp_path):
    with pytest.raises(ValueError):
        load_safetensors_bytes(blob)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(ValueError):
        sg.load(path)


def test_error_messages_say_what_is_wrong():
    with pytest.raises(ValueError, match="overlaps"):
        load_safetensors_bytes(MALFORMED["overlapping offsets"])
    with pytest.raises(ValueError, match="exceeds the limit"):
        load_safetensors_bytes(MALFORMED["huge header length"])
    with pytest.raises(ValueError, match="unknown dtype 'F33'"):
        load_safetensors_bytes(MALFORMED["unknown dtype"])
    with pytest.raises(ValueError, match="needs 8 bytes but data_offsets span 4"):
        load_safetensors_bytes(MALFORMED["wrong dtype for the byte count"])
    with pytest.raises(ValueError, match="truncated"):
        load_safetensors_bytes(MALFORMED["header cut off"])
    with pytest.raises(TypeError, match="bytes-like"):
        load_safetensors_bytes("not bytes")


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_corrupted_files_load_or_raise_value_error(data):
    blob = bytearray(valid_blob())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        out = load_safetensors_bytes(bytes(blob[:cut]))
    except ValueError:
        return
    for t in out.values():
        assert isinstance(t, sg.Tensor)


# --------------------------------------------------------------------------- property tests
names = st.text(min_size=0, max_size=12).filter(lambda s: s != "__metadata__")
arrays = st.sampled_from(DTYPES).flatmap(
    lambda d: hnp.arrays(
        np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    )
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tensors=st.dictionaries(names, arrays, max_size=5),
    metadata=st.none()
    | st.dictionaries(st.text(max_size=8), st.text(max_size=8), min_size=1, max_size=1),
)
def test_round_trip_property(tensors, metadata):
    blob = save_safetensors_bytes(tensors, metadata)
    assert blob == st_numpy.save(tensors, metadata=metadata)
    out = load_safetensors_bytes(blob)
    reference = st_numpy.load(blob)
    assert set(out) == set(tensors) == set(reference)
    for key, arr in tensors.items():
        np.testing.assert_array_equal(out[key].numpy(), arr)
        np.testing.assert_array_equal(reference[key], arr)
        assert out[key].numpy().dtype == arr.dtype and out[key].numpy().shape == arr.shape


# --------------------------------------------------------------------------- save / load
def torch_to_sg(obj):
    if isinstance(obj, torch.Tensor):
        return sg.tensor(obj.detach().numpy())
    if isinstance(obj, dict):
        return {k: torch_to_sg(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(torch_to_sg(v) for v in obj)
    return obj


def assert_same_tree(got, want):
    if isinstance(want, sg.Tensor):
        assert isinstance(got, sg.Tensor) and got.dtype == want.dtype
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want)
        for k in want:
            assert_same_tree(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same_tree(g, w)
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    else:
        assert type(got) is type(want) and got == want


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW"])
def test_torch_optimizer_state_dict_round_trips(optimizer, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    kwargs = {"momentum": 0.9, "nesterov": True} if optimizer == "SGD" else {"betas": (0.8, 0.95)}
    opt = getattr(torch.optim, optimizer)(model.parameters(), lr=0.01, **kwargs)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    state = torch_to_sg(opt.state_dict())
    path = tmp_path / "opt.safetensors"
    sg.save(state, path)
    loaded = sg.load(path)
    assert_same_tree(loaded, state)
    # The loaded dict is one torch accepts back, and the tensors sit under dotted names.
    opt.load_state_dict(
        {
            "state": {
                k: {n: torch.from_numpy(v.numpy().copy()) for n, v in s.items()}
                for k, s in loaded["state"].items()
            },
            "param_groups": loaded["param_groups"],
        }
    )
    names = set(st_torch.load_file(str(path)))
    assert (
        ("state.0.exp_avg" in names) if optimizer != "SGD" else ("state.0.momentum_buffer" in names)
    )


def test_save_load_keeps_order_types_and_json_leaves():
    state = {
        "model": {"b.weight": sg.ones(2, 2), "a.bias": sg.zeros(3, dtype=sg.float64)},
        "step": 12,
        "lr": 1e-3,
        "tiny": 5e-324,
        "limits": [float("inf"), float("-inf"), float("nan")],
        "name": "run-ü",
        "flags": (True, False, None),
        "by_int": {0: {"m": sg.tensor([1, 2])}, 3: {"m": sg.tensor([3])}},
        "numpy_scalars": [np.float32(0.5), np.int64(7), np.bool_(True)],
        "raw": np.arange(3, dtype=np.int16),
        "empty": {},
    }
    buf = io.BytesIO()
    sg.save(state, buf)
    loaded = sg.load(io.BytesIO(buf.getvalue()))
    expected = dict(
        state, numpy_scalars=[0.5, 7, True], raw=sg.tensor(np.arange(3, dtype=np.int16))
    )
    assert_same_tree(loaded, expected)


def test_loaded_tensors_are_writable_and_follow_map_location(tmp_path):
    sg.save({"w": sg.ones(3)}, tmp_path / "w.safetensors")
    w = sg.load(tmp_path / "w.safetensors", map_location="cpu")["w"]
    w.add_(1)
    assert w.tolist() == [2.0, 2.0, 2.0]
    assert sg.load(tmp_path / "w.safetensors", map_location=sg.device("cpu"))[
        "w"
    ].device == sg.device("cpu")
    with pytest.raises(TypeError, match="map_location"):
        sg.load(tmp_path / "w.safetensors", map_location=lambda s, loc: s)


@pytest.mark.skipif(not sg.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.cuda
def test_cuda_tensors_save_and_load_to_a_device(tmp_path):
    x = sg.arange(6, dtype=sg.float32).to("cuda")
    sg.save({"x": x}, tmp_path / "x.safetensors")
    on_gpu = sg.load(tmp_path / "x.safetensors", map_location="cuda")["x"]
    assert on_gpu.device.type == "cuda"
    assert on_gpu.cpu().tolist() == list(range(6))
    assert sg.load(tmp_path / "x.safetensors")["x"].device == sg.device("cpu")


def test_save_refuses_what_json_and_safetensors_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="never pickles"):
        sg.save({"f": lambda: 0}, tmp_path / "x")
    with pytest.raises(TypeError, match="keys must be str or int"):
        sg.save({"d": {1.5: sg.ones(1)}}, tmp_path / "x")
    with pytest.raises(TypeError, match="expects a dict"):
        sg.save([sg.ones(1)], tmp_path / "x")
    with pytest.raises(ValueError, match="same name 'a.b'"):
        sg.save({"a": {"b": sg.ones(1)}, "a.b": sg.ones(1)}, tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_save_to_a_path_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    sg.save({"v": sg.tensor([1.0])}, path)
    sg.save({"v": sg.tensor([2.0])}, str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]
    assert sg.load(path)["v"].tolist() == [2.0]


def test_structure_metadata_is_validated(tmp_path):
    def file_with(structure: str) -> bytes:
        return save_safetensors_bytes({"a": np.ones(1)}, {"shardgrad.structure": structure})

    bad = [
        "{not json",
        '{"dict": [["x", {"tensor": "missing"}]]}',
        '{"dict": [["x", {"tensor": "a"}], ["y", {"tensor": "a"}]]}',
        '{"dict": []}',
        '{"list": [{"tensor": "a"}]}',
        '{"dict": [["x", {"weird": 1}]]}',
        '{"dict": [[1.5, {"tensor": "a"}]]}',
        '{"dict": [["x", {"float": "1e9"}], ["y", {"tensor": "a"}]]}',
        "[" * 50000 + "]" * 50000,
    ]
    for structure in bad:
        with pytest.raises(ValueError):
            sg.load(io.BytesIO(file_with(structure)))


def test_import_shardgrad_does_not_import_safetensors():
    code = "import sys, shardgrad; shardgrad.save; print(sorted({'safetensors', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
