"""`guard policy check FILE...`: validate policy files; `guard policy schema`: print the JSON Schema.

`check` prints `ok: FILE (name, version, N detectors, tiers: a, b)` per good file and each bad file's
`FILE:LINE: field: message` lines on stderr; it exits 1 if any file is bad. It validates without loading
models, so it is fast enough for a pre-commit hook or a CI step.
"""

from __future__ import annotations

import argparse
import json
import sys

from guard.errors import ConfigError
from guard.policy.load import load_policy
from guard.policy.model import PolicyFile

EXIT_OK, EXIT_INVALID = 0, 1


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate policy files; exit 1 if any is invalid")
    check.add_argument("files", nargs="+", metavar="FILE", help="policy YAML files")
    sub.add_parser("schema", help="print the policy file's JSON Schema (for editors and CI)")


def run(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        print(json.dumps(PolicyFile.model_json_schema(), indent=2, sort_keys=True))
        return EXIT_OK
    status = EXIT_OK
    for path in args.files:
        try:
            policy = load_policy(path)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            status = EXIT_INVALID
            continue
        tiers = ", ".join(policy.tiers)
        print(
            f"ok: {path} ({policy.name}, {policy.version}, {len(policy.detectors)} detectors, tiers: {tiers})"
        )
    return status
