"""ComputeShared over a Unix socket, for a coordinator on the worker's own machine.

With shared memory (see .shm) a step's request and reply are small headers, so what is left
of a step's cost between the two processes is the call itself. A gRPC unary call from Python
costs about half a millisecond each way in thread hand-offs and HTTP/2 framing, several
percent of a small step, paid on every step; the same header over a Unix socket costs about a
tenth of that. The channel carries ComputeShared alone, with the same messages and the same
handler, so a step gives the same bytes either way; everything else (loading jobs, datasets,
heartbeats, steps over the wire) stays on gRPC, and a coordinator that cannot reach the socket
simply keeps calling ComputeShared over gRPC.

Who may connect: the socket lives in a directory only the worker's user can enter (0700); the
server checks that the peer runs as the same user (SO_PEERCRED); and a connection's first frame
must be the channel's secret, a random token the worker hands out only in its LoadJob reply,
so only a coordinator that got through the worker's gRPC authentication ever learns it.

Frames are a u32 little-endian length and a body of at most MAX_FRAME bytes (a longer one
ends the connection). The client's first frame is the secret, answered by a reply frame (OK,
or UNAUTHENTICATED and the connection closes). Then each call is a request frame (an f64: the
seconds the caller waits, then a ComputeHeader) answered by a reply frame (a u8 gRPC status
code, then a ComputeResult when the code is OK, else the status details in UTF-8). One call
at a time per connection; the client keeps idle connections for the next call.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import select
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError

from shardgrad.protos import worker_pb2

from .shm import process_alive
from .wire import MAX_MESSAGE_BYTES, WireError

log = logging.getLogger("shardgrad.worker")

MAX_FRAME = MAX_MESSAGE_BYTES
DIR_PREFIX = "shardgrad-ch-"  # then the worker's pid: a dead pid's directory is stale
_LENGTH = struct.Struct("<I")
_WAIT = struct.Struct("<d")
_HELLO_TIMEOUT_S = 10.0
_STATUS_BY_CODE = {code.value[0]: code for code in grpc.StatusCode}
_OK = grpc.StatusCode.OK.value[0]

Handler = Callable[[object, "CallContext"], worker_pb2.ComputeResult]


class ProtocolError(OSError):
    """The other end broke the framing; the connection cannot be trusted any more."""


class LocalCallError(grpc.RpcError):
    """A status from the worker, or the channel failing, shaped like gRPC's error so that
    callers handle both paths alike."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class LocalChannelUnavailable(OSError):
    """The socket cannot be reached from here (another container, a removed directory): the
    caller goes back to gRPC. Raised only before a request was sent."""


# ---------------------------------------------------------------------------- framing
def _read_exact(conn: socket.socket, n: int) -> bytearray | None:
    """n bytes, or None when the peer closed before the first of them."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = conn.recv_into(view[got:])
        if k == 0:
            if got == 0:
                return None
            raise ProtocolError(f"connection closed after {got} of {n} bytes")
        got += k
    return buf


def read_frame(conn: socket.socket) -> bytearray | None:
    """One frame's body, or None at a clean end of the connection."""
    head = _read_exact(conn, _LENGTH.size)
    if head is None:
        return None
    (n,) = _LENGTH.unpack(head)
    if n > MAX_FRAME:
        raise ProtocolError(f"a frame of {n} bytes is over the {MAX_FRAME}-byte limit")
    if n == 0:
        return bytearray()
    body = _read_exact(conn, n)
    if body is None:
        raise ProtocolError("connection closed between a frame's length and its body")
    return body


def send_frame(conn: socket.socket, *parts: bytes) -> None:
    n = sum(len(p) for p in parts)
    conn.sendall(b"".join((_LENGTH.pack(n), *parts)))


def _reply(conn: socket.socket, code: grpc.StatusCode, payload: bytes) -> None:
    send_frame(conn, bytes((code.value[0],)), payload)


# ---------------------------------------------------------------------------- the server side
class Aborted(Exception):
    """Raised by `CallContext.abort`, like gRPC's context.abort: the handler stops there."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class CallContext:
    """What ComputeShared's handler asks of its gRPC context, for a call on the channel."""

    def __init__(self, conn: socket.socket, wait_s: float) -> None:
        self._conn = conn
        self._deadline = time.monotonic() + max(0.0, wait_s)

    def abort(self, code: grpc.StatusCode, details: str):
        raise Aborted(code, details)

    def time_remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def is_active(self) -> bool:
        """False once the deadline passed or the caller went away (it sends nothing while it
        waits, so a readable socket means it closed)."""
        if time.monotonic() >= self._deadline:
            return False
        ready, _, _ = select.select([self._conn], [], [], 0)
        return not ready


def remove_stale_dirs() -> list[str]:
    """Remove the socket directories of worker processes that are gone (a killed worker, a
    Ray actor that was killed, cannot remove its own); returns the names removed."""
    removed = []
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(DIR_PREFIX):
            continue
        pid = name[len(DIR_PREFIX) :].split("-", 1)[0]
        path = os.path.join(root, name)
        try:
            if not pid.isdigit() or os.stat(path).st_uid != os.getuid() or process_alive(int(pid)):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(name)
    return removed


def _peer_uid(conn: socket.socket) -> int | None:
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is None:  # pragma: no cover - not Linux: the directory's mode guards it
        return os.getuid()
    raw = conn.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
    return struct.unpack("3i", raw)[1]


class LocalChannelServer:
    """Serves `handler(request, context)` for ComputeShared on a Unix socket; see the module
    docstring. `parse(bytes)` decodes a request the way the gRPC server does."""

    def __init__(self, handler: Handler, parse: Callable[[bytes], object]) -> None:
        self.handler, self.parse = handler, parse
        self.secret = secrets.token_hex(16)
        remove_stale_dirs()
        self._dir = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")  # mode 0700
        self.path = os.path.join(self._dir, "compute.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(self.path)
            self._listener.listen(64)
        except BaseException:
            self._listener.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closed = False
        self._accepting = threading.Thread(
            target=self._accept_loop, name="worker-local-channel", daemon=True
        )
        self._accepting.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conns.add(conn)
            threading.Thread(
                target=self._serve, args=(conn,), name="worker-local-call", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if not self._welcome(conn):
                return
            while True:
                body = read_frame(conn)
                if body is None:
                    return
                if len(body) < _WAIT.size:
                    raise ProtocolError("a request frame shorter than its deadline")
                (wait_s,) = _WAIT.unpack_from(body)
                code, payload = self._call(conn, wait_s, bytes(body[_WAIT.size :]))
                _reply(conn, code, payload)
        except OSError as exc:  # the caller went away, or broke the framing
            log.debug("local channel connection ended: %s", exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _welcome(self, conn: socket.socket) -> bool:
        """Check the peer's user and the secret it opens with."""
        if _peer_uid(conn) != os.getuid():
            return False
        conn.settimeout(_HELLO_TIMEOUT_S)
        hello = read_frame(conn)
        if hello is None or not hmac.compare_digest(bytes(hello), self.secret.encode()):
            _reply(conn, grpc.StatusCode.UNAUTHENTICATED, b"wrong local channel secret")
            return False
        conn.settimeout(None)
        _reply(conn, grpc.StatusCode.OK, b"")
        return True

    def _call(self, conn: socket.socket, wait_s: float, raw: bytes) -> tuple:
        try:
            request = self.parse(raw)
        except DecodeError as exc:
            return grpc.StatusCode.INVALID_ARGUMENT, f"undecodable request: {exc}".encode()
        try:
            result = self.handler(request, CallContext(conn, wait_s))
            return grpc.StatusCode.OK, result.SerializeToString()
        except Aborted as exc:
            return exc.code, exc.details.encode()
        except Exception as exc:  # noqa: BLE001 - a bug answers INTERNAL, as gRPC would
            log.exception("local channel call failed")
            return grpc.StatusCode.INTERNAL, f"unexpected error: {exc!r}".encode()

    def close(self) -> None:
        """Stop accepting, end every connection (a call in flight loses its reply, as a
        stopped gRPC server's would), and remove the socket."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns, self._conns = list(self._conns), set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._accepting.join(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)


# ---------------------------------------------------------------------------- the client side
class LocalChannel:
    """The coordinator's end: ComputeShared calls to one worker's socket (thread-safe)."""

    def __init__(self, path: str, secret: str) -> None:
        self.path, self._secret = path, secret.encode()
        self._lock = threading.Lock()
        self._idle: list[socket.socket] = []
        self._closed = False

    def call(self, request: worker_pb2.ComputeHeader, timeout: float) -> worker_pb2.ComputeResult:
        """The worker's ComputeResult. Raises LocalCallError for a status (including the
        channel failing mid-call: UNAVAILABLE, or DEADLINE_EXCEEDED after `timeout` s),
        LocalChannelUnavailable when no connection could be made, WireError for a reply
        that does not parse."""
        return self.receive(self.send(request, timeout), timeout)

    def send(self, request: worker_pb2.ComputeHeader, timeout: float) -> socket.socket:
        """The first half of `call`: the request is on its way when this returns, and the
        returned connection is the worker's to answer on (pass it to `receive`). A caller
        sends to every worker of a step before waiting for any."""
        conn = self._take(timeout)
        try:
            conn.settimeout(max(timeout, 1e-3))
            send_frame(conn, _WAIT.pack(timeout), request.SerializeToString())
        except OSError as exc:
            conn.close()
            raise LocalCallError(grpc.StatusCode.UNAVAILABLE, f"local channel: {exc}") from None
        return conn

    def receive(self, conn: socket.socket, timeout: float) -> worker_pb2.ComputeResult:
        """The second half of `call`: the answer to the request sent on `conn`."""
        try:
            conn.settimeout(max(timeout, 1e-3))
            body = read_frame(conn)
        except TimeoutError:
            conn.close()
            raise LocalCallError(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"no reply within {timeout:.3g} s"
            ) from None
        except OSError as exc:
            conn.close()
            raise LocalCallError(grpc.StatusCode.UNAVAILABLE, f"local channel: {exc}") from None
        if not body:
            conn.close()
            raise LocalCallError(
                grpc.StatusCode.UNAVAILABLE, "the worker closed the local channel mid-call"
            )
        self._give_back(conn)
        code, payload = body[0], bytes(body[1:])
        if code != _OK:
            status = _STATUS_BY_CODE.get(code, grpc.StatusCode.UNKNOWN)
            raise LocalCallError(status, payload.decode("utf-8", errors="replace"))
        try:
            return worker_pb2.ComputeResult.FromString(payload)
        except DecodeError as exc:
            raise WireError(f"undecodable ComputeResult on the local channel: {exc}") from None

    def _take(self, timeout: float) -> socket.socket:
        with self._lock:
            if self._closed:
                raise LocalChannelUnavailable("the local channel is closed")
            if self._idle:
                return self._idle.pop()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(min(max(timeout, 1e-3), _HELLO_TIMEOUT_S))
            conn.connect(self.path)
            send_frame(conn, self._secret)
            answer = read_frame(conn)
        except OSError as exc:
            conn.close()
            raise LocalChannelUnavailable(f"cannot open {self.path}: {exc}") from None
        if not answer or answer[0] != _OK:
            conn.close()
            raise LocalChannelUnavailable(f"the worker refused the local channel at {self.path}")
        return conn

    def _give_back(self, conn: socket.socket) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
