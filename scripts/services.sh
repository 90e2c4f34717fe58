#!/usr/bin/env bash
# Installs (from Debian) and starts / stops the real services the test suite talks to:
# PostgreSQL (review store and audit sink), Prometheus + promtool, Chromium (reviewer console), and the
# helm binary for the chart tests (scripts/install_helm.sh).
#   scripts/services.sh install      apt-get the packages (once per machine)
#   scripts/services.sh start        start PostgreSQL; prints `export GUARD_TEST_POSTGRES_DSN=...`
#   scripts/services.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  install)
    need=()
    command -v prometheus >/dev/null || need+=(prometheus)
    command -v chromium >/dev/null || need+=(chromium)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
    if [ ${#need[@]} -gt 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    bash scripts/install_helm.sh
    ;;
  start)
    bash .ci/postgres.sh start
    ;;
  stop)
    bash .ci/postgres.sh stop || true
    ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
