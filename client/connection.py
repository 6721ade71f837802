"""The client's channel to a coordinator: where it is, the bearer token, TLS, error mapping.

Every call carries `authorization: Bearer <token>`. With nothing configured, a client on the
coordinator's own machine finds it through the state directory (`--state-dir` of
`shardgrad serve`; `SHARDGRAD_STATE_DIR`, by default `~/.shardgrad`): the coordinator writes
its address to `coordinator.json` there and its token to `token`. Otherwise the address comes
from the argument or `SHARDGRAD_ADDRESS`, and the token from the argument or
`SHARDGRAD_TOKEN`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from shardgrad.protos import coordinator_pb2_grpc

from .errors import from_rpc_error

TOKEN_FILE_NAME = "token"
ENDPOINT_FILE_NAME = "coordinator.json"
MAX_MESSAGE_BYTES = 64 << 20


class NoCoordinatorError(RuntimeError):
    """No address was given and no local coordinator could be found."""


def default_state_dir() -> Path:
    """`SHARDGRAD_STATE_DIR`, else `~/.shardgrad`."""
    env = os.environ.get("SHARDGRAD_STATE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".shardgrad"


def _endpoint(state_dir: Path) -> dict:
    try:
        body = json.loads((state_dir / ENDPOINT_FILE_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def resolve_address(address: str | None = None, state_dir: str | os.PathLike | None = None) -> str:
    """`address`, else `SHARDGRAD_ADDRESS`, else the address the coordinator of the state
    directory wrote into its `coordinator.json`."""
    if address:
        return address
    env = os.environ.get("SHARDGRAD_ADDRESS", "").strip()
    if env:
        return env
    folder = Path(state_dir).expanduser() if state_dir else default_state_dir()
    dial = _endpoint(folder).get("dial")
    if isinstance(dial, str) and dial:
        return dial
    raise NoCoordinatorError(
        "no coordinator address: pass one (--address HOST:PORT), set SHARDGRAD_ADDRESS, or "
        f"point SHARDGRAD_STATE_DIR (--state-dir) at a running coordinator's state directory "
        f"(looked in {folder / ENDPOINT_FILE_NAME})"
    )


def resolve_dashboard(
    dashboard: str | None = None, state_dir: str | os.PathLike | None = None
) -> str | None:
    """The coordinator's dashboard URL: `dashboard`, else `SHARDGRAD_DASHBOARD`, else the one
    a local coordinator wrote into its `coordinator.json`; None when unknown."""
    if dashboard:
        return dashboard.rstrip("/")
    env = os.environ.get("SHARDGRAD_DASHBOARD", "").strip()
    if env:
        return env.rstrip("/")
    folder = Path(state_dir).expanduser() if state_dir else default_state_dir()
    url = _endpoint(folder).get("dashboard")
    return url.rstrip("/") if isinstance(url, str) and url else None


def resolve_token(
    token: str | None = None,
    token_file: str | os.PathLike | None = None,
    state_dir: str | os.PathLike | None = None,
) -> str | None:
    """The bearer token: `token`, else `SHARDGRAD_TOKEN`, else `token_file`, else the state
    directory's token file; None when there is none (a coordinator without security)."""
    if token:
        return token.strip()
    env = os.environ.get("SHARDGRAD_TOKEN", "").strip()
    if env:
        return env
    if token_file:
        text = Path(token_file).read_text().strip()
        if not text:
            raise ValueError(f"token file {token_file} is empty")
        return text.splitlines()[0].strip()
    folder = Path(state_dir).expanduser() if state_dir else default_state_dir()
    try:
        text = (folder / TOKEN_FILE_NAME).read_text().strip()
    except OSError:
        return None  # none readable here: the coordinator will say if it wants one
    return text.splitlines()[0].strip() if text else None


def _read_ca(tls_ca: str | os.PathLike | bytes | bool | None) -> bytes | None | bool:
    if tls_ca is None or tls_ca is False:
        return False
    if tls_ca is True:
        return None  # the system's trusted roots
    if isinstance(tls_ca, bytes):
        return tls_ca
    return Path(tls_ca).read_bytes()


def open_channel(address: str, tls_ca: str | os.PathLike | bytes | bool | None) -> grpc.Channel:
    """A channel to `address`; TLS when `tls_ca` is given (a PEM path or bytes, or True for
    the system's roots)."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 0),
    ]
    ca = _read_ca(tls_ca)
    if ca is False:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(ca), options=options)


class Connection:
    """A channel, the coordinator stub, and calls that raise ShardgradError subclasses."""

    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        tls_ca: str | os.PathLike | bytes | bool | None = None,
        timeout: float = 30.0,
        token_file: str | os.PathLike | None = None,
        state_dir: str | os.PathLike | None = None,
        dashboard: str | None = None,
    ) -> None:
        self.address = resolve_address(address, state_dir)
        self.token = resolve_token(token, token_file, state_dir)
        self.dashboard = resolve_dashboard(dashboard, state_dir)
        self.timeout = timeout
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {self.token}"),) if self.token else ()
        )
        self.channel = open_channel(self.address, tls_ca)
        self.stub = coordinator_pb2_grpc.CoordinatorStub(self.channel)

    def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """A unary call; gRPC failures become typed exceptions."""
        fn = getattr(self.stub, method)
        try:
            return fn(request, timeout=timeout or self.timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def stream(self, method: str, request: Any, timeout: float | None = None) -> _Stream:
        """A server-streaming call as an iterator that raises typed exceptions and can be
        cancelled from another thread."""
        fn = getattr(self.stub, method)
        return _Stream(fn(request, timeout=timeout, metadata=self.metadata))

    def stream_in(self, method: str, requests: Iterator[Any], timeout: float | None = None) -> Any:
        """A client-streaming call."""
        fn = getattr(self.stub, method)
        try:
            return fn(requests, timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def get_json(self, path: str) -> Any:
        """GET `path` from the coordinator's dashboard JSON API, with the same token."""
        import urllib.error  # noqa: PLC0415
        import urllib.request  # noqa: PLC0415

        from .errors import UnavailableError, error_for  # noqa: PLC0415

        if not self.dashboard:
            raise UnavailableError(
                "this needs the coordinator's dashboard: pass dashboard='http://HOST:PORT' "
                "(or set SHARDGRAD_DASHBOARD)",
                code="UNAVAILABLE",
            )
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.dashboard + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", "")
            except ValueError:
                message = ""
            code = {401: "UNAUTHENTICATED", 404: "NOT_FOUND", 400: "INVALID_ARGUMENT"}
            raise error_for(code.get(exc.code, "UNKNOWN"), message or str(exc)) from None
        except OSError as exc:
            raise UnavailableError(f"dashboard {self.dashboard} unreachable: {exc}") from None

    def close(self) -> None:
        self.channel.close()


class _Stream:
    """Iterates a response stream; `cancel()` ends it (the iterator then just stops)."""

    def __init__(self, call) -> None:
        self._call = call
        self.cancelled = False

    def __iter__(self) -> _Stream:
        return self

    def __next__(self):
        try:
            return next(self._call)
        except grpc.RpcError as exc:
            if self.cancelled and exc.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise from_rpc_error(exc) from None

    def cancel(self) -> None:
        self.cancelled = True
        self._call.cancel()
