"""The extractive provider: answers from the grounding alone, free, always reachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from allo.errors import InvalidInputError
from allo.gateway.config import DataLocation, ModelSpec, ProviderKind
from allo.gateway.protocol import (
    ChatMessage,
    ChatRequest,
    Grounding,
    Provider,
    Role,
    StreamEnd,
    TextDelta,
)
from allo.gateway.providers.extractive import ABSTAINED, ExtractiveProvider
from allo.gateway.providers.factory import make_provider
from allo.knowledge.service import KnowledgeBase


def grounded(kb: KnowledgeBase, question: str, lang: str = "fr") -> ChatRequest:
    passages = tuple(kb.search(question, k=10))
    return ChatRequest(
        messages=(ChatMessage(Role.USER, "ignored by the extractive model"),),
        grounding=Grounding(question=question, lang=lang, passages=passages),
    )


@pytest.fixture(scope="module")
def provider(demo_kb: KnowledgeBase) -> ExtractiveProvider:
    return ExtractiveProvider(demo_kb.answerer)


def test_is_a_provider(provider: ExtractiveProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "extractive"


def test_answers_from_the_passages_like_the_knowledge_base(
    provider: ExtractiveProvider, demo_kb: KnowledgeBase
) -> None:
    question = "Comment configurer ma Livebox 6 ?"
    completion = provider.complete(grounded(demo_kb, question), timeout=1)
    assert completion.text == demo_kb.ask(question).text
    assert "[1]" in completion.text
    assert completion.usage.total == 0
    assert completion.model == "extractive"
    assert completion.finish_reason == "stop"


def test_off_topic_question_abstains(provider: ExtractiveProvider, demo_kb: KnowledgeBase) -> None:
    completion = provider.complete(
        grounded(demo_kb, "Quelle est la recette de la blanquette de veau ?"), timeout=1
    )
    assert completion.finish_reason == ABSTAINED
    assert "conseiller" in completion.text


def test_stream_is_one_delta_then_the_end(
    provider: ExtractiveProvider, demo_kb: KnowledgeBase
) -> None:
    events = list(provider.stream(grounded(demo_kb, "Où trouver le code PUK ?"), timeout=1))
    assert len(events) == 2
    assert isinstance(events[0], TextDelta) and isinstance(events[1], StreamEnd)
    assert events[0].text == events[1].completion.text != ""


def test_without_grounding_it_refuses(provider: ExtractiveProvider) -> None:
    request = ChatRequest(messages=(ChatMessage(Role.USER, "Bonjour"),))
    with pytest.raises(InvalidInputError, match="only answers from documents"):
        provider.complete(request, timeout=1)
    with pytest.raises(InvalidInputError):
        list(provider.stream(request, timeout=1))


def test_costs_nothing_and_is_always_reachable(provider: ExtractiveProvider) -> None:
    assert provider.count_tokens((ChatMessage(Role.USER, "Bonjour " * 1000),)) == 0
    assert provider.check().reachable


def test_factory_builds_each_kind_without_loading_or_calling(tmp_path: Path) -> None:
    specs = {
        ProviderKind.EXTRACTIVE: ModelSpec(name="x", provider=ProviderKind.EXTRACTIVE),
        ProviderKind.LOCAL: ModelSpec(
            name="l", provider=ProviderKind.LOCAL, gguf_path=tmp_path / "absent.gguf"
        ),
        ProviderKind.OPENAI: ModelSpec(
            name="o", provider=ProviderKind.OPENAI, model="m", base_url="http://127.0.0.1:9/v1"
        ),
        ProviderKind.ANTHROPIC: ModelSpec(
            name="a",
            provider=ProviderKind.ANTHROPIC,
            model="claude-haiku-4-5",
            location=DataLocation.EXTERNAL,
        ),
    }
    expected = {
        ProviderKind.EXTRACTIVE: "ExtractiveProvider",
        ProviderKind.LOCAL: "LocalProvider",
        ProviderKind.OPENAI: "OpenAICompatibleProvider",
        ProviderKind.ANTHROPIC: "AnthropicProvider",
    }
    for kind, spec in specs.items():
        made = make_provider(spec, cache_dir=tmp_path)
        assert type(made).__name__ == expected[kind]
        assert isinstance(made, Provider) and made.name == spec.name
    # a local model whose file is missing says so without loading anything
    status = make_provider(specs[ProviderKind.LOCAL], cache_dir=tmp_path).check()
    assert not status.reachable
    assert "does not exist" in status.detail or "llama-cpp-python is missing" in status.detail
