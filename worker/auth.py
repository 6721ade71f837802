"""Bearer tokens on gRPC calls, both ways between the coordinator and its workers.

Every call carries `authorization: Bearer <token>` metadata. A worker started with a token
refuses calls without it (UNAUTHENTICATED), except the gRPC health service, which probes
(Kubernetes, load balancers) call without credentials. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import grpc

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def read_token(token_file: str | os.PathLike | None = None) -> str | None:
    """`SHARDGRAD_TOKEN`, else the first line of `token_file`, else None."""
    env = os.environ.get("SHARDGRAD_TOKEN")
    if env:
        return env.strip()
    if token_file:
        text = Path(token_file).read_text().strip()
        if not text:
            raise ValueError(f"token file {token_file} is empty")
        return text.splitlines()[0].strip()
    return None


def metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def _deny(request, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


def _deny_stream(request_iterator, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


class BearerAuthInterceptor(grpc.ServerInterceptor):
    """Lets through calls whose bearer token matches, and health checks."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method or ""
        if method.startswith(OPEN_PREFIXES):
            return continuation(handler_call_details)
        given = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                given = value
        if hmac.compare_digest(str(given).encode(), self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(_deny_stream)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(_deny_stream)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(_deny)
        return grpc.unary_unary_rpc_method_handler(_deny)
