"""The coordinator's dashboard: an HTTP endpoint beside the gRPC API.

- `/`, `/jobs/<id>`, `/workers`: one self-contained page (HTML, JS and CSS served from this
  package; nothing from a CDN, so it works offline) with jobs, live curves and workers.
- `/api/v1/...`: the same data as JSON, and the event log (`/api/v1/events`).
- `/metrics`: Prometheus text.
- `/healthz`: liveness, without credentials (for probes).

Everything but `/healthz`, `/login` and the static files needs the coordinator's bearer token,
either as an `Authorization: Bearer` header (scripts, Prometheus' `authorization` setting) or
as the cookie the login form sets (browsers). The cookie holds an HMAC of the token, never
the token itself. The page is read-only, so a stolen cookie cannot change anything.

    server, port = start_dashboard(manager, token, "127.0.0.1", 8275)
    ...
    stop_dashboard(server)
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import math
import mimetypes
import socket
import threading
import urllib.parse
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import priority
from .dashboard_cli import DEFAULT_PORT
from .dashboard_data import DashboardData
from .dashboard_prom import CONTENT_TYPE as PROM_CONTENT_TYPE
from .dashboard_prom import make_registry, render
from .events import READ_DEFAULT, READ_MAX
from .store import Store

log = logging.getLogger(__name__)

COOKIE = "shardgrad_session"
_COOKIE_MAX_AGE = 7 * 24 * 3600
_STATIC = Path(__file__).resolve().parent / "dashboard_static"
_PAGES = ("/", "/workers")
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
_MAX_BODY = 4096


def session_value(token: str) -> str:
    """The cookie value for `token`: proves knowledge of the token without carrying it."""
    return hmac.new(token.encode(), b"shardgrad-dashboard-session/1", hashlib.sha256).hexdigest()


class DashboardServer(ThreadingHTTPServer):
    """A threaded HTTP server serving one coordinator's dashboard."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, data: DashboardData, token: str | None, api_nice: int = 0) -> None:
        self.data = data
        self.api_nice = api_nice
        self.token = token
        self.session = session_value(token) if token else None
        self.registry = make_registry(data)
        self.thread: threading.Thread | None = None
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request_thread(self, request, client_address) -> None:
        # Each request's thread serves at the API's priority (see service.priority).
        priority.lower_this_thread(self.api_nice)
        super().process_request_thread(request, client_address)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self.thread is not None and self.thread.is_alive():
            self.shutdown()
            self.thread.join(timeout)
        self.server_close()


def _sources(manager_or_store: Any) -> tuple[Store, Path, Any]:
    store = getattr(manager_or_store, "store", manager_or_store)
    if not isinstance(store, Store):
        raise TypeError(f"expected a JobManager or a Store, got {type(manager_or_store).__name__}")
    state_dir = getattr(manager_or_store, "state_dir", None)
    pool = getattr(manager_or_store, "pool", None)
    return store, Path(state_dir) if state_dir is not None else store.path.parent, pool


def start_dashboard(
    manager_or_store: Any,
    token: str | None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    api_nice: int = 0,
) -> tuple[DashboardServer, int]:
    """Serve the dashboard of a JobManager (or a bare Store) on a daemon thread.

    `token` None serves without authentication (only sensible on a private loopback).
    `port` 0 picks a free port. Returns the server (call `stop_dashboard` on it) and the
    port it is bound to.
    """
    store, state_dir, pool = _sources(manager_or_store)
    data = DashboardData(store, state_dir, pool)
    server = DashboardServer((host, port), data, token, api_nice)
    server.thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.25}, name="sg-dashboard"
    )
    server.thread.daemon = True
    server.thread.start()
    log.info("dashboard on http://%s:%d/", host, server.port)
    return server, server.port


def stop_dashboard(server: DashboardServer, timeout: float = 5.0) -> None:
    server.stop(timeout)


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "shardgrad-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds an idle keep-alive connection may hold its thread

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s %s", self.address_string(), format % args)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        cache: str = "no-store",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", _CSP)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(_finite(obj), separators=(",", ":")).encode()
        self._send(status, body, "application/json", headers)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message, "status": status})

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(
            HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": location, **(headers or {})}
        )

    # ------------------------------------------------------------------ auth
    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(
            header[len("Bearer ") :].strip().encode(), token.encode()
        ):
            return True
        try:
            cookies = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return False
        morsel = cookies.get(COOKIE)
        return morsel is not None and hmac.compare_digest(
            morsel.value.encode(), self.server.session.encode()
        )

    def _deny(self, path: str) -> None:
        if path.startswith("/api/") or path == "/metrics":
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {"error": "missing or wrong bearer token", "status": 401},
                {"WWW-Authenticate": 'Bearer realm="shardgrad"'},
            )
        else:
            self._redirect("/login?" + urllib.parse.urlencode({"next": path}))

    # ------------------------------------------------------------------ methods
    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query)
        try:
            if path == "/healthz":
                return self._healthz()
            if path.startswith("/static/"):
                return self._static(path[len("/static/") :])
            if path == "/login":
                return self._login_page(_safe_next(query.get("next", ["/"])[0]), error="")
            if path == "/favicon.ico":
                return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon", cache="max-age=86400")
            if not self._authorized():
                return self._deny(path)
            if path == "/metrics":
                return self._send(HTTPStatus.OK, render(self.server.registry), PROM_CONTENT_TYPE)
            if path.startswith("/api/"):
                return self._api(path, query)
            if path in _PAGES or (path.startswith("/jobs/") and path.count("/") == 2):
                return self._static("index.html", page=True)
            return self._error(HTTPStatus.NOT_FOUND, f"no page {path}")
        except BrokenPipeError:
            pass
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            log.exception("dashboard request %s failed", self.path)
            try:
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {exc}")
            except OSError:
                pass

    def do_POST(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/logout":
            expired = f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
            return self._redirect("/login", {"Set-Cookie": expired})
        if url.path != "/login":
            return self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"POST {url.path} is not allowed")
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "login form too large")
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        given = form.get("token", [""])[0].strip()
        target = _safe_next(form.get("next", ["/"])[0])
        token = self.server.token
        if token is None:
            return self._redirect(target)
        if not hmac.compare_digest(given.encode(), token.encode()):
            return self._login_page(target, error="That token is not right.", status=401)
        cookie = (
            f"{COOKIE}={self.server.session}; Path=/; Max-Age={_COOKIE_MAX_AGE}; HttpOnly; "
            "SameSite=Strict"
        )
        return self._redirect(target, {"Set-Cookie": cookie})

    # ------------------------------------------------------------------ endpoints
    def _healthz(self) -> None:
        try:
            self.server.data.store.list_workers()
        except Exception as exc:  # noqa: BLE001
            return self._json(
                HTTPStatus.SERVICE_UNAVAILABLE, {"status": "error", "error": str(exc)}
            )
        return self._json(HTTPStatus.OK, {"status": "ok"})

    def _static(self, name: str, page: bool = False) -> None:
        path = (_STATIC / name).resolve()
        if _STATIC not in path.parents or not path.is_file():
            return self._error(HTTPStatus.NOT_FOUND, f"no file {name}")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "text/javascript"):
            ctype += "; charset=utf-8"
        self._send(HTTPStatus.OK, path.read_bytes(), ctype, cache="no-cache")

    def _login_page(self, target: str, error: str, status: int = 200) -> None:
        template = (_STATIC / "login.html").read_text()
        body = template.replace("{{next}}", html.escape(target)).replace(
            "{{error}}", html.escape(error)
        )
        self._send(status, body.encode(), "text/html; charset=utf-8")

    def _api(self, path: str, query: dict) -> None:
        data = self.server.data
        parts = [p for p in path.split("/") if p][2:]  # after "api", "v1"
        if not path.startswith("/api/v1/"):
            return self._error(HTTPStatus.NOT_FOUND, "the API lives under /api/v1/")
        if parts == ["overview"]:
            return self._json(HTTPStatus.OK, data.overview())
        if parts == ["jobs"]:
            return self._json(HTTPStatus.OK, {"jobs": data.jobs()})
        if parts == ["workers"]:
            return self._json(HTTPStatus.OK, {"workers": data.workers()})
        if parts == ["events"]:
            return self._events(query)
        if len(parts) >= 2 and parts[0] == "jobs":
            job_id = parts[1]
            if len(parts) == 2:
                job = data.job(job_id)
                if job is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"no job {job_id}")
                return self._json(HTTPStatus.OK, job)
            if parts[2:] == ["metrics"]:
                try:
                    after = int(query.get("after_step", ["-1"])[0])
                    after_eval = int(query.get("after_eval", [str(after)])[0])
                    max_points = int(query.get("max_points", ["2000"])[0])
                except ValueError:
                    return self._error(
                        HTTPStatus.BAD_REQUEST,
                        "after_step, after_eval and max_points must be integers",
                    )
                out = data.metrics(job_id, after, max(1, min(max_points, 100_000)), after_eval)
                if out is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"no job {job_id}")
                return self._json(HTTPStatus.OK, out)
            if parts[2:] == ["checkpoints"]:
                if data.record(job_id) is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"no job {job_id}")
                return self._json(HTTPStatus.OK, {"checkpoints": data.checkpoints(job_id)})
        return self._error(HTTPStatus.NOT_FOUND, f"no API endpoint {path}")

    def _events(self, query: dict) -> None:
        """`?job_id=&since_id=&limit=&order=`: newest first by default (a live view); with
        `order=oldest` the oldest after `since_id` first, for reading the whole log in pages."""
        try:
            since_id = int(query.get("since_id", ["0"])[0] or 0)
            limit = int(query.get("limit", [""])[0] or READ_DEFAULT)
        except ValueError:
            return self._error(HTTPStatus.BAD_REQUEST, "since_id and limit must be integers")
        order = query.get("order", ["newest"])[0]
        if order not in ("newest", "oldest"):
            return self._error(HTTPStatus.BAD_REQUEST, "order must be 'newest' or 'oldest'")
        job_id = query.get("job_id", [""])[0] or None
        out = self.server.data.events(
            job_id, max(0, since_id), max(1, min(limit, READ_MAX)), order == "newest"
        )
        return self._json(HTTPStatus.OK, out)


def _safe_next(target: str) -> str:
    """Only same-site paths: never an open redirect to another host."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _finite(obj: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
