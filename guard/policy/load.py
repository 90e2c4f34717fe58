"""Reading a policy file: YAML with line numbers → a validated, frozen `PolicyFile`, or one `ConfigError`.

Every problem is reported as `FILE:LINE: field.path: what is wrong and what is expected`, one line per
problem, so an operator can fix a file without reading pydantic's internals:

    policies/x.yaml:14: tiers.limited.input.pii.medium.action: 'redakt' is not one of allow, log, redact, review, block

Nothing falls back to defaults: an empty, unreadable or malformed file is an error. Duplicate keys in a
mapping (which YAML would silently resolve to the last one) are errors too.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

import guard
from guard.errors import ConfigError
from guard.policy.model import PolicyFile

_Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a policy file: where, which field, and what is expected."""

    source: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.message}"


class PolicyFileError(ConfigError):
    """A policy file that does not validate. `str()` has one `FILE:LINE: field: message` line per problem;
    `problems` has them as values, so logs can carry the field paths without the free text."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _fail(source: str, line: int, field: str, message: str) -> PolicyFileError:
    return PolicyFileError([Problem(source, line, field, message)])


def default_policy_path() -> Path:
    """The shipped `policies/default.yaml`, found from the installed package's location."""
    return Path(guard.__file__).resolve().parent.parent / "policies" / "default.yaml"


class _LineLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type stubs
    """SafeLoader whose composed node tree is kept: node start marks give each key's line."""


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _check_keys(node: Node, source: str) -> None:
    """Refuse duplicate and non-scalar keys, before construction folds merge keys (`<<: *x`) in."""
    visited: set[int] = set()

    def walk(current: Node, path: _Path) -> None:
        if id(current) in visited:  # an alias: checked where its anchor was defined
            return
        visited.add(id(current))
        if isinstance(current, MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in current.value:
                if not isinstance(key_node, ScalarNode):
                    raise _fail(source, _line(key_node), _dotted(path) or "<top>", "keys must be plain scalars")
                key = str(key_node.value)
                if key != "<<" and key in seen:
                    raise _fail(
                        source,
                        _line(key_node),
                        _dotted(path + (key,)),
                        f"duplicate key (first at line {seen[key]}); each key may appear once",
                    )
                seen[key] = _line(key_node)
                walk(value_node, path + (key,))
        elif isinstance(current, SequenceNode):
            for index, item in enumerate(current.value):
                walk(item, path + (index,))

    walk(node, ())


def _index_lines(node: Node) -> dict[_Path, int]:
    """Map every key path in the constructed document to the 1-based line of its key (or list item).

    After construction, a mapping's merged-in entries come first and its own keys after, so an own key
    that overrides a merged one is the line recorded.
    """
    lines: dict[_Path, int] = {(): _line(node)}

    def walk(current: Node, path: _Path, ancestors: frozenset[int]) -> None:
        if id(current) in ancestors:  # a recursive alias: nothing new below it
            return
        inner = ancestors | {id(current)}
        if isinstance(current, MappingNode):
            for key_node, value_node in current.value:
                key = str(key_node.value)
                lines[path + (key,)] = _line(key_node)
                walk(value_node, path + (key,), inner)
        elif isinstance(current, SequenceNode):
            for index, item in enumerate(current.value):
                lines[path + (index,)] = _line(item)
                walk(item, path + (index,), inner)

    walk(node, (), frozenset())
    return lines


def _dotted(path: _Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _compose(text: str, source_name: str) -> tuple[Any, dict[_Path, int]]:
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise _fail(source_name, 1, "<top>", "the policy file is empty; it needs name, version, default_tier and tiers")
        _check_keys(node, source_name)
        # Merge keys (`<<: *anchor`) are folded into the node tree while constructing; lines come after.
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.context_mark is not None and exc.problem:
            problem += f" ({exc.context} that starts at line {int(exc.context_mark.line) + 1})"
        raise _fail(source_name, line, "<yaml>", f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise _fail(source_name, 1, "<yaml>", f"YAML error: {type(exc).__name__}") from None
    finally:
        loader.dispose()
    if not isinstance(data, Mapping):
        raise _fail(
            source_name,
            _line(node),
            "<top>",
            f"the policy must be a mapping (name: ..., version: ..., tiers: ...), not a {type(data).__name__}",
        )
    return data, _index_lines(node)


def _locate(loc: tuple[int | str, ...], lines: Mapping[_Path, int]) -> tuple[_Path, int]:
    """The document path a pydantic `loc` points at, dropping pydantic's own parts (union tags,
    `[key]`, validator names), and the line of the deepest part that exists in the file."""
    path: _Path = ()
    for part in loc:
        candidate = path + (part,)
        if candidate in lines:
            path = candidate
    return path, lines.get(path, 1)


def _choices(expected: str) -> str:
    """"'a', 'b' or 'c'" → "a, b, c"."""
    return ", ".join(re.findall(r"'([^']*)'", expected))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind in ("enum", "literal_error"):
        return f"{_short(value)} is not one of {_choices(str(ctx.get('expected', '')))}"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{loc[-1]}'{hint}"
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind == "union_tag_invalid":
        return f"{_short(ctx.get('tag'))} is not one of {_choices(str(ctx.get('expected_tags', '')))}"
    if kind == "union_tag_not_found":
        return "missing 'kind' (which detector this is, e.g. kind: presidio_pii)"
    if kind == "string_pattern_mismatch":
        return f"{_short(value)} does not match the pattern {ctx.get('pattern')}"
    if kind == "string_type":
        return f"expected a string, got {_short(value)} (quote it in YAML)"
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msg = str(error["msg"])
    return f"{_short(value)} is invalid: {msg[:1].lower()}{msg[1:]}"


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the model that `loc` points into (for 'unknown key' hints)."""
    current: Any = PolicyFile
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _step(annotation: Any, part: int | str) -> Any:
    """One step of a pydantic loc through type annotations: a field, a list item, a dict value, a union tag."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _step(args[0], part)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        fields = {f.alias or name: f for name, f in annotation.model_fields.items()}
        field = fields.get(str(part))
        return None if field is None else field.annotation
    if origin in (list, tuple):
        return args[0] if isinstance(part, int) and args else None
    if origin is dict:
        return args[1] if len(args) == 2 else None
    if args:  # a union: pick the member the tag or the type names
        for member in args:
            inner = typing.get_args(member)[0] if typing.get_origin(member) is typing.Annotated else member
            if isinstance(inner, type) and issubclass(inner, pydantic.BaseModel):
                kind_field = inner.model_fields.get("kind")
                tags = typing.get_args(kind_field.annotation) if kind_field is not None else ()
                if part in tags or part == inner.__name__:
                    return inner
        members = [m for m in args if m is not type(None)]
        if len(members) == 1:
            return _step(members[0], part)
    return None


def parse_policy(text: str, source_name: str) -> PolicyFile:
    """Validate policy YAML `text`; `source_name` is how errors name the file."""
    data, lines = _compose(text, source_name)
    try:
        return PolicyFile.model_validate(data)
    except pydantic.ValidationError as exc:
        problems: list[Problem] = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            path, line = _locate(loc, lines)
            message = _message(error, loc)
            path, message = _refine(path, message, lines)
            if error["type"] == "union_tag_invalid" and path + ("kind",) in lines:
                path = path + ("kind",)
            line = lines.get(path, line)
            if error["type"] == "missing":
                shown = _dotted(path + (str(loc[-1]),)) if path else str(loc[-1])
            else:
                shown = _dotted(path) or "<top>"
            problems.append(Problem(source_name, line, shown, message))
        problems.sort(key=lambda problem: problem.line)
        raise PolicyFileError(problems) from None


def _refine(path: _Path, message: str, lines: Mapping[_Path, int]) -> tuple[_Path, str]:
    """Point model-validator errors at the key their message names.

    `tiers.x.input.pii: no detector ...` (a path then a colon, relative to `path` or from the top) moves
    the location to that key and drops the prefix; `default_tier 'x' is ...` from the top-level validator
    moves it to `default_tier`.
    """
    head = re.match(r"([a-z_][a-z0-9_]*(?:\[\d+\])*(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])*)*)(:\s|\s)", message)
    if head is None:
        return path, message
    parts: _Path = tuple(
        int(token[1:-1]) if token.startswith("[") else token
        for token in re.findall(r"[a-z_][a-z0-9_]*|\[\d+\]", head.group(1))
    )
    with_colon = head.group(2).startswith(":")
    for base in (path, ()):
        candidate: _Path = base + parts
        if candidate in lines:
            return candidate, message[head.end():] if with_colon else message
    return path, message


def load_policy(path: str | Path) -> PolicyFile:
    """Read and validate a policy file. Raises `ConfigError` naming the file and line."""
    source_name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise _fail(source_name, 0, "<file>", f"cannot read the policy file: {exc.strerror or type(exc).__name__}") from None
    return parse_policy_bytes(raw, source_name)


def parse_policy_bytes(raw: bytes, source_name: str) -> PolicyFile:
    """`parse_policy` for raw file bytes: refuses anything that is not UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(source_name, line, "<file>", "the policy file is not valid UTF-8") from None
    return parse_policy(text, source_name)
