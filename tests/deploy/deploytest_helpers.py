"""Reading deploy/: YAML documents, Dockerfile instructions, and shardgrad command lines.

Every command a manifest runs is parsed with the real `shardgrad` argument parser, so a flag
renamed in the CLI fails these tests instead of failing a pod at start-up.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SOURCE_DIRS = ("core", "worker", "service", "client", "protos")


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_docs(path: Path) -> list:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def k8s_objects() -> list[tuple[Path, dict]]:
    """Every Kubernetes object under deploy/ (a mapping with apiVersion and kind; a
    Kustomization is a build file, not an object)."""
    out = []
    for path in yaml_files():
        for doc in load_docs(path):
            if (
                isinstance(doc, dict)
                and "apiVersion" in doc
                and doc.get("kind") not in (None, "Kustomization")
            ):
                out.append((path, doc))
    return out


def find(kind: str, name: str) -> dict:
    matches = [d for _, d in k8s_objects() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} named {name}, found {len(matches)}"
    return matches[0]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# ---------------------------------------------------------------------- command lines


def parse_cli(argv: list[str]):
    """`shardgrad <argv>` parsed by the real parser; fails the test with argparse's message."""
    from shardgrad.client.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`shardgrad {shlex.join(argv)}` does not parse: {err.getvalue().strip()}")


def shardgrad_commands_in_script(script: str) -> list[list[str]]:
    """The argument lists of every `shardgrad ...` command in a shell script: commands are
    split at `;`, `&&`, `||`, `|`, `&` and newlines, `exec`/`nohup` prefixes are dropped, and a
    command ends at its first redirection. Quoted text stays one word, as the shell reads it."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)\d+(?=[<>])", r"\1", line)  # `2>&1`: the 2 names a file descriptor
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        commands = [command]
        for token in lexer:
            if token in (";", "&&", "||", "|", "&"):
                command = []
                commands.append(command)
            else:
                command.append(token)
        for words in commands:
            while words and words[0] in ("exec", "nohup"):
                words = words[1:]
            if not words or words[0] != "shardgrad":
                continue
            words = words[1:]
            for i, w in enumerate(words):
                if w and set(w) <= set("<>&"):
                    words = words[:i]
                    break
            out.append(words)
    return out


def option(argv: list[str], flag: str) -> str | None:
    """The value given to `flag` in an argument list (last one wins, as in argparse)."""
    value = None
    for i, word in enumerate(argv):
        if word == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith(flag + "="):
            value = word.split("=", 1)[1]
    return value


# ---------------------------------------------------------------------- pod specs


def pod_spec(obj: dict) -> dict:
    """The pod spec of a Deployment (or any object with spec.template.spec)."""
    return obj["spec"]["template"]["spec"]


def containers(spec: dict) -> list[dict]:
    return list(spec.get("containers", []))


def container_ports(container: dict) -> dict[str, int]:
    return {p["name"]: int(p["containerPort"]) for p in container.get("ports", [])}


def env_names(container: dict) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


# ---------------------------------------------------------------------- Dockerfiles


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def json_args(self) -> list[str] | None:
        """The exec-form arguments (`["a", "b"]`), or None for the shell form."""
        text = self.args.strip()
        if text.startswith("["):
            value = json.loads(text)
            assert isinstance(value, list) and all(isinstance(v, str) for v in value)
            return value
        return None


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"{self.path.name}: expected one {keyword}, found {len(found)}"
        return found[0]

    def args(self) -> dict[str, str]:
        """ARG name -> default value."""
        out = {}
        for inst in self.all("ARG"):
            name, _, default = inst.args.partition("=")
            out[name.strip()] = default.strip()
        return out

    def env(self) -> dict[str, str]:
        out = {}
        for inst in self.all("ENV"):
            for word in shlex.split(inst.args):
                key, eq, value = word.partition("=")
                assert eq, f"{self.path.name}:{inst.line}: use ENV key=value, got {word!r}"
                out[key] = value
        return out


KEYWORDS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER",
}  # fmt: skip


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped, as docker reads them."""
    df = Dockerfile(path)
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are skipped
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        text = " ".join(p.strip() for p in pending if p.strip())
        pending = []
        keyword, _, args = text.partition(" ")
        assert keyword.upper() in KEYWORDS, f"{path.name}:{start}: unknown instruction {keyword}"
        assert keyword == keyword.upper(), f"{path.name}:{start}: write {keyword.upper()}"
        df.instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, f"{path.name}: ends inside a continued line"
    return df


def dockerfiles() -> list[Path]:
    return sorted(DEPLOY.rglob("Dockerfile*"))


def source_files() -> Iterator[Path]:
    for d in SOURCE_DIRS:
        yield from (ROOT / d).rglob("*.py")


_ENV_READ = re.compile(r"""(?:environ\.get\(|environ\[|getenv\()\s*["'](SHARDGRAD_[A-Z_]+)["']""")


def env_vars_read_by_shardgrad() -> set[str]:
    """SHARDGRAD_* variables that the package's own code reads from the environment."""
    names: set[str] = set()
    for path in source_files():
        names.update(_ENV_READ.findall(path.read_text()))
    return names
