"""The dashboard page in a real browser (headless Chromium): log in, see a running job, watch
its loss curve grow and its events arrive, open the job's page and the workers page."""

from __future__ import annotations

import json
import time

import pytest
from dashtest_chromium import Browser, ensure_chromium
from dashtest_helpers import TOKEN, close_coordinator, job_config, start_coordinator


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why = ensure_chromium()
    if path is None:
        pytest.skip(why)
    return path


@pytest.fixture
def browser(chromium, tmp_path):
    b = Browser(chromium, tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def slow_coordinator(tmp_path):
    """A coordinator whose steps take a little while, so a job stays RUNNING for a minute."""

    def fault(worker_id, job_id, step, ids):
        time.sleep(0.04)

    c = start_coordinator(tmp_path, fault=fault)
    try:
        yield c
    finally:
        close_coordinator(c)


def js(value) -> str:
    return json.dumps(value)


def test_page_logs_in_shows_a_running_job_and_its_curve_grows(slow_coordinator, browser):
    c = slow_coordinator
    rec = c.manager.submit(
        job_config(name="live-job", steps=2000, eval_interval=10, checkpoint_interval=0)
    )
    page = browser.new_page()
    page.navigate(c.url + "/")

    # Without the token the page is the login form; the form sets the cookie.
    page.wait_for("location.pathname === '/login' && !!document.getElementById('token')")
    page.evaluate(
        f"document.getElementById('token').value = {js(TOKEN)};"
        "document.getElementById('login-form').submit(); true"
    )
    page.wait_for("location.pathname === '/' && !!document.getElementById('jobs-table')")

    row = f"document.querySelector('tr[data-job-id={js(rec.id)}]')"
    page.wait_for(f"{row} && {row}.dataset.state === 'RUNNING'")
    assert "live-job" in page.evaluate(f"{row}.textContent")

    # The live loss curve gains points as the job trains, without reloading the page.
    points = "Number(document.getElementById('chart-loss').dataset.points)"
    first = page.wait_for(f"{points} >= 2 && {points}")
    page.wait_for(f"{points} >= {first + 5}", timeout=30)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert (
        page.evaluate(
            "document.querySelector('#chart-loss polyline').getAttribute('points').split(' ').length"
        )
        >= first + 5
    )
    assert page.evaluate("document.getElementById('throughput').textContent").endswith("samples/s")

    # The event log: newest first, coloured by level, new events arrive without a reload, and
    # choosing the job shows only its events.
    rows = "[...document.querySelectorAll('#events-table tbody tr')]"
    page.wait_for(f"{rows}.some((r) => r.dataset.kind === 'job_started')")
    ids = page.evaluate(f"{rows}.map((r) => Number(r.dataset.eventId))")
    assert ids == sorted(ids, reverse=True)
    assert "worker_live" in page.evaluate(f"{rows}.map((r) => r.dataset.kind)")
    c.manager.store.add_event("checkpoint_failed", "disk full", level="warning", job_id=rec.id)
    newest = f"{rows}[0]"
    page.wait_for(f"{newest}.dataset.kind === 'checkpoint_failed'")
    assert page.evaluate(f"{newest}.classList.contains('level-warning')")
    colour = "(r) => getComputedStyle(r.querySelector('.badge')).backgroundColor"
    assert page.evaluate(f"({colour})({newest})") != page.evaluate(
        f"({colour})({rows}.find((r) => r.dataset.level === 'info'))"
    )
    page.evaluate(
        f"(() => {{ const sel = document.getElementById('events-job'); sel.value = {js(rec.id)};"
        "sel.dispatchEvent(new Event('change')); return true; })()"
    )
    only_job = f"{rows}.length > 0 && {rows}.every((r) => r.dataset.jobId === {js(rec.id)})"
    page.wait_for(only_job)

    # The job's own page: state, step, loss curve and configuration.
    page.navigate(f"{c.url}/jobs/{rec.id}")
    page.wait_for("!!document.getElementById('config')")
    config = json.loads(page.evaluate("document.getElementById('config').textContent"))
    assert config["steps"] == 2000 and config["name"] == "live-job"
    step = "Number(document.querySelector('[data-field=step]').textContent.split(' / ')[0].replace(/,/g, ''))"
    seen = page.wait_for(f"{step} > 0 && {step}")
    page.wait_for(f"{step} > {seen}", timeout=30)
    page.wait_for(f"{points} > 0")
    page.wait_for("Number(document.getElementById('chart-accuracy').dataset.points) > 0", 30)
    page.wait_for(f"{only_job} && {rows}.some((r) => r.dataset.kind === 'job_submitted')")

    # Workers: both in-process workers, with their device.
    page.navigate(c.url + "/workers")
    page.wait_for("document.querySelectorAll('#workers-table tbody tr').length === 2")
    text = page.evaluate("document.getElementById('workers-table').textContent")
    assert "inproc-0" in text and "inproc-1" in text and "cpu" in text

    # Stopping the job shows on the jobs page, and at once in the event log below the workers.
    c.manager.stop(rec.id, timeout=30)
    page.wait_for(f"{rows}.length > 0 && {rows}[0].dataset.kind === 'job_stopped'")
    page.navigate(c.url + "/")
    page.wait_for(f"{row} && {row}.dataset.state === 'STOPPED'")
