"""The event log over the gRPC API (ListEvents), the SDK (`Client.events`, `follow_events`)
and the CLI (`shardgrad events`): a real coordinator with in-process workers, its events read
in order, filtered, paged and followed, bad requests refused naming the field, and every
view showing what the dashboard's `/api/v1/events` shows."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import grpc
import pytest
from clienttest_helpers import DATASET, mlp, run_ok, shardgrad

from shardgrad.client import AsyncClient, AuthenticationError, Client, InvalidArgumentError
from shardgrad.protos import coordinator_pb2 as pb
from shardgrad.protos import coordinator_pb2_grpc
from shardgrad.service import events as service_events

TIMEOUT = 60.0


def _until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


@pytest.fixture(scope="module")
def api(coordinator):
    """A raw stub and the metadata that authenticates it."""
    channel = grpc.insecure_channel(coordinator.dial_address)
    try:
        yield (
            coordinator_pb2_grpc.CoordinatorStub(channel),
            (("authorization", f"Bearer {coordinator.token}"),),
        )
    finally:
        channel.close()


def list_events(api, **fields) -> pb.ListEventsResponse:
    stub, metadata = api
    return stub.ListEvents(pb.ListEventsRequest(**fields), metadata=metadata, timeout=30)


def run_job(coordinator, **options) -> str:
    """A job trained to the end, once its last event is in the log (the coordinator writes
    it just after the job's final state)."""
    with Client(coordinator.dial_address, token=coordinator.token) as c:
        job = c.submit(mlp(), DATASET, batch_size=20, micro_shards=2, progress=False, **options)
        assert job.wait(progress=False, timeout=TIMEOUT).state == "SUCCEEDED"
        _until(lambda: c.events(job.id, "job_succeeded"))
    return job.id


@pytest.fixture(scope="module")
def done_jobs(coordinator):
    return run_job(coordinator, steps=6), run_job(coordinator, steps=4, checkpoint_interval=2)


def dashboard_events(dashboard_url, token, query: str) -> list[dict]:
    request = urllib.request.Request(
        f"{dashboard_url}/api/v1/events?{query}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["events"]


# ---------------------------------------------------------------------- the RPC
def test_a_finished_jobs_events_come_in_order_as_stored(api, coordinator, done_jobs):
    job_id = done_jobs[0]
    reply = list_events(api, job_id=job_id)
    got = list(reply.events)
    kinds = [e.kind for e in got]
    assert kinds[0] == "job_submitted" and kinds[-1] == "job_succeeded"
    assert "job_started" in kinds and kinds.index("job_started") < len(kinds) - 1
    ids = [e.id for e in got]
    assert ids == sorted(set(ids)) and ids[0] > 0
    assert [e.time for e in got] == sorted(e.time for e in got)
    assert reply.last_id == ids[-1]
    assert {e.job_id for e in got} == {job_id}
    stored = coordinator.manager.store.events(job_id=job_id, limit=1000)
    assert [(e.id, e.time, e.kind, e.level, e.job_id, e.worker_id, e.message) for e in got] == [
        (s.id, s.time, s.kind, s.level, s.job_id, s.worker_id or "", s.message) for s in stored
    ]


def test_events_filter_by_job_and_by_kind(api, done_jobs):
    first, second = done_jobs
    everything = list(list_events(api, limit=1000).events)
    a = [e.id for e in list_events(api, job_id=first, limit=1000).events]
    b = [e.id for e in list_events(api, job_id=second, limit=1000).events]
    assert a and b and not set(a) & set(b)
    assert set(a) | set(b) <= {e.id for e in everything}
    # The second job checkpoints every 2 of its 4 steps; the first only at its end.
    b_kinds = [e.kind for e in list_events(api, job_id=second, kinds=["checkpoint_written"]).events]
    assert b_kinds == ["checkpoint_written", "checkpoint_written"]

    ended = list(list_events(api, kinds=["job_succeeded"], limit=1000).events)
    assert {e.kind for e in ended} == {"job_succeeded"}
    assert {first, second} <= {e.job_id for e in ended}
    # The coordinator's own events and its workers' belong to no job.
    own = list(list_events(api, kinds=["worker_live", "coordinator_started"], limit=1000).events)
    assert {e.kind for e in own} == {"worker_live", "coordinator_started"}
    assert {e.job_id for e in own} == {""}
    assert {e.worker_id for e in own if e.kind == "worker_live"} == {"inproc-0", "inproc-1"}
    assert own == [e for e in everything if e.kind in ("worker_live", "coordinator_started")]

    # Kinds are filtered before the limit counts: the first of a kind, however far in.
    (one,) = list_events(api, kinds=["job_succeeded"], limit=1).events
    assert one == ended[0]
    both = list_events(api, job_id=first, kinds=["job_started", "job_succeeded"]).events
    assert [e.kind for e in both] == ["job_started", "job_succeeded"]
    # An id that names no job (or a deleted one) is no error: it has no events (left).
    none = list_events(api, job_id="no-such-job", after_id=3)
    assert list(none.events) == [] and none.last_id == 3


def test_after_id_pages_through_the_log_and_the_default_limit_is_200(api, coordinator, done_jobs):
    everything = list(list_events(api, limit=1000).events)
    assert 10 < len(everything) < 1000
    paged, after = [], 0
    while True:
        page = list_events(api, after_id=after, limit=3)
        assert len(page.events) <= 3
        if not page.events:
            assert page.last_id == after
            break
        paged.extend(page.events)
        after = page.last_id
    assert paged == everything
    newest = list(list_events(api, limit=2, newest_first=True).events)
    assert newest == everything[-2:][::-1]
    newest_of_job = list_events(api, job_id=done_jobs[0], newest_first=True, limit=1).events
    assert [e.kind for e in newest_of_job] == ["job_succeeded"]

    last = everything[-1].id
    store = coordinator.manager.store
    added = [store.add_event("workers_scaled", f"scaled to {i}") for i in range(205)]
    default = list_events(api, after_id=last)
    assert [e.id for e in default.events] == added[:200]
    assert default.last_id == added[199]
    assert [e.id for e in list_events(api, after_id=last, limit=1000).events] == added


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"job_id": "../etc/passwd"}, "job_id"),
        ({"job_id": "a" * 65}, "job_id"),
        ({"job_id": "job\n1"}, "job_id"),
        ({"kinds": ["no_such_kind"]}, "kinds[0]"),
        ({"kinds": ["job_started", "JOB_STARTED"]}, "kinds[1]"),
        ({"kinds": ["job_started", ""]}, "kinds[1]"),
        ({"kinds": ["job_started"] * 101}, "kinds"),
        ({"after_id": -1}, "after_id"),
        ({"limit": -1}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": 2**31 - 1}, "limit"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(api, fields, field):
    with pytest.raises(grpc.RpcError) as err:
        list_events(api, **fields)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}: "), err.value.details()


def test_the_limits_themselves_are_accepted(api):
    assert len(list_events(api, limit=1000).events) <= 1000
    assert len(list_events(api, limit=1).events) == 1
    every_kind = sorted(service_events.KINDS)
    assert list_events(api, kinds=every_kind, limit=1000) == list_events(api, limit=1000)


def test_a_missing_or_wrong_token_is_unauthenticated(api, coordinator):
    stub, _ = api
    for metadata in ((), (("authorization", f"Bearer {coordinator.token}x"),)):
        with pytest.raises(grpc.RpcError) as err:
            stub.ListEvents(pb.ListEventsRequest(), metadata=metadata, timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with Client(coordinator.dial_address, token="wrong") as c:
        with pytest.raises(AuthenticationError):
            c.events()


# ---------------------------------------------------------------------- SDK and CLI
def test_sdk_and_cli_show_what_the_dashboard_shows(
    client, coordinator, dashboard_url, env, done_jobs
):
    first, _ = done_jobs
    for query, kwargs, argv in (
        ("limit=1000", {"limit": 1000}, ["--limit", "1000"]),
        (f"job_id={first}", {"job_id": first}, ["--job", first]),
        ("limit=3", {"limit": 3}, ["--limit", "3"]),
    ):
        shown = dashboard_events(dashboard_url, coordinator.token, query)  # newest first
        assert shown
        newest = client.events(newest_first=True, **kwargs)  # both default to 200
        assert [e.to_dict() for e in newest] == shown
        oldest = client.events(**{**kwargs, "limit": 1000})
        assert [e.to_dict() for e in oldest][-len(shown) :] == shown[::-1]

        listed = json.loads(run_ok("events", *argv, "--json", env=env).stdout)
        assert listed["events"] == shown[::-1]  # the newest, oldest first

        table = run_ok("events", *argv, env=env).stdout.splitlines()
        assert table[0].split() == ["ID", "TIME", "LEVEL", "KIND", "JOB", "WORKER", "MESSAGE"]
        rows = [line.split() for line in table[1:]]
        assert [int(r[0]) for r in rows] == [e["id"] for e in shown[::-1]]
        assert [r[4] for r in rows] == [e["kind"] for e in shown[::-1]]
        assert [r[5] for r in rows] == [e["job_id"] or "-" for e in shown[::-1]]

    kinds = ["job_started", "job_succeeded"]
    by_kind = json.loads(
        run_ok(
            "events", "--job", first, "--kind", kinds[0], "--kind", kinds[1], "--json", env=env
        ).stdout
    )["events"]
    assert [e["kind"] for e in by_kind] == kinds
    assert [e.to_dict() for e in client.events(first, kinds)] == by_kind


def test_sdk_and_cli_refuse_bad_arguments_with_the_coordinators_message(client, env):
    with pytest.raises(InvalidArgumentError, match=r"^kinds\[0\]: 'nope' is not an event kind"):
        client.events(kinds="nope")
    with pytest.raises(InvalidArgumentError, match="^limit: "):
        client.events(limit=5000)
    proc = shardgrad("events", "--kind", "nope", env=env)
    assert proc.returncode == 6 and "kinds[0]" in proc.stderr
    proc = shardgrad("events", "--limit", "0", "--json", env=env)
    assert proc.returncode == 0  # 0 is the coordinator's default page
    assert len(json.loads(proc.stdout)["events"]) == min(200, len(client.events(limit=1000)))
    proc = shardgrad("events", "--job", "../x", env=env)
    assert proc.returncode == 6 and "job_id" in proc.stderr


def test_follow_events_reads_a_running_job_live_and_ends_with_it(client, coordinator):
    from clienttest_models import SlowNet

    job = client.submit(
        SlowNet(delay=0.05),
        DATASET,
        batch_size=20,
        steps=20,
        micro_shards=2,
        checkpoint_interval=5,
        progress=False,
    )
    seen, running_at_start = [], None
    for e in client.follow_events(job.id, poll_interval=0.05):
        seen.append(e)
        if e.kind == "job_started":
            running_at_start = not job.status().done
    assert running_at_start, "the events came only after the job ended"
    kinds = [e.kind for e in seen]
    assert kinds[0] == "job_submitted" and kinds[-1] == "job_succeeded"
    assert kinds.count("checkpoint_written") == 4
    assert job.status().state == "SUCCEEDED"
    assert seen == client.events(job.id, limit=1000)

    # Following only kinds that never end a job still ends once the job has.
    started = list(client.follow_events(job.id, kinds=["job_started"], poll_interval=0.05))
    assert [e.kind for e in started] == ["job_started"]
    # From an id on: only what came after it.
    tail = list(client.follow_events(job.id, after_id=seen[-3].id, poll_interval=0.05))
    assert tail == seen[-2:]


def test_cli_follows_a_job_to_its_end_with_its_exit_code(client, env, done_jobs):
    first, _ = done_jobs
    expected = [e.to_dict() for e in client.events(first)]
    proc = run_ok("events", "--job", first, "--follow", "--json", env=env, timeout=60)
    assert [json.loads(line) for line in proc.stdout.splitlines()] == expected
    proc = run_ok("events", "--job", first, "--follow", "--limit", "2", env=env, timeout=60)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["ID", "TIME", "LEVEL", "KIND", "JOB", "WORKER", "MESSAGE"]
    assert [int(line.split()[0]) for line in lines[1:]] == [e["id"] for e in expected[-2:]]
    assert lines[-1].split()[4] == "job_succeeded"


def test_async_client_reads_and_follows_events(coordinator, done_jobs):
    first, _ = done_jobs

    async def main():
        async with AsyncClient(coordinator.dial_address, token=coordinator.token) as ac:
            listed = await ac.events(first, limit=1000)
            followed = [e async for e in ac.follow_events(first, poll_interval=0.05)]
            newest = await ac.events(newest_first=True, limit=1)
            return listed, followed, newest

    listed, followed, newest = asyncio.run(main())
    with Client(coordinator.dial_address, token=coordinator.token) as c:
        assert listed == followed == c.events(first, limit=1000)
        assert newest == c.events(newest_first=True, limit=1)
    assert listed[-1].kind == "job_succeeded"
