"""Splice new text into the string literals that `jsonscan` located, leaving every other byte as sent.

`rewrite_strings` replaces decoded ranges of those strings by mapping decoded-character offsets to raw
offsets inside the literal (escapes such as `\\u00e9`, `\\"` and surrogate pairs span several raw
characters) and splicing the JSON-escaped new text there. Every other character of the body stays as sent;
strict UTF-8 decoding and encoding are inverse, so "character" and "byte" preservation are the same claim.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from difflib import SequenceMatcher

from guard.codecs.base import Extraction, Replacement, TextEdit
from guard.codecs.jsonscan import JsonDocument, JsonStr, SlotLiterals, scanstring

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")

_ESCAPED = re.compile(r'["\\\x00-\x1f\ud800-\udfff]')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
# Whole-text replacements are diffed finer only over stretches this short (SequenceMatcher is quadratic).
_MAX_DIFF_CHARS = 2000


def escape_json(text: str) -> str:
    """`text` as the inside of a JSON string literal: quotes, backslashes, control characters and lone
    surrogates escaped; everything else as itself (UTF-8 on the wire)."""
    if _ESCAPED.search(text) is None:
        return text
    return _ESCAPED.sub(lambda m: _SHORT_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), text)


def raw_offsets(text: str, literal: JsonStr) -> list[int] | None:
    """Index into `text` where each decoded character of `literal` starts, plus its closing quote's
    index; None when the literal has no escapes (decoded offset i is then at `literal.start + 1 + i`)."""
    pos, stop = literal.start + 1, literal.end - 1
    if text.find("\\", pos, stop) < 0:
        return None
    offsets: list[int] = []
    while pos < stop:
        offsets.append(pos)
        if text[pos] != "\\":
            pos += 1
        elif text[pos + 1] != "u":
            pos += 2
        else:
            # A \\uD8xx\\uDCxx pair decodes to one character, exactly as scanstring joins them.
            high = int(text[pos + 2 : pos + 6], 16)
            if 0xD800 <= high <= 0xDBFF and text.startswith("\\u", pos + 6):
                if 0xDC00 <= int(text[pos + 8 : pos + 12], 16) <= 0xDFFF:
                    pos += 6
            pos += 6
    offsets.append(stop)
    return offsets


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slice equality: C-speed compares, O(n log n) worst case
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def as_edits(old: str, replacement: Replacement) -> list[TextEdit]:
    """The edits that turn `old` into `replacement`: a whole new text becomes at most one edit covering
    what lies between the common prefix and suffix (`rewrite_strings` splits it finer where that stretch
    has escapes); given edits are checked to be sorted, disjoint and within `old`."""
    if isinstance(replacement, str):
        if replacement == old:
            return []
        prefix = _common_prefix(old, replacement)
        limit = min(len(old), len(replacement)) - prefix
        suffix = _common_prefix(old[::-1][:limit], replacement[::-1][:limit])
        return [TextEdit(prefix, len(old) - suffix, replacement[prefix : len(replacement) - suffix])]
    edits = list(replacement)
    previous_end = 0
    for edit in edits:
        if not previous_end <= edit.start <= edit.end <= len(old):
            raise ValueError(
                f"edit {edit.start}..{edit.end} is out of order, overlapping or outside a text of "
                f"{len(old)} characters"
            )
        previous_end = edit.end
    return edits


def _finer(old: str, edit: TextEdit) -> list[TextEdit]:
    """Split one edit into the parts that really differ, so unchanged characters between two redactions
    keep their raw form (a `\\u00e9` stays `\\u00e9`)."""
    before = old[edit.start : edit.end]
    if len(before) + len(edit.replacement) > _MAX_DIFF_CHARS:
        return [edit]
    matcher = SequenceMatcher(None, before, edit.replacement, autojunk=False)
    return [
        TextEdit(edit.start + i1, edit.start + i2, edit.replacement[j1:j2])
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def rewrite_strings(
    document: JsonDocument,
    changes: Iterable[tuple[JsonStr, Replacement]],
    raw_splices: Iterable[tuple[int, int, str]] = (),
) -> bytes:
    """The body with each literal's decoded text changed as given, and each `(start, end, json)` of
    `raw_splices` (offsets into the decoded body text, e.g. from `value_span`) replaced by that JSON
    text; all other bytes as they were."""
    text = document.text
    splices: list[tuple[int, int, str]] = list(raw_splices)
    for literal, replacement in changes:
        edits = as_edits(literal, replacement)
        if not edits:
            continue
        offsets = raw_offsets(text, literal)
        if offsets is not None and isinstance(replacement, str):
            # Only escapes can make a coarse edit rewrite bytes it need not: diff finer where there are some.
            (edit,) = edits
            if text.find("\\", offsets[edit.start], offsets[edit.end]) >= 0:
                edits = _finer(literal, edit)
        base = literal.start + 1
        for edit in edits:
            start = base + edit.start if offsets is None else offsets[edit.start]
            end = base + edit.end if offsets is None else offsets[edit.end]
            splices.append((start, end, escape_json(edit.replacement)))
    if not splices:
        return document.body
    splices.sort(key=lambda splice: (splice[0], splice[1]))
    pieces: list[str] = []
    cursor = 0
    for start, end, new in splices:
        if start < cursor:
            raise ValueError("two replacements overlap in the body (the same slot given twice?)")
        pieces.append(text[cursor:start])
        pieces.append(new)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces).encode("utf-8")


def rewrite_slots(
    body: bytes,
    extraction: Extraction,
    replacements: Mapping[int, Replacement],
    raw_splices: Iterable[tuple[int, int, str]] = (),
) -> bytes:
    """`Codec.rewrite` for codecs whose extraction handle is `SlotLiterals` (`raw_splices` as in
    `rewrite_strings`)."""
    handle = extraction.handle
    if not isinstance(handle, SlotLiterals):
        if not replacements:
            return body
        raise ValueError("rewrite needs the extraction of this codec (no JSON literals recorded)")
    if body is not handle.document.body and body != handle.document.body:
        raise ValueError("rewrite got a different body from the one extracted")
    changes: list[tuple[JsonStr, Replacement]] = []
    for index, replacement in replacements.items():
        if not 0 <= index < len(handle.literals):
            raise ValueError(f"no slot {index}; the extraction has {len(handle.literals)}")
        changes.append((handle.literals[index], replacement))
    return rewrite_strings(handle.document, changes, raw_splices)


def value_span(text: str, path: Sequence[str | int]) -> tuple[int, int] | None:
    """Where the value at `path` (object keys and list indexes from the root) sits in the decoded text
    of a body `parse_json` accepted: `(start, end)`, or None when the path leads nowhere. Values beside
    the path are skipped at C speed (`raw_decode`), never re-parsed by hand."""

    def space(at: int) -> int:
        match = _SPACE.match(text, at)
        return match.end() if match is not None else at

    pos = space(0)
    for step in path:
        opener = "{" if isinstance(step, str) else "["
        if not text.startswith(opener, pos):
            return None
        pos = space(pos + 1)
        count = 0
        while not text.startswith("}" if isinstance(step, str) else "]", pos):
            if isinstance(step, str):
                key, pos = scanstring(text, pos + 1, True)
                pos = space(space(pos) + 1)  # past the ':'
                if key == step:
                    break
            elif count == step:
                break
            _, pos = _DECODER.raw_decode(text, pos)
            pos = space(pos)
            count += 1
            if text.startswith(",", pos):
                pos = space(pos + 1)
        else:
            return None
    _, end = _DECODER.raw_decode(text, pos)
    return pos, end
