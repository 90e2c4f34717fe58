"""Bearer tokens for the admin port: `guard serve --tokens FILE`.

The file is a YAML list; only the SHA-256 of each token is stored, never the token:

    - {name: alice, role: reviewer, token_sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8}
    - {name: ops, role: admin, token_sha256: ...}

Make an entry with `printf %s "$TOKEN" | sha256sum`. Roles: `reviewer` (reads masked items, decides),
`admin` (also unmasks, which is audited), `auditor` (reads masked items only). A presented token is hashed
and compared with every entry by `hmac.compare_digest`, so timing tells nothing about which entry is close.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guard.errors import ConfigError


class Role(str, Enum):
    REVIEWER = "reviewer"
    ADMIN = "admin"
    AUDITOR = "auditor"

    @property
    def can_decide(self) -> bool:
        return self in (Role.REVIEWER, Role.ADMIN)

    @property
    def can_unmask(self) -> bool:
        return self is Role.ADMIN


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    role: Role
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made an admin request: the token's name (audited as the reviewer) and role."""

    name: str
    role: Role


class TokenSet:
    def __init__(self, entries: list[TokenEntry]) -> None:
        self._entries = [(bytes.fromhex(e.token_sha256), Principal(e.name, e.role)) for e in entries]

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str) -> Principal | None:
        presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: Principal | None = None
        for digest, principal in self._entries:  # no early exit: every entry is compared
            if hmac.compare_digest(presented, digest) and found is None:
                found = principal
        return found


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def load_tokens(path: Path | str) -> TokenSet:
    """Read and validate a tokens file; `ConfigError` names the file, line and field on any problem."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read tokens file: {type(exc).__name__}") from None
    try:
        root = yaml.compose(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    example = "e.g. '- {name: alice, role: reviewer, token_sha256: <64 hex digits>}'"
    if not isinstance(root, yaml.SequenceNode):
        line = 1 if root is None else _line(root)
        raise ConfigError(f"{path}:{line}: the tokens file must be a YAML list, {example}")
    entries: list[TokenEntry] = []
    seen: dict[str, int] = {}
    for node in root.value:
        if not isinstance(node, yaml.MappingNode) or not all(
            isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode) for k, v in node.value
        ):
            raise ConfigError(f"{path}:{_line(node)}: each entry must be a mapping of plain values, {example}")
        # Scalars as written: YAML would read an all-digit hash as an integer (and lose leading zeros).
        raw = {str(k.value): str(v.value) for k, v in node.value}
        try:
            entry = TokenEntry.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "entry"
            line = _line(node)
            for key, value in node.value:
                if first["loc"] and key.value == first["loc"][0]:
                    line = _line(value)
            # The input value is left out: it may be a token pasted by mistake.
            raise ConfigError(f"{path}:{line}: field '{field}': {first['msg']}; {example}") from None
        if entry.token_sha256 in seen:
            raise ConfigError(
                f"{path}:{_line(node)}: token_sha256 repeats the entry on line {seen[entry.token_sha256]}"
            )
        seen[entry.token_sha256] = _line(node)
        entries.append(entry)
    if not entries:
        raise ConfigError(f"{path}:1: the tokens file lists no tokens, {example}")
    return TokenSet(entries)
