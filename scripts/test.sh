#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs guard and the services its tests use, starts them,
# runs every test (real models, real PostgreSQL, real Prometheus, real Chromium), and stops them after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh install
eval "$(bash scripts/services.sh start)"
trap 'bash scripts/services.sh stop' EXIT
mkdir -p artifacts
# The package is typed (py.typed): its public interfaces hold under mypy --strict.
.venv/bin/python -m mypy guard
.venv/bin/python -m pytest -p no:cacheprovider "$@"
