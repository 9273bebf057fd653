"""Normalise: make every alarm usable by the later stages and report what was wrong.

Nothing is rejected here. A clear before the raise is forgotten (the alarm stays active);
an unreadable raise time takes the newest time seen; alarms out of order, far in the
future or on a device the topology does not know go on as they are, counted and flagged.
"""

from __future__ import annotations

import math
from dataclasses import replace

from allo.noc.clock import Clock
from allo.noc.pipeline import Flow, PipelineConfig
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
        for flow in batch:
            alarm = flow.alarm
            row = alarm.row
            if not math.isfinite(alarm.raised_at):
                moment = self.watermark if self.watermark is not None else self.clock.now()
                alarm = replace(alarm, raised_at=moment, cleared_at=None)
                flow.issues.append("raise time unknown: placed at the newest time seen")
            if alarm.cleared_at is not None and alarm.cleared_at < alarm.raised_at:
                self.report.add(
                    "clear_before_raise",
                    row,
                    f"cleared at {alarm.cleared_at} before raised at {alarm.raised_at}",
                )
                flow.issues.append("cleared before raised: clear ignored")
                alarm = replace(alarm, cleared_at=None)
            if alarm.raised_at > horizon:
                self.report.add(
                    "far_future",
                    row,
                    f"raised at {alarm.raised_at}, now is "
                    f"{horizon - self.config.future_seconds:.0f}",
                )
                flow.issues.append("raise time far in the future")
            else:
                if (
                    self.watermark is not None
                    and alarm.raised_at < self.watermark - self.config.late_seconds
                ):
                    self.report.add(
                        "out_of_order",
                        row,
                        f"raised at {alarm.raised_at} after an alarm raised at {self.watermark}",
                    )
                    flow.issues.append("arrived out of order")
                if self.watermark is None or alarm.raised_at > self.watermark:
                    self.watermark = alarm.raised_at
            if (
                self.topology is not None
                and alarm.device != UNKNOWN_DEVICE
                and alarm.device not in self.topology
            ):
                self.report.add("unknown_device", row, f"device {alarm.device!r} not in topology")
                flow.issues.append("device not in the topology")
            flow.alarm = alarm
        return batch
