"""Understanding customer messages: intents with out-of-scope detection, entities, language.

See docs/assistant.md for how it works and what it measures.
"""

from allo.assistant.nlu.baseline import TfidfSvmBaseline
from allo.assistant.nlu.classifier import IntentClassifier, IntentPrediction
from allo.assistant.nlu.entities import ID_PATTERNS, Entity, EntityExtractor
from allo.assistant.nlu.evaluation import score
from allo.assistant.nlu.examples import OOS, Example, ExamplesFileError, load_examples
from allo.assistant.nlu.understanding import MessageUnderstanding, Understanding

__all__ = [
    "ID_PATTERNS",
    "OOS",
    "Entity",
    "EntityExtractor",
    "Example",
    "ExamplesFileError",
    "IntentClassifier",
    "IntentPrediction",
    "MessageUnderstanding",
    "TfidfSvmBaseline",
    "Understanding",
    "load_examples",
    "score",
]
