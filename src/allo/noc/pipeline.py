"""The NOC pipeline, read as its stages (like Alertmanager's ``MultiStage``)::

    normalise -> deduplicate -> suppress flapping -> suppress self-clearing transients
              -> topology inhibition -> causal correlation -> group into incidents

Each stage is a small class with one method, ``process(batch) -> batch``, over
:class:`Flow` records (an alarm and what the stages found about it). Stages keep their
own windows on *event time* and take the injected clock for everything else, so that the
same pipeline serves a batch replay and a live stream, and tests run on scripted time.
The last stage turns flows into incidents; ``Pipeline.push`` returns the incidents closed
by the batch and ``Pipeline.flush`` closes the rest. Nothing is ever dropped: a stage only
marks *why* an alarm can be folded and *under which* earlier alarm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from allo.domain.alarms import Alarm, FoldReason, Incident
from allo.noc.sources.base import InputReport

if TYPE_CHECKING:
    from allo.clock import Clock
    from allo.noc.causal import CausalGraph
    from allo.noc.stages.group import GroupIntoIncidents
    from allo.noc.stages.inhibit import InhibitRule
    from allo.noc.topology import Topology

#: the issue normalisation flags on an alarm raised far in the future; the stages that
#: keep an event-time clock do not let such an alarm move it
FAR_FUTURE: Final = "raise time far in the future"


class Flow:
    """One alarm on its way through the pipeline, with what the stages found.

    ``under`` is the earlier alarm it can be folded under and ``reason`` why (the first
    stage to say so wins); ``cause`` is the alarm the learned graph names as its cause
    (``None`` makes it a probable root of its own).

    ``device``, ``alarm_type``, ``raised_at`` and ``cleared_at`` repeat the alarm's own
    fields, kept in step by the ``alarm`` setter: the stages read them for every alarm,
    and compiled (``tools/build_native.py``) they are plain fields of this class, where
    the alarm's are looked up by name on another class (slower than the interpreter).
    """

    __slots__ = (
        "_alarm",
        "alarm_type",
        "cause",
        "cause_hops",
        "cause_strength",
        "cleared_at",
        "detail",
        "device",
        "incident",
        "issues",
        "raised_at",
        "reason",
        "under",
    )

    def __init__(self, alarm: Alarm) -> None:
        self._alarm = alarm
        self.device = alarm.device
        self.alarm_type = alarm.alarm_type
        self.raised_at = alarm.raised_at
        self.cleared_at = alarm.cleared_at
        self.reason: FoldReason | None = None
        self.under: Flow | None = None
        self.detail = ""
        self.cause: Flow | None = None
        self.cause_hops = 0
        self.cause_strength = 0.0
        self.issues: list[str] = []
        self.incident: object | None = None  # set by the grouping stage

    @property
    def alarm(self) -> Alarm:
        """The alarm, as normalisation left it."""
        return self._alarm

    @alarm.setter
    def alarm(self, alarm: Alarm) -> None:
        self._alarm = alarm
        self.device = alarm.device
        self.alarm_type = alarm.alarm_type
        self.raised_at = alarm.raised_at
        self.cleared_at = alarm.cleared_at

    @property
    def key(self) -> tuple[str, str]:
        """(device, alarm type): what deduplication and flapping compare."""
        return (self.device, self.alarm_type)

    def fold(self, reason: FoldReason, under: Flow | None, detail: str) -> None:
        """Record a fold reason unless an earlier stage already gave one."""
        if self.reason is None:
            self.reason, self.under, self.detail = reason, under, detail

    def __repr__(self) -> str:
        return f"Flow(row={self._alarm.row}, reason={self.reason}, detail={self.detail!r})"


class Stage(Protocol):
    """One step of the pipeline."""

    name: str

    def process(self, batch: list[Flow]) -> list[Flow]:
        """Annotate (never drop) the flows of one batch, in event-time order."""
        ...


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Windows and thresholds of every stage, in seconds of event time."""

    duplicate_seconds: float = 300.0  # same type, same device: a repeat within this is a duplicate
    flap_seconds: float = 900.0  # raise/clear cycles counted over this window ...
    flap_count: int = 3  # ... this many make it flapping
    transient_seconds: float = 60.0  # cleared by itself within this: a transient
    cause_seconds: float = 300.0  # a cause precedes its effect by at most this
    cause_hops: int = 1  # ... on the same or an adjacent device
    incident_seconds: float = 3600.0  # an incident spans at most this from its first alarm
    incident_hops: int = 2  # ... and its devices are this close to the head's device
    future_seconds: float = 86400.0  # raised later than now + this: far in the future
    late_seconds: float = 60.0  # older than the newest alarm by more than this: out of order


class Pipeline:
    """The stages in order; the last one groups flows into incidents."""

    def __init__(
        self, stages: Sequence[Stage], group: GroupIntoIncidents, report: InputReport | None = None
    ) -> None:
        self.stages = list(stages)
        self.group = group
        self.report = report or InputReport()

    @property
    def names(self) -> list[str]:
        return [stage.name for stage in self.stages] + [self.group.name]

    def push(self, alarms: Sequence[Alarm]) -> list[Incident]:
        """Run one batch through every stage; returns the incidents it closed."""
        return self.push_flows(alarms)[1]

    def push_flows(self, alarms: Sequence[Alarm]) -> tuple[list[Flow], list[Incident]]:
        """Like :meth:`push`, also returning the batch's flows (what a live engine shows:
        ``flow.incident`` is the open incident each one joined, ``None`` once closed)."""
        batch = [Flow(alarm) for alarm in alarms]
        for stage in self.stages:
            batch = stage.process(batch)
        return batch, self.group.add(batch)

    def flush(self) -> list[Incident]:
        """Close every open incident (end of a replay, or shutdown)."""
        return self.group.close_all()

    def fold_counts(self) -> Counter[str]:
        """How many alarms were folded for each reason, so far."""
        return self.group.reasons


def build_pipeline(
    clock: Clock,
    *,
    topology: Topology | None = None,
    graph: CausalGraph | None = None,
    config: PipelineConfig | None = None,
    inhibit_rules: Sequence[InhibitRule] = (),
    report: InputReport | None = None,
) -> Pipeline:
    """The standard pipeline; without a graph, correlation finds no cause (dedup still works)."""
    from allo.noc.stages.correlate import CausalCorrelation
    from allo.noc.stages.dedup import Deduplicate
    from allo.noc.stages.flapping import SuppressFlapping
    from allo.noc.stages.group import GroupIntoIncidents
    from allo.noc.stages.inhibit import TopologyInhibition
    from allo.noc.stages.normalise import Normalise
    from allo.noc.stages.transient import SuppressTransients

    cfg = config or PipelineConfig()
    shared = report or InputReport()
    stages: list[Stage] = [
        Normalise(clock, cfg, shared, topology),
        Deduplicate(cfg, shared),
        SuppressFlapping(cfg),
        SuppressTransients(cfg),
        TopologyInhibition(inhibit_rules, topology),
        CausalCorrelation(graph, topology, cfg),
    ]
    return Pipeline(stages, GroupIntoIncidents(cfg, topology), shared)
