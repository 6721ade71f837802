"""The `shardgrad` command: one argparse parser whose subcommands come from the packages
that implement them (`worker` from shardgrad.worker, later `serve`, `submit`, ...).

Each entry of COMMANDS names a module and a function `add_*_subcommand(subparsers)` that adds
its subparser and sets `func`, the callable that runs it and returns the exit status. Modules
are imported by name so this dispatcher depends on none of them; a module that is not
installed is skipped.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: tuple[tuple[str, str], ...] = (
    ("shardgrad.worker.cli", "add_worker_subcommand"),
    ("shardgrad.service.cli", "add_serve_subcommand"),
    ("shardgrad.client.commands", "add_client_subcommands"),
)


def build_parser() -> argparse.ArgumentParser:
    from shardgrad import __version__  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="shardgrad", description="shardgrad: distributed data-parallel training"
    )
    parser.add_argument("--version", action="version", version=f"shardgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name, function in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        getattr(module, function)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
