"""The coordinator's Prometheus metrics, computed from the store at scrape time.

A registry of its own (never prometheus_client's global one, which other libraries in the
process may fill) with one collector that reads `DashboardData` on each scrape. Counters are
cumulative over the history the store holds, so they continue across coordinator restarts
(Prometheus treats any decrease, e.g. a new state directory, as a reset).
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from .dashboard_data import _WORKER_STATES, STEP_SECONDS_BUCKETS, DashboardData
from .store import JobState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class CoordinatorCollector:
    """Yields the coordinator's metric families from a DashboardData snapshot."""

    def __init__(self, data: DashboardData) -> None:
        self.data = data

    def describe(self):
        return []  # no fixed description: families are built from the store at scrape time

    def collect(self):
        snap = self.data.snapshot()
        t = snap.totals

        jobs = GaugeMetricFamily("shardgrad_jobs", "Jobs by state.", labels=["state"])
        counts = {s.value: 0 for s in JobState}
        for rec in snap.jobs:
            counts[rec.state.value] += 1
        for state, n in counts.items():
            jobs.add_metric([state], n)
        yield jobs

        yield CounterMetricFamily(
            "shardgrad_steps", "Optimizer steps completed by all jobs.", value=t.steps
        )
        yield CounterMetricFamily(
            "shardgrad_samples", "Training samples processed by all jobs.", value=t.samples
        )
        yield CounterMetricFamily(
            "shardgrad_nonfinite_steps",
            "Steps skipped because their loss or gradient was not finite.",
            value=t.skipped_nonfinite,
        )

        buckets = [(_bound(b), n) for b, n in zip(STEP_SECONDS_BUCKETS, t.step_seconds_buckets)] + [
            ("+Inf", t.step_seconds_count)
        ]
        yield HistogramMetricFamily(
            "shardgrad_step_seconds",
            "Wall time of one training step on the coordinator.",
            buckets=buckets,
            sum_value=t.step_seconds_sum,
        )

        compute = CounterMetricFamily(
            "shardgrad_worker_compute_seconds",
            "Seconds each worker spent computing gradients.",
            labels=["worker"],
        )
        for worker in sorted(t.worker_compute_seconds):
            compute.add_metric([worker], t.worker_compute_seconds[worker])
        yield compute

        moved = CounterMetricFamily(
            "shardgrad_bytes",
            "Bytes moved between the coordinator and its workers: sent and received over the "
            "wire (or Ray's object store), and shared: gradients read in place from shared "
            "memory by the coordinator.",
            labels=["direction"],
        )
        moved.add_metric(["sent"], t.bytes_sent)
        moved.add_metric(["received"], t.bytes_received)
        moved.add_metric(["shared"], t.bytes_shared)
        yield moved

        happened = CounterMetricFamily(
            "shardgrad_events",
            "Events in the coordinator's event log, by kind (worker dropped, job failed, ...).",
            labels=["kind"],
        )
        for kind in sorted(t.events_by_kind):
            happened.add_metric([kind], t.events_by_kind[kind])
        yield happened

        workers = GaugeMetricFamily("shardgrad_workers", "Workers by state.", labels=["state"])
        by_state = dict.fromkeys(_WORKER_STATES, 0)
        for w in snap.workers:
            by_state[w["state"]] = by_state.get(w["state"], 0) + 1
        for state, n in sorted(by_state.items()):
            workers.add_metric([state], n)
        yield workers

        # Per-job gauges for jobs still in flight only, so label sets stay bounded.
        step = GaugeMetricFamily(
            "shardgrad_job_step", "Current step of each active job.", labels=["job_id", "name"]
        )
        total = GaugeMetricFamily(
            "shardgrad_job_total_steps", "Steps each active job runs.", labels=["job_id", "name"]
        )
        loss = GaugeMetricFamily(
            "shardgrad_job_loss", "Last training loss of each active job.", labels=["job_id"]
        )
        speed = GaugeMetricFamily(
            "shardgrad_job_samples_per_second",
            "Throughput of each active job's last step.",
            labels=["job_id"],
        )
        for rec in snap.jobs:
            if rec.state.is_terminal:
                continue
            step.add_metric([rec.id, rec.name], rec.step)
            total.add_metric([rec.id, rec.name], rec.total_steps)
            if rec.id in snap.latest:
                last_loss, last_speed = snap.latest[rec.id]
                if math.isfinite(last_loss):
                    loss.add_metric([rec.id], last_loss)
                if math.isfinite(last_speed):
                    speed.add_metric([rec.id], last_speed)
        yield step
        yield total
        yield loss
        yield speed


def _bound(b: float) -> str:
    return repr(float(b))


def make_registry(data: DashboardData) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CoordinatorCollector(data))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
