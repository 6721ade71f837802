"""Typed exceptions for what the coordinator answers, each carrying the server's own message.

A gRPC failure arrives as a status code and a message; users should not have to know gRPC to
tell "the job does not exist" from "the config is wrong" from "the coordinator is down". Each
code maps to one class, and the classes also derive from the matching Python built-in
(`ValueError`, `LookupError`, `PermissionError`, `ConnectionError`, `TimeoutError`), so code
that already catches those keeps working.
"""

from __future__ import annotations


class ShardgradError(Exception):
    """Anything the coordinator refused or failed to do. `code` is the gRPC status name."""

    code = "UNKNOWN"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidArgumentError(ShardgradError, ValueError):
    """The request was malformed or named something unusable; nothing was changed."""

    code = "INVALID_ARGUMENT"


class NotFoundError(ShardgradError, LookupError):
    """No such job, dataset or worker."""

    code = "NOT_FOUND"


class AlreadyExistsError(ShardgradError):
    code = "ALREADY_EXISTS"


class FailedPreconditionError(ShardgradError):
    """The request is valid but not now (e.g. the model of a job that is still running)."""

    code = "FAILED_PRECONDITION"


class AuthenticationError(ShardgradError, PermissionError):
    """The bearer token is missing or wrong."""

    code = "UNAUTHENTICATED"


class PermissionDeniedError(ShardgradError, PermissionError):
    code = "PERMISSION_DENIED"


class UnavailableError(ShardgradError, ConnectionError):
    """The coordinator cannot be reached (not running, wrong address, TLS mismatch)."""

    code = "UNAVAILABLE"


class DeadlineExceededError(ShardgradError, TimeoutError):
    code = "DEADLINE_EXCEEDED"


class ResourceExhaustedError(ShardgradError):
    """A limit was hit (message size, quota)."""

    code = "RESOURCE_EXHAUSTED"


class CancelledError(ShardgradError):
    code = "CANCELLED"


class UnimplementedError(ShardgradError, NotImplementedError):
    """The coordinator does not offer this call (an older version)."""

    code = "UNIMPLEMENTED"


class InternalError(ShardgradError):
    code = "INTERNAL"


class JobFailedError(ShardgradError):
    """A job this client waited for ended FAILED; `status` is its final JobStatus."""

    code = "JOB_FAILED"

    def __init__(self, message: str, status=None) -> None:
        super().__init__(message)
        self.status = status


_BY_CODE: dict[str, type[ShardgradError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        AuthenticationError,
        PermissionDeniedError,
        UnavailableError,
        DeadlineExceededError,
        ResourceExhaustedError,
        CancelledError,
        UnimplementedError,
        InternalError,
    )
}
_BY_CODE["OUT_OF_RANGE"] = InvalidArgumentError
_BY_CODE["ABORTED"] = FailedPreconditionError


def error_for(code: str, message: str) -> ShardgradError:
    """The exception for a status code name (`"NOT_FOUND"`) and the server's message."""
    cls = _BY_CODE.get(code, ShardgradError)
    return cls(message or code.replace("_", " ").lower(), code=code)


def from_rpc_error(exc: Exception) -> ShardgradError:
    """Translate a `grpc.RpcError` (anything with `code()` and `details()`)."""
    code_obj = exc.code() if callable(getattr(exc, "code", None)) else None
    name = getattr(code_obj, "name", None) or "UNKNOWN"
    details = exc.details() if callable(getattr(exc, "details", None)) else None
    message = details or str(exc)
    if name == "UNAVAILABLE" and details:
        message = f"coordinator unavailable: {details}"
    return error_for(name, message)
