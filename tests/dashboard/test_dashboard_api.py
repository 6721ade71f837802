"""The dashboard's HTTP surface: who may see what, the JSON views against the store, and the
Prometheus text read back with prometheus_client's own parser."""

from __future__ import annotations

import json
import math
import time
import urllib.parse

import pytest
from dashtest_helpers import TOKEN, close_coordinator, job_config, start_coordinator, wait_until
from prometheus_client.parser import text_string_to_metric_families

from shardgrad.service.checkpoint import CheckpointManager
from shardgrad.service.dashboard import COOKIE, start_dashboard, stop_dashboard
from shardgrad.service.store import JobState, Store
from shardgrad.service.trainer import job_dir


def run_job(c, **changes):
    rec = c.manager.submit(job_config(**changes))
    done = c.manager.wait(rec.id, 60)
    assert done.state is JobState.SUCCEEDED, done.reason
    return done


def scrape(c) -> dict:
    """{(name, labels as a sorted tuple): value} of every sample on /metrics."""
    status, headers, body = c.request("/metrics", token=c.token)
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


# ---------------------------------------------------------------------- access
def test_healthz_answers_without_a_token(coordinator):
    status, headers, body = coordinator.request("/healthz", token=None)
    assert status == 200
    assert json.loads(body) == {"status": "ok"}


@pytest.mark.parametrize(
    "path", ["/api/v1/jobs", "/api/v1/workers", "/api/v1/overview", "/metrics"]
)
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_api_and_metrics_refuse_a_missing_or_wrong_token(coordinator, path, token):
    status, headers, body = coordinator.request(path, token=token)
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert b"bearer token" in body
    assert b"shardgrad_jobs" not in body


@pytest.mark.parametrize("path", ["/", "/workers", "/jobs/abc"])
def test_pages_send_a_browser_without_a_token_to_the_login_form(coordinator, path):
    status, headers, _ = coordinator.request(path, token=None)
    assert status == 303
    assert headers["location"] == "/login?" + urllib.parse.urlencode({"next": path})
    status, headers, body = coordinator.request(headers["location"], token=None)
    assert status == 200
    assert b'name="token"' in body
    assert f'value="{path}"'.encode() in body


def test_login_sets_a_cookie_that_opens_pages_and_api(coordinator):
    form = urllib.parse.urlencode({"token": TOKEN, "next": "/workers"}).encode()
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, _ = coordinator.request("/login", "POST", token=None, headers=ctype, body=form)
    assert status == 303 and headers["location"] == "/workers"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    name, value = cookie.split(";")[0].split("=", 1)
    assert name == COOKIE
    assert TOKEN not in value  # the cookie proves the token without carrying it

    jar = {"Cookie": f"{COOKIE}={value}"}
    status, _, body = coordinator.request("/workers", token=None, headers=jar)
    assert status == 200 and b"/static/app.js" in body
    status, _, body = coordinator.request("/api/v1/workers", token=None, headers=jar)
    assert status == 200 and len(json.loads(body)["workers"]) == 2

    forged = {"Cookie": f"{COOKIE}={TOKEN}"}
    assert coordinator.request("/api/v1/jobs", token=None, headers=forged)[0] == 401


def test_login_with_a_wrong_token_shows_the_form_again(coordinator):
    form = urllib.parse.urlencode({"token": "nope", "next": "/"}).encode()
    status, headers, body = coordinator.request(
        "/login",
        "POST",
        token=None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=form,
    )
    assert status == 401
    assert "set-cookie" not in headers
    assert b"not right" in body


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "\\\\evil"])
def test_login_never_redirects_off_site(coordinator, target):
    form = urllib.parse.urlencode({"token": TOKEN, "next": target}).encode()
    status, headers, _ = coordinator.request(
        "/login",
        "POST",
        token=None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=form,
    )
    assert status == 303 and headers["location"] == "/"


def test_page_is_self_contained(coordinator):
    """Every asset the page references is served by the dashboard itself."""
    status, headers, body = coordinator.request("/")
    assert status == 200
    assert "default-src 'self'" in headers["content-security-policy"]
    html = body.decode()
    assert "http://" not in html and "https://" not in html
    for asset in ("/static/app.js", "/static/app.css"):
        assert asset in html
        status, headers, content = coordinator.request(asset, token=None)
        assert status == 200 and content
        assert "http://" not in content.decode().replace("http://www.w3.org/2000/svg", "")


def test_static_files_cannot_escape_their_folder(coordinator):
    for path in ("/static/../dashboard.py", "/static/%2e%2e/dashboard.py", "/static/nope.js"):
        assert coordinator.request(path)[0] == 404


# ---------------------------------------------------------------------- JSON views
def test_job_views_match_the_store(coordinator):
    rec = run_job(coordinator)
    store = coordinator.manager.store
    jobs = coordinator.get_json("/api/v1/jobs")["jobs"]
    assert [j["id"] for j in jobs] == [rec.id]
    (j,) = jobs
    train = store.metrics(rec.id, kind="train")
    evals = store.metrics(rec.id, kind="eval")
    assert j["state"] == "SUCCEEDED" and j["step"] == j["total_steps"] == 20
    assert j["progress"] == 1.0
    assert j["loss"] == pytest.approx(train[-1].values["loss"])
    assert j["eval"]["step"] == 20
    assert j["eval"]["accuracy"] == pytest.approx(evals[-1].values["accuracy"])
    assert j["curve"]["step"] == list(range(1, 21))

    detail = coordinator.get_json(f"/api/v1/jobs/{rec.id}")
    assert detail["config"] == json.loads(store.job(rec.id).config_json)
    assert detail["model_available"] is True

    m = coordinator.get_json(f"/api/v1/jobs/{rec.id}/metrics")
    assert m["train"]["step"] == [r.step for r in train]
    assert m["train"]["loss"] == pytest.approx([r.values["loss"] for r in train])
    assert m["train"]["samples_per_second"] == pytest.approx(
        [r.values["samples_per_s"] for r in train]
    )
    assert m["eval"]["step"] == [5, 10, 15, 20]
    assert m["eval"]["loss"] == pytest.approx([r.values["loss"] for r in evals])

    later = coordinator.get_json(f"/api/v1/jobs/{rec.id}/metrics?after_step=15&after_eval=5")
    assert later["train"]["step"] == [16, 17, 18, 19, 20]
    assert later["eval"]["step"] == [10, 15, 20]

    thin = coordinator.get_json(f"/api/v1/jobs/{rec.id}/metrics?max_points=4")
    assert thin["train"]["step"][0] == 1 and thin["train"]["step"][-1] == 20
    assert len(thin["train"]["step"]) <= 5


def test_checkpoints_are_listed_newest_first(coordinator):
    rec = run_job(coordinator)
    steps = CheckpointManager(job_dir(coordinator.manager.state_dir, rec.id) / "checkpoints")
    expected = sorted(steps.steps(), reverse=True)
    assert expected == [20, 15]  # keep_checkpoints=2
    listed = coordinator.get_json(f"/api/v1/jobs/{rec.id}/checkpoints")["checkpoints"]
    assert [c["step"] for c in listed] == expected
    assert all(c["bytes"] > 0 for c in listed)
    detail = coordinator.get_json(f"/api/v1/jobs/{rec.id}")
    assert [c["step"] for c in detail["checkpoints"]] == expected


def test_unknown_jobs_and_endpoints_are_404(coordinator):
    for path in (
        "/api/v1/jobs/nope",
        "/api/v1/jobs/nope/metrics",
        "/api/v1/jobs/nope/checkpoints",
        "/api/v1/nothing",
        "/nothing",
    ):
        status, _, body = coordinator.request(path)
        assert status == 404, path
        assert json.loads(body)["error"]
    assert coordinator.request("/api/v1/jobs/x/metrics?after_step=a")[0] in (400, 404)


def test_overview_counts_jobs_and_workers(coordinator):
    run_job(coordinator)
    o = coordinator.get_json("/api/v1/overview")
    assert o["jobs"] == {"PENDING": 0, "RUNNING": 0, "SUCCEEDED": 1, "FAILED": 0, "STOPPED": 0}
    assert o["workers"]["IDLE"] == 2


def test_a_resumed_job_shows_each_step_once(bare_store):
    """Records past a job's checkpoint are deleted and redone; the curve follows, even when
    the dashboard never saw the job at its checkpoint step."""
    store, c = bare_store
    job = store.create_job("{}", name="resumed")
    for step in range(1, 11):
        store.add_metrics(job.id, step, "train", {"loss": 1.0 / step, "samples": 4})
    store.set_progress(job.id, 10, 20)
    first = c.get_json(f"/api/v1/jobs/{job.id}/metrics", token=None)
    assert first["train"]["step"] == list(range(1, 11))
    steps_before = scrape(c)[("shardgrad_steps_total", ())]

    store.delete_metrics_after(job.id, 4)  # a restart from the checkpoint at step 4
    for step in range(5, 13):
        store.add_metrics(job.id, step, "train", {"loss": 10.0 + step, "samples": 4})
    store.set_progress(job.id, 12)
    time.sleep(0.3)  # past the dashboard's refresh throttle
    again = c.get_json(f"/api/v1/jobs/{job.id}/metrics", token=None)
    assert again["train"]["step"] == list(range(1, 13))
    assert again["train"]["loss"][4:] == [10.0 + s for s in range(5, 13)]
    # the redone steps are work done again: the counter grows by them, and only them
    assert scrape(c)[("shardgrad_steps_total", ())] == steps_before + 8


@pytest.fixture
def bare_store(tmp_path):
    """A store with a dashboard on it and no coordinator: tests write records directly."""
    from dashtest_helpers import Coordinator

    store = Store(tmp_path / "state.db")
    server, port = start_dashboard(store, None, "127.0.0.1", 0)
    try:
        yield store, Coordinator(None, None, server, port, None)
    finally:
        stop_dashboard(server)
        store.close()


def test_straggler_is_flagged(bare_store):
    store, c = bare_store
    for w in ("w0", "w1", "w2", "w3"):
        store.upsert_worker(
            w,
            address=f"10.0.0.{w[1]}:7000",
            kind="grpc",
            state="IDLE",
            info={"device": "cuda:0", "hostname": f"node{w[1]}"},
        )
    store.set_worker_state("w3", "LOST")
    job = store.create_job("{}")
    for step in range(1, 11):
        compute = {"w0": 0.10, "w1": 0.12, "w2": 0.35, "w3": 0.9}
        store.add_metrics(job.id, step, "train", {"loss": 1.0, "worker_compute_seconds": compute})
    workers = {w["id"]: w for w in c.get_json("/api/v1/workers", token=None)["workers"]}
    assert workers["w2"]["straggler"] is True
    assert not any(workers[w]["straggler"] for w in ("w0", "w1", "w3"))  # a LOST one is gone
    assert workers["w0"]["step_time_s"] == pytest.approx(0.10)
    assert workers["w2"]["compute_seconds_total"] == pytest.approx(3.5)
    assert workers["w1"]["device"] == "cuda:0" and workers["w1"]["hostname"] == "node1"
    assert workers["w3"]["state"] == "LOST"


def test_uneven_shares_are_not_stragglers_when_counts_are_known(bare_store):
    store, c = bare_store
    for w in ("w0", "w1", "w2"):
        store.upsert_worker(w, kind="grpc", state="BUSY")
    job = store.create_job("{}")
    for step in range(1, 6):
        store.add_metrics(
            job.id,
            step,
            "train",
            {
                "worker_compute_seconds": {"w0": 0.3, "w1": 0.1, "w2": 0.1},
                "worker_micro_shards": {"w0": 3, "w1": 1, "w2": 1},
            },
        )
    workers = c.get_json("/api/v1/workers", token=None)["workers"]
    assert [w["straggler"] for w in workers] == [False, False, False]
    assert [w["step_time_s"] for w in workers] == pytest.approx([0.1, 0.1, 0.1])


def test_real_workers_report_their_compute_time(coordinator):
    rec = run_job(coordinator)
    train = coordinator.manager.store.metrics(rec.id, kind="train")
    workers = {w["id"]: w for w in coordinator.get_json("/api/v1/workers")["workers"]}
    assert set(workers) == {"inproc-0", "inproc-1"}
    for wid, w in workers.items():
        recent = [r.values["worker_compute_seconds"][wid] for r in train][-20:]
        assert w["step_time_s"] == pytest.approx(sum(recent) / len(recent))
        assert w["state"] == "IDLE" and w["pool"] == "inprocess" and w["device"] == "cpu"
        assert time.time() - w["last_heartbeat"] < 120


# ---------------------------------------------------------------------- Prometheus
def test_metrics_text_parses_and_matches_the_store(coordinator):
    rec = run_job(coordinator)
    store = coordinator.manager.store
    train = store.metrics(rec.id, kind="train")
    m = scrape(coordinator)
    assert m[("shardgrad_jobs", (("state", "SUCCEEDED"),))] == 1
    assert m[("shardgrad_jobs", (("state", "RUNNING"),))] == 0
    assert m[("shardgrad_steps_total", ())] == 20
    assert m[("shardgrad_samples_total", ())] == sum(r.values["samples"] for r in train)
    assert m[("shardgrad_step_seconds_count", ())] == 20
    assert m[("shardgrad_step_seconds_bucket", (("le", "+Inf"),))] == 20
    assert m[("shardgrad_step_seconds_sum", ())] == pytest.approx(
        sum(r.values["step_seconds"] for r in train)
    )
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in m.items()
        if name == "shardgrad_step_seconds_bucket"
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "histogram buckets must be cumulative"
    per_worker = {
        dict(labels)["worker"]: v
        for (name, labels), v in m.items()
        if name == "shardgrad_worker_compute_seconds_total"
    }
    expected: dict = {}
    for r in train:
        for w, s in r.values["worker_compute_seconds"].items():
            expected[w] = expected.get(w, 0.0) + s
    assert per_worker == pytest.approx(expected)
    assert m[("shardgrad_bytes_total", (("direction", "sent"),))] == sum(
        r.values["bytes_sent"] for r in train
    )
    assert m[("shardgrad_workers", (("state", "IDLE"),))] == 2
    assert m[("shardgrad_workers", (("state", "LOST"),))] == 0


def test_metrics_show_a_running_job_and_grow(tmp_path):
    def fault(worker_id, job_id, step, ids):
        time.sleep(0.03)

    c = start_coordinator(tmp_path, fault=fault)
    try:
        rec = c.manager.submit(job_config(steps=400, eval_fraction=0.0, checkpoint_interval=0))
        key = ("shardgrad_job_step", (("job_id", rec.id), ("name", "")))
        first = wait_until(lambda: scrape(c).get(key), what="a step of the running job")
        m = scrape(c)
        assert m[("shardgrad_jobs", (("state", "RUNNING"),))] == 1
        assert m[("shardgrad_job_total_steps", (("job_id", rec.id), ("name", "")))] == 400
        loss_key = ("shardgrad_job_loss", (("job_id", rec.id),))
        assert math.isfinite(wait_until(lambda: scrape(c).get(loss_key), what="a loss gauge"))
        wait_until(lambda: scrape(c)[key] > first + 2, what="the step gauge to grow")
        steps_before = scrape(c)[("shardgrad_steps_total", ())]
        wait_until(
            lambda: scrape(c)[("shardgrad_steps_total", ())] > steps_before,
            what="the step counter to grow",
        )
        c.manager.stop(rec.id, timeout=30)
        m = scrape(c)
        assert m[("shardgrad_jobs", (("state", "STOPPED"),))] == 1
        assert key not in m  # per-job gauges are for jobs in flight only
    finally:
        close_coordinator(c)


def test_a_deleted_job_leaves_every_view_and_the_totals_stay(bare_store):
    store, c = bare_store
    kept = store.create_job("{}", name="kept")
    gone = store.create_job("{}", name="gone")
    for job in (kept, gone):
        for step in range(1, 6):
            store.add_metrics(job.id, step, "train", {"loss": 1.0 / step, "samples": 4})
        store.set_progress(job.id, 5, 5)
        store.set_state(job.id, JobState.RUNNING)
        store.set_state(job.id, JobState.SUCCEEDED)
    assert {j["id"] for j in c.get_json("/api/v1/jobs", token=None)["jobs"]} == {kept.id, gone.id}
    metrics = c.get_json(f"/api/v1/jobs/{gone.id}/metrics", token=None)
    assert metrics["train"]["step"] == list(range(1, 6))
    steps = scrape(c)[("shardgrad_steps_total", ())]
    assert steps == 10

    assert store.delete_job(gone.id)
    time.sleep(0.3)  # past the dashboard's refresh throttle
    assert [j["id"] for j in c.get_json("/api/v1/jobs", token=None)["jobs"]] == [kept.id]
    for path in (
        f"/api/v1/jobs/{gone.id}",
        f"/api/v1/jobs/{gone.id}/metrics",
        f"/api/v1/jobs/{gone.id}/checkpoints",
    ):
        assert c.request(path, token=None)[0] == 404, path
    assert c.get_json("/api/v1/overview", token=None)
    assert c.get_json(f"/api/v1/jobs/{kept.id}", token=None)["step"] == 5
    # Counters never go down: the deleted job's steps were done.
    assert scrape(c)[("shardgrad_steps_total", ())] == steps
