"""Arrays and large buffers on the gRPC wire.

Arrays travel as protobuf `bytes` with dtype, shape and byte order beside them (common.proto)
and are read back with `np.frombuffer`, without copying. Buffers above `CHUNK_BYTES` (the
parameters, the gradients, datasets) travel over a stream as one header message followed by
`Chunk` messages.

The chunk messages of the two hot streams (parameters out, gradients back) are encoded and
decoded here by hand, in the protobuf wire format the .proto files define. The generated code
would copy every chunk twice (into a `bytes` object to assign the field, then into the
serialized message); the hand encoder writes the message in one copy, and the decoder returns a
memoryview into the received message instead of a new `bytes`. Anything that is not a chunk
goes through the generated classes, and any peer speaking plain protobuf interoperates.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
from google.protobuf.message import DecodeError

from shardgrad.protos import common_pb2

from .layout import ParamLayout, ParamSlot

CHUNK_BYTES = 1 << 20
"""Payload bytes per chunk message: 1 MiB measured fastest on loopback."""

MAX_MESSAGE_BYTES = 64 << 20
"""Largest single message either end accepts (headers carrying many sample indices)."""

LITTLE = common_pb2.BYTE_ORDER_LITTLE

_DTYPES = {
    common_pb2.DTYPE_FLOAT32: np.dtype("<f4"),
    common_pb2.DTYPE_FLOAT64: np.dtype("<f8"),
    common_pb2.DTYPE_FLOAT16: np.dtype("<f2"),
    common_pb2.DTYPE_BFLOAT16: np.dtype("<u2"),
    common_pb2.DTYPE_INT64: np.dtype("<i8"),
    common_pb2.DTYPE_INT32: np.dtype("<i4"),
    common_pb2.DTYPE_UINT8: np.dtype("u1"),
    common_pb2.DTYPE_BOOL: np.dtype("?"),
}
_NAMES = {
    "float32": common_pb2.DTYPE_FLOAT32,
    "float64": common_pb2.DTYPE_FLOAT64,
    "float16": common_pb2.DTYPE_FLOAT16,
    "bfloat16": common_pb2.DTYPE_BFLOAT16,
    "int64": common_pb2.DTYPE_INT64,
    "int32": common_pb2.DTYPE_INT32,
    "uint8": common_pb2.DTYPE_UINT8,
    "bool": common_pb2.DTYPE_BOOL,
}
COMPRESSION_TO_PROTO = {
    "none": common_pb2.GRADIENT_COMPRESSION_NONE,
    "fp16": common_pb2.GRADIENT_COMPRESSION_FP16,
    "bf16": common_pb2.GRADIENT_COMPRESSION_BF16,
}
COMPRESSION_FROM_PROTO = {v: k for k, v in COMPRESSION_TO_PROTO.items()}


class WireError(ValueError):
    """A message that cannot be what it claims to be: answered with INVALID_ARGUMENT."""


def grpc_options() -> list[tuple[str, int]]:
    """Channel and server options: the same message limits on both ends."""
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]


# ---------------------------------------------------------------------------- dtypes, arrays


def dtype_to_proto(name: str) -> int:
    try:
        return _NAMES[str(name)]
    except KeyError:
        raise WireError(f"dtype {name} cannot travel on the wire") from None


def dtype_from_proto(value: int, byte_order: int = LITTLE) -> np.dtype:
    """The numpy dtype of wire elements (bfloat16 as uint16), honouring the byte order."""
    try:
        dt = _DTYPES[value]
    except KeyError:
        raise WireError(f"unknown or unspecified dtype {value}") from None
    if byte_order == common_pb2.BYTE_ORDER_BIG:
        return dt.newbyteorder(">")
    if byte_order not in (common_pb2.BYTE_ORDER_UNSPECIFIED, LITTLE):
        raise WireError(f"unknown byte order {byte_order}")
    return dt


def tensor_to_proto(array: np.ndarray, dtype_name: str | None = None) -> common_pb2.Tensor:
    """An array as a Tensor message (little-endian, row-major)."""
    arr = np.ascontiguousarray(array)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder == "big"):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return common_pb2.Tensor(
        dtype=dtype_to_proto(dtype_name or arr.dtype.name),
        shape=arr.shape,
        byte_order=LITTLE,
        data=arr.tobytes(),
    )


def tensor_from_proto(msg: common_pb2.Tensor, what: str = "tensor") -> np.ndarray:
    """A read-only array viewing the message's bytes (converted only if big-endian)."""
    dt = dtype_from_proto(msg.dtype, msg.byte_order)
    shape = tuple(msg.shape)
    if any(s < 0 for s in shape):
        raise WireError(f"{what}: negative dimension in shape {list(shape)}")
    expected = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if len(msg.data) != expected:
        raise WireError(
            f"{what}: {len(msg.data)} bytes do not hold shape {list(shape)} of "
            f"{dt.name} ({expected} bytes)"
        )
    arr = np.frombuffer(msg.data, dtype=dt).reshape(shape)
    return arr if dt.isnative or dt.itemsize == 1 else arr.astype(dt.newbyteorder("="))


# ---------------------------------------------------------------------------- layout


def layout_to_proto(layout: ParamLayout) -> common_pb2.ParamLayout:
    return common_pb2.ParamLayout(
        dtype=dtype_to_proto(layout.dtype),
        byte_order=LITTLE,
        numel=layout.numel,
        params=[
            common_pb2.ParamEntry(name=p.name, shape=p.shape, offset=p.offset, numel=p.numel)
            for p in layout.params
        ],
        fingerprint=layout.fingerprint,
    )


def layout_from_proto(msg: common_pb2.ParamLayout) -> ParamLayout:
    """The layout a message describes, checked: contiguous, sizes add up, fingerprint matches."""
    dt = dtype_from_proto(msg.dtype, msg.byte_order)
    if dt.byteorder == ">":
        raise WireError("parameter layouts must be little-endian")
    try:
        layout = ParamLayout(
            dt.name,
            tuple(ParamSlot(p.name, tuple(p.shape), p.offset, p.numel) for p in msg.params),
        )
    except ValueError as exc:
        raise WireError(f"bad parameter layout: {exc}") from None
    if layout.numel != msg.numel:
        raise WireError(f"layout numel {msg.numel} != sum of its parameters {layout.numel}")
    if msg.fingerprint and msg.fingerprint != layout.fingerprint:
        raise WireError(
            f"layout fingerprint {msg.fingerprint!r} does not match its entries "
            f"({layout.fingerprint!r})"
        )
    return layout


# ---------------------------------------------------------------------------- chunk streams


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated message (varint runs past the end)")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("malformed message (varint longer than 10 bytes)")


def _fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of a message; LEN values as (start, stop)."""
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        number, wtype = key >> 3, key & 7
        if number == 0:
            raise WireError("malformed message (field number 0)")
        if wtype == 0:
            value, pos = _read_varint(buf, pos, end)
        elif wtype == 2:
            n, pos = _read_varint(buf, pos, end)
            if pos + n > end:
                raise WireError("truncated message (length-delimited field runs past the end)")
            value, pos = (pos, pos + n), pos + n
        elif wtype in (1, 5):
            size = 8 if wtype == 1 else 4
            if pos + size > end:
                raise WireError("truncated message (fixed-width field runs past the end)")
            value, pos = None, pos + size
        else:
            raise WireError(f"malformed message (wire type {wtype})")
        yield number, wtype, value


def encode_chunk(field: int, offset: int, data) -> bytes:
    """The serialized wrapper message whose `field` is Chunk{offset, data}, in one copy."""
    inner = b"\x08" + _varint(offset) if offset else b""
    if len(data):  # proto3 leaves default values out; so does this encoder
        inner += b"\x12" + _varint(len(data))
    size = len(inner) + len(data)
    return b"".join((_varint((field << 3) | 2), _varint(size), inner, data))


def decode_part(raw: bytes, header_type, chunk_field: int = 2, header_field: int = 1):
    """Split a serialized `oneof part {Header header = 1; Chunk chunk = 2;}` message.

    Returns (header, None, None) for a header or (None, offset, memoryview) for a chunk: the
    memoryview points into `raw`. A header field repeated within the message is merged, as
    protobuf parsers do. Raises WireError for anything else.
    """
    buf = memoryview(raw)
    parts = [(n, v) for n, w, v in _fields(buf, 0, len(buf)) if n in (header_field, chunk_field)]
    numbers = {n for n, _ in parts}
    if not parts or len(numbers) > 1 or (chunk_field in numbers and len(parts) > 1):
        raise WireError(f"expected exactly one header or chunk in the message, found {len(parts)}")
    if any(not isinstance(span, tuple) for _, span in parts):
        raise WireError("malformed message (part is not length-delimited)")
    if parts[0][0] == header_field:
        header = header_type()
        try:
            for _, (start, stop) in parts:
                header.MergeFromString(buf[start:stop])
        except DecodeError as exc:
            raise WireError(f"undecodable {header_type.__name__}: {exc}") from None
        return header, None, None
    start, stop = parts[0][1]
    offset, data = 0, buf[start:start]
    for n, w, v in _fields(buf, start, stop):
        if n == 1 and w == 0:
            offset = v - (1 << 64) if v >= 1 << 63 else v
        elif n == 2 and w == 2:
            data = buf[v[0] : v[1]]
    return None, offset, data


def chunk_spans(nbytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, int]]:
    """[start, stop) byte ranges covering `nbytes`; one empty span for an empty buffer."""
    if nbytes == 0:
        yield 0, 0
        return
    for start in range(0, nbytes, chunk_bytes):
        yield start, min(start + chunk_bytes, nbytes)


class ChunkAssembler:
    """Checks that chunks arrive in order and cover a buffer exactly once, copying each in."""

    def __init__(self, dest: memoryview, what: str) -> None:
        self.dest, self.what, self.filled = dest, what, 0

    def add(self, offset: int, data: memoryview) -> None:
        if offset != self.filled:
            raise WireError(
                f"{self.what}: chunk at byte {offset}, expected byte {self.filled} (in order, "
                "no gaps)"
            )
        end = offset + len(data)
        if end > len(self.dest):
            raise WireError(f"{self.what}: chunks run past the announced {len(self.dest)} bytes")
        self.dest[offset:end] = data
        self.filled = end

    def check_complete(self) -> None:
        if self.filled != len(self.dest):
            raise WireError(
                f"{self.what}: stream ended after {self.filled} of {len(self.dest)} bytes"
            )


def byte_view(array) -> memoryview:
    """A flat, writable-if-possible byte view of a C-contiguous numpy array."""
    return memoryview(array.reshape(-1).view(np.uint8))
