"""Normalise: make every alarm usable by the later stages and report what was wrong.

Nothing is rejected here. A clear before the raise is forgotten (the alarm stays active);
an unreadable raise time takes the newest time seen; alarms out of order, far in the
future or on a device the topology does not know go on as they are, counted and flagged.
"""

from __future__ import annotations

import math
from dataclasses import replace

from allo.clock import Clock
from allo.noc.pipeline import FAR_FUTURE, Flow, PipelineConfig
from allo.noc.sources.base import UNKNOWN_DEVICE, InputReport
from allo.noc.topology import Topology


class Normalise:
    name = "normalise"

    def __init__(
        self,
        clock: Clock,
        config: PipelineConfig,
        report: InputReport,
        topology: Topology | None = None,
    ) -> None:
        self.clock = clock
        self.config = config
        self.report = report
        self.topology = topology
        self.watermark: float | None = None  # newest plausible raise time seen

    def process(self, batch: list[Flow]) -> list[Flow]:
        horizon = self.clock.now() + self.config.future_seconds
        late = self.config.late_seconds
        topology = self.topology
        for flow in batch:
            raised = flow.raised_at
            placed = not math.isfinite(raised)
            if placed:
                moment = self.watermark if self.watermark is not None else self.clock.now()
                flow.alarm = replace(flow.alarm, raised_at=moment, cleared_at=None)
                flow.issues.append("raise time unknown: placed at the newest time seen")
                raised = moment
            cleared = flow.cleared_at
            if cleared is not None and cleared < raised:
                self.report.add(
                    "clear_before_raise",
                    flow.alarm.row,
                    f"cleared at {flow.alarm.cleared_at} before raised at {flow.alarm.raised_at}",
                )
                flow.issues.append("cleared before raised: clear ignored")
                flow.alarm = replace(flow.alarm, cleared_at=None)
            if raised > horizon:
                self.report.add(
                    "far_future",
                    flow.alarm.row,
                    f"raised at {flow.alarm.raised_at}, "
                    f"now is {horizon - self.config.future_seconds:.0f}",
                )
                flow.issues.append(FAR_FUTURE)
            else:
                watermark = self.watermark
                if watermark is not None and raised < watermark - late:
                    self.report.add(
                        "out_of_order",
                        flow.alarm.row,
                        f"raised at {flow.alarm.raised_at} after an alarm raised at {watermark}",
                    )
                    flow.issues.append("arrived out of order")
                # a placed time is not a time seen: taken from the wall clock before any
                # alarm, it would make every later historical alarm look out of order
                if not placed and (watermark is None or raised > watermark):
                    self.watermark = raised
            device = flow.device
            if topology is not None and device != UNKNOWN_DEVICE and device not in topology:
                row = flow.alarm.row
                self.report.add("unknown_device", row, f"device {device!r} not in topology")
                flow.issues.append("device not in the topology")
        return batch
