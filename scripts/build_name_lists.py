"""Build the name gazetteer the PII detector ships (models/pii/first_names.txt, last_names.txt).

The names come from Faker's person providers (MIT licence, see models/pii/card.md) for the locales
below: English (US, GB, NG, IN, KE), Spanish, Portuguese (BR, PT), French, German, Italian, Dutch,
Polish, Yoruba, Igbo, Hausa, Swahili, romanised Chinese, Nordic, Czech, Hungarian, Turkish,
Indonesian, Vietnamese and others. Entries that are stop words in the languages spaCy ships stop lists for
are left out, so "will", "de", "van" never count as names. Faker is needed only here, not at run time.

    python scripts/build_name_lists.py
"""

from __future__ import annotations

import importlib
from pathlib import Path

LOCALES = (
    "en_US", "en_GB", "en_NG", "en_IN", "en_KE", "es_ES", "es_MX", "es_CO", "pt_BR", "pt_PT", "fr_FR", "de_DE",
    "it_IT", "nl_NL", "pl_PL", "yo_NG", "ig_NG", "ha_NG", "sw", "zh_CN", "da_DK", "sv_SE", "no_NO", "fi_FI",
    "cs_CZ", "hu_HU", "tr_TR", "id_ID", "vi_VN", "ro_RO", "is_IS", "et_EE", "zu_ZA", "tw_GH", "hi_IN",
)
STOP_LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl", "sw", "pl", "da", "sv", "nb", "fi", "cs", "hu", "tr", "id", "ro")
OUT = Path(__file__).resolve().parent.parent / "models" / "pii"


def _stop_words() -> set[str]:
    words: set[str] = set()
    for language in STOP_LANGUAGES:
        try:
            module = importlib.import_module(f"spacy.lang.{language}.stop_words")
        except ImportError:
            continue
        words |= {w.lower() for w in module.STOP_WORDS}
    return words


def main() -> None:
    first: set[str] = set()
    last: set[str] = set()
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attribute in dir(provider):
            lowered = attribute.lower()
            if "prefix" in lowered or "suffix" in lowered or "format" in lowered or attribute.startswith("_"):
                continue
            value = getattr(provider, attribute)
            if not isinstance(value, (tuple, list, dict, set)):
                continue
            names = [n for n in (value.keys() if isinstance(value, dict) else value) if isinstance(n, str)]
            if "first" in lowered or "romanized" in lowered:
                first.update(names)
            elif "last" in lowered:
                last.update(names)
    stop = _stop_words()

    def keep(name: str) -> bool:
        return " " not in name and len(name) >= 2 and name.isalpha() and name.lower() not in stop

    OUT.mkdir(parents=True, exist_ok=True)
    for filename, names in (("first_names.txt", first), ("last_names.txt", last)):
        kept = sorted({n for n in names if keep(n)})
        (OUT / filename).write_text("\n".join(kept) + "\n", encoding="utf-8")
        print(f"{filename}: {len(kept)} names")


if __name__ == "__main__":
    main()
