"""``allo noc report``: one self-contained HTML page with the plots of a replay.

Plots are inline SVG drawn here (no plotting dependency, nothing to download, the page
opens offline): alarms and incidents over time, how many alarms remain after each stage,
the most frequent probable roots, and the learned causal graph. Every text that comes from
the data goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from allo.domain.alarms import Alarm
from allo.files import write_whole
from allo.noc.causal import CausalGraph
from allo.noc.replay import ReplayResult

STAGES = (  # (fold reason, label after the stage that folds it)
    ("duplicate", "après déduplication"),
    ("flapping", "après oscillations"),
    ("transient", "après transitoires"),
    ("inhibited", "après inhibition"),
    ("caused", "après corrélation causale"),
)
_ACCENT = "#0b5cad"
_SECOND = "#d9822b"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def stage_counts(alarms: int, folded: Counter[str], incidents: int) -> list[tuple[str, int]]:
    """Alarms left to handle after each stage, ending with the incidents."""
    out = [("alarmes reçues", alarms)]
    left = alarms
    for reason, label in STAGES:
        left -= folded.get(reason, 0)
        out.append((label, left))
    out.append(("incidents (après regroupement)", incidents))
    return out


def per_bin(
    alarms: Sequence[Alarm], starts: Sequence[float], max_bins: int = 120
) -> tuple[float, list[int], list[int]]:
    """(hours per bin, alarms per bin, incidents per bin) over the alarms' time span."""
    times = [a.raised_at for a in alarms if math.isfinite(a.raised_at)]
    if not times:
        return 1.0, [], []
    first, last = min(times), max(times)
    if not math.isfinite(last - first):  # times at -1e308 and 1e308: one bin says it all
        return 1.0, [len(times)], [sum(1 for m in starts if math.isfinite(m))]
    hours = max(1, math.ceil((last - first) / 3600.0 / max_bins))
    width = 3600.0 * hours
    bins = int((last - first) // width) + 1
    a_counts, i_counts = [0] * bins, [0] * bins
    for moment in times:
        a_counts[int((moment - first) // width)] += 1
    for moment in starts:
        if math.isfinite(moment) and first <= moment <= last:
            i_counts[int((moment - first) // width)] += 1
    return float(hours), a_counts, i_counts


def svg_lines(series: list[tuple[str, list[int], str]], x_label: str, log: bool = True) -> str:
    """A line chart of several series over the same bins (log scale by default)."""
    width, height, pad = 760, 280, 48
    length = max((len(values) for _, values, _ in series), default=0)
    top = max((max(values, default=0) for _, values, _ in series), default=0)
    if length == 0 or top == 0:
        return "<p>Aucune donnée.</p>"

    def y(value: int) -> float:
        scale = math.log10(value + 1) / math.log10(top + 1) if log else value / top
        return height - pad - scale * (height - 2 * pad)

    def x(index: int) -> float:
        return pad + index * (width - 2 * pad) / max(length - 1, 1)

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" class="plot">']
    parts.append(
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#888"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>'
    )
    for tick in sorted({0, top, *(10**k for k in range(1, 7) if 10**k < top)}):
        parts.append(
            f'<text x="{pad - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{tick}</text>"
        )
    for name, values, color in series:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.6">'
            f"<title>{_e(name)}</title></polyline>"
        )
    for index, (name, _, color) in enumerate(series):
        parts.append(
            f'<rect x="{pad + 10 + index * 160}" y="10" width="12" height="12" fill="{color}"/>'
            f'<text x="{pad + 28 + index * 160}" y="21" font-size="12">{_e(name)}</text>'
        )
    parts.append(
        f'<text x="{width / 2}" y="{height - 10}" text-anchor="middle" font-size="12">'
        f"{_e(x_label)}</text></svg>"
    )
    return "".join(parts)


def svg_bars(items: list[tuple[str, int]], color: str = _ACCENT, total: int | None = None) -> str:
    """Horizontal bars with their value (and share of ``total``)."""
    if not items:
        return "<p>Aucune donnée.</p>"
    label_w, bar_w, row_h = 260, 380, 26
    top = max(value for _, value in items) or 1
    height = row_h * len(items) + 10
    parts = [f'<svg viewBox="0 0 {label_w + bar_w + 140} {height}" role="img" class="plot">']
    for index, (label, value) in enumerate(items):
        y = 5 + index * row_h
        length = bar_w * value / top
        share = f" ({value / total:.1%})" if total else ""
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12">'
            f"{_e(label)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row_h - 8}" '
            f'fill="{color}"/>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 16}" font-size="12">'
            f"{value}{share}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_graph(graph: CausalGraph, max_edges: int = 80) -> str:
    """The learned causal graph: alarm types on a circle, arrows from cause to effect
    (thicker when stronger); the strongest ``max_edges`` edges."""
    edges = sorted(graph.edges, key=lambda e: -e.strength)[:max_edges]
    names = sorted({n for e in edges for n in (e.cause, e.effect)}, key=_natural)
    if not edges:
        return "<p>Aucune arête apprise.</p>"
    size, radius = 560, 230
    centre = size / 2
    where = {
        name: (
            centre + radius * math.cos(2 * math.pi * i / len(names) - math.pi / 2),
            centre + radius * math.sin(2 * math.pi * i / len(names) - math.pi / 2),
        )
        for i, name in enumerate(names)
    }
    strongest = max(e.strength for e in edges) or 1.0
    parts = [
        f'<svg viewBox="0 0 {size} {size}" role="img" class="plot graph">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="18" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        f'fill="{_ACCENT}"/></marker></defs>'
    ]
    for edge in edges:
        (x1, y1), (x2, y2) = where[edge.cause], where[edge.effect]
        stroke = 0.6 + 3.0 * edge.strength / strongest
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{_ACCENT}" stroke-opacity=".55" stroke-width="{stroke:.2f}" '
            f'marker-end="url(#arrow)"><title>{_e(edge.cause)} → {_e(edge.effect)} '
            f"({edge.strength:.1f})</title></line>"
        )
    for name, (x, y) in where.items():
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="11" fill="#fff" stroke="{_SECOND}" '
            f'stroke-width="2"/><text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" '
            f'font-size="10">{_e(name[:6])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _natural(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def render(
    title: str,
    alarms: Sequence[Alarm],
    result: ReplayResult,
    graph: CausalGraph | None,
    topology: bool,
) -> str:
    """The report page."""
    incidents = result.incidents
    hours, a_bins, i_bins = per_bin(alarms, [i.started_at for i in incidents])
    stages = stage_counts(result.alarms, result.folded, len(incidents))
    roots = Counter(i.head.alarm_type for i in incidents).most_common(12)
    root_devices = Counter(f"{i.head.alarm_type} sur {i.head.device}" for i in incidents)
    biggest = sorted(incidents, key=lambda i: -i.size)[:10]
    summary = result.summary()
    problems = result.report.counts
    rows = "".join(
        f"<tr><td>{_e(i.id)}</td><td>{_e(i.head.alarm_type)} sur {_e(i.head.device)}</td>"
        f"<td>{i.size}</td><td>{len(i.devices)}</td>"
        f"<td>{_e(' '.join(e.fr for e in i.evidence))}</td></tr>"
        for i in biggest
    )
    unit = "heure" if hours == 1 else f"tranche de {hours:.0f} h"
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<title>Rapport NOC — {_e(title)}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; color: #1c2430; max-width: 60rem;
  margin: 2rem auto; padding: 0 1rem; }}
.plot {{ width: 100%; height: auto; background: #fff; border: 1px solid #e3e7ec; }}
.graph {{ max-width: 36rem; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9rem; }}
td, th {{ border-bottom: 1px solid #e3e7ec; padding: .3rem .4rem; text-align: left;
  vertical-align: top; }}
.figures td:first-child {{ color: #5b6470; }}
</style></head><body>
<h1>Rapport NOC — {_e(title)}</h1>
<table class="figures">
<tr><td>Alarmes</td><td>{result.alarms}</td></tr>
<tr><td>Incidents</td><td>{len(incidents)}</td></tr>
<tr><td>Réduction</td><td>{result.reduction:.1%}</td></tr>
<tr><td>Débit</td><td>{summary["alarms_per_second"]} alarmes/s</td></tr>
<tr><td>Topologie</td><td>{"oui" if topology else "non (regroupement par équipement)"}</td></tr>
<tr><td>Graphe causal</td><td>{len(graph.edges) if graph else 0} arêtes entre
  {len(graph.types) if graph else 0} types</td></tr>
<tr><td>Problèmes d'entrée</td><td>{_e(dict(problems)) if problems else "aucun"}</td></tr>
</table>
<h2>Alarmes et incidents par {unit}</h2>
{
        svg_lines(
            [("alarmes", a_bins, _SECOND), ("incidents", i_bins, _ACCENT)],
            f"temps (une {unit} par point, échelle logarithmique)",
        )
    }
<h2>Réduction étape par étape</h2>
<p>Alarmes qui restent à traiter après chaque étape du pipeline (rien n'est supprimé :
chaque alarme est repliée dans un incident, avec la raison).</p>
{svg_bars(stages, total=result.alarms)}
<h2>Causes probables les plus fréquentes</h2>
<p>Type d'alarme en tête des incidents.</p>
{svg_bars(roots, _SECOND, total=len(incidents))}
<p>Couples type / équipement les plus fréquents :
{_e(", ".join(f"{k} (×{n})" for k, n in root_devices.most_common(8)))}</p>
<h2>Graphe causal appris</h2>
<p>Flèche de la cause vers l'effet, plus épaisse quand le lien est plus fort.</p>
{svg_graph(graph) if graph is not None else "<p>Pas de graphe.</p>"}
<h2>Les plus gros incidents</h2>
<table><tr><th>Incident</th><th>Cause probable</th><th>Alarmes</th><th>Équipements</th>
<th>Explication</th></tr>{rows}</table>
</body></html>
"""


def write_report(
    out: Path,
    title: str,
    alarms: Sequence[Alarm],
    result: ReplayResult,
    graph: CausalGraph | None,
    topology: bool,
) -> Path:
    """Write ``out/report.html`` and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    write_whole(path, render(title, alarms, result, graph, topology))
    return path
