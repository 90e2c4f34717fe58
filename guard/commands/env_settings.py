"""Settings from the environment for any subcommand's flags: `--admin-port` is also `GUARD_ADMIN_PORT`.

One precedence rule, the same for every flag: a flag on the command line wins, then `GUARD_<FLAG>`, then
`GUARD_<FLAG>_FILE` (a file holding the value, for secrets mounted by Kubernetes or Docker), then the
flag's built-in default. The name is the flag's long form, upper-cased, dashes as underscores
(`--upstream-read-timeout` → `GUARD_UPSTREAM_READ_TIMEOUT`); a switch such as `--demo` takes
`1/true/yes/on` or `0/false/no/off`. A value is converted and checked exactly as the flag's would be, and a
bad one is refused with the variable's name, so a container started with `-e GUARD_PORT=80x` fails at
once instead of silently running on a default.

Applied to the parser (as defaults) before it parses, so argparse's own checks (choices, types) and the
command's validation see environment values the same way as flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

PREFIX = "GUARD_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class EnvSettingError(ValueError):
    """A `GUARD_*` variable whose value the flag it stands for would refuse. The message names it."""


def env_name(action: argparse.Action) -> str | None:
    """`GUARD_ADMIN_PORT` for `--admin-port`; None for positionals and `--help`."""
    longs = [s for s in action.option_strings if s.startswith("--")]
    if not longs or action.dest == argparse.SUPPRESS or isinstance(action, argparse._HelpAction | argparse._VersionAction):
        return None
    return PREFIX + longs[0][2:].upper().replace("-", "_")


def _raw_value(name: str, environ: Mapping[str, str]) -> str | None:
    if name in environ:
        return environ[name]
    file_name = f"{name}_FILE"
    if file_name in environ:
        try:
            # A trailing newline is how `echo` and most secret tools write a file; it is not part of the value.
            return Path(environ[file_name]).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise EnvSettingError(f"{file_name}: cannot read {environ[file_name]!r}: {exc.strerror}") from None
    return None


def _convert(action: argparse.Action, name: str, raw: str) -> object:
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction | argparse.BooleanOptionalAction):
        lowered = raw.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise EnvSettingError(f"{name}={raw!r}: expected one of 1, true, yes, on, 0, false, no, off")
        on = lowered in _TRUE
        return not on if isinstance(action, argparse._StoreFalseAction) else on
    convert = action.type if callable(action.type) else str
    try:
        value = convert(raw)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        type_name = getattr(convert, "__name__", "value")
        raise EnvSettingError(f"{name}={raw!r}: not a valid {type_name}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(str(c) for c in action.choices)
        raise EnvSettingError(f"{name}={raw!r}: must be one of {choices}")
    return value


def apply_env_defaults(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> dict[str, str]:
    """Set `parser`'s defaults from `environ`; returns {dest: variable name} for what it set.

    Raises `EnvSettingError` for a value the flag would refuse."""
    applied: dict[str, str] = {}
    for action in parser._actions:
        name = env_name(action)
        if name is None:
            continue
        raw = _raw_value(name, environ)
        if raw is None:
            continue
        parser.set_defaults(**{action.dest: _convert(action, name, raw)})
        applied[action.dest] = name
    return applied
