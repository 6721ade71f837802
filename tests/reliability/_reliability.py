"""Helpers of the reliability suite: the figures record, checkpoint and job audits, an
authenticated dashboard client, and a loopback TCP proxy whose connections can be cut."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shardgrad.service.checkpoint import CheckpointError, CheckpointManager


# ---------------------------------------------------------------------------- figures
@dataclass
class Figures:
    """Named results by section ("faults", "load", "fuzz", "security"), one entry per case."""

    sections: dict[str, dict[str, dict]] = field(default_factory=dict)

    def add(self, section: str, name: str, **values) -> None:
        self.sections.setdefault(section, {})[name] = values

    def save(self, path: Path, full: bool) -> None:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        merged = old.get("sections", {})
        for section, cases in self.sections.items():
            merged.setdefault(section, {}).update(cases)
        body = {"full": bool(full or old.get("full")), "sections": merged, "at": time.time()}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")


FIGURES = Figures()


# ---------------------------------------------------------------------------- audits
def audit_checkpoints(state_dir: Path) -> tuple[int, int]:
    """(good, corrupt) over every published checkpoint of every job in `state_dir`: each one is
    loaded and its stored sha256 recomputed. Temp files of an interrupted write are not
    checkpoints (they are never renamed into place) and are not counted."""
    good = corrupt = 0
    for folder in sorted((state_dir / "jobs").glob("*/checkpoints")):
        manager = CheckpointManager(folder)
        for step in manager.steps():
            try:
                manager.load_file(manager.path_for(step))
                good += 1
            except CheckpointError:
                corrupt += 1
    return good, corrupt


def job_ids_on_disk(state_dir: Path) -> set[str]:
    return {p.name for p in (state_dir / "jobs").iterdir() if p.is_dir()}


# ---------------------------------------------------------------------------- dashboard
class Dashboard:
    """GET the dashboard's JSON API with the coordinator's bearer token."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token

    def status(self, path: str, token: str | None = "default") -> int:
        try:
            self.get(path, token)
        except urllib.error.HTTPError as exc:
            return exc.code
        return 200

    def get(self, path: str, token: str | None = "default"):
        req = urllib.request.Request(self.url + path)
        token = self.token if token == "default" else token
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if path.startswith("/api/") else body


def dashboard_of(server, timeout: float = 30.0) -> Dashboard:
    """The dashboard of a coordinator started with `--dashboard-port 0`, as recorded in its
    state directory's coordinator.json."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            url = json.loads((server.state_dir / "coordinator.json").read_text()).get("dashboard")
        except (OSError, ValueError):
            url = None
        if url:
            return Dashboard(url, server.token)
        assert time.monotonic() < deadline, "the coordinator never recorded its dashboard"
        time.sleep(0.05)


# ---------------------------------------------------------------------------- proxy
class CuttableProxy:
    """Forwards `listen_host:port` to `target_host:port` on loopback; `cut()` closes every
    open connection at once (both ends see a reset), as a dropped network link would."""

    def __init__(self, listen_host: str, target: tuple[str, int], port: int) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((listen_host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.cuts = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> int:
        """Reset every open connection; returns how many there were."""
        with self._lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                s.close()
            except OSError:
                pass
        self.cuts += 1
        return len(conns) // 2

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self.sock.close()


# ---------------------------------------------------------------------------- in-process
class InProcessServer:
    """A coordinator (in-process worker pool) and its dashboard in this process, with the same
    client helpers as a `_servertest.Coordinator`: for protocol-level cases, where a
    subprocess would only add start-up time."""

    def __init__(self, state_dir: Path, workers: int = 1, **options) -> None:
        import grpc
        from _servertest import Coordinator as ProcessClient

        from shardgrad.protos import coordinator_pb2_grpc
        from shardgrad.service.dashboard import start_dashboard
        from shardgrad.service.server import Coordinator, ServeOptions

        options.setdefault("allow_import", ("_slow_models",))
        self.coordinator = Coordinator(
            ServeOptions(state_dir=state_dir, pool="inprocess", local_workers=workers, **options)
        ).start()
        self.state_dir = Path(state_dir)
        self.dashboard_server = None
        try:
            self.dashboard_server, port = start_dashboard(
                self.coordinator.manager, self.coordinator.token, "127.0.0.1", 0
            )
        except BaseException:
            self.coordinator.stop(timeout=10)
            raise
        self.dashboard = Dashboard(f"http://127.0.0.1:{port}", self.coordinator.token)
        self.dashboard_port = port
        self.port = self.coordinator.port
        self.address = f"127.0.0.1:{self.port}"
        self.token = self.coordinator.token
        client = ProcessClient.__new__(ProcessClient)
        client.address, client.port, client.token = self.address, self.port, self.token
        client.state_dir = self.state_dir
        client.metadata = (("authorization", f"Bearer {self.token}"),)
        if options.get("tls_cert"):
            client.channel = None
            client.stub = None
        else:
            client.channel = grpc.insecure_channel(self.address)
            client.stub = coordinator_pb2_grpc.CoordinatorStub(client.channel)
        self.api = client

    def close(self) -> None:
        if self.api.channel is not None:
            self.api.channel.close()
        if self.dashboard_server is not None:
            self.dashboard_server.stop()
        self.coordinator.stop(timeout=30)


# ---------------------------------------------------------------------------- raw RPCs
def rpc_methods(service_name: str = "Coordinator"):
    """Every method of a service ("Coordinator" or "Worker"): (name, request class, response
    class, client streaming, server streaming)."""
    from google.protobuf import message_factory

    from shardgrad.protos import coordinator_pb2, worker_pb2

    module = coordinator_pb2 if service_name == "Coordinator" else worker_pb2
    service = module.DESCRIPTOR.services_by_name[service_name]
    out = []
    for m in service.methods:
        out.append(
            (
                m.name,
                message_factory.GetMessageClass(m.input_type),
                message_factory.GetMessageClass(m.output_type),
                m.client_streaming,
                m.server_streaming,
            )
        )
    return out


def raw_call(channel, method, requests, metadata=(), timeout: float = 10.0, service: str = ""):
    """Call `method` (a row of `rpc_methods`) with a list of request messages (one unless
    the method streams requests); returns the responses as a list."""
    from shardgrad.service.api import SERVICE

    name, req_cls, resp_cls, client_stream, server_stream = method
    path = f"/{service or SERVICE}/{name}"
    kind = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[(client_stream, server_stream)]
    fn = kind(
        path,
        request_serializer=req_cls.SerializeToString,
        response_deserializer=resp_cls.FromString,
    )
    arg = iter(requests) if client_stream else requests[0]
    out = fn(arg, metadata=metadata, timeout=timeout)
    return list(out) if server_stream else [out]


# ---------------------------------------------------------------------------- processes
def _processes_class():
    import _servertest
    import grpc

    from shardgrad.protos import coordinator_pb2_grpc

    class Coordinator(_servertest.Coordinator):
        """A `shardgrad serve` process whose address comes from `coordinator.json`: the
        "listening on" line can share its line with a log record printed at the same moment
        (a resumed job's), so only its prefix is waited for."""

        def __init__(self, procs, state_dir: Path, extra: list[str], port: int) -> None:
            self.procs, self.state_dir, self.extra = procs, state_dir, extra
            endpoint = state_dir / "coordinator.json"
            endpoint.unlink(missing_ok=True)  # a killed coordinator leaves its own behind
            self.process = procs.serve(state_dir, extra, port)
            self.process.wait_line("shardgrad coordinator listening on", timeout=60)
            body = json.loads(endpoint.read_text())
            self.address, self.port = body["dial"], int(body["port"])
            self.token = (state_dir / "token").read_text().strip()
            self.metadata = (("authorization", f"Bearer {self.token}"),)
            self.channel = grpc.insecure_channel(self.address)
            self.stub = coordinator_pb2_grpc.CoordinatorStub(self.channel)

        def restart(self) -> Coordinator:
            self.channel.close()
            return Coordinator(self.procs, self.state_dir, self.extra, self.port)

    class Processes(_servertest.Processes):
        def coordinator(self, state_dir: Path, *extra: str, port: int = 0) -> Coordinator:
            return Coordinator(self, state_dir, list(extra), port)

    return Processes


def processes(tmp_path: Path):
    return _processes_class()(tmp_path)
