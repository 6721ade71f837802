"""The client's `shardgrad` subcommands: submit, jobs, status, metrics/logs, stop, delete,
scale, workers, events, download, smoke (a check against a running coordinator) and demo
(the embedded demo: its own coordinator and workers). Each wraps one or two SDK calls.

Output is a table (or `key: value` lines) for people and, with `--json`, JSON for programs.
Exit codes are stable, so scripts can branch on them:

    0  success (a waited-for job SUCCEEDED)      6  the coordinator refused the request
    1  any other error                           7  the job FAILED
    2  bad command line or job file              8  the job was STOPPED
    3  coordinator unreachable                   9  timed out
    4  token missing or wrong                  130  interrupted (Ctrl-C)
    5  no such job
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

OK = 0
ERROR = 1
USAGE = 2
UNAVAILABLE = 3
AUTH = 4
NOT_FOUND = 5
REFUSED = 6
JOB_FAILED = 7
JOB_STOPPED = 8
TIMEOUT = 9
INTERRUPTED = 130

EXIT_CODES_HELP = __doc__[__doc__.index("    0  success") :]

STATE_EXIT = {"SUCCEEDED": OK, "FAILED": JOB_FAILED, "STOPPED": JOB_STOPPED}


def add_client_subcommands(subparsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("connection")
    g.add_argument(
        "--address",
        "-a",
        default=None,
        metavar="HOST:PORT",
        help="the coordinator (default: $SHARDGRAD_ADDRESS, else the one whose state "
        "directory is --state-dir)",
    )
    g.add_argument(
        "--state-dir",
        default=None,
        help="a local coordinator's state directory, for its address and token "
        "(default: $SHARDGRAD_STATE_DIR or ~/.shardgrad)",
    )
    g.add_argument(
        "--token-file",
        default=None,
        help="file holding the bearer token (default: $SHARDGRAD_TOKEN, else the state "
        "directory's token)",
    )
    g.add_argument(
        "--tls-ca", default=None, help="CA certificate (PEM) to verify a TLS coordinator"
    )
    g.add_argument("--timeout", type=float, default=30.0, help="seconds for each call (default 30)")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")

    def add(name: str, help: str, func: Callable, aliases=(), description: str | None = None):
        p = subparsers.add_parser(
            name,
            help=help,
            description=description or help,
            parents=[common],
            aliases=list(aliases),
            epilog="exit codes:\n" + EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=_guarded(func))
        return p

    p = add(
        "submit",
        "submit a training job from a Python or YAML/JSON job file",
        cmd_submit,
        description=(
            "Submit the job a file defines. A .py file defines module-level names (model, "
            "dataset, loss, optimizer, batch_size, epochs or steps, workers, seed, ...) or a "
            "function job() returning them; a .yaml/.yml/.json file holds the same keys. "
            "Prints the job id (or, with --wait, follows the job to its end)."
        ),
    )
    p.add_argument("file", help="the job file (.py, .yaml, .yml or .json)")
    p.add_argument("--name", default=None, help="the job's name")
    steps = p.add_mutually_exclusive_group()
    steps.add_argument("--steps", type=int, default=None, help="train this many steps")
    steps.add_argument("--epochs", type=int, default=None, help="train this many epochs")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="the most workers the job uses")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a job option, e.g. --set micro_shards=16 (value read as JSON when it "
        "parses, else as text; repeatable)",
    )
    p.add_argument("--wait", action="store_true", help="follow the job until it ends")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the configuration that would be sent, and send nothing (a dataset "
        "given as arrays is still uploaded, since the configuration names it by hash)",
    )

    p = add("jobs", "list jobs", cmd_jobs)
    p.add_argument(
        "--state",
        action="append",
        default=[],
        choices=("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"),
        type=str.upper,
        help="only jobs in this state (repeatable)",
    )
    p.add_argument("--limit", type=int, default=0, help="only the newest N jobs")

    p = add("status", "show one job", cmd_status)
    p.add_argument("job_id")
    p.add_argument(
        "--wait", action="store_true", help="wait for the job to end; exit code from its state"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar with --wait")

    p = add(
        "metrics",
        "print a job's metrics; --follow streams them until the job ends",
        cmd_metrics,
        aliases=("logs",),
    )
    p.add_argument("job_id")
    p.add_argument("--follow", "-f", action="store_true", help="keep streaming until the job ends")
    p.add_argument("--from-step", type=int, default=0, help="start at this step")

    p = add("stop", "stop a job (it checkpoints and ends STOPPED)", cmd_stop)
    p.add_argument("job_id")

    p = add(
        "delete",
        "delete an ended job: its record, metrics, checkpoints and trained model",
        cmd_delete,
        description="Delete a SUCCEEDED, FAILED or STOPPED job from the coordinator: its "
        "record, metrics, checkpoints and trained model. A pending or running job is refused "
        "(exit code 6): stop it first.",
    )
    p.add_argument("job_id")

    p = add("scale", "set the number of workers of the coordinator's pool", cmd_scale)
    p.add_argument("count", type=int)
    p.add_argument("--pool", default=None, help="the pool to scale (default: the coordinator's)")

    add("workers", "list workers", cmd_workers)

    p = add(
        "events",
        "list the coordinator's event log; --follow prints new events as they happen",
        cmd_events,
        description="The coordinator's event log, oldest first: jobs submitted, started and "
        "ended, workers joining, dropped and lost, micro-shards recomputed, checkpoints "
        "written or not, steps skipped. Shows the newest --limit events; with --follow, then "
        "prints new ones as they are written (until the job ends, with --job).",
    )
    p.add_argument("--job", default=None, metavar="JOB_ID", help="only this job's events")
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        metavar="KIND",
        help="only events of this kind, e.g. worker_dropped (repeatable)",
    )
    p.add_argument(
        "--limit", type=int, default=200, help="show the newest N events (1 to 1000, default 200)"
    )
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new events (with --job: until the job ends; exit code from its state)",
    )

    p = add(
        "download",
        "save a job's trained weights (safetensors) and model description",
        cmd_download,
    )
    p.add_argument("job_id")
    p.add_argument(
        "--output",
        "-o",
        default=None,
        help="where to write the weights (default <job>.safetensors); the model's "
        "description goes beside it as <output>.json",
    )

    p = add(
        "smoke",
        "train a small model on the digits dataset, to check a running coordinator end to end",
        cmd_smoke,
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")

    demo = subparsers.add_parser(
        "demo",
        help="run the embedded demo: a coordinator, 2 local workers and a CNN on the digits",
        description="Start a coordinator with local workers (Ray by default), train a CNN on "
        "the digits dataset through the SDK, report test accuracy and shut everything down.",
    )
    from .demo import add_demo_arguments, run_from_args  # noqa: PLC0415

    add_demo_arguments(demo)
    demo.set_defaults(func=run_from_args)


# ---------------------------------------------------------------------- plumbing
def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command; turn the errors users meet into a message and an exit code."""

    def run(args: argparse.Namespace) -> int:
        from .connection import NoCoordinatorError  # noqa: PLC0415
        from .errors import (  # noqa: PLC0415
            AuthenticationError,
            DeadlineExceededError,
            FailedPreconditionError,
            InvalidArgumentError,
            JobFailedError,
            NotFoundError,
            PermissionDeniedError,
            ResourceExhaustedError,
            ShardgradError,
            UnavailableError,
        )
        from .jobfile import JobFileError  # noqa: PLC0415

        codes = (
            (JobFailedError, JOB_FAILED),
            (AuthenticationError, AUTH),
            (PermissionDeniedError, AUTH),
            (UnavailableError, UNAVAILABLE),
            (NotFoundError, NOT_FOUND),
            (InvalidArgumentError, REFUSED),
            (FailedPreconditionError, REFUSED),
            (ResourceExhaustedError, REFUSED),
            (DeadlineExceededError, TIMEOUT),
            (ShardgradError, ERROR),
            (NoCoordinatorError, UNAVAILABLE),
            (JobFileError, USAGE),
        )
        try:
            return func(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return INTERRUPTED
        except BrokenPipeError:  # e.g. `shardgrad metrics ... | head`
            return OK
        except Exception as exc:
            for cls, code in codes:
                if isinstance(exc, cls):
                    _fail(args, exc, code)
                    return code
            if isinstance(exc, (ValueError, TypeError, FileNotFoundError)):
                _fail(args, exc, USAGE)
                return USAGE
            raise

    return run


def _fail(args: argparse.Namespace, exc: Exception, code: int) -> None:
    kind = getattr(exc, "code", None) or type(exc).__name__
    if getattr(args, "json", False):
        from .output import print_json  # noqa: PLC0415

        print_json({"error": str(exc), "code": kind, "exit_code": code}, file=sys.stderr)
    else:
        print(f"shardgrad {args.command}: {exc}", file=sys.stderr)


def _client(args: argparse.Namespace):
    from .sdk import Client  # noqa: PLC0415

    return Client(
        args.address,
        tls_ca=args.tls_ca,
        timeout=args.timeout,
        token_file=args.token_file,
        state_dir=args.state_dir,
    )


def _status_rows(statuses) -> list[list]:
    from .output import when  # noqa: PLC0415

    return [
        [
            s.job_id,
            s.name or "-",
            s.state,
            f"{s.step}/{s.total_steps}",
            s.last_loss,
            when(s.created_at),
        ]
        for s in statuses
    ]


def _show_status(args, status) -> None:
    from .output import key_values, print_json, when  # noqa: PLC0415

    if args.json:
        print_json(status)
        return
    key_values(
        [
            ("job", status.job_id),
            ("name", status.name or "-"),
            ("state", status.state),
            ("step", f"{status.step}/{status.total_steps}"),
            ("loss", status.last_loss),
            ("error", status.error or "-"),
            ("created", when(status.created_at)),
            ("started", when(status.started_at)),
            ("finished", when(status.finished_at)),
            ("dataset", status.config.get("dataset", "-")),
            ("batch size", status.config.get("batch_size", "-")),
        ]
    )


def _wait(args, job) -> int:
    status = job.wait(progress=not args.no_progress, raise_on_failure=False)
    _show_status(args, status)
    if status.state == "FAILED":
        print(f"shardgrad: job {status.job_id} failed: {status.error}", file=sys.stderr)
    return STATE_EXIT.get(status.state, ERROR)


# ---------------------------------------------------------------------- commands
def cmd_submit(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from .jobfile import load_job_file  # noqa: PLC0415
    from .output import print_json  # noqa: PLC0415

    job = load_job_file(args.file)
    if args.steps is not None:
        job.pop("epochs", None)
        job["steps"] = args.steps
    if args.epochs is not None:
        job.pop("steps", None)
        job["epochs"] = args.epochs
    for key, value in (
        ("name", args.name),
        ("batch_size", args.batch_size),
        ("seed", args.seed),
        ("workers", args.workers),
    ):
        if value is not None:
            job[key] = value
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            job[key] = json.loads(text)
        except ValueError:
            job[key] = text
    job.setdefault("progress", not args.no_progress)
    with _client(args) as client:
        if args.dry_run:
            config, weights = client.build_config(**job)
            print_json({"config": config, "initial_weights_bytes": len(weights or b"")})
            return OK
        submitted = client.submit(**job)
        if args.wait:
            if not args.json:
                print(submitted.id, flush=True)
            return _wait(args, submitted)
        status = submitted.last_status
        if args.json:
            print_json(status)
        else:
            print(status.job_id)
    return OK


def cmd_jobs(args: argparse.Namespace) -> int:
    from .output import print_json, table  # noqa: PLC0415

    with _client(args) as client:
        jobs = client.jobs(args.state or None, limit=args.limit)
    statuses = [j.last_status for j in jobs]
    if args.json:
        print_json({"jobs": statuses})
    else:
        table(["id", "name", "state", "step", "loss", "created"], _status_rows(statuses))
    return OK


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.job(args.job_id)
        if args.wait:
            return _wait(args, job)
        _show_status(args, job.last_status)
    return OK


def cmd_metrics(args: argparse.Namespace) -> int:
    from .output import print_json  # noqa: PLC0415

    columns = ("step", "loss", "lr", "samples_per_second", "step_seconds", "workers")
    widths = (8, 12, 10, 12, 10, 8)
    with _client(args) as client:
        job = client.job(args.job_id)
        if not args.json:
            print("".join(c.upper()[: w - 1].ljust(w) for c, w in zip(columns, widths)).rstrip())
        for rec in job.stream_metrics(args.from_step, follow=args.follow):
            if args.json:
                print_json(rec)
                continue
            if rec["kind"] == "eval":
                extra = "  ".join(f"{k}={v:.6g}" for k, v in rec.items() if k.startswith("eval_"))
                print(f"{rec['step']:<8}eval  {extra}", flush=True)
                continue
            cells = [
                str(rec["step"]),
                f"{rec['loss']:.6g}",
                f"{rec['lr']:.4g}",
                f"{rec['samples_per_second']:.1f}",
                f"{rec['step_seconds'] * 1000:.1f}ms",
                str(rec["workers"]),
            ]
            print("".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip(), flush=True)
        if args.follow:
            return STATE_EXIT.get(job.status().state, ERROR)
    return OK


def cmd_stop(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.job(args.job_id).stop()
    _show_status(args, status)
    return OK


def cmd_delete(args: argparse.Namespace) -> int:
    from .output import print_json  # noqa: PLC0415

    with _client(args) as client:
        freed = client.delete_job(args.job_id)
    if args.json:
        print_json({"job_id": args.job_id, "deleted": True, "freed_bytes": freed})
    else:
        print(f"deleted job {args.job_id} ({freed} bytes freed)")
    return OK


def _worker_rows(workers) -> list[list]:
    from .output import when  # noqa: PLC0415

    return [
        [
            w.worker_id,
            w.pool,
            w.state,
            w.device or "-",
            w.address or w.hostname or "-",
            when(w.last_heartbeat),
            ",".join(w.loaded_jobs) or "-",
        ]
        for w in workers
    ]


_WORKER_HEADERS = ["id", "pool", "state", "device", "address", "last heartbeat", "jobs"]


def cmd_scale(args: argparse.Namespace) -> int:
    from .output import print_json, table  # noqa: PLC0415

    with _client(args) as client:
        result = client.scale(args.count, pool=args.pool)
    if args.json:
        print_json(result)
    else:
        print(f"the pool now aims for {result.count} workers")
        table(_WORKER_HEADERS, _worker_rows(result.workers))
    return OK


def cmd_workers(args: argparse.Namespace) -> int:
    from .output import print_json, table  # noqa: PLC0415

    with _client(args) as client:
        workers = client.workers()
    if args.json:
        print_json({"workers": workers})
    else:
        table(_WORKER_HEADERS, _worker_rows(workers))
    return OK


_EVENT_HEADERS = ["id", "time", "level", "kind", "job", "worker", "message"]
_EVENT_WIDTHS = (8, 21, 9, 22, 18, 14)  # the message takes the rest of the line


def _event_row(e) -> list:
    from .output import when  # noqa: PLC0415

    return [e.id, when(e.time), e.level, e.kind, e.job_id or "-", e.worker_id or "-", e.message]


def _print_event_line(e) -> None:
    cells = [str(c) for c in _event_row(e)]
    line = "".join(c.ljust(w) for c, w in zip(cells, _EVENT_WIDTHS)) + cells[-1]
    print(line.rstrip(), flush=True)


def cmd_events(args: argparse.Namespace) -> int:
    from .output import print_json, table  # noqa: PLC0415

    with _client(args) as client:
        newest = client.events(args.job, args.kind, limit=args.limit, newest_first=True)
        shown = newest[::-1]  # oldest first, as a log reads
        if not args.follow:
            if args.json:
                print_json({"events": shown})
            else:
                table(_EVENT_HEADERS, [_event_row(e) for e in shown])
            return OK
        if not args.json:
            header = [h.upper() for h in _EVENT_HEADERS]
            print("".join(h.ljust(w) for h, w in zip(header, _EVENT_WIDTHS)) + header[-1])
        after = shown[-1].id if shown else 0
        for e in itertools.chain(shown, client.follow_events(args.job, args.kind, after)):
            if args.json:
                print_json(e)
            else:
                _print_event_line(e)
        # Following the whole log only ends with Ctrl-C; following a job ends with the job.
        return STATE_EXIT.get(client.job(args.job).status().state, ERROR)


def cmd_download(args: argparse.Namespace) -> int:
    from .output import print_json  # noqa: PLC0415

    out = Path(args.output or f"{args.job_id}.safetensors")
    with _client(args) as client:
        info = client.job(args.job_id).download(out)
    if args.json:
        print_json({**info.to_dict(), "path": str(out), "model_path": f"{out}.json"})
    else:
        print(f"wrote {out} ({info.nbytes} bytes, step {info.step}) and {out}.json")
    return OK


def cmd_smoke(args: argparse.Namespace) -> int:
    from shardgrad import nn, optim  # noqa: PLC0415

    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with _client(args) as client:
        job = client.submit(
            model,
            "digits",
            loss=nn.CrossEntropyLoss(),
            optimizer=optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
            batch_size=64,
            epochs=args.epochs,
            workers=args.workers,
            seed=0,
            name="demo-digits",
            eval_fraction=0.2,
            eval_interval=10,
            eval_metrics=["loss", "accuracy"],
        )
        if not args.json:
            print(job.id, flush=True)
        return _wait(args, job)
