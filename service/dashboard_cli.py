"""`shardgrad serve --dashboard-port`: the options, and starting the dashboard beside the API.

Kept apart from `dashboard` so that building the command line imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import logging

from shardgrad.worker.console import announce

log = logging.getLogger(__name__)

DEFAULT_PORT = 8275


def add_dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dashboard-port",
        type=int,
        default=None,
        metavar="PORT",
        help=f"port of the dashboard (web page, /api/v1 JSON, /metrics, /healthz); default "
        f"{DEFAULT_PORT}, or a free one when that is taken; 0: a free one; -1: no dashboard",
    )
    parser.add_argument(
        "--dashboard-host",
        default=None,
        help="address the dashboard listens on (default: --host)",
    )


def serve_dashboard(args: argparse.Namespace, coordinator):
    """Start the dashboard of a started Coordinator as the options say; returns the server
    (stop it with `.stop()`) or None. Its URL is printed and added to the state directory's
    coordinator.json (key "dashboard"), where clients on this machine find it."""
    from .dashboard import start_dashboard  # noqa: PLC0415
    from .fsutil import atomic_write  # noqa: PLC0415

    port = args.dashboard_port
    if port is not None and port < 0:
        return None
    host = args.dashboard_host or args.host
    try:
        server, bound = start_dashboard(
            coordinator.manager,
            coordinator.token,
            host,
            DEFAULT_PORT if port is None else port,
            coordinator.options.api_nice,
        )
    except OSError as exc:
        if port is not None:
            raise OSError(f"cannot serve the dashboard on {host}:{port}: {exc}") from None
        log.warning("dashboard port %d is taken (%s); using a free one", DEFAULT_PORT, exc)
        server, bound = start_dashboard(
            coordinator.manager, coordinator.token, host, 0, coordinator.options.api_nice
        )
    dial = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
    url = f"http://{f'[{dial}]' if ':' in dial else dial}:{bound}"
    endpoint = coordinator.state_dir / "coordinator.json"
    try:
        body = json.loads(endpoint.read_text())
        body["dashboard"] = url
        atomic_write(endpoint, (json.dumps(body, indent=1) + "\n").encode())
    except (OSError, ValueError) as exc:
        log.warning("could not record the dashboard in %s: %s", endpoint, exc)
    announce(f"shardgrad dashboard on {url}/")
    return server
