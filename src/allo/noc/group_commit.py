"""Group commit: many concurrent requests, one engine step and one transaction.

Each ``POST /v1/alarms`` request used to be its own step of the engine and its own
commit, so that one alarm per request cost a whole transaction (and a pipeline call) and
throughput stopped at a few hundred alarms per second. :class:`GroupCommitter` queues the
requests of an event loop; whenever the engine is free, *everything queued* goes through
:meth:`~allo.noc.engine.NocEngine.ingest_payloads` as one step (at most ``max_requests``
bodies), in a worker thread, while the next requests queue up behind it. A request is
answered only once the transaction holding its alarms has committed, so the guarantee of
one request per transaction holds (after an answer, its alarms survive a ``kill -9``).

Nothing waits on a timer when the engine is idle: a lone request goes through at once.
When requests come together (the last step held more than one), the committer lingers
``linger_seconds`` (a few milliseconds) before the next step so that those in flight
join it: fewer, larger transactions for a small, bounded extra delay. It does not linger
after a step that itself lasted that long: whatever was in flight had the time to
arrive during it, and waiting more would only leave the engine idle under load.

No background task outlives the work: the committing task starts with the first queued
request and ends when the queue is empty, on the event loop of the requests it serves.

A streaming producer (``WS /v1/alarms/ws``) sends alarms one by one on one connection;
queuing one request per alarm would cost a future and a parse call each. Instead
:meth:`~GroupCommitter.enqueue` queues a payload whose content is decided *when its step
starts*: ``take`` runs on the event loop as the step is formed and returns the parser of
whatever that connection received meanwhile. So every alarm that arrived while the engine
was busy joins the next step, and one connection costs one payload per step.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from allo.domain.alarms import Alarm
from allo.noc.engine import IngestResult, NocEngine
from allo.noc.sources.base import InputReport

Parse = Callable[[InputReport, int], list[Alarm]]
#: called on the event loop when the step that holds a payload starts; returns its parser
Take = Callable[[], Parse]


@dataclass(eq=False)
class _Waiting:
    take: Take
    source: str | None
    future: asyncio.Future[IngestResult] = field(repr=False)


class GroupCommitter:
    """Coalesces concurrent ingest requests into one engine step (see the module doc)."""

    def __init__(
        self, engine: NocEngine, *, max_requests: int = 500, linger_seconds: float = 0.002
    ) -> None:
        if max_requests < 1 or linger_seconds < 0:
            raise ValueError("max_requests must be >= 1 and linger_seconds >= 0")
        self.engine = engine
        self.max_requests = max_requests
        self.linger_seconds = linger_seconds
        self.steps = 0  # engine steps run, for the status route and tests
        self.requests = 0  # requests served by them
        self.alarms = 0  # alarms those steps parsed
        self.step_seconds = 0.0  # wall time inside engine steps (where a stream's time goes)
        self._queue: deque[_Waiting] = deque()
        self._task: asyncio.Task[None] | None = None
        self._together = False  # the last step served more than one request
        self._last_step = 0.0  # how long it took (seconds)

    async def submit(self, parse: Parse, source: str | None = None) -> IngestResult:
        """Queue one request body; returns its result once committed (or raises its error)."""
        return await self.enqueue(lambda: parse, source)

    def enqueue(self, take: Take, source: str | None = None) -> asyncio.Future[IngestResult]:
        """Queue a payload decided late: ``take()`` runs on this event loop when the step
        that holds it starts, and returns its parser. The future completes once that step
        has committed (or carries its error). Call it from a coroutine of the loop."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(take, source, loop.create_future())
        self._queue.append(waiting)
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())
        return waiting.future

    async def _run(self) -> None:
        while self._queue:
            if (
                self._together
                and self._last_step < self.linger_seconds
                and len(self._queue) < self.max_requests
            ):
                await asyncio.sleep(self.linger_seconds)
            batch = [self._queue.popleft() for _ in range(min(self.max_requests, len(self._queue)))]
            live: list[_Waiting] = []
            payloads: list[tuple[Parse, str | None]] = []
            for waiting in batch:
                if waiting.future.cancelled():
                    continue
                try:
                    payloads.append((waiting.take(), waiting.source))
                except Exception as exc:  # its producer's fault only
                    waiting.future.set_exception(exc)
                    continue
                live.append(waiting)
            if not live:
                continue
            self._together = len(live) > 1
            started = time.perf_counter()
            try:
                outcomes = await asyncio.to_thread(self.engine.ingest_payloads, payloads)
            except Exception as exc:  # the step failed: every request of it hears why
                for waiting in live:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)
                continue
            self._last_step = time.perf_counter() - started
            self.step_seconds += self._last_step
            self.steps += 1
            self.requests += len(live)
            self.alarms += sum(
                o.accepted + o.already_stored for o in outcomes if isinstance(o, IngestResult)
            )
            for waiting, outcome in zip(live, outcomes, strict=True):
                if waiting.future.done():  # its client went away; the alarms are stored
                    continue
                if isinstance(outcome, Exception):
                    waiting.future.set_exception(outcome)
                else:
                    waiting.future.set_result(outcome)
