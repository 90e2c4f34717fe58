"""Structured JSON logs that cannot carry prompt or response text.

One line per record: `time`, `level`, `logger`, `message`, `request_id` and the record's `extra` fields.
Three guards keep text and personal data out (STYLE §5, "never log prompt or response text"):

- only `extra` keys in `ALLOWED_FIELDS` survive, and only with scalar values of a safe shape (a string field
  is kept only if it is short and looks like an identifier: no spaces, no `@`); the names of dropped keys
  are listed in `dropped_fields`, so a developer sees what was refused without seeing its value;
- `%`-style arguments are interpolated only when they are numbers, booleans or enum members: a string
  argument may be anything a caller sent, so the message template is logged instead, with `args_dropped`;
- exceptions are logged as their type and stack frames (file, line, function), never their message, which
  often quotes the input (a JSON decode error shows the body).

`configure_logging(level)` installs this on the root logger; `bind_request_id` sets the request id for
every record logged while a request is handled (a context variable, so concurrent requests don't mix).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import TextIO

from guard.errors import ConfigError
from guard.tracing import current_trace_id

LEVELS = ("debug", "info", "warning", "error", "critical")

# Keys a log call may pass in `extra`. Each names a value from configuration, a closed enum, a number or an
# id the guard made itself, never something a caller wrote.
ALLOWED_FIELDS = frozenset(
    {
        "request_id", "item_id", "detector", "detector_version", "model", "category", "label",
        "entity_type", "span_start", "span_end", "direction", "route", "tier", "verdict", "action",
        "decision", "mode", "reason", "error_type", "status", "status_class", "result", "policy",
        "policy_version", "version", "count", "texts", "batch_size", "findings", "held_bytes",
        "duration_s", "budget_s", "timeout_s", "upstream_s", "overhead_s", "host", "port", "admin_port",
        "workers", "threads", "attempt", "outcome", "role", "store", "signal", "chunks",
        "proxy_url", "admin_url", "detectors", "categories", "latency_ms", "load_s", "method",
        "source", "line", "field", "code", "seq", "hash", "kid",
    }
)
# A string value must look like an identifier or a number; free text (spaces, `@`, quotes) is refused.
_SAFE_STRING = re.compile(r"^[A-Za-z0-9_.:/+\-]{0,128}$")
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {
    "message", "asctime", "taskName",
}

# Extras libraries add that we drop without comment (uvicorn's ANSI-coloured copy of its message).
_SILENT_DROPS = frozenset({"color_message"})

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("guard_request_id", default="")


def set_request_id(request_id: str) -> None:
    """Attach `request_id` to every record logged from here on in the current task. The ASGI servers run
    each request cycle in a task of its own, so the id ends with the request."""
    _request_id.set(request_id)


@contextlib.contextmanager
def bind_request_id(request_id: str) -> Iterator[None]:
    """Attach `request_id` to every record logged in this context (one request's handling)."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def _safe_value(value: object) -> str | int | float | bool | None:
    """The value if it may be logged, else None (which means: drop it)."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and _SAFE_STRING.match(value):
        return value
    return None


class ExtraWhitelistFilter(logging.Filter):
    """Removes every `extra` attribute that is not whitelisted or whose value is not of a safe shape."""

    def filter(self, record: logging.LogRecord) -> bool:
        dropped: list[str] = []
        for key in [k for k in vars(record) if k not in _RECORD_ATTRS]:
            if key == "dropped_fields":
                continue
            value = getattr(record, key)
            if key not in ALLOWED_FIELDS or (_safe_value(value) is None and value is not None):
                delattr(record, key)
                if key not in _SILENT_DROPS:
                    dropped.append(key)
        if dropped:
            record.dropped_fields = sorted(dropped)
        return True


# A library's own string argument that may be interpolated: a name such as a recognizer's class or a
# language code (starts with a letter, no spaces, no long digit runs, which could be a phone or card).
_SAFE_LIBRARY_ARG = re.compile(r"^(?!.*\d{4})[A-Za-z][A-Za-z0-9_.]{0,63}$")


def _safe_arg(arg: object, third_party: bool) -> bool:
    if isinstance(arg, Enum | bool | int | float):
        return True
    return third_party and isinstance(arg, str) and _SAFE_LIBRARY_ARG.match(arg) is not None


def _safe_message(record: logging.LogRecord) -> tuple[str, bool]:
    """The message with its arguments when they are all safe scalars (or, for a library's logger,
    identifier-shaped names); else the bare template."""
    template = str(record.msg)
    if not record.args:
        return template, False
    args = record.args if isinstance(record.args, tuple) else (record.args,)
    third_party = not record.name.startswith("guard")
    if all(_safe_arg(a, third_party) for a in args):
        try:
            return record.getMessage(), False
        except (TypeError, ValueError):
            return template, True
    return template, True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line. Pair it with `ExtraWhitelistFilter`."""

    def format(self, record: logging.LogRecord) -> str:
        message, args_dropped = _safe_message(record)
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
            "request_id": _request_id.get(),
        }
        trace_id = current_trace_id()
        if trace_id is not None:
            out["trace_id"] = trace_id
        for key, value in vars(record).items():
            if key in ALLOWED_FIELDS:
                safe = _safe_value(value)
                if safe is not None or value is None:
                    out[key] = safe
        if args_dropped:
            out["args_dropped"] = True
        dropped = getattr(record, "dropped_fields", None)
        if dropped:
            out["dropped_fields"] = dropped
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            out["error_type"] = exc_type.__name__
            # Frames only: the exception's message may quote the request body.
            out["stack"] = [
                f"{frame.filename}:{frame.lineno}:{frame.name}" for frame in traceback.extract_tb(tb)
            ]
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


class LibraryNoiseFilter(logging.Filter):
    """Drops libraries' records that say nothing an operator can act on, at the loggers that emit them.

    presidio-analyzer warns once per spaCy label it has no entity for (`CARDINAL`, `DATE`: on every text
    with a number) and once per predefined recognizer of a language the guard does not load; uvicorn's
    info lines ("Started server process", "Uvicorn running on ...") repeat what guard's own start-up line
    says, with the addresses. Warnings and errors that are not on this list still pass."""

    _NOISE = (
        "is not mapped to a Presidio entity",
        "Recognizer not added to registry because language is not supported",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(fragment in str(record.msg) for fragment in self._NOISE)


def _quiet_libraries() -> None:
    presidio = logging.getLogger("presidio-analyzer")
    # Its INFO lines list every recognizer it loads (31 lines at start-up); they go, its warnings stay.
    presidio.setLevel(logging.WARNING)
    presidio.addFilter(LibraryNoiseFilter())
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def configure_logging(level: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records through one JSON handler at `level`. Replaces the root's handlers.

    Raises `ConfigError` for a level not in `LEVELS`. Returns the installed handler (tests read from it).
    """
    name = level.strip().lower()
    if name not in LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LEVELS)}; got {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ExtraWhitelistFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(name.upper())
    # uvicorn installs its own handlers and an access log that prints raw paths (query strings can carry
    # personal data): route its loggers through ours and keep the access log off.
    for uv_name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(uv_name)
        uv_logger.handlers.clear()
        uv_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    if root.level > logging.DEBUG:
        _quiet_libraries()
    return handler
