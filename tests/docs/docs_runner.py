"""Runs one document's blocks in order, like a reader pasting them into one Python session
and one shell: python blocks share a namespace, bash blocks run with `set -euo pipefail`,
file blocks are written to the working folder. Prints the place of the first failure.

    python docs_runner.py PLAN.json      (PLAN: {"steps": [{"kind", "where", "code", ...}]})
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from pathlib import Path


def main() -> int:
    plan = json.loads(Path(sys.argv[1]).read_text())
    namespace: dict = {"__name__": "__main__"}
    for step in plan["steps"]:
        kind, where, code = step["kind"], step["where"], step["code"]
        print(f"--- {kind} {where}", flush=True)
        if kind == "write":
            path = Path(step["file"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
        elif kind == "python":
            try:
                exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the docs' own code
            except BaseException:  # noqa: BLE001 - report any failure with its place
                traceback.print_exc()
                print(f"FAILED at {where}", flush=True)
                return 1
            sys.stdout.flush()
            sys.stderr.flush()
        elif kind == "bash":
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], check=False)
            if done.returncode != 0:
                print(f"FAILED at {where}: exit status {done.returncode}", flush=True)
                return 1
        else:
            raise ValueError(f"unknown step {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
