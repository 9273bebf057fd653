"""Suppress flapping: the same alarm raised, cleared and raised again, over and over.

Repeats closer than the duplicate window were already folded; what remains here is a
(device, type) pair raised ``flap_count`` times or more within ``flap_seconds``: each
further raise is folded under the first raise of the series.
"""

from __future__ import annotations

from collections import deque

from allo.domain.alarms import FoldReason
from allo.noc.pipeline import Flow, PipelineConfig


class SuppressFlapping:
    name = "flapping"

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self._raises: dict[tuple[str, str], deque[Flow]] = {}

    def process(self, batch: list[Flow]) -> list[Flow]:
        window = self.config.flap_seconds
        for flow in batch:
            if flow.reason is not None:
                continue
            series = self._raises.setdefault(flow.key, deque())
            moment = flow.alarm.raised_at
            while series and series[0].alarm.raised_at < moment - window:
                series.popleft()
            series.append(flow)
            if len(series) >= self.config.flap_count:
                first = series[0]
                flow.fold(
                    FoldReason.FLAPPING,
                    first,
                    f"raised {len(series)} times in {window:.0f} s since row {first.alarm.row}",
                )
        return batch
