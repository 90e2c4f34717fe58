"""guard: a runtime AI guardrail. Three ways in, one pipeline:

    guard serve --upstream URL            a reverse proxy (sidecar) in front of a model endpoint
    GuardMiddleware(app, policy=...)      pure ASGI middleware around an app
    await Guard.from_policy(path)         a library call: screen texts under a policy

Names are imported on first use, so `import guard` (and every `guard` subcommand) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.app import GuardApp, create_app
    from guard.proxy.library import Guard
    from guard.proxy.middleware import GuardMiddleware
    from guard.settings import GuardSettings
    from guard.types import Action, Decision, Direction, Verdict

__all__ = [
    "Action",
    "Decision",
    "Direction",
    "Guard",
    "GuardApp",
    "GuardMiddleware",
    "GuardSettings",
    "Verdict",
    "create_app",
]

_WHERE = {
    "Action": "guard.types",
    "Decision": "guard.types",
    "Direction": "guard.types",
    "Verdict": "guard.types",
    "Guard": "guard.proxy.library",
    "GuardApp": "guard.app",
    "GuardMiddleware": "guard.proxy.middleware",
    "GuardSettings": "guard.settings",
    "create_app": "guard.app",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'guard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
