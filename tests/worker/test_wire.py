"""Arrays, layouts and chunk messages on the wire."""

from __future__ import annotations

import numpy as np
import pytest

from shardgrad import nn
from shardgrad.protos import common_pb2, worker_pb2
from shardgrad.worker import codec, wire
from shardgrad.worker.layout import ParamLayout
from shardgrad.worker.wire import WireError


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "float16", "int64", "int32", "uint8", "bool"]
)
def test_tensor_round_trip_reads_without_copying(dtype):
    arr = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    msg = common_pb2.Tensor.FromString(wire.tensor_to_proto(arr).SerializeToString())
    assert msg.byte_order == common_pb2.BYTE_ORDER_LITTLE and list(msg.shape) == [2, 3, 4]
    back = wire.tensor_from_proto(msg)
    np.testing.assert_array_equal(back, arr)
    assert back.dtype == arr.dtype
    base = back
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, bytes)  # a view of the message's bytes


def test_big_endian_tensors_are_read_correctly():
    arr = np.arange(5, dtype=">f8")
    msg = common_pb2.Tensor(
        dtype=common_pb2.DTYPE_FLOAT64,
        shape=[5],
        byte_order=common_pb2.BYTE_ORDER_BIG,
        data=arr.tobytes(),
    )
    np.testing.assert_array_equal(wire.tensor_from_proto(msg), np.arange(5.0))


def test_tensor_size_mismatch_is_refused():
    msg = common_pb2.Tensor(dtype=common_pb2.DTYPE_INT64, shape=[3], data=b"\0" * 16)
    with pytest.raises(WireError, match="16 bytes do not hold shape"):
        wire.tensor_from_proto(msg, "indices")
    with pytest.raises(WireError, match="unspecified dtype"):
        wire.tensor_from_proto(common_pb2.Tensor(shape=[0]))


def test_layout_round_trip_and_tamper_checks():
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    layout = ParamLayout.from_module(model)
    assert [p.name for p in layout.params] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert layout.numel == 15 + 5 + 10 + 2
    msg = wire.layout_to_proto(layout)
    assert wire.layout_from_proto(msg) == layout
    msg.params[1].offset += 1
    with pytest.raises(WireError, match="no gaps"):
        wire.layout_from_proto(msg)
    msg = wire.layout_to_proto(layout)
    msg.params[0].name = "0.weights"
    with pytest.raises(WireError, match="fingerprint"):
        wire.layout_from_proto(msg)
    msg = wire.layout_to_proto(layout)
    msg.numel = 7
    with pytest.raises(WireError, match="numel"):
        wire.layout_from_proto(msg)


@pytest.mark.parametrize("offset", [0, 1, 300, 2**40])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 70000])
def test_hand_encoded_chunks_are_the_protobuf_encoding(offset, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    ours = wire.encode_chunk(2, offset, memoryview(data))
    theirs = worker_pb2.ComputeRequest(params=common_pb2.Chunk(offset=offset, data=data))
    assert ours == theirs.SerializeToString()
    header, got_offset, view = wire.decode_part(ours, worker_pb2.ComputeHeader)
    assert header is None and got_offset == offset and bytes(view) == data
    assert isinstance(view, memoryview) and view.obj is ours  # a view, not a copy


def test_decode_part_reads_headers_and_refuses_garbage():
    header = worker_pb2.ComputeHeader(job_id="j", step=4)
    raw = worker_pb2.ComputeRequest(header=header).SerializeToString()
    got, _, _ = wire.decode_part(raw, worker_pb2.ComputeHeader)
    assert got == header
    for garbage, message in [
        (b"", "exactly one"),
        (b"\xff\xff\xff", "truncated"),
        (b"\x0a\x05abc", "runs past the end"),
        (raw + wire.encode_chunk(2, 0, b"x"), "exactly one"),
        (b"\x0b", "wire type"),
    ]:
        with pytest.raises(WireError, match=message):
            wire.decode_part(garbage, worker_pb2.ComputeHeader)


def test_chunk_assembler_wants_order_and_completeness():
    dest = bytearray(10)
    a = wire.ChunkAssembler(memoryview(dest), "parameters")
    a.add(0, memoryview(b"abcd"))
    with pytest.raises(WireError, match="expected byte 4"):
        a.add(5, memoryview(b"x"))
    with pytest.raises(WireError, match="run past"):
        a.add(4, memoryview(b"x" * 7))
    with pytest.raises(WireError, match="after 4 of 10"):
        a.check_complete()
    a.add(4, memoryview(b"efghij"))
    a.check_complete()
    assert bytes(dest) == b"abcdefghij"


def test_bf16_matches_torch_rounding():
    import torch

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(10000) * 10.0 ** rng.integers(-30, 30, 10000)).astype(np.float32)
    x[:4] = [np.inf, -np.inf, 3.4028235e38, -0.0]
    wire_bits, overflow = codec.encode(x, "bf16")
    ref = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(wire_bits, ref)
    assert overflow  # float32's largest finite value rounds up to inf in bfloat16
    np.testing.assert_array_equal(
        codec.decode(wire_bits, "bf16"),
        torch.from_numpy(ref.view(np.int16)).view(torch.bfloat16).float().numpy(),
    )
    nan_bits, _ = codec.encode(np.array([np.nan], np.float32), "bf16")
    assert np.isnan(codec.decode(nan_bits, "bf16")).all()
