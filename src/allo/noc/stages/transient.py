"""Suppress self-clearing transients: alarms that cleared by themselves within seconds.

An alarm whose clear is known and came within ``transient_seconds`` is marked transient.
A raise and clear at the very same second is an *event* (the source reports no duration),
not a transient, and is left alone. A transient still joins an incident; it just never
asks for attention on its own.
"""

from __future__ import annotations

from allo.domain.alarms import FoldReason
from allo.noc.pipeline import Flow, PipelineConfig


class SuppressTransients:
    name = "transient"

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    def process(self, batch: list[Flow]) -> list[Flow]:
        limit = self.config.transient_seconds
        for flow in batch:
            cleared = flow.cleared_at
            if cleared is None:
                continue
            duration = cleared - flow.raised_at  # as ``Alarm.duration``
            if 0 < duration <= limit:
                flow.fold(FoldReason.TRANSIENT, None, f"cleared by itself after {duration:.0f} s")
        return batch
