"""Passages built by hand for the grounded-answer tests (no store, no index)."""

from __future__ import annotations

from datetime import UTC, datetime

from allo.domain import Chunk, Document, Passage

_WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def passage(
    text: str,
    *,
    title: str = "Document",
    number: int = 1,
    coverage: float = 1.0,
    tags: tuple[str, ...] = (),
    heading: tuple[str, ...] = (),
) -> Passage:
    """A retrieved passage; ``coverage`` 1.0 gives a confident answer, 0.0 an abstention."""
    document = Document(
        id=f"doc-{number}",
        source=f"docs/doc-{number}.md",
        title=title,
        lang="fr",
        content_hash=str(number),
        updated_at=_WHEN,
        tags=tags,
    )
    chunk = Chunk(
        id=f"chunk-{number}", document_id=document.id, ordinal=0, text=text, heading_path=heading
    )
    return Passage(chunk, document, 10.0 - number, {"coverage": coverage})


FIBRE = passage(
    "L'offre Fibre Max coûte 39,99 € par mois avec un engagement de 12 mois. "
    "Le débit descendant atteint 2 Gbit/s et le débit montant 900 Mbit/s. "
    "Les frais de mise en service s'élèvent à 49 €.",
    title="Offre Fibre Max",
    number=1,
)
PUK = passage(
    "Le code PUK débloque votre carte SIM après trois codes PIN erronés. "
    "Il figure sur le support plastique de la carte SIM. "
    "Vous le trouvez aussi dans votre espace client, rubrique Ma ligne.",
    title="Code PUK",
    number=2,
)
VOYANT = passage(
    "Un voyant rouge fixe signale une panne de connexion. "
    "Redémarrez la box en la débranchant dix secondes.",
    title="Voyants de la box",
    number=3,
)
