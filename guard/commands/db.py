"""`guard db upgrade DSN` / `guard db status DSN`: the shared PostgreSQL schema's migrations (guard/migrations).

The stores apply pending migrations themselves when they open; `upgrade` does the same from a shell or a
Kubernetes Job before a rollout, and `status` lists what is applied and pending. Exit 0 on success, 1 when
the database cannot be reached or migrated (one line naming the DSN without its password), 2 on usage.
"""

from __future__ import annotations

import argparse
import sys

import psycopg

from guard.errors import ConfigError
from guard.migrations import apply_migrations, schema_status
from guard.review.postgres_store import redact_dsn


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, help_text in (("upgrade", "apply pending schema migrations"), ("status", "list applied and pending migrations")):
        action = sub.add_parser(name, help=help_text)
        action.add_argument("dsn", metavar="DSN", help="postgresql://user@host:port/db")


def run(args: argparse.Namespace) -> int:
    where = redact_dsn(args.dsn)
    try:
        if args.db_command == "upgrade":
            applied = apply_migrations(args.dsn)
            print(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied) or 'none pending'}")
            return 0
        status = schema_status(args.dsn)
    except (psycopg.Error, OSError) as exc:
        print(f"guard db: cannot migrate {where}: {type(exc).__name__}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"guard db: {where}: {exc}", file=sys.stderr)
        return 1
    for name in status.applied:
        print(f"applied  {name}")
    for name in status.pending:
        print(f"pending  {name}")
    if status.unknown:
        print(f"unknown  {status.unknown} migration(s) recorded by a newer guard")
    return 0
