"""Cheap evasions applied to known injections, to measure what normalisation wins back (and in tests).

Each transform is deterministic for a given text: spaced letters with wider word gaps, homoglyphs
(Cyrillic/Greek look-alikes for every mappable letter), zero-width characters between letters, and
alternating case.
"""

from __future__ import annotations

from collections.abc import Callable

_HOMOGLYPHS: dict[str | int, str | int | None] = {"a": "а", "c": "с", "e": "е", "i": "і", "o": "о", "p": "р", "s": "ѕ", "x": "х", "y": "у",
               "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "I": "І", "K": "К", "M": "М", "O": "О",
               "P": "Р", "T": "Т", "X": "Х"}


def spaced_letters(text: str) -> str:
    """`ignore all` -> `i g n o r e   a l l` (words of letters only; other tokens kept)."""
    words = text.split(" ")
    return "   ".join(" ".join(w) if w.isalpha() else w for w in words)


def homoglyphs(text: str) -> str:
    return text.translate(str.maketrans(_HOMOGLYPHS))


def zero_width(text: str) -> str:
    return "\u200b".join(text)


def case_games(text: str) -> str:
    return "".join(ch.upper() if i % 2 else ch.lower() for i, ch in enumerate(text))


OBFUSCATIONS: dict[str, Callable[[str], str]] = {
    "spaced_letters": spaced_letters,
    "homoglyphs": homoglyphs,
    "zero_width": zero_width,
    "case_games": case_games,
}
