"""Names from a gazetteer (issue 11): first and last names of many locales (models/pii/*_names.txt,
built by scripts/build_name_lists.py from Faker's MIT-licensed lists), so Chinese (romanised), Nigerian,
Brazilian and other names that spaCy's small English model misses are found, lowercase ones too.

What counts, from strongest: a known first name followed by a known last name ("Chidi Okafor",
"tara lebedeva": lowercase pairs count only when both are known); a known first name followed by one or
two capitalised words or an initial ("Radka M Dvořáčková"); a capitalised known last name after a
capitalised word; and, in English text only, one known name that spaCy tags as a proper noun ("Why is
Samantha so impulsive?"). Words that are stop words were removed from the lists when they were built.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ENTITY = "PERSON"
NAME = "GuardNameListRecognizer"
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "models" / "pii"
SCORE_FIRST_LAST = 0.85
SCORE_FIRST_CAPITALISED = 0.7
SCORE_CAPITALISED_LAST = 0.55
SCORE_LOWER_PAIR = 0.65
SCORE_SINGLE_PROPN = 0.6
SHORT_WORD = 3

_WORD = re.compile(r"[^\W\d_][^\W\d_'’-]*(?:['’-][^\W\d_]+)*\.?|[A-Z]\.")


class NameLists:
    """First and last names, compared case-insensitively (lowercase sets)."""

    def __init__(self, directory: Path = DEFAULT_DIR) -> None:
        self.first = self._read(directory / "first_names.txt")
        self.last = self._read(directory / "last_names.txt")

    def supports(self, span_text: str) -> bool:
        """Whether a word of `span_text` is a known first or last name."""
        return any(w.lower().rstrip(".") in self.first or w.lower() in self.last for w in _WORD.findall(span_text))

    @staticmethod
    def _read(path: Path) -> frozenset[str]:
        return frozenset(line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _is_cap(word: str) -> bool:
    return word[:1].isupper() and not word.isupper() or (len(word) == 2 and word.endswith(".") and word[0].isupper())


def _is_initial(word: str) -> bool:
    return len(word.rstrip(".")) == 1 and word[0].isupper()


def find_names(text: str, lists: NameLists, propn_starts: frozenset[int] | None) -> list[tuple[int, int, float]]:
    """`propn_starts`: offsets of tokens spaCy tagged PROPN (English text), or None (no single-word hits)."""
    # A trailing period ends the sentence unless the word is an initial ("J."): it is not part of the span.
    words = [
        (m.start(), m.end() - (1 if m.group(0).endswith(".") and len(m.group(0)) > 2 else 0), m.group(0).rstrip("."))
        for m in _WORD.finditer(text)
    ]
    found: list[tuple[int, int, float]] = []
    index = 0
    while index < len(words):
        start, end, word = words[index]
        lower = word.lower()
        best: tuple[int, float] | None = None  # (last word index, score)
        nxt = words[index + 1] if index + 1 < len(words) else None
        same_line = nxt is not None and "\n" not in text[end : nxt[0]] and nxt[0] - end <= 2
        if lower in lists.first and _is_cap(word) and same_line and nxt is not None:
            j = index + 1
            if _is_initial(nxt[2] if not nxt[2].endswith(".") else nxt[2]) and j + 1 < len(words):
                j += 1  # a middle initial
            s2, e2, w2 = words[j]
            if _is_cap(w2) and not _is_initial(w2) and "\n" not in text[words[j - 1][1] : s2]:
                best = (j, SCORE_FIRST_LAST if w2.lower() in lists.last else SCORE_FIRST_CAPITALISED)
        elif lower in lists.first and word.islower() and same_line and nxt is not None:
            if nxt[2].islower() and nxt[2].lower() in lists.last:
                best = (index + 1, SCORE_LOWER_PAIR)
        elif _is_cap(word) and same_line and nxt is not None and nxt[2].lower() in lists.last and _is_cap(nxt[2]):
            if propn_starts is not None and start in propn_starts and nxt[0] in propn_starts:
                best = (index + 1, SCORE_CAPITALISED_LAST)
        if best is None and propn_starts is not None and start in propn_starts and _is_cap(word):
            # At a sentence start capitals say nothing; a short listed word there ("Key", "May") is
            # too often an ordinary word.
            sentence_start = not text[:start].strip() or text[:start].rstrip()[-1:] in ".!?\n"
            if (lower in lists.first or lower in lists.last) and not (sentence_start and len(word) <= SHORT_WORD):
                best = (index, SCORE_SINGLE_PROPN)
        if best is not None:
            last_index, score = best
            found.append((start, words[last_index][1], score))
            index = last_index + 1
        else:
            index += 1
    return found


def name_list_recognizer(language: str, lists: NameLists) -> Any:
    from presidio_analyzer import LocalRecognizer

    from guard.detectors.pii_recognizers._result import make_result

    class GuardNameListRecognizer(LocalRecognizer):
        def load(self) -> None:
            """The lists are read by `NameLists`, before the recognizer is built."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            doc = getattr(nlp_artifacts, "tokens", None)
            # Only spaCy's full pass (English text) tags parts of speech; the tokenizer-only pass does not.
            propn = None
            if doc is not None and doc.has_annotation("TAG"):
                propn = frozenset(t.idx for t in doc if t.pos_ == "PROPN")
            return [
                make_result(self, ENTITY, s, e, sc, "name in the name lists") for s, e, sc in find_names(text, lists, propn)
            ]

    return GuardNameListRecognizer(supported_entities=[ENTITY], name=NAME, supported_language=language)
