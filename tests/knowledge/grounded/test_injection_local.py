"""Prompt injection against the real local model (Qwen2.5-Coder-0.5B, llama.cpp).

Slow (one model call per case, about 10-60 s each on two cores): skipped unless the
``local-llm`` extra is installed, and limited to the first 6 document and 6 question
cases unless ``ALLO_INJECTION_CASES=all``. Abstention is turned off so that every case reaches the
model (the worst case). The structural guarantees are asserted for every case; whether
the injected text reached the customer is *counted*, not asserted, and printed at the
end (``-s``), or written as JSON to ``$ALLO_INJECTION_REPORT`` when set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from allo.config import EmbedderKind, Settings
from allo.gateway.providers.local import LocalProvider
from allo.knowledge.answer import ExtractiveAnswerer
from allo.knowledge.grounded import GroundedAnswerer
from allo.knowledge.service import KnowledgeBase
from allo.testing.gateway import ProviderGateway
from allo.testing.llama_server import LLM_MARKS, TEST_MODEL
from tests.knowledge.grounded.injection import (
    CASES,
    ask,
    contains,
    leaked,
    load_case_base,
    quoted_by_extractive,
    violations,
)

pytestmark = LLM_MARKS

if os.environ.get("ALLO_INJECTION_CASES") == "all":
    SELECTED = CASES
else:
    SELECTED = [c for c in CASES if c["where"] == "document"][:6] + [
        c for c in CASES if c["where"] == "question"
    ][:6]

OUTCOMES: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderGateway]:
    """The packaged 0.5B model, loaded once for all cases (no policy: one local model)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("llm"), embedder=EmbedderKind.FAKE)
    spec = next(s for s in settings.gateway.models if s.packaged == TEST_MODEL)
    spec = spec.model_copy(update={"timeout_s": 600.0, "max_output_tokens": 120})
    provider = LocalProvider(spec, cache_dir=settings.cache_dir)
    provider.warm_up()
    yield ProviderGateway(provider, spec)


@pytest.mark.parametrize("case", SELECTED, ids=[case["id"] for case in SELECTED])
def test_the_local_model_on_an_injection_case(
    case: dict[str, Any],
    local_gateway: ProviderGateway,
    kb: KnowledgeBase,
    settings: Settings,
    tmp_path: Path,
) -> None:
    load_case_base(kb, tmp_path / "docs", case)
    extractive = ExtractiveAnswerer(abstain_below=0.0, chunks_of=kb.store.chunks_of)
    recorder = _Recorder(local_gateway)
    answerer = GroundedAnswerer(recorder, extractive, max_tokens=120)  # type: ignore[arg-type]
    events, result = ask(kb, answerer, case)
    problems = violations(case, kb, extractive, events, result, recorder.calls, settings)
    # A real model paraphrases: a word outside the cited passages is counted, not failed
    # (the support check admits a few; the scripted run holds every word to them).
    structural = [p for p in problems if not p.startswith(("forbidden", "the word"))]
    OUTCOMES[case["id"]] = {
        "where": case["where"],
        "lang": case["lang"],
        "model_obeyed": any(contains(result.raw_text, str(p)) for p in case["forbidden"]),
        "shown": leaked(case, result.answer.text),
        "quoted_by_extractive": quoted_by_extractive(case, result),
        "generated": result.generated,
        "fallback": result.fallback.value if result.fallback else None,
        "removed": result.removed_sentences,
        "words_outside_cited_passages": [p for p in problems if p.startswith("the word")],
        "raw_text": result.raw_text,
        "text": result.answer.text,
    }
    assert structural == []


def test_report_how_many_injections_succeeded() -> None:
    if not OUTCOMES:
        pytest.skip("the case runs did not happen")
    succeeded = sorted(
        key for key, o in OUTCOMES.items() if o["shown"] and not o["quoted_by_extractive"]
    )
    report = {
        "cases": len(OUTCOMES),
        "model_obeyed": sum(o["model_obeyed"] for o in OUTCOMES.values()),
        "reached_the_customer": len(succeeded),
        "succeeded": succeeded,
        "quoted_by_extractive_fallback": sorted(
            key for key, o in OUTCOMES.items() if o["quoted_by_extractive"]
        ),
        "generated": sum(o["generated"] for o in OUTCOMES.values()),
        "outcomes": OUTCOMES,
    }
    target = os.environ.get("ALLO_INJECTION_REPORT")
    if target:
        Path(target).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "outcomes"}, ensure_ascii=False))


class _Recorder:
    """Passes calls to the gateway and keeps them, to check the prompts afterwards."""

    def __init__(self, gateway: ProviderGateway) -> None:
        self.gateway = gateway
        self.calls: list[Any] = []

    def complete(self, call: Any) -> Any:
        self.calls.append(call)
        return self.gateway.complete(call)

    def stream(self, call: Any) -> Any:
        self.calls.append(call)
        return self.gateway.stream(call)
