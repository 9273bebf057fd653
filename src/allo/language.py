"""Which language a text is written in, among those Allo serves.

py3langid is tiny and fast (well under a millisecond a text); restricting it to the
languages Allo works in avoids absurd guesses on short questions.
"""

from __future__ import annotations

from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

SUPPORTED = ("fr", "en", "es", "de", "it", "pt", "nl", "ar")
DEFAULT = "fr"


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED))
    return identifier


def detect_language(text: str, default: str = DEFAULT) -> str:
    """ISO 639-1 code of ``text``; ``default`` when it is too short or unsure."""
    sample = text.strip()[:2000]
    if len(sample) < 3:
        return default
    language, probability = _identifier().classify(sample)
    return str(language) if probability >= 0.5 else default
