"""Schema migrations for the PostgreSQL tables that guard replicas share (review queue, audit chain), with
yoyo-migrations: versioned SQL files applied in order, each recorded in `guard_schema_migrations` with the
time it was applied, under yoyo's lock so replicas starting together migrate once.

    apply_migrations("postgresql://guard@db/guard")     # what the stores do when they open
    guard db upgrade postgresql://guard@db/guard         # the same from a shell or a Kubernetes Job
    guard db status postgresql://guard@db/guard

The first migrations are the schema as it shipped before migrations existed, written with `IF NOT EXISTS`,
so a deployment that already has those tables upgrades without change and from then on every schema
change is a new numbered file in `postgresql/`. A file, once released, is never edited: yoyo records each
migration's id, and a replica that finds one it does not know (a newer guard ran first) refuses to start
rather than run against a schema it was not written for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg

from guard.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "postgresql"
TABLE = "guard_schema_migrations"


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    applied: tuple[str, ...]
    pending: tuple[str, ...]
    unknown: int  # migrations recorded in the database that this guard does not ship (a newer one ran)


def yoyo_url(dsn: str) -> str:
    """yoyo's URL for a libpq DSN (a URL or `key=value` pairs), on its psycopg 3 backend."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = quote(str(info.pop("user", "") or ""), safe="")
    password = info.pop("password", None)
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = str(info.pop("host", "") or "")
    port = info.pop("port", None)
    dbname = quote(str(info.pop("dbname", "") or ""), safe="")
    netloc = f"{auth}{host}" + (f":{port}" if port else "")
    query = f"?{urlencode({k: str(v) for k, v in info.items()})}" if info else ""
    return f"postgresql+psycopg://{netloc}/{dbname}{query}"


@contextlib.contextmanager
def _backend(dsn: str) -> Iterator[Any]:
    """yoyo's backend for `dsn` (yoyo is untyped), with its connection closed after: yoyo leaves it open."""
    from yoyo import get_backend

    backend = get_backend(yoyo_url(dsn), migration_table=TABLE)
    try:
        yield backend
    finally:
        backend.connection.close()


def schema_status(dsn: str) -> SchemaStatus:
    from yoyo import read_migrations

    shipped = read_migrations(str(MIGRATIONS))
    with _backend(dsn) as backend, backend.lock():
        applied_hashes = set(backend.get_applied_migration_hashes())
    return SchemaStatus(
        applied=tuple(m.id for m in shipped if m.hash in applied_hashes),
        pending=tuple(m.id for m in shipped if m.hash not in applied_hashes),
        unknown=len(applied_hashes - {m.hash for m in shipped}),
    )


def apply_migrations(dsn: str) -> tuple[str, ...]:
    """Apply every shipped migration not yet applied, under yoyo's lock; returns the ids applied now.

    Raises `ConfigError` when the database records migrations this guard does not ship (a newer guard
    migrated it: run that version, or roll the schema back with it)."""
    from yoyo import read_migrations

    shipped = read_migrations(str(MIGRATIONS))
    with _backend(dsn) as backend, backend.lock():
        applied_hashes = set(backend.get_applied_migration_hashes())
        shipped_hashes = {m.hash for m in shipped}
        if applied_hashes - shipped_hashes:
            raise ConfigError(
                f"the database has {len(applied_hashes - shipped_hashes)} schema migration(s) this guard does "
                "not know (a newer guard migrated it); run that version or newer"
            )
        todo = backend.to_apply(shipped)
        backend.apply_migrations(todo)
    return tuple(m.id for m in todo)
