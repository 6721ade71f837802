"""shardgrad.client: the SDK for submitting and following training jobs, and the CLI.

`Client` talks gRPC to a coordinator; its names are loaded on first use so that the
`shardgrad` command (and `import shardgrad.client`) stays quick when grpc is not needed.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "Client": ".sdk",
    "AsyncClient": ".aio",
    "AsyncJob": ".aio",
    "Job": ".jobs",
    "JobStatus": ".records",
    "WorkerInfo": ".records",
    "ScaleResult": ".records",
    "ModelInfo": ".records",
    "Event": ".records",
    "DatasetInfo": ".datasets",
    "ShardgradError": ".errors",
    "InvalidArgumentError": ".errors",
    "NotFoundError": ".errors",
    "AlreadyExistsError": ".errors",
    "FailedPreconditionError": ".errors",
    "AuthenticationError": ".errors",
    "PermissionDeniedError": ".errors",
    "UnavailableError": ".errors",
    "DeadlineExceededError": ".errors",
    "ResourceExhaustedError": ".errors",
    "UnimplementedError": ".errors",
    "InternalError": ".errors",
    "JobFailedError": ".errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shardgrad.client' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
