"""Arrival-to-commit latencies, kept as a mergeable histogram.

Each consumer process counts its alarms' latencies in 0.1 ms buckets (a sparse dict, so
memory stays small however many alarms pass); a benchmark merges the histograms of every
consumer and reads exact-to-the-bucket percentiles over all alarms.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

BUCKET_MS = 0.1


@dataclass
class LatencyHistogram:
    """Latencies in milliseconds, bucketed by ``BUCKET_MS`` (negative ones count as 0)."""

    buckets: Counter[int] = field(default_factory=Counter)
    count: int = 0
    max_ms: float = 0.0

    def add(self, milliseconds: float, times: int = 1) -> None:
        value = max(0.0, milliseconds)
        self.buckets[int(value / BUCKET_MS)] += times
        self.count += times
        self.max_ms = max(self.max_ms, value)

    def add_all(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    def merge(self, other: LatencyHistogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, share: float) -> float | None:
        """The smallest bucket top under which ``share`` of the latencies fall."""
        if not self.count:
            return None
        rank = max(1, math.ceil(share * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return round(min((bucket + 1) * BUCKET_MS, self.max_ms), 2)
        return round(self.max_ms, 2)

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "p50_ms": self.percentile(0.50),
            "p99_ms": self.percentile(0.99),
            "max_ms": round(self.max_ms, 2),
            "buckets": {str(k): v for k, v in sorted(self.buckets.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LatencyHistogram:
        histogram = cls()
        buckets = data.get("buckets")
        if isinstance(buckets, Mapping):
            for key, value in buckets.items():
                histogram.buckets[int(key)] += int(value)
        histogram.count = sum(histogram.buckets.values())
        top = data.get("max_ms")
        histogram.max_ms = float(top) if isinstance(top, int | float) else 0.0
        return histogram
