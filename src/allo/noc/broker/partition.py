"""Splitting the device topology into regions, one per consumer process.

Related alarms only meet when they reach the same engine: the pipeline folds alarms of
devices at most two hops apart, so a link whose two ends land in different partitions is
a place where an incident may be split in two. The partitioning therefore keeps every
connected component of the topology whole when it can (bin-packing them, largest first,
into the least loaded partition) and splits a component only when it is larger than a
partition may hold. A split grows a region of adjacent devices from a peripheral device,
always taking the frontier device with the most links into the region (greedy graph
growing, as METIS starts), tries a few starting devices and keeps the smallest cut; a final
pass moves single devices to the partition holding most of their neighbours whenever that
cuts fewer links without breaking the balance. Balance counts devices, or a weight per
device (say its alarm volume in a past file), so that busy regions are shared out.

Everything is deterministic (devices sorted by name, numeric names in numeric order), so
the publisher and every consumer compute the same map from the same topology file.
Devices absent from the topology go to a stable hash partition (BLAKE2b of the name,
not Python's salted ``hash``).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from allo.errors import InvalidInputError
from allo.noc.topology import Topology

MAX_PARTITIONS = 1024


def device_key(device: str) -> tuple[int, str]:
    """Sort key: numeric names in numeric order ("2" before "10"), then the others."""
    return (0, device.zfill(24)) if device.isdigit() else (1, device)


def hash_partition(device: str, partitions: int) -> int:
    """The partition of a device the topology does not know: stable across processes."""
    digest = hashlib.blake2b(device.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


@dataclass(frozen=True)
class PartitionQuality:
    """How well a partitioning keeps related devices together (lower shares are better)."""

    partitions: int
    devices: int
    loads: tuple[int, ...]
    edges: int
    cut_edges: int
    two_hop_pairs: int
    two_hop_split: int

    @property
    def cut_share(self) -> float:
        """Share of topology links whose two ends are in different partitions."""
        return self.cut_edges / self.edges if self.edges else 0.0

    @property
    def two_hop_split_share(self) -> float:
        """Share of device pairs at most two hops apart that are in different partitions."""
        return self.two_hop_split / self.two_hop_pairs if self.two_hop_pairs else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "partitions": self.partitions,
            "devices": self.devices,
            "loads": list(self.loads),
            "edges": self.edges,
            "cut_edges": self.cut_edges,
            "cut_share": round(self.cut_share, 4),
            "two_hop_pairs": self.two_hop_pairs,
            "two_hop_split": self.two_hop_split,
            "two_hop_split_share": round(self.two_hop_split_share, 4),
        }


@dataclass(frozen=True)
class Partitioning:
    """Which partition (0 .. ``partitions - 1``) each device's alarms go to."""

    partitions: int
    assignment: Mapping[str, int]

    def partition_of(self, device: str) -> int:
        """The device's region, or its hash partition when the topology does not name it."""
        found = self.assignment.get(device)
        return hash_partition(device, self.partitions) if found is None else found

    def loads(self) -> list[int]:
        """Devices of the topology per partition."""
        counts = [0] * self.partitions
        for part in self.assignment.values():
            counts[part] += 1
        return counts

    def digest(self) -> str:
        """A short fingerprint of the map, so that processes can check they agree."""
        text = "\n".join(
            f"{d}={self.assignment[d]}" for d in sorted(self.assignment, key=device_key)
        )
        return hashlib.sha256(f"{self.partitions}\n{text}".encode()).hexdigest()[:16]

    def quality(self, topology: Topology) -> PartitionQuality:
        """Links cut and two-hop pairs split by this map on ``topology``."""
        devices = sorted(topology.devices, key=device_key)
        index = {d: i for i, d in enumerate(devices)}
        cut = 0
        pairs = split = 0
        for device in devices:
            part = self.partition_of(device)
            for other in topology.neighbours(device):
                if index[other] > index[device] and self.partition_of(other) != part:
                    cut += 1
            for other in topology.ball(device, 2):
                if index[other] > index[device]:
                    pairs += 1
                    split += self.partition_of(other) != part
        return PartitionQuality(
            self.partitions,
            len(devices),
            tuple(self.loads()),
            topology.edge_count(),
            cut,
            pairs,
            split,
        )


def partition_topology(
    topology: Topology | None,
    partitions: int,
    *,
    weights: Mapping[str, float] | None = None,
    tolerance: float = 0.05,
    seeds: int = 8,
) -> Partitioning:
    """Regions of adjacent devices, balanced within ``tolerance`` (see the module docstring).

    Balance counts devices, or ``weights`` when given (say 1 + each device's alarms in a
    past file, so that busy regions are shared out; a device not listed weighs 1). With
    coarse weights the balance is best effort: a device heavier than the room left in
    every partition still goes to the least loaded one.
    Without a topology every device goes to its hash partition.
    """
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise InvalidInputError(
            f"partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
        )
    if tolerance < 0:
        raise InvalidInputError(f"tolerance must be 0 or more, got {tolerance}")
    if topology is None or len(topology) == 0:
        return Partitioning(partitions, {})
    devices = sorted(topology.devices, key=device_key)
    if partitions == 1:
        return Partitioning(1, dict.fromkeys(devices, 0))
    weight = _weights(devices, weights)
    # rounded first: 20 devices in 3 partitions at 5 % is 7.000000000000001 in floats,
    # which ``ceil`` would make 8
    cap = math.ceil(round(sum(weight.values()) / partitions * (1 + tolerance), 9))
    assignment: dict[str, int] = {}
    loads = [0.0] * partitions
    pieces = deque(_components(topology, devices, weight))
    while pieces:
        piece = pieces.popleft()
        target = min(range(partitions), key=lambda p: (loads[p], p))
        room = cap - loads[target]
        if sum(weight[d] for d in piece) <= room:
            region = piece
        else:
            region = _best_region(topology, piece, weight, room, seeds)
            chosen = set(region)
            rest = [d for d in piece if d not in chosen]
            # the rest may fall apart: place its pieces next, heaviest first
            pieces.extendleft(reversed(_components(topology, rest, weight)))
        for device in region:
            assignment[device] = target
            loads[target] += weight[device]
    _refine(topology, devices, weight, assignment, loads, cap)
    return Partitioning(partitions, assignment)


def _weights(devices: list[str], weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict.fromkeys(devices, 1.0)
    out: dict[str, float] = {}
    for device in devices:
        value = float(weights.get(device, 1.0))
        if not math.isfinite(value) or value <= 0:
            raise InvalidInputError(
                f"device {device!r} has weight {value}: weights must be positive numbers"
            )
        out[device] = value
    return out


def _components(
    topology: Topology, devices: Iterable[str], weight: Mapping[str, float]
) -> list[list[str]]:
    """Connected pieces of the sub-graph on ``devices``, heaviest first, each sorted."""
    inside = set(devices)
    seen: set[str] = set()
    pieces: list[list[str]] = []
    for start in sorted(inside, key=device_key):
        if start in seen:
            continue
        seen.add(start)
        piece = [start]
        queue = deque([start])
        while queue:
            for other in topology.neighbours(queue.popleft()):
                if other in inside and other not in seen:
                    seen.add(other)
                    piece.append(other)
                    queue.append(other)
        pieces.append(sorted(piece, key=device_key))
    pieces.sort(key=lambda p: (-sum(weight[d] for d in p), -len(p), device_key(p[0])))
    return pieces


def _farthest(topology: Topology, start: str, inside: set[str]) -> str:
    """The last device a breadth-first search from ``start`` reaches within ``inside``."""
    seen = {start}
    queue = deque([start])
    last = start
    while queue:
        last = queue.popleft()
        for other in sorted(topology.neighbours(last), key=device_key):
            if other in inside and other not in seen:
                seen.add(other)
                queue.append(other)
    return last


def _best_region(
    topology: Topology,
    piece: list[str],
    weight: Mapping[str, float],
    room: float,
    seeds: int,
) -> list[str]:
    """Adjacent devices of ``piece`` weighing at most ``room`` whose region cuts the fewest
    links."""
    inside = set(piece)
    peripheral = _farthest(topology, _farthest(topology, piece[0], inside), inside)
    starts = [peripheral]
    by_degree = sorted(piece, key=lambda d: (len(topology.neighbours(d)), device_key(d)))
    starts.extend(d for d in by_degree if d != peripheral)
    best: list[str] = []
    best_cut = math.inf
    for start in starts[: max(1, seeds)]:
        region, cut = _grow(topology, start, inside, weight, room)
        if cut < best_cut:
            best, best_cut = region, cut
    return best


def _grow(
    topology: Topology,
    start: str,
    inside: set[str],
    weight: Mapping[str, float],
    room: float,
) -> tuple[list[str], int]:
    """Greedy growth from ``start``: each step takes the frontier device with the best gain
    (links into the region minus links left outside) while the region fits in ``room``.
    Returns the prefix of the growth weighing at least half of ``room`` that cuts the
    fewest links (a natural border beats an exact fill), and its cut."""
    region = {start}
    order = [start]
    heap: list[tuple[int, tuple[int, str], str]] = []

    def gain(device: str) -> int:
        links = [d for d in topology.neighbours(device) if d in inside]
        within = sum(1 for d in links if d in region)
        return within - (len(links) - within)

    def push_neighbours(device: str) -> None:
        for other in topology.neighbours(device):
            if other in inside and other not in region:
                heapq.heappush(heap, (-gain(other), device_key(other), other))

    cut = sum(1 for d in topology.neighbours(start) if d in inside)
    cuts = [cut]  # cuts[k]: links cut by the first k + 1 devices
    filled = [weight[start]]  # filled[k]: weight of the first k + 1 devices
    push_neighbours(start)
    while len(region) < len(inside):
        if heap:
            negative, _, device = heapq.heappop(heap)
            if device in region or -negative != gain(device):
                continue  # taken already, or a stale entry (its gain changed since)
        else:  # the piece is not connected: go on with the first device left
            device = min(inside - region, key=device_key)
        if filled[-1] + weight[device] > room:
            break
        cut -= gain(device)
        region.add(device)
        order.append(device)
        cuts.append(cut)
        filled.append(filled[-1] + weight[device])
        push_neighbours(device)
    candidates = [k for k in range(len(order)) if filled[k] >= room / 2] or list(range(len(order)))
    best = min(candidates, key=lambda k: (cuts[k], -k))
    return order[: best + 1], cuts[best]


def _refine(
    topology: Topology,
    devices: list[str],
    weight: Mapping[str, float],
    assignment: dict[str, int],
    loads: list[float],
    cap: float,
    passes: int = 10,
) -> None:
    """Move single devices to the partition of most of their neighbours while that cuts
    fewer links and keeps every partition within ``cap`` (each move strictly helps, so it
    ends)."""
    for _ in range(passes):
        moved = 0
        for device in devices:
            own = assignment[device]
            counts: dict[int, int] = {}
            for other in topology.neighbours(device):
                part = assignment[other]
                counts[part] = counts.get(part, 0) + 1
            here = counts.get(own, 0)
            choices = [
                (count - here, -loads[part], -part)
                for part, count in counts.items()
                if part != own and count > here and loads[part] + weight[device] <= cap
            ]
            if not choices:
                continue
            _, _, negative = max(choices)
            target = -negative
            assignment[device] = target
            loads[own] -= weight[device]
            loads[target] += weight[device]
            moved += 1
        if not moved:
            return
