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
        count = self.config.flap_count
        raises = self._raises
        for flow in batch:
            if flow.reason is not None:
                continue
            key = (flow.device, flow.alarm_type)
            series = raises.get(key)
            if series is None:
                series = raises[key] = deque()
            oldest = flow.raised_at - window
            while series and series[0].raised_at < oldest:
                series.popleft()
            series.append(flow)
            if len(series) >= count:
                first = series[0]
                flow.fold(
                    FoldReason.FLAPPING,
                    first,
                    f"raised {len(series)} times in {window:.0f} s since row {first.alarm.row}",
                )
        return batch
