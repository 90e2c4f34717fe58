"""Encoded payloads, decoded so a classifier can screen what they say (issue 10).

An injection hidden as base64, hex, URL encoding, ROT13 or leetspeak reads as noise to a sentence encoder.
`decoded_variants(text)` finds such payloads and returns each one's plain text with the span of `text`
it came from, so a finding on the decoded text points at the encoded characters in the caller's text:

- base64 (standard and URL-safe alphabets) and hex (`49676e6f7265`, `49 67 6e`, `\\x49\\x67`): runs long
  enough to carry a sentence, decoded only when the bytes are UTF-8 text that is mostly letters;
- URL encoding: a text with several `%XX` escapes is unquoted whole (span: the whole text);
- ROT13: the text rotated, kept only when the rotation reads as far more common English words than the
  original (span: the whole text);
- leetspeak: digits and symbols inside words (`1gn0r3`, `@ll`) mapped back to letters, kept only when
  several words change (span: the whole text).

Pure functions, no I/O; cost is a few regular expressions per text, and texts with nothing encoded
produce no variants, so they cost the classifier nothing extra. Variants are screened in addition to the
original text, never instead of it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

# A payload must be long enough to hold an instruction; shorter runs are ids, hashes and tokens.
_MIN_DECODED_CHARS = 12
_MAX_VARIANTS = 8  # per text: bounds the extra classifier work an adversarial text can cause
_MIN_LETTER_SHARE = 0.6
_LEET_SHARE = 0.4

_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9_-]{4}){4,}(?:[A-Za-z0-9+/_-]{2,3}={0,2})?(?![A-Za-z0-9+/_-])")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){12,}(?![0-9A-Fa-f])")
_HEX_ESCAPES = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){12,}")
_URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_LEET_WORD = re.compile(r"(?<!\S)[A-Za-z0-9@$!|+]*[A-Za-z][A-Za-z0-9@$!|+]*[.,;:?]*(?!\S)")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})

# Common English words: ROT13 is kept when the rotated text reads as English and the original did not.
_COMMON = frozenset(
    "the a an and or of to in on for with is are be you your me my i it this that all any now from as at by "
    "not no do what how system prompt instructions instruction previous ignore above rules tell reveal print "
    "show say password secret forget new task answer write give must will can please only then".split()
)


@dataclass(frozen=True, slots=True)
class DecodedVariant:
    """Plain text recovered from `original[start:end]` by `encoding`."""

    text: str
    start: int
    end: int
    encoding: str


def _is_text(decoded: str) -> bool:
    if len(decoded.strip()) < _MIN_DECODED_CHARS or not decoded.isprintable() and not all(c.isprintable() or c in "\n\t\r" for c in decoded):
        return False
    letters = sum(1 for c in decoded if c.isalpha() or c.isspace())
    return letters / len(decoded) >= _MIN_LETTER_SHARE and " " in decoded.strip()


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _printable(decoded: str) -> bool:
    return len(decoded) >= _MIN_DECODED_CHARS and decoded.isprintable()


def _base64(text: str, keep: Callable[[str], bool] = _is_text) -> list[DecodedVariant]:
    out = []
    for match in _BASE64.finditer(text):
        run = match.group(0)
        if run.isalpha() and (run.islower() or run.isupper()):
            continue  # a plain long word, not a payload
        padded = run.rstrip("=") + "=" * (-len(run.rstrip("=")) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = _utf8(decode(padded))
            except (binascii.Error, ValueError):
                continue
            if decoded is not None and keep(decoded):
                out.append(DecodedVariant(decoded, match.start(), match.end(), "base64"))
                break
    return out


def _hex(text: str, keep: Callable[[str], bool] = _is_text) -> list[DecodedVariant]:
    out = []
    for pattern in (_HEX_RUN, _HEX_ESCAPES):
        for match in pattern.finditer(text):
            digits = re.sub(r"[^0-9A-Fa-f]", "", match.group(0).replace("\\x", ""))
            if len(digits) % 2:
                digits = digits[:-1]
            decoded = _utf8(bytes.fromhex(digits))
            if decoded is not None and keep(decoded):
                out.append(DecodedVariant(decoded, match.start(), match.end(), "hex"))
    return out


def _url(text: str) -> list[DecodedVariant]:
    if len(_URL_ESCAPE.findall(text)) < 3:
        return []
    decoded = unquote(text.replace("+", " "))
    return [DecodedVariant(decoded, 0, len(text), "url")] if decoded != text and _is_text(decoded) else []


def _common_share(text: str) -> float:
    words = [w.lower() for w in _WORD.findall(text)]
    return sum(1 for w in words if w in _COMMON) / len(words) if words else 0.0


def _rot13(text: str) -> list[DecodedVariant]:
    if sum(1 for c in text if "a" <= c.lower() <= "z") < _MIN_DECODED_CHARS:
        return []
    rotated = codecs.decode(text, "rot13")
    if _common_share(rotated) >= 0.25 and _common_share(rotated) > 2 * _common_share(text):
        return [DecodedVariant(rotated, 0, len(text), "rot13")]
    return []


def _leet(text: str) -> list[DecodedVariant]:
    changed = 0
    words = len(text.split())

    def undo(match: re.Match[str]) -> str:
        nonlocal changed
        word = match.group(0)
        core = word.rstrip("!.,;:?")
        if not re.search(r"[0-9@$!|+]", core) or not re.search(r"[A-Za-z]", core) or len(core) > 24:
            return word  # no substitution, or a hash or id rather than a word
        changed += 1
        return core.translate(_LEET) + word[len(core):]

    plain = _LEET_WORD.sub(undo, text)
    # Several words, and a good share of them: "mp3", "covid19" and "4th" in a sentence are not leetspeak.
    leet = changed >= 3 and changed >= _LEET_SHARE * words
    return [DecodedVariant(plain, 0, len(text), "leetspeak")] if leet else []


def decoded_variants(text: str) -> list[DecodedVariant]:
    """Every encoded payload found in `text`, decoded; empty for a text with none. One level deep: a
    payload inside a decoded payload is decoded once more (base64 of hex, URL-encoded base64)."""
    found: list[DecodedVariant] = []
    for finder in (_base64, _hex, _url, _rot13, _leet):
        found.extend(finder(text))
    nested: list[DecodedVariant] = []
    # Intermediate layers need not read as text (base64 of hex decodes to hex digits), only the last one.
    layers = [*found, *(v for v in (*_base64(text, _printable), *_hex(text, _printable)) if v not in found)]
    for variant in layers:
        for inner in (*_base64(variant.text), *_hex(variant.text)):
            nested.append(DecodedVariant(inner.text, variant.start, variant.end, f"{variant.encoding}+{inner.encoding}"))
    unique: dict[str, DecodedVariant] = {}
    for variant in (*found, *nested):
        unique.setdefault(variant.text, variant)
    return list(unique.values())[:_MAX_VARIANTS]
