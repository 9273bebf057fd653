"""The gateway: one door for every language-model call in Allo.

For each call it (1) classifies the data from the documents' tags and the personal data
found, (2) keeps only the models of the chain that the policy allows for that class,
(3) checks the team's budget and rate limit, (4) redacts personal data for models whose
location is ``external`` and restores it in the answer, (5) tries the models in order,
retrying recoverable failures, and (6) writes one audit record, whatever the outcome
(a stream abandoned by its reader is recorded as ``cancelled``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace

from allo.clock import Clock, SystemClock
from allo.errors import (
    AlloError,
    BudgetExceededError,
    ConfigError,
    InvalidInputError,
    ModelError,
    PolicyRefusal,
    RateLimitedError,
)
from allo.gateway.audit import AuditRecord, AuditStore, Outcome, call_cost
from allo.gateway.budget import BudgetGuard
from allo.gateway.call import GatewayCall, GatewayResult
from allo.gateway.classification import classify
from allo.gateway.config import DataClass, DataLocation, GatewaySettings, ModelSpec
from allo.gateway.pii import PiiDetector, RedactionSession, Redactor
from allo.gateway.protocol import (
    ChatMessage,
    ChatRequest,
    Completion,
    Provider,
    Role,
    StreamEnd,
    TextDelta,
)
from allo.gateway.routing import route

ProviderSource = Callable[[ModelSpec], Provider]
RETRY_BACKOFF_S = 0.5
Event = TextDelta | GatewayResult


class Gateway:
    """Routes, protects, retries, budgets and audits language-model calls."""

    def __init__(
        self,
        settings: GatewaySettings,
        providers: ProviderSource,
        audit: AuditStore,
        *,
        detector: PiiDetector | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._providers = providers
        self.audit = audit
        self.redactor = Redactor(detector)
        self.clock = clock or SystemClock()
        self.budgets = BudgetGuard(settings, audit, self.clock)

    def complete(self, call: GatewayCall) -> GatewayResult:
        """The whole completion from the first allowed model that succeeds."""
        for event in self._run(call, streaming=False):
            if isinstance(event, GatewayResult):
                return event
        raise AssertionError("the gateway ended without a result")  # pragma: no cover

    def stream(self, call: GatewayCall) -> Iterator[Event]:
        """Deltas of the first allowed model that starts answering, then the result.

        A model that fails before its first delta gives way to the next one; once text
        has been sent, a failure ends the stream with ``ModelError``.
        """
        return self._run(call, streaming=True)

    # -- one call --------------------------------------------------------------------

    def _run(self, call: GatewayCall, *, streaming: bool) -> Iterator[Event]:
        audit = _CallAudit(self, call)
        try:
            yield from self._serve(call, audit, streaming=streaming)
        except GeneratorExit:
            audit.finish(Outcome.CANCELLED, None)
            raise
        except AlloError as error:
            audit.finish(_outcome_of(error), error)
            raise

    def _serve(self, call: GatewayCall, audit: _CallAudit, *, streaming: bool) -> Iterator[Event]:
        kinds = self.redactor.detector.kinds_in(
            m.content for m in call.request.messages if m.role is not Role.SYSTEM
        )
        audit.data_class = classify(call.documents, kinds, self.settings)
        chain = route(call.model, audit.data_class, self.settings).allowed
        estimate = (
            self._providers(chain[0]).count_tokens(call.request.messages) + call.request.max_tokens
        )
        self.budgets.check(call.caller.team, estimate)
        for spec in chain:
            result = yield from self._try_model(spec, call.request, audit, streaming)
            if result is not None:
                yield result
                return
        raise ModelError(
            "no model could answer ("
            + "; ".join(f"{name}: {why}" for name, why in audit.failures)
            + ")"
            + (": try again later" if audit.retryable else ""),
            retryable=audit.retryable,
        )

    def _try_model(
        self, spec: ModelSpec, original: ChatRequest, audit: _CallAudit, streaming: bool
    ) -> Generator[Event, None, GatewayResult | None]:
        """One model with its retries: yields its deltas, returns its result (or None)."""
        provider = self._providers(spec)
        session = self.redactor.session()
        request = _for_location(original, spec.location, session)
        for attempt in range(spec.max_retries + 1):
            audit.attempts.append(spec.name)
            sent_text = False
            try:
                if streaming:
                    completion = None
                    restorer = session.restorer()
                    for event in provider.stream(request, timeout=spec.timeout_s):
                        if isinstance(event, StreamEnd):
                            completion = event.completion
                            continue
                        text = restorer.feed(event.text)
                        if text:
                            sent_text = True
                            yield TextDelta(text)
                    tail = restorer.flush()
                    if tail:
                        yield TextDelta(tail)
                    if completion is None:
                        raise ModelError(f"{spec.name} ended its stream early", retryable=True)
                else:
                    completion = provider.complete(request, timeout=spec.timeout_s)
            except ModelError as error:
                audit.failed(spec.name, error)
                if sent_text:
                    raise  # text already reached the reader: no silent switch of model
                if error.retryable and attempt < spec.max_retries:
                    self.clock.sleep(RETRY_BACKOFF_S * 2**attempt)
                    continue
                return None
            except (ConfigError, InvalidInputError) as error:
                # This model cannot serve the call (no key, no weights, prompt longer than
                # its context); the next model of the chain may.
                audit.failed(spec.name, error)
                return None
            audit.redacted = {str(kind): count for kind, count in session.counts.items()}
            restored = replace(completion, text=session.restore(completion.text))
            return audit.succeeded(spec, restored)
        return None


def _for_location(
    request: ChatRequest, location: DataLocation, session: RedactionSession
) -> ChatRequest:
    """The request as a model at ``location`` may see it: redacted when it is external.

    External models get the messages with placeholders and no structured grounding
    (passages reach them only as redacted text inside the messages).
    """
    if location is not DataLocation.EXTERNAL:
        return request
    messages = tuple(
        message
        if message.role is Role.SYSTEM  # Allo's own instructions: no personal data
        else ChatMessage(message.role, session.redact(message.content).text)
        for message in request.messages
    )
    return replace(request, messages=messages, grounding=None)


def _outcome_of(error: AlloError) -> Outcome:
    if isinstance(error, BudgetExceededError):
        return Outcome.BUDGET
    if isinstance(error, RateLimitedError):
        return Outcome.RATE_LIMITED
    if isinstance(error, PolicyRefusal):
        return Outcome.REFUSED
    if isinstance(error, InvalidInputError):
        return Outcome.INVALID
    return Outcome.FAILED


class _CallAudit:
    """What happens during one call; writes its single audit record once."""

    def __init__(self, gateway: Gateway, call: GatewayCall) -> None:
        self.gateway = gateway
        self.call = call
        self.started = time.perf_counter()
        self.data_class: DataClass | None = None
        self.attempts: list[str] = []
        self.failures: list[tuple[str, str]] = []
        self.retryable = False
        self.redacted: dict[str, int] = {}
        self.written = False

    def failed(self, model: str, error: AlloError) -> None:
        self.failures.append((model, str(error)))
        self.retryable = self.retryable or (isinstance(error, ModelError) and error.retryable)

    def succeeded(self, spec: ModelSpec, completion: Completion) -> GatewayResult:
        outcome = Outcome.OK if len(self.attempts) == 1 else Outcome.FALLBACK
        latency, audit_id = self._write(outcome, spec, completion, None)
        assert self.data_class is not None
        return GatewayResult(
            completion=completion,
            model=spec,
            data_class=self.data_class,
            redacted=dict(self.redacted),
            attempts=tuple(self.attempts),
            audit_id=audit_id,
            latency_ms=latency,
        )

    def finish(self, outcome: Outcome, error: AlloError | None) -> None:
        if not self.written:
            self._write(outcome, None, None, error)

    def _write(
        self,
        outcome: Outcome,
        spec: ModelSpec | None,
        completion: Completion | None,
        error: AlloError | None,
    ) -> tuple[float, str]:
        self.written = True
        latency = (time.perf_counter() - self.started) * 1000
        usage = completion.usage if completion else None
        prompt = usage.prompt_tokens if usage else 0
        output = usage.completion_tokens if usage else 0
        settings = self.gateway.settings
        record = AuditRecord.new(
            at=self.gateway.clock.now(),
            user=self.call.caller.user,
            team=self.call.caller.team,
            model=spec.name if spec else (self.call.model or settings.default_model),
            attempts=tuple(self.attempts),
            data_class=str(self.data_class) if self.data_class else None,
            purpose=self.call.purpose,
            document_ids=tuple(document.id for document in self.call.documents),
            redacted=dict(self.redacted),
            prompt_tokens=prompt,
            completion_tokens=output,
            cost=call_cost(spec, prompt, output) if spec else 0.0,
            latency_ms=latency,
            outcome=str(outcome),
            error_type=type(error).__name__ if error else None,
        )
        self.gateway.audit.record(record)
        return latency, record.id
