"""The audit chain's keys: which key MACs each record, its id, and how a key change is recorded.

With a key (`GUARD_AUDIT_HMAC_KEY`), each record's `hash` is HMAC-SHA256 under that key, and the record
names the key by `kid` (`GUARD_AUDIT_KEY_ID`, or an id derived from the key). Without the key nobody can
append a record that verifies, so a record forged with the guard stopped (its hash recomputed) is found,
and so is a log written with another key. (Unkeyed logs keep the plain SHA-256 chain of format v1.)

Rotation: start the guard with the new key as `GUARD_AUDIT_HMAC_KEY` and the old one as
`GUARD_AUDIT_PREVIOUS_HMAC_KEY` (with `GUARD_AUDIT_PREVIOUS_KEY_ID` if it had an explicit id). The sink
then appends a `key_rotation` record MACed with the old key that names the new kid, and MACs every later
record with the new key: the old key vouches for the switch, and `guard audit verify` (given both keys,
the same settings) checks the chain across it. A kid change without such a record is a break.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from guard.errors import AuditError

KEY_ENV = "GUARD_AUDIT_HMAC_KEY"
KEY_ID_ENV = "GUARD_AUDIT_KEY_ID"
PREVIOUS_KEY_ENV = "GUARD_AUDIT_PREVIOUS_HMAC_KEY"
PREVIOUS_KEY_ID_ENV = "GUARD_AUDIT_PREVIOUS_KEY_ID"


def derived_kid(secret: bytes) -> str:
    """A stable id for a key that names no id: a hash of the key (it reveals nothing usable about it)."""
    return "k-" + hashlib.sha256(b"guard-audit-key-id\x00" + secret).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class AuditKey:
    kid: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"AuditKey(kid={self.kid!r})"


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The key new records are MACed with (`current`), and the one before it (for a rotation)."""

    current: AuditKey | None = None
    previous: AuditKey | None = None

    def for_kid(self, kid: str) -> AuditKey | None:
        for key in (self.current, self.previous):
            if key is not None and key.kid == kid:
                return key
        return None

    @property
    def text_key(self) -> bytes:
        """The key for the records' `text_hmac` (empty: no text HMAC is written)."""
        return b"" if self.current is None else self.current.secret


def key_from(secret: bytes, kid: str = "") -> AuditKey | None:
    if not secret:
        return None
    return AuditKey(kid or derived_kid(secret), secret)


def keys_from_env(environ: Mapping[str, str]) -> AuditKeys:
    current = key_from(environ.get(KEY_ENV, "").encode(), environ.get(KEY_ID_ENV, ""))
    previous = key_from(environ.get(PREVIOUS_KEY_ENV, "").encode(), environ.get(PREVIOUS_KEY_ID_ENV, ""))
    if previous is not None and current is None:
        raise AuditError(f"{PREVIOUS_KEY_ENV} is set but {KEY_ENV} is not: a rotation needs the new key")
    if previous is not None and current is not None and previous.kid == current.kid:
        raise AuditError(
            f"{PREVIOUS_KEY_ENV} and {KEY_ENV} have the same key id '{current.kid}': give the new key its own "
            f"{KEY_ID_ENV}"
        )
    return AuditKeys(current, previous)
