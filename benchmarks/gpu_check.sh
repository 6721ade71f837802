#!/usr/bin/env bash
# One prepared check for a machine with a CUDA GPU: installs shardgrad from this tree without
# network, runs the CUDA tests and the GPU step benchmark, and leaves logs and JSON in $OUT.
# Usage on the GPU machine:  OUT=/some/dir bash benchmarks/gpu_check.sh
# Checking the script on a CPU machine:  bash benchmarks/gpu_check.sh --dry-run
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
DRY=${1:-}
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ "$DRY" = "--dry-run" ] && PY=.venv/bin/python
export PYTHONUNBUFFERED=1

if [ "$DRY" != "--dry-run" ]; then
  $PY -m pip install -q --no-deps --no-index --no-build-isolation --target /tmp/sg . >"$OUT/install.log" 2>&1 \
    || { echo "install failed"; tail -20 "$OUT/install.log"; exit 1; }
  export PYTHONPATH=/tmp/sg
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
  $PY -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"
fi

cuda_tests=$(ls -d tests/cuda 2>/dev/null; grep -l -E "cuda" tests/core/test_optim.py tests/core/test_serialization.py 2>/dev/null)
echo "== CUDA tests: $cuda_tests"
if [ "$DRY" = "--dry-run" ]; then
  $PY -m pytest -q -x -p no:cacheprovider -m cuda $cuda_tests 2>&1 | tail -3
else
  timeout 200 $PY -m pytest -q -p no:cacheprovider -o addopts="" -m cuda $cuda_tests >"$OUT/pytest_cuda.log" 2>&1
  echo "pytest exit: $?"; tail -5 "$OUT/pytest_cuda.log"
fi

echo "== GPU step benchmark"
timeout 240 $PY benchmarks/gpu_step.py $DRY --out "$OUT/gpu_step.json"
