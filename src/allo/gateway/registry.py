"""The declared models and their providers, created once and on first use.

Providers are built lazily: listing the models must not load a 1 GB GGUF file, and a
missing SDK key only matters when that model is actually called.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from allo.errors import AlloError
from allo.gateway.config import GatewaySettings, ModelSpec
from allo.gateway.protocol import Provider, Reachability
from allo.gateway.providers.factory import make_provider
from allo.knowledge.answer import ExtractiveAnswerer


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """A declared model and whether it can be used now."""

    spec: ModelSpec
    reachability: Reachability
    is_default: bool


class ModelRegistry:
    """Builds each declared model's provider once, thread-safely."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        cache_dir: Path,
        extractive: ExtractiveAnswerer | None = None,
    ) -> None:
        self.settings = settings
        self._cache_dir = cache_dir
        self._extractive = extractive
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def provider(self, spec: ModelSpec) -> Provider:
        """The provider of ``spec`` (created on first use)."""
        with self._lock:
            provider = self._providers.get(spec.name)
            if provider is None:
                provider = make_provider(
                    spec, cache_dir=self._cache_dir, extractive=self._extractive
                )
                self._providers[spec.name] = provider
            return provider

    def statuses(self) -> list[ModelStatus]:
        """Every declared model with its reachability (cheap checks, nothing loaded)."""
        statuses: list[ModelStatus] = []
        for spec in self.settings.models:
            try:
                reachability = self.provider(spec).check()
            except AlloError as error:
                reachability = Reachability(False, str(error))
            statuses.append(
                ModelStatus(spec, reachability, spec.name == self.settings.default_model)
            )
        return statuses
