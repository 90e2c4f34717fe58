"""The running policy, and how it is replaced: on SIGHUP, on a change of the file, or on `reload()`.

A bad file never replaces a good one: the running policy stays, the reason is logged (file, line, field,
never any prompt text) and `guard_policy_reloads_total{result="failure"}` counts it. Subscribers
(`on_change`) see a new policy before it becomes current, because detectors the new file names may need
building and loading; a subscriber that raises `GuardError` vetoes the new policy the same way a bad
file does. Subscribers run in registration order, serialised with other reloads.

The file watcher polls (no extra dependency, and it works on Kubernetes ConfigMap volumes, where the file
is swapped through a symlink): each interval it reads the file (a few KB) and compares a hash of the
content with what was last seen, good or bad. Size and mtime alone would miss an edit within one mtime
tick that keeps the size; the hash also means a `touch` that changes nothing reloads nothing, and a bad
file is reported once, not every interval.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from guard.errors import ConfigError, GuardError
from guard.metrics import GuardMetrics
from guard.policy.load import PolicyFileError, Problem, parse_policy_bytes
from guard.policy.model import PolicyFile

log = logging.getLogger(__name__)

Subscriber = Callable[[PolicyFile], Awaitable[None]]

DEFAULT_POLL_INTERVAL_S = 2.0


@dataclass(frozen=True, slots=True)
class _Fingerprint:
    size: int
    mtime_ns: int
    sha256: str


def _read(path: Path) -> tuple[bytes, _Fingerprint]:
    """The file's bytes and fingerprint. Raises ConfigError when it cannot be read."""
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            raw = handle.read()
    except OSError as exc:
        problem = Problem(str(path), 0, "<file>", f"cannot read the policy file: {exc.strerror or type(exc).__name__}")
        raise PolicyFileError([problem]) from None
    return raw, _Fingerprint(len(raw), stat.st_mtime_ns, hashlib.sha256(raw).hexdigest())


def _loggable(field: str) -> str:
    """`detectors[0].kind` → `detectors.0.kind`, `<file>` → `file`: the identifier shape logs keep."""
    return re.sub(r"\[(\d+)\]", r".\1", field).strip("<>")


class PolicyHolder:
    """Owns the current `PolicyFile` of one path. Construct it with `PolicyHolder.open` (loads once,
    raising `ConfigError` so a bad file stops the start-up); `policy` is safe to read at any time."""

    def __init__(
        self,
        path: Path,
        policy: PolicyFile,
        fingerprint: _Fingerprint,
        metrics: GuardMetrics,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        if poll_interval_s <= 0:
            raise ConfigError(f"policy poll interval must be positive, got {poll_interval_s}")
        self.path = path
        self._policy = policy
        self._loaded_at = time.time()
        self._seen = fingerprint  # last content looked at, good or bad: not retried until it changes
        self._metrics = metrics
        self._poll_interval_s = poll_interval_s
        self._subscribers: list[Subscriber] = []
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._signal_loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Task[bool]] = set()
        self._last_error: str | None = None
        metrics.set_policy(policy.name, policy.version)

    @classmethod
    def open(
        cls, path: str | Path, metrics: GuardMetrics, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    ) -> PolicyHolder:
        """Load `path` (ConfigError if it is bad) and hold it."""
        resolved = Path(path)
        raw, fingerprint = _read(resolved)
        policy = parse_policy_bytes(raw, str(resolved))
        return cls(resolved, policy, fingerprint, metrics, poll_interval_s)

    @property
    def policy(self) -> PolicyFile:
        return self._policy

    @property
    def loaded_at(self) -> float:
        """Wall-clock time (epoch seconds) the current policy became current."""
        return self._loaded_at

    @property
    def last_error(self) -> str | None:
        """Why the latest reload was refused (`FILE:LINE: field: message` lines), None after a success."""
        return self._last_error

    def on_change(self, callback: Subscriber) -> None:
        """Call `callback(new_policy)` before each new policy becomes current."""
        self._subscribers.append(callback)

    async def reload(self) -> bool:
        """Read the file again. True if a new policy is now current; False if it was refused."""
        async with self._lock:
            try:
                raw, fingerprint = _read(self.path)
                self._seen = fingerprint
                policy = parse_policy_bytes(raw, str(self.path))
                for subscriber in self._subscribers:
                    await subscriber(policy)
            except GuardError as exc:
                self._metrics.observe_policy_reload(False)
                self._last_error = str(exc)
                # Logs carry the failing field paths, not the message text (logging_setup keeps only
                # identifier-shaped values); the full `FILE:LINE: field: message` is in `last_error`.
                problems = exc.problems if isinstance(exc, PolicyFileError) else ()
                log.error(
                    "policy reload refused; the running policy stays",
                    extra={
                        "policy": self._policy.name,
                        "policy_version": self._policy.version,
                        "error_type": type(exc).__name__,
                        "reason": _loggable(problems[0].field) if problems else "",
                        "count": len(problems),
                    },
                )
                # One line per problem: where it is (file, line, field path). The message itself may quote
                # the file's values, so it stays in `last_error` and `guard policy check FILE` prints it.
                for problem in problems:
                    log.error(
                        "policy problem; run `guard policy check` on the file for the message",
                        extra={"source": problem.source, "line": problem.line, "field": _loggable(problem.field)},
                    )
                return False
            self._policy = policy
            self._loaded_at = time.time()
            self._last_error = None
            self._metrics.observe_policy_reload(True)
            self._metrics.set_policy(policy.name, policy.version)
            log.info(
                "policy reloaded",
                extra={"policy": policy.name, "policy_version": policy.version},
            )
            return True

    # --- triggers ---------------------------------------------------------------------------------
    def install_sighup(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reload on SIGHUP (Unix, main thread only: asyncio's rule for signal handlers)."""
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self._signal_loop = loop

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="guard-policy-reload")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def start_watching(self) -> None:
        """Start polling the file for changes (call from the running loop)."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="guard-policy-watch")
            self._watcher.add_done_callback(self._watcher_ended)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            try:
                _, fingerprint = await asyncio.to_thread(_read, self.path)
            except ConfigError:
                # Mid-swap (a ConfigMap update, an editor's rename): look again next interval.
                continue
            if fingerprint.sha256 != self._seen.sha256:
                await self.reload()

    @staticmethod
    def _watcher_ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "policy file watcher stopped",
                extra={"error_type": type(task.exception()).__name__},
            )

    async def aclose(self) -> None:
        """Stop watching, remove the SIGHUP handler and wait for reloads in flight."""
        if self._signal_loop is not None:
            self._signal_loop.remove_signal_handler(signal.SIGHUP)
            self._signal_loop = None
        if self._watcher is not None:
            self._watcher.cancel()
            try:
                await self._watcher
            except asyncio.CancelledError:
                pass
            self._watcher = None
        if self._pending:
            await asyncio.gather(*self._pending)
