"""What a reviewer sees of a held text: segments, with PII spans masked unless the role may unmask.

Masking uses the finding spans stored with the item (no detector runs here): each span of a `pii`
finding becomes `[ENTITY_TYPE]`. Overlapping spans merge into one mask. Every span finding (masked or not)
is highlighted: its segment lists the indexes of the findings that cover it, so the console can explain it.
"""

from __future__ import annotations

from dataclasses import dataclass

from guard.review.items import ItemFinding

MASKED_CATEGORIES = frozenset({"pii"})


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    findings: tuple[int, ...]  # indexes into the item's findings
    masked: bool

    def to_json(self) -> dict[str, object]:
        return {"text": self.text, "findings": list(self.findings), "masked": self.masked}


def segments(text: str, text_index: int, findings: tuple[ItemFinding, ...], mask: bool) -> list[Segment]:
    spans = [
        (i, max(0, min(len(text), f.start)), max(0, min(len(text), f.end)))
        for i, f in enumerate(findings)
        if f.text_index == text_index and f.start is not None and f.end is not None and f.end > f.start
    ]
    cuts = sorted({0, len(text), *(s for _, s, _ in spans), *(e for _, _, e in spans)})
    out: list[Segment] = []
    for start, end in zip(cuts, cuts[1:]):
        if start >= end:
            continue
        covering = tuple(i for i, s, e in spans if s <= start and end <= e)
        pii = [findings[i] for i in covering if findings[i].category in MASKED_CATEGORIES]
        if mask and pii:
            label = "[" + "|".join(sorted({f.entity_type or f.label or f.category.upper() for f in pii})) + "]"
            previous = out[-1] if out else None
            if previous is not None and previous.masked:
                # One mask for overlapping or touching PII spans: no length or boundary hints leak.
                merged = tuple(sorted(set(previous.findings) | set(covering)))
                out[-1] = Segment(_merge_labels(previous.text, label), merged, True)
            else:
                out.append(Segment(label, covering, True))
        else:
            out.append(Segment(text[start:end], covering, False))
    return out


def _merge_labels(a: str, b: str) -> str:
    labels = sorted(set(a.strip("[]").split("|")) | set(b.strip("[]").split("|")))
    return "[" + "|".join(labels) + "]"


def masked_text(text: str, text_index: int, findings: tuple[ItemFinding, ...]) -> str:
    return "".join(s.text for s in segments(text, text_index, findings, mask=True))
