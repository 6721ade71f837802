"""Tensors to and from the safetensors format, and `shardgrad.save` / `shardgrad.load`.

safetensors is the format Hugging Face tools and `torch` read without running any code: an
8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte
range, then the raw little-endian bytes. shardgrad implements it here on numpy alone so that
`import shardgrad` stays light, checkpoints are readable by other tools, and nothing is ever
unpickled: a file from the network can at worst be rejected with a `ValueError`.

Writing follows the reference implementation byte for byte: tensors ordered by dtype size
(largest first, so every tensor starts aligned) and then by name, a compact JSON header padded
with spaces to a multiple of 8 bytes. The one difference is that shardgrad sorts the
`__metadata__` keys, where the reference writes them in hash order: the same state always
gives the same bytes.

`save`/`load` go one step further than a flat dict of tensors: nested containers such as an
optimizer's state_dict are stored as tensors under dotted names ("state.0.exp_avg") plus a
JSON description of the containers and their non-tensor leaves (learning rates, betas, step
counts) in the metadata entry "shardgrad.structure", so they come back as they went in.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import struct
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["MAX_HEADER_SIZE", "load", "load_safetensors_bytes", "save", "save_safetensors_bytes"]

MAX_HEADER_SIZE = 100_000_000  # the reference implementation's limit
_MAX_NDIM = 64  # numpy's limit
_STRUCTURE_KEY = "shardgrad.structure"

# The dtypes a shardgrad Tensor can hold, as little-endian numpy dtypes.
_NP_OF_CODE: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODE_OF_KIND = {(d.kind, d.itemsize): code for code, d in _NP_OF_CODE.items()}
# Write order of the reference implementation: its dtype enum, largest first.
_WRITE_RANK = {
    code: i for i, code in enumerate(("I64", "F64", "F32", "I32", "F16", "I16", "I8", "U8", "BOOL"))
}
# Valid safetensors dtypes that no shardgrad dtype can hold (BF16 is widened to float32).
_UNSUPPORTED = {
    "U16",
    "U32",
    "U64",
    "C64",
    "F4",
    "F6_E2M3",
    "F6_E3M2",
    "F8_E5M2",
    "F8_E4M3",
    "F8_E8M0",
}


# --------------------------------------------------------------------------- raw format
def _host_array(name: str, value: Any) -> tuple[str, np.ndarray]:
    """The safetensors dtype code and a C-contiguous little-endian host copy (or view)."""
    if isinstance(value, Tensor):
        arr = value._data
    elif backend.is_array(value):
        arr = value
    else:
        raise TypeError(
            f"tensor {name!r}: expected a Tensor or an array, got {type(value).__name__}"
        )
    arr = backend.to_device(arr, backend.CPU)
    code = _CODE_OF_KIND.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise TypeError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored by shardgrad")
    return code, np.asarray(arr, dtype=_NP_OF_CODE[code], order="C")


def _encode(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None) -> list:
    """The file as a list of buffers (header, then each tensor's bytes), so writers avoid
    assembling one big copy."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"expected a dict of tensors, got {type(tensors).__name__}")
    entries = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__} {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved and cannot name a tensor")
        code, arr = _host_array(name, value)
        entries.append((_WRITE_RANK[code], name, code, arr))
    entries.sort(key=lambda e: (e[0], e[1]))

    header: dict[str, Any] = {}
    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise TypeError("metadata must be a dict of str to str")
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    offset = 0
    for _, name, code, arr in entries:
        header[name] = {
            "dtype": code,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
    try:
        head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"names and metadata must be valid Unicode text: {exc}") from None
    head += b" " * (-len(head) % 8)
    chunks: list = [struct.pack("<Q", len(head)), head]
    chunks.extend(memoryview(arr.reshape(-1).view(np.uint8)) for *_, arr in entries if arr.nbytes)
    return chunks


def save_safetensors_bytes(
    tensors: Mapping[str, Tensor | np.ndarray], metadata: Mapping[str, str] | None = None
) -> bytes:
    """Serialize a flat dict of tensors (CPU or CUDA Tensors, numpy arrays) to safetensors
    bytes, readable by `safetensors.numpy.load` and `safetensors.torch.load`."""
    return b"".join(_encode(tensors, metadata))


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r} in the safetensors header")
        out[k] = v
    return out


def _nonneg_int(x: Any) -> bool:
    return type(x) is int and x >= 0


def _decode(data: Any) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Parse and validate a whole safetensors buffer; tensors are views of `data` where the
    bytes are aligned for their dtype."""
    try:
        view = memoryview(data).cast("B")
    except TypeError:
        raise TypeError(f"expected a bytes-like object, got {type(data).__name__}") from None
    total = view.nbytes
    if total < 8:
        raise ValueError(
            f"not a safetensors buffer: {total} bytes is shorter than the 8-byte header length"
        )
    (n,) = struct.unpack("<Q", view[:8])
    if n > MAX_HEADER_SIZE:
        raise ValueError(
            f"not a safetensors buffer: header length {n} exceeds the limit of {MAX_HEADER_SIZE} "
            "bytes (shardgrad reads safetensors only; it never unpickles torch.save files)"
        )
    if 8 + n > total:
        raise ValueError(
            f"truncated safetensors buffer: header of {n} bytes but only {total - 8} follow"
        )
    try:
        text = bytes(view[8 : 8 + n]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"safetensors header is not valid UTF-8: {exc}") from None
    if not text.startswith("{"):
        raise ValueError("safetensors header must be a JSON object starting with '{'")
    try:
        header = json.loads(text, object_pairs_hook=_reject_duplicates)
    except RecursionError:
        raise ValueError("safetensors header is nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"safetensors header is not valid JSON: {exc}") from None

    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("safetensors '__metadata__' must map str to str")

    infos = []
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            raise ValueError(
                f"tensor {name!r}: header entry needs 'dtype', 'shape' and 'data_offsets'"
            )
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str):
            raise ValueError(f"tensor {name!r}: dtype must be a str, got {code!r}")
        if code == "BF16":
            np_dtype = np.dtype("<u2")
        elif code in _NP_OF_CODE:
            np_dtype = _NP_OF_CODE[code]
        elif code in _UNSUPPORTED:
            raise ValueError(f"tensor {name!r}: dtype {code} is not supported by shardgrad")
        else:
            raise ValueError(f"tensor {name!r}: unknown dtype {code!r}")
        if not isinstance(shape, list) or not all(_nonneg_int(s) for s in shape):
            raise ValueError(
                f"tensor {name!r}: shape must be a list of non-negative ints, got {shape!r}"
            )
        if len(shape) > _MAX_NDIM:
            raise ValueError(
                f"tensor {name!r}: {len(shape)} dimensions exceed the limit of {_MAX_NDIM}"
            )
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(_nonneg_int(o) for o in offsets)
        ):
            raise ValueError(
                f"tensor {name!r}: data_offsets must be two non-negative ints, got {offsets!r}"
            )
        begin, end = offsets
        if end < begin:
            raise ValueError(f"tensor {name!r}: data_offsets {offsets} end before they begin")
        if math.prod(shape) * np_dtype.itemsize != end - begin:
            raise ValueError(
                f"tensor {name!r}: shape {shape} of {code} needs "
                f"{math.prod(shape) * np_dtype.itemsize} bytes but data_offsets span {end - begin}"
            )
        infos.append((begin, end, name, code, tuple(shape), np_dtype))

    # The byte ranges must tile the data section exactly: no gaps, no overlaps, nothing after.
    expected = 0
    for begin, end, name, *_ in sorted(infos, key=lambda i: (i[0], i[1])):
        if begin != expected:
            kind = "overlaps the previous tensor" if begin < expected else "leaves a gap before it"
            raise ValueError(
                f"tensor {name!r}: data_offsets {[begin, end]} {kind} (expected start {expected})"
            )
        expected = end
    if 8 + n + expected != total:
        raise ValueError(
            f"safetensors data section is {total - 8 - n} bytes but the header describes {expected}"
        )

    start = 8 + n
    tensors: dict[str, Tensor] = {}
    for begin, end, name, code, shape, np_dtype in infos:
        count = (end - begin) // np_dtype.itemsize
        if count == 0:
            arr = np.empty(shape, dtype=np_dtype)
        else:
            arr = np.frombuffer(view, dtype=np_dtype, count=count, offset=start + begin).reshape(
                shape
            )
            if not arr.flags.aligned:
                arr = arr.copy()
        if code == "BF16":  # bfloat16 is the top half of a float32
            arr = (arr.astype("<u4") << 16).view("<f4")
        elif code == "BOOL" and count and arr.view(np.uint8).max() > 1:
            raise ValueError(f"tensor {name!r}: BOOL data holds bytes other than 0 and 1")
        tensors[name] = Tensor._make(arr)
    return tensors, metadata


def load_safetensors_bytes(data: bytes | bytearray | memoryview) -> dict[str, Tensor]:
    """Read safetensors bytes into CPU Tensors that share memory with `data` (immutable `bytes`
    give read-only tensors; pass a `bytearray` for writable ones). BF16 is widened to float32,
    the only dtype conversion. Malformed input raises `ValueError` saying what is wrong."""
    return _decode(data)[0]


# --------------------------------------------------------------------------- save / load
def _flatten(obj: Any, path: list[str], tensors: dict[str, Any]) -> Any:
    """A JSON description of `obj` whose tensors are moved into `tensors` under dotted names."""
    if isinstance(obj, Tensor) or backend.is_array(obj):
        name = ".".join(path)
        if name in tensors:
            raise ValueError(f"two entries would be stored under the same name {name!r}")
        tensors[name] = obj
        return {"tensor": name}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"float": repr(obj)}
    if isinstance(obj, Mapping):
        items = []
        for key, value in obj.items():
            if type(key) is not str and type(key) is not int:
                raise TypeError(f"keys must be str or int, got {type(key).__name__} {key!r}")
            items.append([key, _flatten(value, [*path, str(key)], tensors)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        body = [_flatten(v, [*path, str(i)], tensors) for i, v in enumerate(obj)]
        return {"tuple" if isinstance(obj, tuple) else "list": body}
    where = ".".join(path) or "the top level"
    raise TypeError(
        f"cannot save {type(obj).__name__} at {where}: shardgrad saves tensors, containers and "
        "JSON values only (it never pickles)"
    )


def _unflatten(node: Any, tensors: dict[str, Tensor], used: set[str]) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((tag, body),) = node.items()
        if tag == "tensor" and isinstance(body, str):
            if body not in tensors or body in used:
                raise ValueError(f"'{_STRUCTURE_KEY}' refers to missing or reused tensor {body!r}")
            used.add(body)
            return tensors[body]
        if tag == "dict" and isinstance(body, list):
            out = {}
            for item in body:
                if not (isinstance(item, list) and len(item) == 2 and type(item[0]) in (str, int)):
                    raise ValueError(f"'{_STRUCTURE_KEY}' has a malformed dict item {item!r}")
                out[item[0]] = _unflatten(item[1], tensors, used)
            return out
        if tag in ("list", "tuple") and isinstance(body, list):
            seq = [_unflatten(v, tensors, used) for v in body]
            return tuple(seq) if tag == "tuple" else seq
        if tag == "float" and body in ("inf", "-inf", "nan"):
            return float(body)
    raise ValueError(f"'{_STRUCTURE_KEY}' has a malformed entry {node!r}")


def _rebuild(tensors: dict[str, Tensor], metadata: dict[str, str]) -> dict:
    text = metadata.get(_STRUCTURE_KEY)
    if text is None:
        return tensors
    used: set[str] = set()
    try:
        obj = _unflatten(json.loads(text), tensors, used)
    except RecursionError:
        raise ValueError(f"'{_STRUCTURE_KEY}' is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"'{_STRUCTURE_KEY}' is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"'{_STRUCTURE_KEY}' must describe a dict at the top level")
    if used != tensors.keys():
        raise ValueError(
            f"'{_STRUCTURE_KEY}' does not mention tensors {sorted(tensors.keys() - used)}"
        )
    return obj


def _write_atomically(path: str | os.PathLike, chunks: list) -> None:
    """Write beside `path` and rename over it, so a crash never leaves half a checkpoint."""
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(obj: Mapping[str, Any], f: str | os.PathLike | IO[bytes]) -> None:
    """`torch.save` for state_dicts, written as safetensors.

    `obj` is a dict whose values are Tensors, arrays, nested dicts/lists/tuples of them, and
    JSON values (None, bool, int, float, str), e.g. a Module's or an Optimizer's state_dict.
    Tensors are stored under dotted names, so a Module's state_dict file is an ordinary
    safetensors file other tools load by the usual keys. Anything else raises `TypeError`:
    nothing is pickled. A path is written atomically; a file object is written in place.
    """
    if not isinstance(obj, Mapping):
        raise TypeError(
            f"shardgrad.save expects a dict such as a state_dict, got {type(obj).__name__}"
        )
    tensors: dict[str, Any] = {}
    structure = _flatten(obj, [], tensors)
    meta = {_STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"), ensure_ascii=False)}
    chunks = _encode(tensors, meta)
    if isinstance(f, (str, os.PathLike)):
        _write_atomically(f, chunks)
    else:
        for chunk in chunks:
            f.write(chunk)


def _read_all(f: str | os.PathLike | IO[bytes]) -> bytearray:
    """The whole file in a writable buffer, so loaded tensors are writable views of it."""
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            buf = bytearray(os.fstat(fh.fileno()).st_size)
            view, done = memoryview(buf), 0
            while done < len(buf):
                got = fh.readinto(view[done:])
                if not got:
                    raise ValueError(f"{os.fspath(f)!r} shrank while it was being read")
                done += got
            return buf
    return bytearray(f.read())


def load(f: str | os.PathLike | IO[bytes], map_location: Any = None) -> dict:
    """`torch.load` for files written by `save` or by any safetensors writer.

    Returns what `save` was given (containers, JSON values and Tensors); a plain safetensors
    file gives a flat dict of Tensors. `map_location` (None, "cpu", "cuda:N" or a device) says
    where the tensors go; they load on the CPU by default. Never unpickles: a `torch.save`
    pickle is rejected with a `ValueError`.
    """
    if map_location is not None and not isinstance(map_location, (str, backend.device)):
        raise TypeError(
            f"map_location must be None, a device string or a shardgrad.device, got {type(map_location).__name__}"
        )
    dev = backend.as_device(map_location)
    tensors, metadata = _decode(_read_all(f))
    if dev != backend.CPU:
        tensors = {k: Tensor._make(backend.to_device(t._data, dev)) for k, t in tensors.items()}
    return _rebuild(tensors, metadata)
