"""Which language a text is written in, so that English NER runs only over English (issue 11).

py3langid (BSD-3-Clause) carries its naive Bayes model inside the wheel: nothing is downloaded. The model
is restricted to the languages people commonly write to assistants in, which keeps short texts from being
called Nigerian Pidgin or Latin. A text is called English unless another language wins with probability
at least `NON_ENGLISH_MIN_PROBABILITY`, or it has too few letters to tell: a short English prompt
("Call Ana at 555-0134") must keep its name detection, and pattern recognizers run whatever the answer.
"""

from __future__ import annotations

import threading
from typing import Any

ENGLISH = "en"
LANGUAGES = (
    "en", "es", "fr", "de", "pt", "it", "nl", "sv", "da", "no", "fi", "pl", "cs", "ro", "hu", "tr", "ru",
    "uk", "el", "ar", "he", "fa", "hi", "bn", "ur", "zh", "ja", "ko", "vi", "id", "ms", "th", "sw", "tl",
    "ca", "yo", "ha", "ig",
)
NON_ENGLISH_MIN_PROBABILITY = 0.8
MIN_LETTERS = 12  # below this langid guesses; treat as English


class LanguageIdentifier:
    """Owns one py3langid model; `classify` is safe to call from several threads."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        from py3langid.langid import MODEL_FILE
        from py3langid.langid import LanguageIdentifier as Model

        model = Model.from_model_file(MODEL_FILE, norm_probs=True)
        model.set_languages(list(LANGUAGES))
        self._model = model

    def classify(self, text: str) -> str:
        """An ISO 639-1 code; "en" where the text is English or too short to tell."""
        if self._model is None:
            raise RuntimeError("LanguageIdentifier.classify before load()")
        if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
            return ENGLISH
        with self._lock:
            language, probability = self._model.classify(text)
        if language != ENGLISH and float(probability) >= NON_ENGLISH_MIN_PROBABILITY:
            return str(language)
        return ENGLISH
