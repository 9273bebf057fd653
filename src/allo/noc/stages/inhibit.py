"""Topology inhibition: rules written by operators, as Alertmanager's ``inhibit_rules``.

A rule says that an alarm of ``source_type`` masks alarms of ``target_type`` on devices
within ``hops`` of it for ``seconds`` after it ("link down" masks "loss of signal" on the
far end). ``target_type="*"`` masks every type. The learned counterpart of this stage is
:mod:`allo.noc.stages.correlate`; rules are for what operators know for certain.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from allo.domain.alarms import FoldReason
from allo.noc.pipeline import Flow
from allo.noc.topology import Topology


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source_type: str
    target_type: str = "*"
    hops: int = 1
    seconds: float = 300.0


class TopologyInhibition:
    name = "inhibit"

    def __init__(self, rules: Sequence[InhibitRule], topology: Topology | None) -> None:
        self.rules = list(rules)
        self.topology = topology
        self._sources = {rule.source_type for rule in self.rules}
        self._recent: dict[tuple[str, str], deque[Flow]] = {}

    def process(self, batch: list[Flow]) -> list[Flow]:
        if not self.rules:
            return batch
        for flow in batch:
            if flow.alarm_type in self._sources:
                self._recent.setdefault(flow.key, deque()).append(flow)
        for flow in batch:
            for rule in self.rules:
                if rule.target_type not in {"*", flow.alarm_type}:
                    continue
                if rule.source_type == flow.alarm_type:
                    continue
                source = self._find(flow, rule)
                if source is not None:
                    flow.fold(
                        FoldReason.INHIBITED,
                        source,
                        f"inhibited by {rule.source_type} on {source.alarm.device}",
                    )
                    break
        return batch

    def _find(self, flow: Flow, rule: InhibitRule) -> Flow | None:
        moment = flow.raised_at
        near = self.topology.ball(flow.device, rule.hops) if self.topology else {flow.device: 0}
        for device in near:
            recent = self._recent.get((device, rule.source_type))
            while recent and recent[0].raised_at < moment - 2 * rule.seconds:
                recent.popleft()
            for source in reversed(recent or ()):
                if moment - rule.seconds <= source.raised_at <= moment:
                    return source
        return None
