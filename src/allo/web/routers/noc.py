"""The NOC engine over HTTP: alarms in, incidents out, operator actions, live updates.

- ``POST /v1/alarms/alertmanager``: Prometheus Alertmanager's webhook payload.
- ``POST /v1/alarms``: generic JSON, one alarm object, a list, or ``{"alarms": [...]}``.
- ``WS /v1/alarms/ws``: alarms streamed one per frame, acknowledged once committed
  (:mod:`allo.web.routers.noc_ws`).
- ``GET /v1/incidents`` (paginated, filtered), ``GET /v1/incidents/{id}`` (drill-down),
  ``POST /v1/incidents/{id}/ack`` and ``/resolve``.
- ``GET /v1/incidents/stream``: Server-Sent Events, resumable with ``Last-Event-ID``.
- ``POST|GET /v1/silences``, ``DELETE /v1/silences/{id}``; the same for ``/v1/maintenance``.
- ``GET /noc``: the operators' console (French).

Unreadable items of a payload are never dropped: they become ``malformed-input`` alarms,
counted in ``input_problems``. A body that is not JSON at all gets a 400 JSON error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, field_validator

from allo.clock import Clock, SystemClock
from allo.config import Settings
from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.engine import NocEngine
from allo.noc.group_commit import GroupCommitter
from allo.noc.owner import StreamLock
from allo.noc.silences import Matcher
from allo.noc.sources import parse_alarm_payload, parse_alertmanager
from allo.noc.sources.base import MAX_NAME_CHARS, InputReport, valid_unicode
from allo.noc.sources.fields import timestamp
from allo.noc.store import KINDS, STATUSES, IncidentQuery, SqlNocStore
from allo.web.auth import recorded_author, require_noc_operator, require_noc_source
from allo.web.errors import error_body
from allo.web.routers import noc_ws
from allo.web.routers.noc_ws import committer_of

#: the largest offset, size or event id a query may name (SQLite's integers stop at 2**63)
MAX_COUNT = 10**15
#: how often a server closes the incidents of maintenance windows that have ended
MAINTENANCE_SWEEP_SECONDS = 30.0
logger = logging.getLogger(__name__)
templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
router = APIRouter(tags=["noc"])
router.include_router(noc_ws.router)  # WS /v1/alarms/ws and its documenting GET


def engine_for(settings: Settings, clock: Clock | None = None) -> NocEngine:
    """The live engine on the knowledge store's database (opened on first use).

    A learned graph at ``<data_dir>/noc/graph.json`` (from ``allo noc learn``) and a
    topology at ``<data_dir>/noc/topology.{npy,csv,json}`` are used when present.
    """
    folder = settings.data_dir / "noc"
    graph = topology = None
    if (folder / "graph.json").is_file():
        from allo.noc.causal import CausalGraph

        graph = CausalGraph.load(folder / "graph.json")
    for suffix in ("npy", "csv", "json"):
        if (folder / f"topology.{suffix}").is_file():
            from allo.noc.topology import Topology

            topology = Topology.load(folder / f"topology.{suffix}")
            break
    engine = NocEngine(
        SqlNocStore(settings.resolved_database_url, durable=settings.noc_durable_commits),
        clock or SystemClock(),
        stream="live",
        topology=topology,
        graph=graph,
        lock=StreamLock(folder / "live.lock"),  # one worker runs it (allo.noc.owner)
    )
    if graph is not None:  # a cycle is shown in /v1/noc/status with the input problems
        graph.report_cycle("graph.json", engine.report)
    return engine


async def sweep_maintenance(engine: NocEngine, every: float = MAINTENANCE_SWEEP_SECONDS) -> None:
    """Close the incidents of ended maintenance windows every ``every`` seconds, until
    cancelled: steps that bring alarms close them on the way, this closes them on a quiet
    network too. A failure (the database away for a moment) is logged and tried again."""
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(engine.close_ended_windows)
        except Exception as exc:  # never let the loop die: the next pass tries again
            logger.warning(
                "closing ended maintenance windows failed (%s); retrying in %.0f s",
                type(exc).__name__,
                every,
            )


def noc_engine(request: Request) -> NocEngine:
    engine: NocEngine = request.app.state.noc
    return engine


def committer_for(request: Request, engine: NocEngine) -> GroupCommitter:
    """The app's group committer for its engine (made on first use): concurrent alarm
    requests, and the alarm sockets, share one engine step and one transaction."""
    return committer_of(request.app, engine)


Engine = Annotated[NocEngine, Depends(noc_engine)]
#: route guards: operators (X-NOC-Token) and alarm sources (Authorization: Bearer)
OPERATOR = [Depends(require_noc_operator)]
#: the signed-in operator's name (personal secret) or ``None`` (shared secret)
Operator = Annotated[str | None, Depends(require_noc_operator)]
SOURCE = [Depends(require_noc_source)]


def _bad(kind: str, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse(error_body(kind, message), status_code=status)


async def _json_body(request: Request) -> Any:
    """The request body as JSON, or a ``JSONResponse`` saying what is wrong with it (the
    app's :class:`~allo.web.body_limit.BodyLimit` has refused a body that is too large)."""
    raw = await request.body()
    if not raw.strip():
        return _bad("InvalidJSON", "empty body: send a JSON document")
    try:
        return json.loads(raw)
    except RecursionError:
        return _bad("InvalidJSON", "body is JSON nested too deeply: send flat alarm objects")
    except ValueError as exc:  # not JSON, not UTF-8, or a number of over 4,300 digits
        return _bad("InvalidJSON", f"body is not usable JSON: {exc}")


def _event_id(header: str) -> tuple[str | None, int] | None:
    """The engine epoch and version of a ``Last-Event-ID`` header (``<epoch>-<version>``,
    or a bare version of this engine), or ``None`` for anything else: the browser sends
    back what the server gave, so a bad one is a client's own mistake and the stream
    simply starts from now."""
    epoch, dash, version = header.rpartition("-")
    if dash and not (epoch.isascii() and epoch.isalnum() and len(epoch) <= 32):
        return None
    if version.isascii() and version.isdigit() and len(version) <= 15:
        return (epoch or None), int(version)
    return None


# -- alarms in -------------------------------------------------------------------------


@router.post("/v1/alarms/alertmanager", response_model=None, dependencies=SOURCE)
async def alertmanager_webhook(request: Request, engine: Engine) -> JSONResponse:
    """Receive Prometheus Alertmanager's webhook (``webhook_configs`` URL)."""
    body = await _json_body(request)
    if isinstance(body, JSONResponse):
        return body

    def parse(report: InputReport, first_row: int) -> list[Alarm]:
        return parse_alertmanager(body, report, first_row)

    result = await committer_for(request, engine).submit(parse, "alertmanager")
    return JSONResponse(result.to_json())


@router.post("/v1/alarms", response_model=None, dependencies=SOURCE)
async def post_alarms(request: Request, engine: Engine) -> JSONResponse:
    """Receive alarms as JSON: one object, a list of objects or ``{"alarms": [...]}``.

    Fields: ``id`` (the idempotency key: an id already stored is not counted again),
    ``device``, ``alarm_type``, ``raised_at`` (epoch seconds or ISO 8601), ``cleared_at``,
    ``severity``; any other field is kept as an attribute. Concurrent requests are
    committed together (group commit); the answer comes once the alarms are stored.
    """
    body = await _json_body(request)
    if isinstance(body, JSONResponse):
        return body
    if isinstance(body, dict) and "alarms" not in body:
        body = [body]

    def parse(report: InputReport, first_row: int) -> list[Alarm]:
        return parse_alarm_payload(body, report, first_row)

    result = await committer_for(request, engine).submit(parse, "api")
    return JSONResponse(result.to_json())


# -- incidents --------------------------------------------------------------------------


@router.get("/v1/incidents", dependencies=OPERATOR)
def list_incidents(
    engine: Engine,
    status: Annotated[list[str] | None, Query(description="new, acknowledged, resolved")] = None,
    state: Annotated[Literal["open", "closed"] | None, Query()] = None,
    kind: Annotated[str | None, Query(description="pipeline or maintenance")] = None,
    device: Annotated[str | None, Query(max_length=255)] = None,
    alarm_type: Annotated[str | None, Query(max_length=255)] = None,
    since: Annotated[
        float | None, Query(allow_inf_nan=False, description="started at or after (epoch s)")
    ] = None,
    until: Annotated[
        float | None, Query(allow_inf_nan=False, description="started before (epoch s)")
    ] = None,
    min_size: Annotated[int | None, Query(ge=1, le=MAX_COUNT)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Incidents, newest first."""
    wanted = tuple(status or ())
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise InvalidInputError(f"status {unknown[0]!r}: use one of {', '.join(STATUSES)}")
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"kind {kind!r}: use one of {', '.join(KINDS)}")
    query = IncidentQuery(wanted, state, kind, None, device, alarm_type, since, until, min_size)
    total, items = engine.incidents(query, offset, limit)
    return {"total": total, "offset": offset, "limit": limit, "items": items}


@router.get("/v1/incidents/stream", response_model=None, dependencies=OPERATOR)
async def incident_stream(
    request: Request,
    engine: Engine,
    since: Annotated[
        int | None, Query(ge=0, le=MAX_COUNT, description="replay events after this id")
    ] = None,
    max_events: Annotated[
        int | None, Query(ge=1, le=MAX_COUNT, description="close after N events")
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Live incident updates as Server-Sent Events (``event: incident``, ``silence``, ...).

    Event ids are ``<engine epoch>-<version>``. A reconnecting browser sends
    ``Last-Event-ID`` and gets the events it missed while the engine's short history still
    holds them all; otherwise (a restart, another worker, a long gap) it first gets an
    ``event: resync``: its view may be stale, and it must read the incidents again.
    """
    await run_in_threadpool(engine.warm_up)
    epoch: str | None = None
    if since is None and last_event_id:
        resume = _event_id(last_event_id)
        if resume is not None:
            epoch, since = resume
    # a reader that starts from now is given its position at once: one that reconnects
    # before any event came then resumes from it (or is told to resync), instead of
    # starting from now again and missing what happened in between; the events made
    # before it subscribes are replayed from the history
    fresh = since is None
    if since is None:
        since, epoch = engine.version, engine.epoch
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue(maxsize=10_000)
    overflowed = asyncio.Event()

    def put(item: tuple[int, dict[str, Any]]) -> None:
        if queue.full():  # a reader this far behind: end its stream (see ``events``)
            overflowed.set()
        else:
            queue.put_nowait(item)

    def listener(version: int, event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(put, (version, event))

    async def events() -> AsyncIterator[str]:
        # subscribed only once the response starts: a client gone before that leaves no
        # listener behind (the ``finally`` below would never run); what was emitted in
        # between is replayed from ``since``
        token = engine.subscribe(listener, since=since, epoch=epoch)
        try:
            position = f"id: {engine.epoch}-{since}\n" if fresh else ""
            yield f"retry: 3000\n{position}: connected at version {engine.version}\n\n"
            sent = 0
            while max_events is None or sent < max_events:
                if overflowed.is_set():
                    # events were dropped: rather than go on with a hole nobody sees, the
                    # stream ends; the console reconnects and reads the list again
                    break
                try:
                    version, event = await asyncio.wait_for(queue.get(), timeout=15.0)
                except TimeoutError:
                    if await request.is_disconnected():
                        break
                    yield ": keep-alive\n\n"
                    continue
                data = json.dumps(event, ensure_ascii=False)
                yield f"id: {engine.epoch}-{version}\nevent: {event['type']}\ndata: {data}\n\n"
                sent += 1
        finally:
            engine.unsubscribe(token)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/incidents/{incident_id}", dependencies=OPERATOR)
def get_incident(
    incident_id: str,
    engine: Engine,
    members_offset: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
    members_limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    """One incident: head, roots, every folded alarm with its reason, evidence FR/EN."""
    return engine.incident(incident_id, members_offset, members_limit)


class StatusChange(BaseModel):
    by: str = Field(
        default="",
        max_length=128,
        description="who (free text); ignored for an operator signed in with a personal secret",
    )
    note: str | None = Field(default=None, max_length=2000)


@router.post("/v1/incidents/{incident_id}/ack")
def acknowledge(
    incident_id: str,
    engine: Engine,
    operator: Operator,
    change: Annotated[StatusChange | None, Body()] = None,
) -> dict[str, Any]:
    """Acknowledge: someone is on it. A resolved incident cannot be acknowledged."""
    change = change or StatusChange()
    current = engine.incident(incident_id, 0, 1)
    if current["status"] == "resolved":
        return _bad(  # type: ignore[return-value]
            "Conflict", f"incident {incident_id} is resolved; it reopens if it grows again", 409
        )
    by = recorded_author(operator, change.by)
    return engine.set_status(incident_id, "acknowledged", by, change.note)


@router.post("/v1/incidents/{incident_id}/resolve")
def resolve(
    incident_id: str,
    engine: Engine,
    operator: Operator,
    change: Annotated[StatusChange | None, Body()] = None,
) -> dict[str, Any]:
    """Resolve: handled. It becomes ``new`` again if more alarms join it."""
    change = change or StatusChange()
    by = recorded_author(operator, change.by)
    return engine.set_status(incident_id, "resolved", by, change.note)


# -- silences and maintenance windows ----------------------------------------------------


def _moment(value: float | str | None, name: str) -> float | None:
    if value is None or isinstance(value, float | int):
        return None if value is None else float(value)
    return timestamp(value.strip(), name)


class MatcherIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    value: str = Field(max_length=1000)
    op: Literal["=", "!=", "=~", "!~"] = "="


class SilenceIn(BaseModel):
    matchers: list[MatcherIn] = Field(min_length=1, max_length=50)
    starts_at: float | Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="epoch s or ISO; now"
    )
    ends_at: float | Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="epoch s or ISO"
    )
    duration_seconds: float | None = Field(default=None, gt=0, le=366 * 86400)
    created_by: str = Field(default="", max_length=128)
    comment: str = Field(default="", max_length=2000)


class WindowIn(BaseModel):
    devices: list[Annotated[str, Field(max_length=MAX_NAME_CHARS)]] = Field(
        min_length=1, max_length=10_000
    )
    starts_at: float | Annotated[str, Field(max_length=64)]
    ends_at: float | Annotated[str, Field(max_length=64)]
    created_by: str = Field(default="", max_length=128)
    comment: str = Field(default="", max_length=2000)

    @field_validator("devices")
    @classmethod
    def _named(cls, value: list[str]) -> list[str]:
        if not any(d.strip() for d in value):
            raise ValueError("name at least one device")
        if not all(valid_unicode(d) for d in value):
            raise ValueError("a device name is not valid Unicode (a lone surrogate)")
        return value


@router.post("/v1/silences", status_code=201)
def create_silence(silence: SilenceIn, engine: Engine, operator: Operator) -> dict[str, Any]:
    """Mute incidents whose head matches every matcher, from ``starts_at`` (default now)
    to ``ends_at`` (or for ``duration_seconds``)."""
    starts = _moment(silence.starts_at, "starts_at")
    ends = _moment(silence.ends_at, "ends_at")
    if ends is None:
        if silence.duration_seconds is None:
            raise InvalidInputError("a silence needs ends_at or duration_seconds")
        ends = (engine.clock.now() if starts is None else starts) + silence.duration_seconds
    matchers = [Matcher(m.name, m.value, m.op) for m in silence.matchers]
    by = recorded_author(operator, silence.created_by)
    created = engine.add_silence(matchers, starts, ends, by, silence.comment)
    return created.to_json(engine.clock.now())


@router.get("/v1/silences", dependencies=OPERATOR)
def list_silences(engine: Engine) -> dict[str, Any]:
    """Every silence with its state (pending, active, expired)."""
    items = engine.silences()
    return {"total": len(items), "items": items}


@router.delete("/v1/silences/{silence_id}", dependencies=OPERATOR)
def expire_silence(silence_id: str, engine: Engine) -> dict[str, Any]:
    """End a silence now; it stays listed as expired."""
    return engine.expire_silence(silence_id)


@router.post("/v1/maintenance", status_code=201)
def create_window(window: WindowIn, engine: Engine, operator: Operator) -> dict[str, Any]:
    """Devices under maintenance: their alarms raised inside the window are folded with
    reason ``maintenance`` into the window's own incident."""
    starts = _moment(window.starts_at, "starts_at")
    ends = _moment(window.ends_at, "ends_at")
    assert starts is not None and ends is not None
    by = recorded_author(operator, window.created_by)
    created = engine.add_window(window.devices, starts, ends, by, window.comment)
    return created.to_json(engine.clock.now())


@router.get("/v1/maintenance", dependencies=OPERATOR)
def list_windows(engine: Engine) -> dict[str, Any]:
    items = engine.windows()
    return {"total": len(items), "items": items}


@router.delete("/v1/maintenance/{window_id}", status_code=204, dependencies=OPERATOR)
def delete_window(window_id: str, engine: Engine) -> Response:
    engine.delete_window(window_id)
    return Response(status_code=204)


@router.get("/v1/noc/status")
def status(request: Request, engine: Engine, operator: Operator) -> dict[str, Any]:
    """What the live engine holds: counts, input problems, event version, and how many
    engine steps (transactions) served how many alarm requests and alarms (group commit),
    with the time spent inside them; ``operator`` is the caller's name when their secret is
    personal (``null`` for the shared one)."""
    engine.warm_up()
    committer = getattr(request.app.state, "noc_committer", None)
    if not isinstance(committer, GroupCommitter):
        committer = GroupCommitter(engine)  # none made yet: all zero
    return {
        "group_commit": {
            "steps": committer.steps,
            "requests": committer.requests,
            "alarms": committer.alarms,
            "step_seconds": round(committer.step_seconds, 3),
        },
        "operator": operator,
        "stream": engine.stream,
        "version": engine.version,
        "recovered_at_start": engine.recovered,
        "graph": engine.graph is not None,
        "topology": engine.topology is not None,
        "counts": engine.store.counts(engine.stream),
        "input_problems": engine.report.to_json(),
    }


@router.get("/noc", response_class=HTMLResponse, include_in_schema=False)
def console(request: Request) -> HTMLResponse:
    """The operators' console (French)."""
    return templates.TemplateResponse(request, "noc.html", {})
