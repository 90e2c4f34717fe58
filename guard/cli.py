"""`guard` command line: one subcommand per module in `guard/commands/`, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module under guard.commands, one-line help). Each module has
# `configure(parser: argparse.ArgumentParser) -> None` and `run(args: argparse.Namespace) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the guard as a reverse proxy in front of a model endpoint"),
    "scan": ("scan", "screen text from stdin or a JSONL file and print the decisions"),
    "policy": ("policy", "check a policy file (`guard policy check FILE`)"),
    "train": ("train", "train a classifier head from JSONL rows"),
    "eval": ("eval", "evaluate a policy's detectors on labeled JSONL datasets"),
    "audit": ("audit", "verify a hash-chained audit log (`guard audit verify FILE`)"),
    "claims": ("claims", "extend the debunked-claims database (`guard claims add --claim TEXT --source SRC`)"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guard", description="Runtime AI guardrail middleware.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        # Only the chosen command's module is imported: `guard scan` must not pay for `serve`.
        if name == wanted:
            module = importlib.import_module(f"guard.commands.{module_name}")
            module.configure(sub_parser)
            sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    run = getattr(args, "_run")
    return int(run(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
