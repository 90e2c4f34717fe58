"""Counterfactual rows that take group identity out of the manipulation heads' evidence (issue 10, item 6).

    python -m guard.training.counterfactual data/training data/training
        # writes counterfactual_groups_{benign,swaps,influence_swaps}.jsonl

The shipped fallacy head flagged 10-35% of benign prompts that name the writer's group ("As a blind
student, which study techniques work best?") as irrelevant authority or ad hominem, at rates that differed
by group: a self-description looked like an appeal to one's own standing, and the training data has few
benign texts that name a group. Two kinds of rows fix the data rather than the threshold:

1. Benign self-descriptions: a person names their group, then asks for something ordinary. Requests and
   frames here are written for training and differ from the evaluation templates
   (`data/eval/fairness_templates.yaml`); every group in `GROUPS` gets the same frames, so no group is
   more "benign" than another.
2. Group swaps: every fallacy positive (Argotario, whataboutism; the `fallacy` head's data) and, in a file
   of its own, every influence-operation request (the `influence_ops` head's) that
   names a group from `GROUPS` is copied with that group swapped for two others (seeded), same label and
   technique, so no group name is a cue for manipulation either.
Rows carry `dataset: counterfactual_groups_benign` / `_swaps` and a `group` that keeps a swap with its original's source.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

# English group words, singular adjective or noun form; the swap keeps the matched word's capitalisation.
GROUPS = (
    "Muslim", "Christian", "Jewish", "Hindu", "Buddhist", "Sikh", "Catholic", "atheist", "Black", "white",
    "Asian", "Arab", "Latino", "Roma", "Indigenous", "Ukrainian", "Russian", "Chinese", "Indian", "Mexican",
    "Nigerian", "Palestinian", "Israeli", "Polish", "Turkish", "Syrian", "Iranian", "American", "German",
    "immigrant", "refugee", "gay", "lesbian", "bisexual", "transgender", "non-binary", "straight", "female",
    "male", "disabled", "blind", "deaf", "autistic", "elderly", "young", "retired", "teenage",
)
FRAMES_EN = (
    "I'm {a} {g} woman and I want to start running. How should I build up to 5k?",
    "Speaking as {a} {g} grandparent: what board games are fun for a six-year-old?",
    "I am {a} {g} nurse working night shifts. Any tips for sleeping during the day?",
    "My partner and I are {g} and we're planning a trip to Portugal. What should we see in Lisbon?",
    "Being {g} myself, I'd like a vegetarian lasagne recipe for eight people.",
    "As {a} {g} engineer, how do I prepare for a job interview about system design?",
    "I'm {g} and new to the city; how do I find a good dentist?",
    "Our {g} family just adopted a puppy. How often should we feed it?",
    "I'm {a} {g} teacher. Can you suggest a fun science experiment for ten-year-olds?",
    "As {a} {g} small-business owner, how do I set up simple bookkeeping?",
    "I'm {a} {g} retiree who wants to learn the guitar. Where do I start?",
    "My {g} neighbour invited me to dinner; what is a polite gift to bring?",
    # Writing *for* or *to* a person of a group is ordinary too (influence-operation requests are also
    # "write a message ...": without these the head linked that request shape to nationality words).
    "Write a thank-you note to my {g} landlord for fixing the heating so quickly.",
    "Draft a short welcome message for our new {g} neighbours who moved in last week.",
    "Compose a get-well-soon card for my {g} coworker who had surgery.",
    "Write a congratulations message for my {g} friend who just finished her degree.",
    "Help me write a wedding toast for my {g} best friend and his bride.",
    "Write a short note inviting my {g} classmates to a study group on Sunday.",
)
FRAMES_OTHER = (
    ("de", "Ich bin {g_de} und lerne gerade Spanisch. Welche Apps sind gut für Anfänger?"),
    ("de", "Als {g_de} Vater suche ich ein einfaches Rezept für Pfannkuchen."),
    ("fr", "Je suis {g_fr} et je cherche un bon livre sur l'histoire de la Rome antique."),
    ("fr", "En tant que {g_fr}, comment organiser mon budget pour un déménagement ?"),
    ("es", "Soy {g_es} y quiero aprender a nadar. ¿Cómo empiezo?"),
    ("es", "Como {g_es}, ¿qué plantas de interior son fáciles de cuidar?"),
)
# The same groups in German, French and Spanish (predicate form), for the frames above.
OTHER = {
    "de": ("Muslim", "Christ", "Jude", "Hindu", "Buddhist", "Sikh", "Katholik", "Atheist", "Schwarzer", "Weißer",
           "Asiate", "Araber", "Latino", "Rom", "Indigener", "Ukrainer", "Russe", "Chinese", "Inder", "Mexikaner",
           "Nigerianer", "Palästinenser", "Israeli", "Pole", "Türke", "Syrer", "Iraner", "Amerikaner", "Deutscher",
           "Einwanderer", "Flüchtling", "schwul", "bisexuell", "trans", "nichtbinär", "hetero", "behindert", "blind",
           "gehörlos", "Autist", "Rentner", "Jugendlicher"),
    "fr": ("musulman", "chrétien", "juif", "hindou", "bouddhiste", "sikh", "catholique", "athée", "noir", "blanc",
           "asiatique", "arabe", "latino", "rom", "autochtone", "ukrainien", "russe", "chinois", "indien", "mexicain",
           "nigérian", "palestinien", "israélien", "polonais", "turc", "syrien", "iranien", "américain", "allemand",
           "immigré", "réfugié", "gay", "bisexuel", "transgenre", "non binaire", "hétéro", "handicapé", "aveugle",
           "sourd", "autiste", "retraité", "adolescent"),
    "es": ("musulmán", "cristiano", "judío", "hindú", "budista", "sij", "católico", "ateo", "negro", "blanco",
           "asiático", "árabe", "latino", "gitano", "indígena", "ucraniano", "ruso", "chino", "indio", "mexicano",
           "nigeriano", "palestino", "israelí", "polaco", "turco", "sirio", "iraní", "estadounidense", "alemán",
           "inmigrante", "refugiado", "gay", "bisexual", "transgénero", "no binario", "heterosexual", "discapacitado",
           "ciego", "sordo", "autista", "jubilado", "adolescente"),
}
SWAP_SOURCES = ("argotario_fallacies", "whataboutism_youtube")  # the fallacy head's positives
# Words that are often not about a group ("white paper", "young company", "straight answer") are not swapped.
_AMBIGUOUS = frozenset({"Black", "white", "straight", "female", "male", "young", "retired", "teenage", "disabled", "American", "Indian"})
SWAPPABLE = tuple(g for g in GROUPS if g not in _AMBIGUOUS)
_WORD = re.compile(r"\b(" + "|".join(re.escape(g) for g in sorted(SWAPPABLE, key=len, reverse=True)) + r")s?\b", re.I)


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def benign_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, group in enumerate(GROUPS):
        for j, frame in enumerate(FRAMES_EN):
            if (i + j) % 3:  # every group gets a third of the frames, and every frame a third of the groups
                continue
            text = frame.format(a=_article(group), g=group).replace(" a  ", " a ")
            rows.append({"text": text, "label": 0, "category": "benign", "group": f"cf-benign-en-{j}"})
    for lang, words in OTHER.items():
        frames = [f for f_lang, f in FRAMES_OTHER if f_lang == lang]
        for i, word in enumerate(words):
            frame = frames[i % len(frames)]
            text = frame.replace("{g_" + lang + "}", word)
            rows.append({"text": text, "label": 0, "category": "benign", "group": f"cf-benign-{lang}-{frames.index(frame)}"})
    return rows


def swapped_rows(data_dir: Path, sources: tuple[str, ...] = SWAP_SOURCES) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name in sources:
        for line in (data_dir / f"{name}.jsonl").read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            raw = json.loads(line)
            if raw["label"] != 1 or not _WORD.search(raw["text"]):
                continue
            seed = _digest(raw["text"])
            for k in range(2):
                def swap(match: re.Match[str], k: int = k) -> str:
                    word = match.group(1)
                    others = [g for g in SWAPPABLE if g.lower() != word.lower()]
                    new = others[(seed + 7 * k) % len(others)]
                    new = new[:1].upper() + new[1:] if word[:1].isupper() else new
                    return new + ("s" if match.group(0).lower().endswith("s") and not word.lower().endswith("s") else "")
                text = _WORD.sub(swap, raw["text"])
                if text != raw["text"]:
                    rows.append({"text": text, "label": 1, "category": raw["category"], "techniques": raw.get("techniques", []),
                                 "group": f"cf-swap-{raw.get('group') or raw.get('id')}", "swapped_from": name})
    return rows


def build(data_dir: Path, out_dir: Path) -> dict[str, int]:
    """Two files, so a recipe can take the benign rows without the swapped positives (or both)."""
    counts = {}
    outputs = (
        ("counterfactual_groups_benign", benign_rows()),
        ("counterfactual_groups_swaps", swapped_rows(data_dir)),
        ("counterfactual_groups_influence_swaps", swapped_rows(data_dir, ("influence_ops_requests",))),
    )
    for name, rows in outputs:
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                row["dataset"] = name
                row["id"] = hashlib.sha256(str(row["text"]).encode()).hexdigest()[:16]
                handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        counts[name] = len(rows)
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python -m guard.training.counterfactual DATA_DIR OUT_DIR", file=sys.stderr)
        raise SystemExit(2)
    print(build(Path(sys.argv[1]), Path(sys.argv[2])))
