"""One customer message understood: language, intent (or out of scope) and entities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from allo.assistant.nlu.classifier import IntentClassifier
from allo.assistant.nlu.entities import Entity, EntityExtractor
from allo.language import LanguageDetector


@dataclass(frozen=True, slots=True)
class Understanding:
    """What Allo made of a message."""

    text: str
    language: str
    intent: str
    score: float
    ranking: tuple[tuple[str, float], ...]
    entities: tuple[Entity, ...]

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
        predictions = self.classifier.predict(list(texts))
        return [
            Understanding(
                text=text,
                language=self.languages.detect(text),
                intent=prediction.intent,
                score=prediction.score,
                ranking=prediction.ranking,
                entities=tuple(self.entities.extract(text, today)),
            )
            for text, prediction in zip(texts, predictions, strict=True)
        ]
