"""From a declared model (``ModelSpec``) to the provider that talks to it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from allo.gateway.config import ModelSpec, ProviderKind
from allo.gateway.protocol import Provider

if TYPE_CHECKING:
    import httpx2

    from allo.knowledge.answer import ExtractiveAnswerer


def make_provider(
    spec: ModelSpec,
    *,
    cache_dir: Path,
    extractive: ExtractiveAnswerer | None = None,
    http_client: httpx2.Client | None = None,
) -> Provider:
    """The provider for ``spec``; cheap: nothing is loaded, read or called yet.

    ``cache_dir`` is where packaged local models are joined; ``extractive`` is the
    knowledge base's answerer (with its abstention threshold and procedure lookup), a
    default one when not given; ``http_client`` goes to the API providers' SDKs.
    Each SDK module is imported only when a model of its kind is declared.
    """
    if spec.provider is ProviderKind.EXTRACTIVE:
        from allo.gateway.providers.extractive import ExtractiveProvider

        if extractive is None:
            from allo.config import AnswerSettings
            from allo.knowledge.answer import ExtractiveAnswerer

            extractive = ExtractiveAnswerer(abstain_below=AnswerSettings().abstain_below)
        return ExtractiveProvider(extractive, name=spec.name)
    if spec.provider is ProviderKind.LOCAL:
        from allo.gateway.providers.local import LocalProvider

        return LocalProvider(spec, cache_dir=cache_dir)
    if spec.provider is ProviderKind.OPENAI:
        from allo.gateway.providers.openai_compat import OpenAICompatibleProvider

        return OpenAICompatibleProvider(spec, http_client=http_client)
    if spec.provider is ProviderKind.ANTHROPIC:
        from allo.gateway.providers.anthropic import AnthropicProvider

        return AnthropicProvider(spec, http_client=http_client)
    raise AssertionError(f"unhandled provider kind {spec.provider!r}")  # pragma: no cover
