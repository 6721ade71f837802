#!/usr/bin/env bash
# One prepared check for a machine with a CUDA GPU (cupy, torch and numpy installed; no
# network): installs shardgrad from this tree, runs the CUDA test suite against torch CUDA,
# times training steps against torch CUDA eager, prints a short table, and leaves in $OUT:
#   gpu_check.json    the summary (device, versions, test counts, failures, timings)
#   pytest_cuda.log   the full pytest log (one line per test: -v)
#   gpu_step.json     the benchmark's own JSON, bench.log its output, install.log
# It stays under 6 minutes: the tests get at most TEST_S seconds, the benchmark BENCH_S.
#
# Usage on the GPU machine:  OUT=/some/dir bash benchmarks/gpu_check.sh
# The worker tests need grpcio at least as new as the generated code's; where the machine's is
# older, or it lacks grpcio-health-checking, WHEELS=/dir/of/wheels installs those wheels (grpcio,
# grpcio-health-checking and protobuf for its Python) beside shardgrad.
# Checking the script on a CPU machine:  bash benchmarks/gpu_check.sh --dry-run
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
DRY=${1:-}
PY=${PYTHON:-python3}
TEST_S=${TEST_S:-190}
BENCH_S=${BENCH_S:-100}
export PYTHONUNBUFFERED=1
START=$(date +%s)

if [ "$DRY" = "--dry-run" ]; then
  [ -x .venv/bin/python ] && PY=.venv/bin/python
  TEST_S=60 BENCH_S=120
else
  rm -rf /tmp/sg
  if ! $PY -m pip install -q --no-deps --no-index --no-build-isolation --target /tmp/sg . \
      >"$OUT/install.log" 2>&1; then
    echo "install failed"; tail -20 "$OUT/install.log"; exit 1
  fi
  export PYTHONPATH=/tmp/sg
  if [ -n "${WHEELS:-}" ]; then
    rm -rf /tmp/sgdeps
    $PY -m pip install -q --no-deps --no-index --target /tmp/sgdeps "$WHEELS"/*.whl \
      >>"$OUT/install.log" 2>&1 || { echo "wheels failed"; tail -5 "$OUT/install.log"; }
    export PYTHONPATH=/tmp/sg:/tmp/sgdeps
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    >"$OUT/gpu.txt" 2>&1 || true
fi
$PY - <<'EOF' | tee "$OUT/versions.txt"
import numpy, torch
try:
    import cupy
    cv = cupy.__version__
except ImportError:
    cv = "missing"
import shardgrad
print(f"shardgrad {shardgrad.__version__} from {shardgrad.__file__}")
print(f"cupy {cv}  torch {torch.__version__}  numpy {numpy.__version__}  "
      f"cuda available: shardgrad {shardgrad.cuda.is_available()} torch {torch.cuda.is_available()}")
EOF

# ---------------------------------------------------------------- tests
# The most telling files first: if the time runs out, the op tables are what is cut.
TESTS="tests/cuda/test_cuda_device.py tests/cuda/test_cuda_training.py tests/cuda/test_cuda_nn.py \
tests/core/test_optim.py tests/cuda/test_cuda_ops.py"
# The GPU worker's own tests, in a second pytest run: tests/worker has a conftest of its own.
WORKER_TESTS="tests/worker/test_compute.py tests/worker/test_shm.py tests/worker/test_running_stats.py \
tests/worker/test_local_channel.py tests/worker/test_grpc_worker.py"
# CUDA worker processes through a real coordinator (tests/service has a conftest of its own too).
SERVICE_TESTS="tests/service/test_cuda_service.py"
MARK="cuda"
[ "$DRY" = "--dry-run" ] && MARK="not cuda"  # no GPU: the same tests on the fake device
PLUGINS=""
$PY -c "import pytest_timeout" 2>/dev/null && PLUGINS="$PLUGINS --timeout=90"
$PY -c "import xdist" 2>/dev/null && [ "$DRY" != "--dry-run" ] && PLUGINS="$PLUGINS -n 4"
echo "== CUDA tests (-m '$MARK', at most ${TEST_S}s)"
T0=$(date +%s)
# shellcheck disable=SC2086
timeout -k 5 "$TEST_S" $PY -m pytest -v -p no:cacheprovider -o addopts="" -m "$MARK" \
  --maxfail=200 -W ignore::RuntimeWarning $PLUGINS $TESTS >"$OUT/pytest_cuda.log" 2>&1
TEST_RC=$?
# shellcheck disable=SC2086
timeout -k 5 60 $PY -m pytest -v -p no:cacheprovider -o addopts="" -m "$MARK" \
  -W ignore::RuntimeWarning $WORKER_TESTS >>"$OUT/pytest_cuda.log" 2>&1
WORKER_RC=$?
# shellcheck disable=SC2086
timeout -k 5 150 $PY -m pytest -v -p no:cacheprovider -o addopts="" -m "$MARK" \
  -W ignore::RuntimeWarning $SERVICE_TESTS >>"$OUT/pytest_cuda.log" 2>&1
SERVICE_RC=$?
[ $SERVICE_RC -eq 5 ] && SERVICE_RC=0  # nothing selected (the dry run on a CPU)
[ $WORKER_RC -eq 0 ] && WORKER_RC=$SERVICE_RC
[ $TEST_RC -eq 0 ] && TEST_RC=$WORKER_RC
TEST_WALL=$(( $(date +%s) - T0 ))
tail -3 "$OUT/pytest_cuda.log"

# ---------------------------------------------------------------- benchmark
echo "== GPU step benchmark (at most ${BENCH_S}s)"
BENCH_ARGS=""
[ "$DRY" = "--dry-run" ] && BENCH_ARGS="--dry-run"
timeout -k 5 "$BENCH_S" $PY benchmarks/gpu_step.py $BENCH_ARGS --out "$OUT/gpu_step.json" \
  >"$OUT/bench.log" 2>&1
BENCH_RC=$?
cat "$OUT/bench.log" | grep -v "^wrote"

# ---------------------------------------------------------------- summary
OUT="$OUT" TEST_RC=$TEST_RC TEST_WALL=$TEST_WALL BENCH_RC=$BENCH_RC START=$START $PY - <<'EOF'
import collections, json, os, re, time
out = os.environ["OUT"]
log = open(os.path.join(out, "pytest_cuda.log"), errors="replace").read()
# one "path::test[params] OUTCOME" per test with -v (xdist prints "[gwN] OUTCOME path::test")
results = {}
OUTCOME = "PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS"
for m in re.finditer(rf"^(tests/\S.*?) ({OUTCOME})(?: +\[ *\d+%\])?$", log, re.M):
    results[m.group(1)] = m.group(2)
for m in re.finditer(rf"^\[gw\d+\] \[ *\d+%\] ({OUTCOME}) (tests/.*)$", log, re.M):
    results[m.group(2).strip()] = m.group(1)
counts = collections.Counter(results.values())
per_file = collections.defaultdict(collections.Counter)
for test, outcome in results.items():
    per_file[test.split("::")[0]][outcome] += 1
failures = [t for t, o in results.items() if o in ("FAILED", "ERROR")]
reasons = re.findall(r"^(?:FAILED|ERROR) (tests/.+?) - (.*)$", log, re.M)
bench = {}
try:
    bench = json.load(open(os.path.join(out, "gpu_step.json")))
except (OSError, ValueError):
    pass
gpu = ""
try:
    gpu = open(os.path.join(out, "gpu.txt")).read().strip()
except OSError:
    pass
summary = {
    "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    "gpu": gpu,
    "versions": open(os.path.join(out, "versions.txt")).read().strip(),
    "tests": {"exit_code": int(os.environ["TEST_RC"]), "timed_out": os.environ["TEST_RC"] == "124",
              "wall_s": int(os.environ["TEST_WALL"]), "counts": dict(counts),
              "per_file": {k: dict(v) for k, v in per_file.items()},
              "failures": failures[:200], "failure_reasons": dict(reasons[:200])},
    "benchmark": {"exit_code": int(os.environ["BENCH_RC"]), **bench},
    "total_s": int(time.time()) - int(os.environ["START"]),
}
json.dump(summary, open(os.path.join(out, "gpu_check.json"), "w"), indent=2)

print("\n== summary")
print(f"{'tests':<34} " + "  ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()))
      + ("  (TIMED OUT)" if summary["tests"]["timed_out"] else ""))
for f, c in sorted(per_file.items()):
    print(f"  {f:<40} " + "  ".join(f"{k.lower()} {v}" for k, v in sorted(c.items())))
for t in failures[:15]:
    print(f"  FAIL {t[:110]}")
before = {}  # the first H100 run, kept in the repository as the baseline
try:
    base = json.load(open("benchmarks/results/gpu_step_h100_first.json"))
    before = {r["workload"]: r.get("shardgrad_ms") for r in base["results"]}
except (OSError, ValueError, KeyError):
    pass
print(f"{'workload':<34} {'shardgrad ms':>12} {'torch ms':>9} {'ratio':>6} {'target':>6} "
      f"{'baseline ms':>11}")
for r in bench.get("results", []):
    if "error" in r:
        print(f"{r['workload']:<4} {r['desc']:<29} ERROR {r['error'][:60]}")
        continue
    tgt = r["target"]
    flag = "" if tgt is None or r["ratio"] <= tgt else "  MISS"
    old = before.get(r["workload"])
    print(f"{r['workload']:<4} {r['desc']:<29} {r['shardgrad_ms']:>12.3f} {r['torch_ms']:>9.3f} "
          f"{r['ratio']:>6.2f} {tgt if tgt else '-':>6} {'-' if old is None else round(old, 3):>11}"
          f"{flag}")
print(f"total {summary['total_s']}s; JSON in {os.path.join(out, 'gpu_check.json')}")
EOF
