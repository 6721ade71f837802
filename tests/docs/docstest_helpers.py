"""The code blocks of README.md and docs/*.md, and what the docs test does with each.

A fenced block may be preceded (directly, or with blank lines between) by HTML comments that
say how it is treated:

    <!-- not-run: REASON -->   not executed (REASON says why, e.g. "needs a cluster"); still
                               checked statically as its language allows
    <!-- run -->               a bash block that is executed (bash blocks are only checked
                               otherwise: syntax, programs, `shardgrad` arguments, paths)
    <!-- file: NAME -->        the block's text is written to NAME in the document's working
                               folder when the run reaches it (job files, configs)

and a document containing the line `<!-- needs: coordinator -->` runs with a live local
coordinator (two gRPC workers) found through SHARDGRAD_STATE_DIR, as a user's shell on the
coordinator's machine would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

PYTHON = ("python", "py")
SHELL = ("bash", "sh", "shell")
DATA = ("yaml", "yml", "json", "toml")
# Shown, never run: program output, a file's excerpt from elsewhere, diagrams.
ILLUSTRATION = ("text", "", "console", "proto", "ini", "promql")

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)[^\n]*$")
_COMMENT = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
_DIRECTIVE = re.compile(r"^(not-run|run|file|needs)(?::\s*(.*))?$")


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def not_run(self) -> str | None:
        return self.directives.get("not-run")

    @property
    def file(self) -> str | None:
        return self.directives.get("file")

    @property
    def mode(self) -> str:
        """How the docs test treats the block: "run", "write" (a file), "check" (static checks
        only) or "show" (illustration, read by people only)."""
        if self.file is not None:
            return "write"
        if self.not_run is not None:
            return "check"
        if self.lang in PYTHON:
            return "run"
        if self.lang in SHELL:
            return "run" if "run" in self.directives else "check"
        if self.lang in DATA:
            return "check"
        return "show"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def needs_coordinator(path: Path) -> bool:
    return any(
        _COMMENT.match(line) and _COMMENT.match(line).group(1) == "needs: coordinator"
        for line in path.read_text().splitlines()
    )


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file with the directives in front of it."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        comment = _COMMENT.match(line)
        if comment:
            m = _DIRECTIVE.match(comment.group(1))
            if m and m.group(1) != "needs":
                key, value = m.group(1), (m.group(2) or "").strip()
                if key in ("not-run", "file") and not value:
                    raise ValueError(f"{path}:{i + 1}: <!-- {key}: ... --> needs a value")
                pending[key] = value
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            marker, lang = fence.group(1), fence.group(2).lower()
            body = []
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(marker):
                body.append(lines[j])
                j += 1
            if j == len(lines):
                raise ValueError(f"{path}:{i + 1}: unclosed code block")
            blocks.append(Block(path, i + 1, lang, "\n".join(body) + "\n", pending))
            pending = {}
            i = j + 1
            continue
        if line.strip():
            if pending:
                raise ValueError(
                    f"{path}:{i + 1}: directive {sorted(pending)} is not followed by a code block"
                )
        i += 1
    if pending:
        raise ValueError(f"{path}: directive {sorted(pending)} at the end of the file")
    return blocks


def all_blocks() -> list[Block]:
    return [b for p in doc_files() for b in parse_blocks(p)]


# ---------------------------------------------------------------------- shell commands

# Programs the docs may tell a user to run. A name outside this list is a typo or a tool the
# docs forgot to introduce.
KNOWN_PROGRAMS = {
    "shardgrad", "make", "python", "python3", ".venv/bin/python", "pip", "kubectl", "docker",
    "ray", "curl", "export", "cd", "git", "openssl", "cat", "echo", "ls", "mkdir", "chmod",
    "kustomize", "watch", "nvidia-smi", "unset", "sleep", "kill", "test", "tail", "head",
    "helm", "base64", "grep", "wait",
}  # fmt: skip

_OPERATORS = (";", "&&", "||", "|", "&")
_KEYWORDS = {"if", "then", "else", "elif", "fi", "while", "until", "do", "done", "!", "time"}


def simple_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script as word lists, split at `;`, `&&`, `||`, `|`,
    `&` and newlines, with leading `VAR=value` assignments and redirections removed. Quoted
    text stays one word; `$(...)` and `$VAR` are kept as written."""
    import shlex

    out = []
    for line in script.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)\d+(?=[<>])", r"\1", line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        commands = [words]
        skip_next = False
        for token in lexer:
            if skip_next:
                skip_next = False
                continue
            if token in _OPERATORS:
                words = []
                commands.append(words)
            elif token and set(token) <= set("<>&"):
                skip_next = True  # the redirection's target
            elif token in ("(", ")"):
                continue
            else:
                words.append(token)
        for cmd in commands:
            while cmd and (
                cmd[0] in _KEYWORDS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", cmd[0])
            ):
                cmd.pop(0)
            if cmd:
                out.append(cmd)
    return out


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    targets = set()
    for m in re.finditer(r"^([A-Za-z][\w.-]*(?:\s+[A-Za-z][\w.-]*)*)\s*:(?!=)", text, re.M):
        targets.update(m.group(1).split())
    return targets
