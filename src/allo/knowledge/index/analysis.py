"""Text analysis for lexical search: French-first tokens, stems and accent folding.

The same analyzer runs on chunks and on queries, so "configurer", "Configurez" and
"configuration" meet on one stem, and "électricité" matches "electricite".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"\w+(?:-\w+)*", re.UNICODE)

# Short function words of French and English: they carry no topic and would only add noise.
_STOPWORD_TEXT = """
    a au aux avec ce ces cet cette dans de des du elle en et eux il ils je la le les leur
    leurs lui ma mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que qui
    sa se ses son sur ta te tes toi ton tu un une vos votre vous c d j l m n s t y est sont
    ete etre avoir ai as avons avez ont fait faire comme plus tres si sans sous entre vers
    chez donc alors ni car the an and or of to in on for is are was were be been it its
    this that these those with as at by from my your our their his her i you we they me do
    does did can how what which who when where why not no comment quel quelle quels quelles
    quoi veux voudrais souhaite souhaiterais aimerais besoin peux pouvez puis depuis bonjour
    merci svp stp suis etes encore toujours vraiment deja aussi hello please want would like
    need help hi thanks veut dire faut ca cela ceci est-ce dois doit devez doivent devons
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def fold_accents(text: str) -> str:
    """Drop diacritics: "é" -> "e", "ç" -> "c", "œ" stays "œ" -> "oe"."""
    ligatures = text.replace("œ", "oe").replace("Œ", "Oe").replace("æ", "ae").replace("Æ", "Ae")
    decomposed = unicodedata.normalize("NFKD", ligatures)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


class FrenchAnalyzer:
    """Lowercase, split on words, drop stopwords, fold accents, Snowball-stem (French)."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("french")
        self._stem_cached = lru_cache(maxsize=200_000)(self._stem_word)

    def _stem_word(self, word: str) -> str:
        # Fold first: customers type "electricite" as often as "électricité", and the
        # stemmer must give both the same stem.
        return str(self._stemmer.stemWord(fold_accents(word)))

    def tokens(self, text: str) -> list[str]:
        """The index terms of ``text``, in order (duplicates kept: they count in BM25).

        A hyphenated word gives its parts and its joined form, so "Wi-Fi" meets "wifi"
        and "e-SIM" meets "eSIM"; the joined form only when no part is a stopword, so that
        "dois-je", "est-ce" or "là-bas" do not become rare made-up terms ("doisj") that
        weigh like the rarest word of the base and sink the answer's confidence.
        """
        terms: list[str] = []
        for word in _WORD.findall(text.lower()):
            if "-" in word:
                parts = [part for part in word.split("-") if part]
                kept = [part for part in parts if self._keep(part)]
                terms.extend(self._term(part) for part in kept)
                if len(kept) == len(parts) > 1:
                    terms.append(self._term("".join(parts)))
            elif self._keep(word):
                terms.append(self._term(word))
        return terms

    @staticmethod
    def _keep(word: str) -> bool:
        return word != "_" and fold_accents(word) not in STOPWORDS

    def _term(self, word: str) -> str:
        return self._stem_cached(word)
