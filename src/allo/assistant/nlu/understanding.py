"""One customer message understood: language, intent (or out of scope) and entities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from allo.assistant.nlu.classifier import IntentClassifier
from allo.assistant.nlu.entities import Entity, EntityExtractor
from allo.knowledge.index.embedding import QueryVector
from allo.language import LanguageDetector


@dataclass(frozen=True, slots=True)
class Understanding:
    """What Allo made of a message.

    ``query_vector`` is the message's e5 query embedding that the classifier computed
    (``None`` without an embedder): the knowledge base reuses it to search for the same
    text rather than embedding it a second time. It takes no part in comparisons.
    """

    text: str
    language: str
    intent: str
    score: float
    ranking: tuple[tuple[str, float], ...]
    entities: tuple[Entity, ...]
    query_vector: QueryVector | None = field(default=None, compare=False, repr=False)

    def entity(self, kind: str) -> Entity | None:
        """The first entity of a type, if any."""
        return next((e for e in self.entities if e.type == kind), None)


class MessageUnderstanding:
    """The NLU stage: a trained classifier, the entity rules and a language detector."""

    def __init__(
        self,
        classifier: IntentClassifier,
        entities: EntityExtractor | None = None,
        languages: LanguageDetector | None = None,
    ) -> None:
        self.classifier = classifier
        self.entities = entities or EntityExtractor()
        self.languages = languages or LanguageDetector()

    def warm_up(self) -> None:
        """Load the embedding model and the language model."""
        self.classifier.warm_up()
        self.languages.warm_up()

    def understand(self, text: str, today: date | None = None) -> Understanding:
        """Understand one message."""
        return self.understand_many([text], today)[0]

    def understand_many(
        self, texts: Sequence[str], today: date | None = None
    ) -> list[Understanding]:
        """Understand several messages at once (one embedding batch)."""
        texts = list(texts)
        if not texts:
            return []
        vectors = self.classifier.query_vectors(texts)
        predictions = self.classifier.predict(texts, vectors=vectors)
        embedder = self.classifier.embedder
        return [
            Understanding(
                text=text,
                language=self.languages.detect(text),
                intent=prediction.intent,
                score=prediction.score,
                ranking=prediction.ranking,
                entities=tuple(self.entities.extract(text, today)),
                query_vector=(
                    QueryVector(text, embedder.name, vectors[i])
                    if vectors is not None and embedder is not None
                    else None
                ),
            )
            for i, (text, prediction) in enumerate(zip(texts, predictions, strict=True))
        ]
