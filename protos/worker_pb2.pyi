from shardgrad.protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobOptions(_message.Message):
    __slots__ = ("num_micro_shards", "compression", "compute_threads", "seed")
    NUM_MICRO_SHARDS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_THREADS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    num_micro_shards: int
    compression: _common_pb2.GradientCompression
    compute_threads: int
    seed: int
    def __init__(self, num_micro_shards: _Optional[int] = ..., compression: _Optional[_Union[_common_pb2.GradientCompression, str]] = ..., compute_threads: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class LoadJobRequest(_message.Message):
    __slots__ = ("job_id", "model_json", "loss_json", "layout", "dataset", "options", "shm_probe")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_JSON_FIELD_NUMBER: _ClassVar[int]
    LOSS_JSON_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SHM_PROBE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model_json: str
    loss_json: str
    layout: _common_pb2.ParamLayout
    dataset: _common_pb2.DatasetRef
    options: JobOptions
    shm_probe: str
    def __init__(self, job_id: _Optional[str] = ..., model_json: _Optional[str] = ..., loss_json: _Optional[str] = ..., layout: _Optional[_Union[_common_pb2.ParamLayout, _Mapping]] = ..., dataset: _Optional[_Union[_common_pb2.DatasetRef, _Mapping]] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., shm_probe: _Optional[str] = ...) -> None: ...

class LoadJobResponse(_message.Message):
    __slots__ = ("job_id", "layout_fingerprint", "device", "num_samples", "load_seconds", "shared_memory", "local_channel", "local_channel_secret")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SHARED_MEMORY_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CHANNEL_SECRET_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    layout_fingerprint: str
    device: str
    num_samples: int
    load_seconds: float
    shared_memory: bool
    local_channel: str
    local_channel_secret: str
    def __init__(self, job_id: _Optional[str] = ..., layout_fingerprint: _Optional[str] = ..., device: _Optional[str] = ..., num_samples: _Optional[int] = ..., load_seconds: _Optional[float] = ..., shared_memory: _Optional[bool] = ..., local_channel: _Optional[str] = ..., local_channel_secret: _Optional[str] = ...) -> None: ...

class MicroShard(_message.Message):
    __slots__ = ("index", "sample_indices")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INDICES_FIELD_NUMBER: _ClassVar[int]
    index: int
    sample_indices: _common_pb2.Tensor
    def __init__(self, index: _Optional[int] = ..., sample_indices: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ...) -> None: ...

class SharedBuffers(_message.Message):
    __slots__ = ("params", "params_nbytes", "grads", "grads_capacity")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_NBYTES_FIELD_NUMBER: _ClassVar[int]
    GRADS_FIELD_NUMBER: _ClassVar[int]
    GRADS_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    params: str
    params_nbytes: int
    grads: str
    grads_capacity: int
    def __init__(self, params: _Optional[str] = ..., params_nbytes: _Optional[int] = ..., grads: _Optional[str] = ..., grads_capacity: _Optional[int] = ...) -> None: ...

class ComputeHeader(_message.Message):
    __slots__ = ("job_id", "step", "layout_fingerprint", "shards", "params_nbytes", "byte_order", "shared")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_NBYTES_FIELD_NUMBER: _ClassVar[int]
    BYTE_ORDER_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step: int
    layout_fingerprint: str
    shards: _containers.RepeatedCompositeFieldContainer[MicroShard]
    params_nbytes: int
    byte_order: _common_pb2.ByteOrder
    shared: SharedBuffers
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[int] = ..., layout_fingerprint: _Optional[str] = ..., shards: _Optional[_Iterable[_Union[MicroShard, _Mapping]]] = ..., params_nbytes: _Optional[int] = ..., byte_order: _Optional[_Union[_common_pb2.ByteOrder, str]] = ..., shared: _Optional[_Union[SharedBuffers, _Mapping]] = ...) -> None: ...

class ComputeRequest(_message.Message):
    __slots__ = ("header", "params")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    header: ComputeHeader
    params: _common_pb2.Chunk
    def __init__(self, header: _Optional[_Union[ComputeHeader, _Mapping]] = ..., params: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("level", "index")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    level: int
    index: int
    def __init__(self, level: _Optional[int] = ..., index: _Optional[int] = ...) -> None: ...

class ShardStats(_message.Message):
    __slots__ = ("index", "loss", "num_samples", "finite", "bn_calls", "bn_stats")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    FINITE_FIELD_NUMBER: _ClassVar[int]
    BN_CALLS_FIELD_NUMBER: _ClassVar[int]
    BN_STATS_FIELD_NUMBER: _ClassVar[int]
    index: int
    loss: float
    num_samples: int
    finite: bool
    bn_calls: _containers.RepeatedScalarFieldContainer[int]
    bn_stats: _common_pb2.Tensor
    def __init__(self, index: _Optional[int] = ..., loss: _Optional[float] = ..., num_samples: _Optional[int] = ..., finite: _Optional[bool] = ..., bn_calls: _Optional[_Iterable[int]] = ..., bn_stats: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ...) -> None: ...

class ComputeResult(_message.Message):
    __slots__ = ("job_id", "step", "blocks", "dtype", "byte_order", "grads_nbytes", "shards", "nonfinite_shards", "compute_seconds", "wire_overflow", "grads_shared", "blocks_finite")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    BYTE_ORDER_FIELD_NUMBER: _ClassVar[int]
    GRADS_NBYTES_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    NONFINITE_SHARDS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WIRE_OVERFLOW_FIELD_NUMBER: _ClassVar[int]
    GRADS_SHARED_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FINITE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step: int
    blocks: _containers.RepeatedCompositeFieldContainer[Block]
    dtype: _common_pb2.DType
    byte_order: _common_pb2.ByteOrder
    grads_nbytes: int
    shards: _containers.RepeatedCompositeFieldContainer[ShardStats]
    nonfinite_shards: _containers.RepeatedScalarFieldContainer[int]
    compute_seconds: float
    wire_overflow: bool
    grads_shared: bool
    blocks_finite: bool
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[int] = ..., blocks: _Optional[_Iterable[_Union[Block, _Mapping]]] = ..., dtype: _Optional[_Union[_common_pb2.DType, str]] = ..., byte_order: _Optional[_Union[_common_pb2.ByteOrder, str]] = ..., grads_nbytes: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[ShardStats, _Mapping]]] = ..., nonfinite_shards: _Optional[_Iterable[int]] = ..., compute_seconds: _Optional[float] = ..., wire_overflow: _Optional[bool] = ..., grads_shared: _Optional[bool] = ..., blocks_finite: _Optional[bool] = ...) -> None: ...

class ComputeResponse(_message.Message):
    __slots__ = ("header", "grads")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    GRADS_FIELD_NUMBER: _ClassVar[int]
    header: ComputeResult
    grads: _common_pb2.Chunk
    def __init__(self, header: _Optional[_Union[ComputeResult, _Mapping]] = ..., grads: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...

class ReleaseJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ReleaseJobResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: bool
    def __init__(self, released: _Optional[bool] = ...) -> None: ...
