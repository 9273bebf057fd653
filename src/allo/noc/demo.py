"""A fictional network's last three days of alarms, for ``allo demo``'s NOC console.

Why: an empty console shows nothing of what the engine does. The demo draws alarms from
a small causal graph between telecom alarm types (a power cut drains the batteries,
then the site goes silent and its radio links drop; a fibre cut loses the optical
signal, then the links behind it), on twelve sites in a ring, with
:func:`allo.noc.simulation.simulate`; learns the graph from them as an operator would
(``allo noc learn``), writes it and the topology where ``allo serve`` reads them, and
replays the alarms through the live engine, so the console opens on incidents with
their probable roots and French and English explanations. Everything here is made up by
the Allo team; nothing is copied from an operator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from allo.clock import Clock
from allo.domain.alarms import Severity
from allo.files import write_whole
from allo.noc.causal import HawkesLearner
from allo.noc.engine import NocEngine
from allo.noc.owner import StreamLock
from allo.noc.simulation import simulate
from allo.noc.store import SqlNocStore
from allo.noc.topology import Topology

#: the alarm types of the demo network with their severity, and which causes which
SEVERITIES = {
    "Coupure secteur": Severity.MAJOR,
    "Batterie faible": Severity.MINOR,
    "Site injoignable": Severity.CRITICAL,
    "Coupure fibre": Severity.CRITICAL,
    "Perte de signal optique": Severity.MAJOR,
    "Lien radio dégradé": Severity.MINOR,
    "Température élevée": Severity.WARNING,
    "Erreur de configuration": Severity.WARNING,
}
TYPES = tuple(SEVERITIES)
CAUSES = (
    ("Coupure secteur", "Batterie faible"),
    ("Batterie faible", "Site injoignable"),
    ("Site injoignable", "Lien radio dégradé"),
    ("Coupure fibre", "Perte de signal optique"),
    ("Perte de signal optique", "Lien radio dégradé"),
    ("Température élevée", "Lien radio dégradé"),
)
SITES = tuple(f"site-{city}" for city in (
    "lyon", "grenoble", "annecy", "chambery", "valence", "vienne",
    "bourg", "macon", "roanne", "clermont", "vichy", "moulins",
))  # fmt: skip
DAYS = 3.0
ALARMS_PER_TYPE = 60.0


@dataclass(frozen=True, slots=True)
class DemoNetwork:
    """What :func:`seed` did: alarms sent to the live stream, incidents, learned edges;
    ``skipped`` when the live stream already held alarms (nothing was changed)."""

    alarms: int
    incidents: int
    edges: int
    skipped: bool = False


def seed(database_url: str, folder: Path, clock: Clock, seed_value: int = 6) -> DemoNetwork:
    """Fill an empty live stream with the demo network's alarms (see the module docstring);
    ``folder`` is ``<data_dir>/noc``, where the graph and topology are written."""
    store = SqlNocStore(database_url)
    try:
        store.migrate()
        if store.counts("live")["alarms"]:
            return DemoNetwork(0, 0, 0, skipped=True)
    finally:
        store.close()
    rng = np.random.default_rng(seed_value)
    index = {name: i for i, name in enumerate(TYPES)}
    dag = np.zeros((len(TYPES), len(TYPES)), dtype=np.int64)
    for cause, effect in CAUSES:
        dag[index[cause], index[effect]] = 1
    span = DAYS * 86_400.0
    start = clock.now() - span - 60.0  # the last alarm a minute ago at the latest
    alarms = [
        replace(
            a,
            id=f"demo-{a.row:05d}",
            device=SITES[int(a.device)],
            alarm_type=TYPES[int(a.alarm_type)],
            severity=SEVERITIES[TYPES[int(a.alarm_type)]],
            raised_at=start + a.raised_at,
        )
        for a in simulate(dag, len(SITES), span, ALARMS_PER_TYPE, rng, trigger=0.7, delay=45.0)
    ]
    topology = Topology(
        [(SITES[i], SITES[(i + k) % len(SITES)]) for i in range(len(SITES)) for k in (1, 2)]
    )
    graph = HawkesLearner().learn(alarms, topology)
    folder.mkdir(parents=True, exist_ok=True)
    graph.save(folder / "graph.json")
    edges = [[a, b] for a in SITES for b in sorted(topology.neighbours(a)) if a < b]
    write_whole(folder / "topology.json", json.dumps({"edges": edges}, ensure_ascii=False))
    engine = NocEngine(
        SqlNocStore(database_url),
        clock,
        stream="live",
        source="demo",
        topology=topology,
        graph=graph,
        lock=StreamLock(folder / "live.lock"),
    )
    try:
        engine.ingest(alarms)  # the latest incidents stay open, as on a live network
        incidents = engine.store.counts("live")["incidents"]
    finally:
        engine.close()
    return DemoNetwork(len(alarms), incidents, len(graph.edges))
