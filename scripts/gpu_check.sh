#!/usr/bin/env bash
# bash scripts/gpu_check.sh OUT_DIR
# Issue #52's GPU check, for the lent GPU machine (the device tool), from the repository root:
# the efficiency benchmark on CUDA in float32, bfloat16 and bfloat16 under torch.compile, with
# parity against float32 (scripts/gpu_check.py); stopped at 280 s (never run on a GPU yet).
# That machine's image has torch, transformers and typer but not pydantic, and nothing can be
# fetched there: run `make gpu-wheels` here first and carry `.whl` with the call, e.g.
#   run(command="bash scripts/gpu_check.sh $OUT", carry=[".whl"], timeout_s=420)
# Writes OUT_DIR/gpu-check.md and OUT_DIR/gpu-check.json; docs/performance.md quotes them.
set -euo pipefail
out=${1:?usage: bash scripts/gpu_check.sh OUT_DIR}
python=${PYTHON:-python3}
if ! "$python" -c "import pydantic" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "error: pydantic is not installed and .whl holds no wheels (run make gpu-wheels and carry .whl)" >&2
    exit 2
  fi
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/crosssent-site .whl/*.whl
  export PYTHONPATH=/tmp/crosssent-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
mkdir -p "$out"
timeout 280 "$python" scripts/gpu_check.py --out "$out" --device cuda 2>&1 | tee "$out/gpu-check.log"
