"""Detector kinds by their permanent registry key, and the config union the policy validates against.

Configs are imported eagerly (validating a policy needs them); implementations are imported only when a
detector is built, so `guard policy check` never pays for torch or spaCy. Third-party detectors register
through the `guard.detectors` entry-point group (name: their `kind`; value: a callable taking the config),
or without packaging through `kind: plugin` with a dotted `factory:` path (how tests plant fault detectors).
"""

from __future__ import annotations

import importlib
from typing import Annotated, Literal

from pydantic import Field

from guard.detectors.base import Detector
from guard.detectors.claims import ClaimsConfig
from guard.detectors.classifier import ClassifierConfig
from guard.detectors.config import DetectorConfigBase
from guard.detectors.presidio_pii import PresidioPIIConfig
from guard.detectors.rules import RulesConfig
from guard.detectors.secrets import SecretsConfig
from guard.errors import ConfigError
from guard.types import Category


class PluginConfig(DetectorConfigBase):
    """A detector made by `factory` ("package.module:callable", called with this config). The policy file
    is trusted configuration: naming code to import here is the same trust as installing an entry point."""

    kind: Literal["plugin"]
    factory: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")]
    reports: list[Category] = Field(min_length=1)
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)

    def categories(self) -> frozenset[Category]:
        return frozenset(self.reports)


DetectorConfig = Annotated[
    PresidioPIIConfig | RulesConfig | ClassifierConfig | ClaimsConfig | SecretsConfig | PluginConfig,
    Field(discriminator="kind"),
]

# kind -> (module, class). Permanent keys: policies in the field name them.
_IMPLEMENTATIONS: dict[str, tuple[str, str]] = {
    "presidio_pii": ("guard.detectors.presidio_pii", "PresidioPIIDetector"),
    "rules": ("guard.detectors.rules", "RulesDetector"),
    "classifier": ("guard.detectors.classifier", "ClassifierDetector"),
    "claims": ("guard.detectors.claims", "ClaimsDetector"),
    "secrets": ("guard.detectors.secrets", "SecretsDetector"),
}


def build_detector(config: DetectorConfig) -> Detector:
    """A detector for a validated config. Cheap: models load later, in `Detector.load`."""
    if isinstance(config, PluginConfig):
        module_path, _, attribute = config.factory.partition(":")
        try:
            plugin_factory = getattr(importlib.import_module(module_path), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"detector '{config.name}': plugin factory '{config.factory}' cannot be imported "
                f"({type(exc).__name__}); expected 'package.module:callable' on the import path"
            ) from None
        plugin: Detector = plugin_factory(config)
        return plugin
    module_name, class_name = _IMPLEMENTATIONS[config.kind]
    factory = getattr(importlib.import_module(module_name), class_name)
    detector: Detector = factory(config)
    return detector
