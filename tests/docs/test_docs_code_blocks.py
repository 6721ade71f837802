"""Every code block in README.md and docs/*.md is run or checked (see docstest_helpers for the
directives). What happens to each block:

- python: executed, the blocks of one document in order in one namespace (a document marked
  `<!-- needs: coordinator -->` gets a live local coordinator with two gRPC workers);
  `<!-- not-run: REASON -->` blocks are compiled only.
- bash: `<!-- run -->` blocks are executed in the document's working folder (with the
  coordinator when the document needs one); every bash block, run or not, must pass `bash -n`,
  name only known programs, and its `shardgrad` commands must parse with the real CLI, its
  `make` targets exist, and the files it names (scripts, manifests, Dockerfiles) exist.
- yaml / json / toml: parsed (a `<!-- file: NAME -->` block is also written to NAME for the
  blocks after it).
- proto: every line is a line of protos/*.proto, so the protocol page quotes the real files.
- text and unlabelled blocks: shown to readers only (program output, diagrams); counted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import yaml
from docstest_helpers import (
    DATA,
    KNOWN_PROGRAMS,
    PYTHON,
    ROOT,
    SHELL,
    Block,
    all_blocks,
    doc_files,
    makefile_targets,
    needs_coordinator,
    parse_blocks,
    simple_commands,
)

HERE = Path(__file__).resolve().parent
BLOCKS = all_blocks()
RUN_TIMEOUT = 240


# ---------------------------------------------------------------------- static checks


def _parse_shardgrad(argv: list[str], where: str) -> None:
    from shardgrad.client.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:  # --help exits 0; a bad command line exits 2
        if exc.code not in (0, None):
            pytest.fail(f"{where}: `shardgrad {shlex.join(argv)}`: {err.getvalue().strip()}")


def _exists(path: str, where: str) -> None:
    if path.startswith(("http://", "https://", "$", "-")) or path == ".":
        return
    assert (ROOT / path).exists(), f"{where}: {path} does not exist in the repository"


def _check_command(words: list[str], where: str) -> None:
    program, args = words[0], words[1:]
    assert program in KNOWN_PROGRAMS, f"{where}: unknown program {program!r}"
    if program == "shardgrad":
        _parse_shardgrad(args, where)
    elif program == "make":
        for target in (a for a in args if not a.startswith("-") and "=" not in a):
            assert target in makefile_targets(), f"{where}: no make target {target!r}"
    elif program in ("python", "python3", ".venv/bin/python"):
        if args and args[0] == "-m":
            import importlib.util

            assert importlib.util.find_spec(args[1]) is not None, f"{where}: no module {args[1]}"
        elif args and args[0].endswith(".py"):
            _exists(args[0], where)
    elif program == "kubectl":
        for flag in ("-f", "-k"):
            if flag in args:
                _exists(args[args.index(flag) + 1], where)
    elif program == "docker":
        if "-f" in args:
            _exists(args[args.index("-f") + 1], where)
    elif program == "ray" and args and args[0] in ("up", "down", "attach", "exec", "submit"):
        _exists(args[1], where)


def _check_shell(block: Block) -> None:
    done = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
    assert done.returncode == 0, f"{block.where}: bash -n: {done.stderr}"
    commands = simple_commands(block.code)
    assert commands, f"{block.where}: no command"
    for words in commands:
        _check_command(words, block.where)


_PROTO_LINES: set[str] = set()


def _proto_lines() -> set[str]:
    if not _PROTO_LINES:
        for path in (ROOT / "protos").glob("*.proto"):
            _PROTO_LINES.update(line.strip() for line in path.read_text().splitlines())
    return _PROTO_LINES


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_block_is_valid(block: Block):
    if block.lang in PYTHON:
        compile(block.code, block.where, "exec")
    elif block.lang in SHELL:
        _check_shell(block)
    elif block.lang in ("yaml", "yml"):
        assert list(yaml.safe_load_all(block.code)), f"{block.where}: empty YAML"
    elif block.lang == "json":
        json.loads(block.code)
    elif block.lang == "toml":
        tomllib.loads(block.code)
    elif block.lang == "proto":
        for line in block.code.splitlines():
            if line.strip() and line.strip() != "...":
                assert line.strip() in _proto_lines(), f"{block.where}: not in protos/: {line}"
    if block.not_run is not None:
        assert len(block.not_run) >= 8, f"{block.where}: say why the block is not run"
        assert block.lang in PYTHON + SHELL, f"{block.where}: only code is run or not run"
    if "run" in block.directives:
        assert block.lang in SHELL, f"{block.where}: <!-- run --> is for bash blocks"


def test_block_census():
    """How many blocks are run, checked, written or shown; most runnable code must run."""
    census = Counter(
        (b.lang if b.lang in PYTHON + SHELL + DATA else "other", b.mode) for b in BLOCKS
    )
    lines = [f"{lang:>8} {mode:<6} {n}" for (lang, mode), n in sorted(census.items())]
    print("\n".join(["docs code blocks:", *lines]))
    python_run = census[("python", "run")]
    python_not = census[("python", "check")]
    assert python_run >= 20, "the docs teach by example; their examples run"
    assert python_not <= python_run // 4, "most python examples must run"
    not_run = [b for b in BLOCKS if b.not_run is not None]
    reasons = Counter(b.not_run for b in not_run)
    print("not run:", dict(reasons))
    shell = [b for b in BLOCKS if b.lang in SHELL]
    assert sum(b.mode == "run" for b in shell) >= 3
    for path in doc_files():
        assert parse_blocks(path), f"{path.name} has no code block"


# ---------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory):
    """A local coordinator with two gRPC workers, as `shardgrad serve` starts it."""
    state = tmp_path_factory.mktemp("docs-coordinator")
    log = open(state / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shardgrad.client.cli",
            "serve",
            "--state-dir",
            str(state),
            "--pool",
            "grpc",
            "--local-workers",
            "2",
            "--dashboard-port",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_clean_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (state / "serve.log").read_text()
            try:
                endpoint = json.loads((state / "coordinator.json").read_text())
            except (OSError, ValueError):
                endpoint = {}
            if endpoint.get("dial") and endpoint.get("dashboard"):
                break
            assert time.monotonic() < deadline, "the coordinator did not start"
            time.sleep(0.1)
        yield state
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDGRAD_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _plan(path: Path, workdir: Path) -> list[dict]:
    steps = []
    for b in parse_blocks(path):
        if b.mode == "write":
            steps.append({"kind": "write", "where": b.where, "code": b.code, "file": b.file})
        elif b.mode == "run":
            kind = "python" if b.lang in PYTHON else "bash"
            steps.append({"kind": kind, "where": b.where, "code": b.code})
    return steps


RUNNABLE = [p for p in doc_files() if any(b.mode == "run" for b in parse_blocks(p))]


@pytest.mark.parametrize("doc", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_document_runs(doc: Path, tmp_path: Path, request):
    env = _clean_env()
    if needs_coordinator(doc):
        env["SHARDGRAD_STATE_DIR"] = str(request.getfixturevalue("coordinator"))
    else:
        env["SHARDGRAD_STATE_DIR"] = str(tmp_path / "no-coordinator")
    steps = _plan(doc, tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"steps": steps}))
    done = subprocess.run(
        [sys.executable, str(HERE / "docs_runner.py"), str(plan)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    print(done.stdout)  # what the examples printed, for `pytest -rP`
