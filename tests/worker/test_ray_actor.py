"""The same compute as Ray actors: parameters as one ObjectRef per step."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from workertest_helpers import cut, make_job

import shardgrad as sg
from shardgrad import nn
from shardgrad.protos import worker_pb2
from shardgrad.worker import messages, reduction
from shardgrad.worker.compute import GradientComputer
from shardgrad.worker.local_channel import LocalCallError, LocalChannel
from shardgrad.worker.ray_actor import create_actors


@pytest.fixture(scope="module")
def actors(ray_session):
    handles = create_actors(2, num_cpus=1)
    try:
        yield handles
    finally:
        for h in handles:
            ray_session.kill(h)


def _local(spec, data, flat, step, shards):
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step)
    return computer.compute(step, shards)


def test_actors_split_a_step_and_match_one_process_bit_for_bit(ray_session, actors):
    ray = ray_session
    sg.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    spec, data, flat = make_job(model, n=80, k=8, seed=9)
    data_ref = ray.put(data)
    infos = ray.get([a.load_job.remote(spec, data_ref) for a in actors], timeout=60)
    assert {i["device"] for i in infos} == {"cpu"} and {i["threads"] for i in infos} == {1}

    shards = cut(80, 8)
    for step in (0, 1):
        params_ref = ray.put(flat)  # once per step, shared by every actor
        parts = ([0, 1, 2, 3, 4], [5, 6, 7])
        results = ray.get(
            [
                a.compute.remote(spec.job_id, step, params_ref, [shards[i] for i in part])
                for a, part in zip(actors, parts)
            ],
            timeout=60,
        )
        assert not results[0].grads.flags.writeable  # read in place from the object store
        blocks = {}
        for r in results:
            blocks.update(r.block_arrays())
        total = reduction.tree_sum(blocks, 8, lambda a, b: a + b)
        expected = _local(spec, data, flat, step, shards)
        assert total.tobytes() == expected.grads[0].tobytes()
        flat = flat - 0.01 * total  # a different step next time

    assert ray.get(actors[0].release_job.remote(spec.job_id), timeout=30) is True
    with pytest.raises(ray.exceptions.RayTaskError, match="not loaded"):
        ray.get(actors[0].compute.remote(spec.job_id, 2, ray.put(flat), shards[:1]), timeout=30)


def test_100mb_parameters_cross_ray(ray_session, actors):
    ray = ray_session
    sg.manual_seed(0)
    model = nn.Linear(5000, 5000)
    spec, data, flat = make_job(model, n=4, features=5000, classes=5000, k=2, job_id="big")
    assert flat.nbytes >= 100_000_000
    ray.get(actors[1].load_job.remote(spec, ray.put(data)), timeout=120)
    shards = [(0, np.array([0])), (1, np.array([3]))]
    result = ray.get(actors[1].compute.remote(spec.job_id, 0, ray.put(flat), shards), timeout=120)
    expected = _local(spec, data, flat, 0, shards)
    assert result.grads.shape == (1, 25_005_000)
    assert np.array_equal(result.grads, expected.grads)
    ray.get(actors[1].release_job.remote(spec.job_id), timeout=30)


def test_an_actor_on_this_machine_computes_through_shared_memory(ray_session, actors):
    """The probe says the actor shares this machine; its shared-memory share then equals
    the object-store share bit for bit, and only ids and stats travel through Ray."""
    from shardgrad.service.pools.base import StepPayload
    from shardgrad.service.pools.shared import SharedSteps

    ray = ray_session
    sg.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    spec, data, flat = make_job(model, n=40, k=4, seed=2, job_id="shared")
    steps = SharedSteps()
    try:
        info = ray.get(actors[0].load_job.remote(spec, ray.put(data), steps.probe_name), timeout=60)
        assert info["shared_memory"] is True
        assert (
            ray.get(actors[1].load_job.remote(spec, ray.put(data), ""), timeout=60)["shared_memory"]
            is False
        )
        shards = cut(40, 4)[1:3]
        params = steps.params(spec.job_id, StepPayload(spec.job_id, 3, flat, []))
        grads = steps.grads(spec.job_id, "a0", 3, 2 * spec.layout.nbytes)
        result = ray.get(
            actors[0].compute_shared.remote(spec.job_id, 3, params, grads, shards), timeout=60
        )
        assert result.grads is None
        shape = (len(result.blocks), spec.layout.numel)
        view = steps.grads_view(spec.job_id, "a0", np.float32, shape)
        expected = _local(spec, data, flat, 3, shards)
        assert result.blocks == expected.blocks
        assert view.tobytes() == expected.grads.tobytes()
        assert [s.loss for s in result.stats] == [s.loss for s in expected.stats]

        # The same share on the actor's local channel: same bytes, gRPC-shaped refusals.
        assert info["local_channel"] and info["local_channel_secret"]
        assert "local_channel" not in ray.get(
            actors[1].load_job.remote(spec, ray.put(data), ""), timeout=60
        )
        view[...] = 0
        channel = LocalChannel(info["local_channel"], info["local_channel_secret"])
        buffers = worker_pb2.SharedBuffers(
            params=params[0], params_nbytes=params[1], grads=grads[0], grads_capacity=grads[1]
        )
        header = messages.compute_header(
            spec.job_id, 3, spec.layout.fingerprint, shards, 0, buffers
        )
        reply = channel.call(header, timeout=30)
        assert reply.grads_shared and [(b.level, b.index) for b in reply.blocks] == result.blocks
        assert view.tobytes() == expected.grads.tobytes()
        assert [s.loss for s in reply.shards] == [s.loss for s in expected.stats]
        header.job_id = "not-loaded"
        with pytest.raises(LocalCallError) as err:
            channel.call(header, timeout=30)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        header.job_id = spec.job_id
        header.layout_fingerprint = "0" * 64
        with pytest.raises(LocalCallError) as err:
            channel.call(header, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        channel.close()
    finally:
        for a in actors:
            ray.get(a.release_job.remote(spec.job_id), timeout=30)
        steps.close()
