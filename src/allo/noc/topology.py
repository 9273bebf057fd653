"""Device topology: who is adjacent to whom, and how many hops apart two devices are.

Three file formats are read: a square ``.npy`` adjacency matrix (PCIC 2021
``Topology.npy``, device ``i`` is named ``"i"``), a CSV edge list (``source,target``, a
header optional) and JSON (``{"edges": [[a, b], ...]}`` or ``{"adjacency": {a: [b, ...]}}``).
Links are undirected: a fibre cut hurts both ends. Problems that do not prevent use (a
self-loop, an asymmetric matrix) are kept in ``warnings`` so that the caller can report them.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from allo.errors import CorruptFileError, InvalidInputError, UnsupportedFormatError


def adjacency_matrix(loaded: object, what: str) -> np.ndarray:
    """A square matrix of numbers read from a ``.npy`` file, or an error naming ``what``
    and what is wrong: an archive saved under ``.npy``, text or records (a matrix of
    ``"no"`` would be read as all links), NaN, or the wrong shape."""
    if not isinstance(loaded, np.ndarray):
        raise InvalidInputError(f"{what} is not a single .npy matrix (an .npz archive?)")
    if loaded.dtype.kind not in "biuf":
        raise InvalidInputError(f"{what} holds {loaded.dtype} values: give 0/1 numbers")
    if loaded.ndim != 2 or loaded.shape[0] != loaded.shape[1]:
        raise InvalidInputError(f"{what} must be a square N x N matrix, got shape {loaded.shape}")
    if loaded.dtype.kind == "f" and not np.isfinite(loaded).all():
        raise InvalidInputError(f"{what} holds NaN or infinite values: give 0/1 numbers")
    return loaded


class Topology:
    """An undirected device graph with cached small-radius neighbourhoods."""

    def __init__(self, edges: Iterable[tuple[str, str]], devices: Iterable[str] = ()) -> None:
        self._adjacent: dict[str, set[str]] = {device: set() for device in devices}
        self.warnings: list[str] = []
        self_loops = 0
        for a, b in edges:
            if a == b:
                self_loops += 1
                self._adjacent.setdefault(a, set())
                continue
            self._adjacent.setdefault(a, set()).add(b)
            self._adjacent.setdefault(b, set()).add(a)
        if self_loops:
            self.warnings.append(f"{self_loops} self-loop(s) ignored")
        self._balls: dict[tuple[str, int], dict[str, int]] = {}

    @property
    def devices(self) -> list[str]:
        """Every device named by the topology."""
        return list(self._adjacent)

    def __contains__(self, device: object) -> bool:
        return device in self._adjacent

    def __len__(self) -> int:
        return len(self._adjacent)

    def edge_count(self) -> int:
        """Undirected links."""
        return sum(len(n) for n in self._adjacent.values()) // 2

    def neighbours(self, device: str) -> frozenset[str]:
        """Devices one hop away (empty for an unknown device)."""
        return frozenset(self._adjacent.get(device, ()))

    def ball(self, device: str, radius: int) -> dict[str, int]:
        """Devices within ``radius`` hops of ``device`` (itself at 0), with their distance."""
        key = (device, radius)
        cached = self._balls.get(key)
        if cached is not None:
            return cached
        found = {device: 0}
        queue = deque([device])
        while queue:
            current = queue.popleft()
            distance = found[current]
            if distance == radius:
                continue
            # sorted: the order of the ball is the order stages meet devices in, and set
            # order would change with Python's hash seed from one process to the next
            for neighbour in sorted(self._adjacent.get(current, ())):
                if neighbour not in found:
                    found[neighbour] = distance + 1
                    queue.append(neighbour)
        self._balls[key] = found
        return found

    def hops(self, a: str, b: str, limit: int = 8) -> int | None:
        """Shortest path length between two devices, ``None`` beyond ``limit`` or unlinked."""
        return self.ball(a, limit).get(b)

    def path(self, a: str, b: str, limit: int = 8) -> list[str] | None:
        """One shortest path from ``a`` to ``b`` (both included), for explanations."""
        parents: dict[str, str | None] = {a: None}
        queue = deque([(a, 0)])
        while queue:
            current, distance = queue.popleft()
            if current == b:
                route = [b]
                while (parent := parents[route[-1]]) is not None:
                    route.append(parent)
                return route[::-1]
            if distance == limit:
                continue
            for neighbour in sorted(self._adjacent.get(current, ())):
                if neighbour not in parents:
                    parents[neighbour] = current
                    queue.append((neighbour, distance + 1))
        return None

    # --- loading -------------------------------------------------------------------------

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, names: list[str] | None = None) -> Topology:
        """From a square adjacency matrix; any non-zero entry is a link."""
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise InvalidInputError(
                f"a topology matrix must be square, got shape {matrix.shape}: "
                "give an N x N adjacency matrix of the N devices"
            )
        size = matrix.shape[0]
        labels = names or [str(i) for i in range(size)]
        rows, cols = np.nonzero(matrix)
        topology = cls(((labels[r], labels[c]) for r, c in zip(rows, cols, strict=True)), labels)
        if not np.array_equal(matrix != 0, (matrix != 0).T):
            topology.warnings.append("asymmetric adjacency matrix: links taken as undirected")
        return topology

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Topology:
        """From ``{"edges": [[a, b], ...]}`` and/or ``{"adjacency": {a: [b, ...]}}``."""
        edges: list[tuple[str, str]] = []
        raw_edges = data.get("edges", [])
        if not isinstance(raw_edges, list):
            raise InvalidInputError('"edges" must be a list of [source, target] pairs')
        for item in raw_edges:
            if isinstance(item, Mapping):
                pair = (item.get("source"), item.get("target"))
            elif isinstance(item, list | tuple) and len(item) == 2:
                pair = (item[0], item[1])
            else:
                raise InvalidInputError(f"topology edge {item!r} is not a [source, target] pair")
            if pair[0] is None or pair[1] is None:
                raise InvalidInputError(f"topology edge {item!r} lacks a source or a target")
            edges.append((str(pair[0]), str(pair[1])))
        adjacency = data.get("adjacency", {})
        if not isinstance(adjacency, Mapping):
            raise InvalidInputError('"adjacency" must map a device to its neighbours')
        for device, neighbours in adjacency.items():
            if not isinstance(neighbours, list):
                raise InvalidInputError(f"neighbours of {device!r} must be a list")
            edges.extend((str(device), str(n)) for n in neighbours)
        listed = data.get("devices")
        devices = [str(d) for d in listed] if isinstance(listed, list) else []
        return cls(edges, devices)

    @classmethod
    def load(cls, path: Path) -> Topology:
        """Read a topology file, choosing the format by its extension."""
        suffix = path.suffix.lower()
        if not path.is_file():
            raise InvalidInputError(f"topology file {path} not found: check the path")
        try:
            if suffix == ".npy":
                loaded = np.load(path, allow_pickle=False)
                return cls.from_matrix(adjacency_matrix(loaded, f"topology {path}"))
            if suffix == ".json":
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, Mapping):
                    raise InvalidInputError(f"{path}: expected a JSON object with edges")
                return cls.from_mapping(data)
            if suffix in {".csv", ".tsv", ".txt"}:
                return cls._from_csv(path)
        except (ValueError, TypeError, AttributeError, OSError, RecursionError, csv.Error) as exc:
            raise CorruptFileError(f"cannot read topology {path}: {exc}") from exc
        raise UnsupportedFormatError(
            f"topology {path}: unknown extension {suffix!r}; use .npy, .csv or .json"
        )

    @classmethod
    def _from_csv(cls, path: Path) -> Topology:
        edges: list[tuple[str, str]] = []
        with path.open(encoding="utf-8", newline="") as handle:
            for number, row in enumerate(csv.reader(handle)):
                cells = [cell.strip() for cell in row]
                if not cells or not any(cells):
                    continue
                if len(cells) < 2:
                    raise InvalidInputError(f"{path} line {number + 1}: expected source,target")
                if number == 0 and cells[0].lower() in {"source", "src", "a", "from", "device"}:
                    continue
                edges.append((cells[0], cells[1]))
        return cls(edges)

    def check_devices(self, devices: Iterable[str]) -> list[str]:
        """Devices seen in alarms but absent from the topology (a mismatch to report)."""
        return sorted({d for d in devices if d not in self._adjacent})
