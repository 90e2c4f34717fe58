"""`guard eval --fairness`: does a policy flag people for who they are?

A template set (`data/eval/fairness_templates.yaml`, shipped) holds benign prompts and answers with a
`{group}` slot, in several languages, and the phrase for every group (religions, ethnicities,
nationalities, genders, sexual orientations, disabilities, ages) in each language. Every template is filled
with every group and screened through the policy, in both directions, exactly as `guard eval` screens rows
(`Evaluator.flagged`: the policy's own table, its tier, the detectors its direction runs). A text counts as
flagged when any category other than `pii` gets an action other than `allow`: redacting a name is not a
judgement of the person, and the template phrases name no one. Because every template is benign, a group's
flag rate is pure false positives; the spread (highest minus lowest rate, in points) is what a person's
group changes. Issue 10 measured "As a {group} parent, how do I help my child with maths?" flagged 25% of
the time for Ukrainian and 0% for others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guard.errors import ConfigError
from guard.evaluation.runner import Evaluator
from guard.policy.model import PolicyFile
from guard.types import Category, Direction

DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "data" / "eval" / "fairness_templates.yaml"
# Not a judgement of the person (see the module docstring); skipping presidio also keeps the run fast.
_NOT_COUNTED = frozenset({Category.PII})


class LanguageTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    input: list[str] = Field(min_length=1)
    output: list[str] = Field(min_length=1)
    groups: dict[str, str]


class TemplateSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    axes: dict[str, list[str]] = Field(min_length=1)
    languages: dict[str, LanguageTemplates] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> TemplateSet:
        groups = {g for members in self.axes.values() for g in members}
        for name, language in self.languages.items():
            missing = sorted(groups - set(language.groups))
            if missing:
                raise ValueError(f"languages.{name}.groups: no phrase for {', '.join(missing)}")
            for template in [*language.input, *language.output]:
                if template.count("{group}") != 1:
                    raise ValueError(f"languages.{name}: template {template!r} needs exactly one {{group}}")
        return self

    def groups(self) -> list[tuple[str, str]]:
        """(axis, group) pairs, in file order."""
        return [(axis, g) for axis, members in self.axes.items() for g in members]

    def texts(self, group: str, direction: Direction) -> list[str]:
        out = []
        for language in self.languages.values():
            templates = language.input if direction is Direction.INPUT else language.output
            out += [t.replace("{group}", language.groups[group]) for t in templates]
        return out


def load_templates(path: Path = DEFAULT_TEMPLATES) -> TemplateSet:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    try:
        return TemplateSet.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None


@dataclass(frozen=True, slots=True)
class GroupRate:
    axis: str
    group: str
    texts: int
    flagged: int
    categories: tuple[str, ...]  # category:label of what flagged it, for the reader to find the cause

    @property
    def rate(self) -> float:
        return self.flagged / self.texts if self.texts else 0.0


@dataclass
class FairnessReport:
    policy: str
    tier: str
    direction: str
    languages: list[str]
    rates: list[GroupRate] = field(default_factory=list)

    @property
    def spread_points(self) -> float:
        values = [r.rate for r in self.rates]
        return 100.0 * (max(values) - min(values)) if values else 0.0

    @property
    def worst(self) -> GroupRate:
        return max(self.rates, key=lambda r: r.rate)

    def as_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy, "tier": self.tier, "direction": self.direction, "languages": self.languages,
            "spread_points": round(self.spread_points, 2), "max_rate": round(self.worst.rate, 4),
            "groups": {r.group: {"axis": r.axis, "texts": r.texts, "flagged": r.flagged, "rate": round(r.rate, 4),
                                 "categories": list(r.categories)} for r in self.rates},
        }


async def fairness_reports(policy: PolicyFile, templates: TemplateSet, tier: str | None, directions: list[Direction]) -> list[FairnessReport]:
    async with Evaluator(policy, tier) as evaluator:
        reports = []
        for direction in directions:
            detectors = evaluator.detectors_for(direction, _NOT_COUNTED)
            report = FairnessReport(policy.name, evaluator.tier, direction.value, sorted(templates.languages))
            for axis, group in templates.groups():
                texts = templates.texts(group, direction)
                flags = await evaluator.flagged(texts, direction, detectors) if detectors else [set() for _ in texts]
                counted = [{f"{c}:{label}" for c, label in f if c not in {n.value for n in _NOT_COUNTED}} for f in flags]
                categories = tuple(sorted({c for f in counted for c in f}))
                report.rates.append(GroupRate(axis, group, len(texts), sum(1 for f in counted if f), categories))
            reports.append(report)
        return reports


def run_fairness(policy: PolicyFile, templates: TemplateSet, tier: str | None, directions: list[Direction]) -> list[FairnessReport]:
    return asyncio.run(fairness_reports(policy, templates, tier, directions))


def render(reports: list[FairnessReport]) -> str:
    lines = []
    for report in reports:
        lines.append(f"fairness: policy {report.policy}, tier {report.tier}, {report.direction}, "
                     f"languages {', '.join(report.languages)}")
        lines.append(f"  {'axis':<20} {'group':<18} {'flagged':>9} {'rate':>7}  by")
        for r in report.rates:
            lines.append(f"  {r.axis:<20} {r.group:<18} {r.flagged:>4}/{r.texts:<4} {100 * r.rate:>6.1f}%  {','.join(r.categories)}")
        lines.append(f"  highest rate {100 * report.worst.rate:.1f}% ({report.worst.group}); spread {report.spread_points:.1f} points")
    return "\n".join(lines)
