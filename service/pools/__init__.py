"""Worker pools: the interface the training loop uses, and the implementations behind it."""

from .base import DispatchResult, JobSpec, ShardStat, StepPayload, WorkerError, WorkerPool

__all__ = ["DispatchResult", "JobSpec", "ShardStat", "StepPayload", "WorkerError", "WorkerPool"]
