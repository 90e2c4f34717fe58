"""Detector kinds by their permanent registry key, and the config union the policy validates against.

Configs are imported eagerly (validating a policy needs them); implementations are imported only when a
detector is built, so `guard policy check` never pays for torch or spaCy. Third-party detectors register
through the `guard.detectors` entry-point group (name: their `kind`; value: a callable taking the config).
"""

from __future__ import annotations

import importlib
from typing import Annotated

from pydantic import Field

from guard.detectors.base import Detector
from guard.detectors.claims import ClaimsConfig
from guard.detectors.classifier import ClassifierConfig
from guard.detectors.presidio_pii import PresidioPIIConfig
from guard.detectors.rules import RulesConfig

DetectorConfig = Annotated[
    PresidioPIIConfig | RulesConfig | ClassifierConfig | ClaimsConfig,
    Field(discriminator="kind"),
]

# kind -> (module, class). Permanent keys: policies in the field name them.
_IMPLEMENTATIONS: dict[str, tuple[str, str]] = {
    "presidio_pii": ("guard.detectors.presidio_pii", "PresidioPIIDetector"),
    "rules": ("guard.detectors.rules", "RulesDetector"),
    "classifier": ("guard.detectors.classifier", "ClassifierDetector"),
    "claims": ("guard.detectors.claims", "ClaimsDetector"),
}


def build_detector(config: DetectorConfig) -> Detector:
    """A detector for a validated config. Cheap: models load later, in `Detector.load`."""
    module_name, class_name = _IMPLEMENTATIONS[config.kind]
    factory = getattr(importlib.import_module(module_name), class_name)
    detector: Detector = factory(config)
    return detector
