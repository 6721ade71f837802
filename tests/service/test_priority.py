"""The threads answering API and dashboard requests run at a lower CPU priority than the
rest of the coordinator (its training loops), so busy clients slow their answers first."""

from __future__ import annotations

import os
import sys
import threading
import urllib.request

import pytest

from shardgrad.client import Client
from shardgrad.service import priority
from shardgrad.service.dashboard import start_dashboard, stop_dashboard
from shardgrad.service.server import Coordinator, ServeOptions
from shardgrad.service.store import Store

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)


def _nice(tid: int | None = None) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid if tid is not None else threading.get_native_id())


def _in_thread(fn):
    out = {}

    def run():
        out["result"] = fn()
        out["nice"] = _nice()

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out


def test_a_thread_lowers_only_its_own_priority_and_never_past_19():
    base = _nice()
    seen = _in_thread(lambda: priority.lower_this_thread(5))
    assert seen == {"result": True, "nice": min(19, base + 5)}
    assert _nice() == base  # the calling thread, and so the process's other threads, unchanged
    assert _in_thread(lambda: priority.lower_this_thread(40))["nice"] == 19
    assert _in_thread(lambda: priority.lower_this_thread(0)) == {"result": False, "nice": base}


def _nice_values_of_this_process() -> dict[int, int]:
    values = {}
    for name in os.listdir("/proc/self/task"):
        try:
            values[int(name)] = _nice(int(name))
        except OSError:  # the thread ended meanwhile
            pass
    return values


def test_the_api_threads_of_a_coordinator_run_below_its_other_threads(tmp_path):
    base = _nice()
    opts = ServeOptions(state_dir=tmp_path / "state", pool="inprocess", local_workers=1, api_nice=7)
    coordinator = Coordinator(opts).start()
    try:
        before = _nice_values_of_this_process()
        with Client(coordinator.dial_address, token=coordinator.token) as client:
            client.jobs()  # a handler thread starts, at the API's priority
        after = _nice_values_of_this_process()
    finally:
        coordinator.stop()
    started = {tid: nice for tid, nice in after.items() if tid not in before}
    assert min(19, base + 7) in started.values()
    assert after[threading.get_native_id()] == base
    assert base in after.values()  # the coordinator's own threads keep theirs


def test_dashboard_requests_are_served_at_the_api_priority(tmp_path):
    store = Store(tmp_path / "state.db")
    seen: list[int] = []
    server, port = start_dashboard(store, None, "127.0.0.1", 0, api_nice=4)
    try:
        handler = server.RequestHandlerClass
        old = handler.do_GET

        def spying(self):
            seen.append(_nice())
            return old(self)

        handler.do_GET = spying
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                r.read()
        finally:
            handler.do_GET = old
    finally:
        stop_dashboard(server)
        store.close()
    assert seen == [min(19, _nice() + 4)]
