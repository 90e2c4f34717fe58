"""Text normalisation before encoding: undo the cheap evasions that make an injection look new to a model.

What it undoes, in order:
1. compatibility forms (NFKC: fullwidth letters, mathematical alphanumerics, ligatures, circled letters);
2. zero-width, bidi-control and other invisible format characters (Unicode category Cf), and soft hyphens;
3. confusable letters from other scripts that look Latin (Cyrillic `а`, Greek `ο`, ...) inside Latin words,
   using a table of the common look-alikes from Unicode's confusables list;
4. letter spacing (`i g n o r e`, `i.g.n.o.r.e`, `i-g-n-o-r-e`): runs of single letters joined by one
   separator are glued back; where words are not separated, the run is split into vocabulary words;
5. whitespace runs collapsed. Case games (`iGnOrE`) need nothing here: the encoder's tokenizer lower-cases.

The result is only ever fed to the encoder; findings carry offsets into the caller's original text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

# Look-alikes of Latin letters (a subset of Unicode's confusables.txt: the letters seen in evasion kits).
_CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "с": "c", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԝ": "w",
    "ɡ": "g", "ӏ": "l", "ь": "b", "ԁ": "d", "ѵ": "v", "џ": "u",
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M", "О": "O",
    "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ԝ": "W", "Ԁ": "D", "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y", "ω": "w", "Α": "A", "Β": "B", "Ε": "E", "Η": "H", "Ι": "I", "Κ": "K",
    "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ζ": "Z",
    # Latin extensions and symbols used as letters
    "ı": "i", "ȷ": "j", "ℓ": "l", "ɑ": "a", "ɩ": "i", "ʋ": "u", "ᴀ": "a", "ʀ": "r", "ꜱ": "s",
}
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLES)

# Invisible characters that survive NFKC: soft hyphen, combining grapheme joiner, Hangul fillers.
_EXTRA_INVISIBLE = frozenset("\u00ad\u034f\u115f\u1160\u3164\uffa0")

# A run of >= 4 single letters, each followed by the same one-character separator ("i g n o r e").
_SPACED_RUN = re.compile(r"(?<![^\W\d_])(?:[^\W\d_]([ .\-_*|/+~])){3,}[^\W\d_](?![^\W\d_])")
# Inside text already known to be letter-spaced, a word may be as short as two letters ("a l l").
_SHORT_SPACED_RUN = re.compile(r"(?<![^\W\d_])(?:[^\W\d_]([ .\-_*|/+~]))+[^\W\d_](?![^\W\d_])")
_WHITESPACE = re.compile(r"[^\S\n]+")
_LATIN_WORD = re.compile(r"\w+")


def _strip_invisible(text: str) -> str:
    return "".join(
        ch for ch in text if ch not in _EXTRA_INVISIBLE and unicodedata.category(ch) != "Cf"
    )


def _is_latin_letter(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def _fix_confusables(text: str) -> str:
    """Map look-alike letters to Latin, but only in words made only of Latin letters and look-alikes: real
    Cyrillic or Greek words almost always hold a letter with no Latin twin (д, л, λ, ...) and are kept.
    Leetspeak digits are not undone: that changes meaning too often."""

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        mapped = word.translate(_CONFUSABLE_TABLE)
        if mapped == word:
            return word
        all_mappable = all(_is_latin_letter(ch) or not ch.isalpha() for ch in mapped)
        return mapped if all_mappable else word

    return _LATIN_WORD.sub(fix, text)


class LetterSpacingJoiner:
    """Glues spaced-out letters back into words. `vocabulary` (lower-case whole words, e.g. the tokenizer's
    vocabulary) lets a run with no word gaps (`i g n o r e a l l`) be split into words again."""

    def __init__(self, vocabulary: Iterable[str] = ()) -> None:
        self._words = frozenset(w for w in vocabulary if w.isalpha() and w.isascii())
        self._longest = max((len(w) for w in self._words), default=0)

    def __call__(self, text: str) -> str:
        return _SPACED_RUN.sub(self._join, text)

    def _join(self, match: re.Match[str]) -> str:
        run = match.group(0)
        separator = match.group(1)
        letters = run.replace(separator, "")
        return self.segment(letters) if self._words else letters

    def segment(self, letters: str) -> str:
        """Fewest-words split of `letters` into vocabulary words (single letters allowed as a last resort)."""
        lower = letters.lower()
        n = len(lower)
        inf = 1 << 30
        # cost[i] = (number of pieces, number of single-letter pieces) for the prefix of length i.
        cost: list[tuple[int, int]] = [(0, 0)] + [(inf, inf)] * n
        back = [0] * (n + 1)
        for end in range(1, n + 1):
            for start in range(max(0, end - self._longest), end):
                piece = lower[start:end]
                single = len(piece) == 1
                if not single and piece not in self._words:
                    continue
                prev = cost[start]
                candidate = (prev[0] + 1 + (2 if single else 0), prev[1] + int(single))
                if candidate < cost[end]:
                    cost[end] = candidate
                    back[end] = start
        pieces: list[str] = []
        end = n
        while end > 0:
            start = back[end]
            pieces.append(letters[start:end])
            end = start
        return " ".join(reversed(pieces))


def _double_gap_runs(text: str) -> str:
    """`i g n o r e   a l l` (words split by wider gaps): mark the word gaps before single spaces vanish."""
    return re.sub(r"(?<=\b[^\W\d_]) {2,}(?=[^\W\d_]\b)", " \u2063 ", text)


class TextNormalizer:
    """The normalisation pipeline above, as one callable. Cheap: a few passes over the text."""

    def __init__(self, vocabulary: Iterable[str] = ()) -> None:
        self._joiner = LetterSpacingJoiner(vocabulary)
        self._steps: tuple[Callable[[str], str], ...] = (
            lambda t: unicodedata.normalize("NFKC", t),
            _double_gap_runs,
            self._join_marked,
            _strip_invisible,
            _fix_confusables,
            self._joiner,
            lambda t: _WHITESPACE.sub(" ", t).strip(),
        )

    def _join_marked(self, text: str) -> str:
        # Runs split by the word-gap marker: join each word's letters on its own, keep one space between.
        if "\u2063" not in text:
            return text
        parts = text.split(" \u2063 ")
        return " ".join(_SHORT_SPACED_RUN.sub(lambda m: m.group(0).replace(m.group(1), ""), p) for p in parts)

    def __call__(self, text: str) -> str:
        for step in self._steps:
            text = step(text)
        return text
