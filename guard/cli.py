"""`guard` command line: one subcommand per module in `guard/commands/`, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from guard.commands.env_settings import EnvSettingError, apply_env_defaults
from guard.version import guard_version

# subcommand -> (module under guard.commands, one-line help). Each module has
# `configure(parser: argparse.ArgumentParser) -> None` and `run(args: argparse.Namespace) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the guard as a reverse proxy in front of a model endpoint"),
    "scan": ("scan", "screen text from stdin or a JSONL file and print the decisions"),
    "policy": ("policy", "check a policy file (`guard policy check FILE`)"),
    "train": ("train", "train a classifier head from JSONL rows"),
    "eval": ("eval", "evaluate a policy's detectors on labeled JSONL datasets"),
    "audit": ("audit", "verify a hash-chained audit log (`guard audit verify FILE`)"),
    "db": ("db", "migrate the shared PostgreSQL schema (`guard db upgrade DSN`, `guard db status DSN`)"),
    "claims": ("claims", "extend the debunked-claims database (`guard claims add --claim TEXT --source SRC`)"),
}


# Commands whose flags can also come from `GUARD_*` variables (guard.commands.env_settings): the ones that
# run as a service in a container. `scan` and `eval` are run by hand, where a stray variable would surprise.
ENV_COMMANDS = frozenset({"serve"})


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guard", description="Runtime AI guardrail middleware.")
    parser.add_argument("--version", action="version", version=f"guard {guard_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    chosen: argparse.ArgumentParser | None = None
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        # Only the chosen command's module is imported: `guard scan` must not pay for `serve`.
        if name == wanted:
            module = importlib.import_module(f"guard.commands.{module_name}")
            module.configure(sub_parser)
            sub_parser.set_defaults(_run=module.run)
            if name in ENV_COMMANDS:
                chosen = sub_parser
    if chosen is not None:
        try:
            apply_env_defaults(chosen, os.environ)
        except EnvSettingError as exc:
            parser.exit(2, f"guard {wanted}: {exc}\n")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    run = getattr(args, "_run")
    try:
        status = int(run(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # `guard policy schema | head`: the reader left, which is not an error of ours. Point stdout at
        # /dev/null so the interpreter's own flush at exit does not raise again (Python docs, "SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
