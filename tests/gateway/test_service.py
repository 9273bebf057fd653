"""The gateway end to end with scripted providers: policy, redaction, retries, audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allo.errors import BudgetExceededError, ConfigError, ModelError, PolicyRefusal
from allo.gateway.audit import AuditStore, Outcome
from allo.gateway.call import Caller, DocumentUse, GatewayCall, GatewayResult
from allo.gateway.config import (
    DataClass,
    DataLocation,
    GatewaySettings,
    ModelSpec,
    ProviderKind,
    TeamBudget,
)
from allo.gateway.protocol import (
    ChatMessage,
    ChatRequest,
    Role,
    StreamEvent,
    TextDelta,
)
from allo.gateway.service import Gateway
from allo.testing.clock import ScriptedClock
from allo.testing.providers import ScriptedProvider

IBAN = "FR76 3000 6000 0112 3456 7890 189"
PHONE = "06 12 34 56 78"


def specs() -> list[ModelSpec]:
    return [
        ModelSpec(name="extractive", provider=ProviderKind.EXTRACTIVE),
        ModelSpec(
            name="cloud",
            provider=ProviderKind.OPENAI,
            model="m",
            base_url="https://api.example/v1",
            location=DataLocation.EXTERNAL,
            cost_per_1k_input=0.5,
            cost_per_1k_output=1.5,
            max_retries=2,
        ),
        ModelSpec(name="local", provider=ProviderKind.LOCAL, gguf_path=Path("m.gguf")),
    ]


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditStore]:
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    store.migrate()
    yield store
    store.close()


def make_gateway(
    audit: AuditStore, providers: dict[str, ScriptedProvider], **update: object
) -> tuple[Gateway, ScriptedClock]:
    config = GatewaySettings(models=specs(), default_model="cloud", fallbacks={"cloud": ["local"]})
    config = config.model_copy(update=update)
    clock = ScriptedClock(1_790_000_000.0)
    return Gateway(config, lambda spec: providers[spec.name], audit, clock=clock), clock


def ask(text: str, **kwargs: object) -> GatewayCall:
    request = ChatRequest((ChatMessage(Role.SYSTEM, "Réponds."), ChatMessage(Role.USER, text)))
    return GatewayCall(request, caller=Caller("alice", "care"), **kwargs)  # type: ignore[arg-type]


def test_external_model_sees_placeholders_and_the_answer_gets_the_originals(
    audit: AuditStore,
) -> None:
    cloud = ScriptedProvider("cloud", answer="Je rappelle le {user}")
    gateway, _ = make_gateway(audit, {"cloud": cloud, "local": ScriptedProvider("local")})
    result = gateway.complete(ask(f"Rappelez-moi au {PHONE} demain"))
    sent = cloud.seen[0].messages[1].content
    assert PHONE not in sent and "[TEL_1]" in sent
    assert PHONE in result.completion.text
    assert result.model.name == "cloud" and result.data_class is DataClass.INTERNAL
    assert result.redacted == {"PHONE": 1}
    record = audit.get(result.audit_id)
    assert record.redacted == {"PHONE": 1} and record.outcome is Outcome.OK
    assert record.cost == pytest.approx(100 / 1000 * 0.5 + 20 / 1000 * 1.5)


def test_streamed_answers_are_restored_across_split_placeholders(audit: AuditStore) -> None:
    cloud = ScriptedProvider("cloud", answer="Numéro noté : {user}.")
    gateway, _ = make_gateway(audit, {"cloud": cloud, "local": ScriptedProvider("local")})
    events = list(gateway.stream(ask(f"mon numéro {PHONE}")))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert PHONE in text and "[TEL" not in text
    assert isinstance(events[-1], GatewayResult)


def test_local_models_get_the_text_unchanged(audit: AuditStore) -> None:
    local = ScriptedProvider("local")
    gateway, _ = make_gateway(audit, {"cloud": ScriptedProvider("cloud"), "local": local})
    gateway.complete(ask(f"Mon numéro est le {PHONE}", model="local"))
    assert PHONE in local.seen[0].messages[1].content


def test_confidential_data_goes_to_the_allowed_fallback_never_to_the_cloud(
    audit: AuditStore,
) -> None:
    cloud, local = ScriptedProvider("cloud"), ScriptedProvider("local")
    gateway, _ = make_gateway(audit, {"cloud": cloud, "local": local})
    result = gateway.complete(ask(f"Mon IBAN est {IBAN}"))
    assert result.model.name == "local" and result.data_class is DataClass.CONFIDENTIAL
    assert cloud.seen == []
    tagged = gateway.complete(
        ask("Quelle est la marge ?", documents=(DocumentUse("d1", ("confidentiel",)),))
    )
    assert tagged.model.name == "local" and cloud.seen == []


def test_a_request_no_allowed_model_can_serve_is_refused_and_audited(audit: AuditStore) -> None:
    cloud = ScriptedProvider("cloud")
    gateway, _ = make_gateway(
        audit, {"cloud": cloud, "local": ScriptedProvider("local")}, fallbacks={}
    )
    with pytest.raises(PolicyRefusal, match="confidential"):
        gateway.complete(ask(f"IBAN {IBAN}"))
    assert cloud.seen == []
    [record] = audit.query()
    assert record.outcome is Outcome.REFUSED and record.data_class is DataClass.CONFIDENTIAL
    assert IBAN.replace(" ", "") not in str(record.to_json()).replace(" ", "")


def test_recoverable_failures_are_retried_then_the_chain_moves_on(audit: AuditStore) -> None:
    busy = ModelError("server busy", retryable=True)
    cloud = ScriptedProvider("cloud", failures=[busy, busy, busy])
    local = ScriptedProvider("local", answer="local answer")
    gateway, clock = make_gateway(audit, {"cloud": cloud, "local": local})
    result = gateway.complete(ask("Bonjour"))
    assert result.model.name == "local" and result.attempts == ("cloud",) * 3 + ("local",)
    assert clock.slept == pytest.approx(0.5 + 1.0)  # backoff between the 3 tries
    assert audit.get(result.audit_id).outcome is Outcome.FALLBACK


def test_unrecoverable_failures_are_not_retried(audit: AuditStore) -> None:
    cloud = ScriptedProvider("cloud", failures=[ModelError("bad response", retryable=False)])
    gateway, clock = make_gateway(audit, {"cloud": cloud, "local": ScriptedProvider("local")})
    assert gateway.complete(ask("Bonjour")).attempts == ("cloud", "local")
    assert clock.slept == 0
    keyless = ScriptedProvider("cloud", failures=[ConfigError("set OPENAI_API_KEY")])
    gateway, _ = make_gateway(audit, {"cloud": keyless, "local": ScriptedProvider("local")})
    assert gateway.complete(ask("Bonjour")).model.name == "local"


def test_when_every_model_fails_the_error_says_why_and_is_audited(audit: AuditStore) -> None:
    down = ModelError("connection refused", retryable=True)
    providers = {
        "cloud": ScriptedProvider("cloud", failures=[down] * 3),
        "local": ScriptedProvider("local", failures=[ModelError("crashed", retryable=False)]),
    }
    gateway, _ = make_gateway(audit, providers)
    with pytest.raises(ModelError, match=r"cloud: connection refused.*local: crashed") as caught:
        gateway.complete(ask("Bonjour"))
    assert caught.value.retryable
    assert [r.outcome for r in audit.query()] == [Outcome.FAILED]


def test_a_failure_after_text_was_streamed_does_not_switch_model(audit: AuditStore) -> None:
    class Breaking(ScriptedProvider):
        def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
            yield TextDelta("Début")
            raise ModelError("connection lost", retryable=True)

    local = ScriptedProvider("local")
    gateway, _ = make_gateway(audit, {"cloud": Breaking("cloud"), "local": local})
    stream = gateway.stream(ask("Bonjour"))
    assert next(stream) == TextDelta("Début")
    with pytest.raises(ModelError, match="connection lost"):
        next(stream)
    assert local.seen == [] and audit.query()[0].outcome is Outcome.FAILED


def test_an_abandoned_stream_is_audited_as_cancelled(audit: AuditStore) -> None:
    gateway, _ = make_gateway(
        audit, {"cloud": ScriptedProvider("cloud", "x" * 30), "local": ScriptedProvider("local")}
    )
    stream = gateway.stream(ask("Bonjour"))
    next(stream)
    stream.close()
    assert [r.outcome for r in audit.query()] == [Outcome.CANCELLED]


def test_budgets_are_enforced_from_the_audit_log(audit: AuditStore) -> None:
    providers = {"cloud": ScriptedProvider("cloud"), "local": ScriptedProvider("local")}
    gateway, _ = make_gateway(audit, providers, budgets={"care": TeamBudget(tokens_per_day=450)})
    gateway.complete(ask("Bonjour"))  # 120 tokens used; each call reserves ~400 ahead
    with pytest.raises(BudgetExceededError):
        gateway.complete(ask("Encore une question"))
    assert [r.outcome for r in audit.query()] == [Outcome.BUDGET, Outcome.OK]
    usage = gateway.budgets.usage("care")
    assert usage.tokens_today == 120 and usage.limit == 450
