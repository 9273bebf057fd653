"""The message catalogue: everything customers and advisors read, French first, then English."""

from __future__ import annotations

CATALOGUE: dict[str, dict[str, str]] = {
    "abstain": {
        "fr": (
            "Je ne trouve pas la réponse à cette question dans notre base de connaissances. "
            "Souhaitez-vous être mis en relation avec un conseiller ?"
        ),
        "en": (
            "I could not find the answer to this question in our knowledge base. "
            "Would you like to talk to an advisor?"
        ),
    },
    "empty_question": {
        "fr": "Votre question est vide : écrivez quelques mots, par exemple « Comment "
        "configurer ma Livebox 6 ? ».",
        "en": "Your question is empty: type a few words, for example “How do I set up my "
        "Livebox 6?”.",
    },
    "steps_intro": {
        "fr": "Voici la marche à suivre",
        "en": "Here is how to do it",
    },
    "sources": {"fr": "Sources", "en": "Sources"},
}


def message(key: str, lang: str) -> str:
    """The message ``key`` in ``lang``; French when that language has no translation."""
    entry = CATALOGUE[key]
    return entry.get(lang) or entry["fr"]
