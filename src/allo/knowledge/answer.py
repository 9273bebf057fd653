"""Answers from retrieved passages: extractive (no language model), cited, or abstaining.

Extractive means every word shown comes from a passage: a procedure's numbered steps
when the question asks how to do something, otherwise the passage's sentences that
share the most terms with the question. When the best passage is not relevant enough
(``confidence`` below the calibrated threshold), Allo says it does not know and offers
an advisor, in the question's language.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

from allo.domain import Answer, Chunk, Citation, Passage
from allo.knowledge.index.analysis import FrenchAnalyzer
from allo.messages import message

_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_PROCEDURAL = re.compile(
    r"\b(comment|how|proc[ée]dure|[ée]tapes?|steps?|configur\w*|install\w*|activ\w*|"
    r"changer|modifier|r[ée]gler|param[ée]tr\w*|set up|setup|change|reset|r[ée]initialis\w*)\b",
    re.I,
)


def confidence_of(passage: Passage) -> float:
    """Calibrated relevance in [0, 1] of a passage (see ``confidence_from_scores``)."""
    return confidence_from_scores(passage.scores)


# Logistic models of "the best passage answers the question", fitted on half of PIAF dev
# (even-numbered questions) by benchmarks/fit_abstention.py: positives are questions whose
# gold paragraph ranks first, negatives the same questions with their gold paragraph
# hidden as if never indexed. Inputs: ``coverage``, the IDF-weighted share of the
# question's terms found in the passage, and ``dense_z``, how many standard deviations the
# passage's e5 cosine stands above the collection's. Both keep their meaning from a
# 400-chunk knowledge base to a large one, unlike raw BM25 scores. The hybrid model's
# threshold that balances wrong answers and wrong abstentions on half A is 0.42, the
# default of ``ALLO_ANSWER__ABSTAIN_BELOW``; docs/retrieval.md has the held-out rates.
_HYBRID_MODEL = (-4.657, 0.339, 5.280)  # bias, dense_z, coverage
_LEXICAL_MODEL = (-3.955, 6.207)  # bias, coverage


def confidence_from_scores(scores: Mapping[str, float]) -> float:
    """Calibrated probability in [0, 1] that a passage answers the question."""
    coverage = scores.get("coverage", 0.0)
    dense_z = scores.get("dense_z")
    if dense_z is None:
        bias, coverage_weight = _LEXICAL_MODEL
        logit = bias + coverage_weight * coverage
    else:
        bias, dense_weight, coverage_weight = _HYBRID_MODEL
        logit = bias + dense_weight * dense_z + coverage_weight * coverage
    return 1.0 / (1.0 + math.exp(-logit))


class ExtractiveAnswerer:
    """Builds an ``Answer`` from passages without any language model."""

    def __init__(
        self,
        *,
        abstain_below: float,
        max_citations: int = 3,
        max_words: int = 90,
        chunks_of: Callable[[str], list[Chunk]] | None = None,
        max_steps_words: int = 450,
    ) -> None:
        self.abstain_below = abstain_below
        self.chunks_of = chunks_of
        self.max_steps_words = max_steps_words
        self.max_citations = max_citations
        self.max_words = max_words
        self._analyzer = FrenchAnalyzer()

    def answer(self, question: str, lang: str, passages: Sequence[Passage], mode: str) -> Answer:
        """Answer ``question`` from ``passages`` (best first), or abstain."""
        confidence = confidence_of(passages[0]) if passages else 0.0
        if not passages or confidence < self.abstain_below:
            return Answer(
                question,
                message("abstain", lang),
                lang,
                (),
                True,
                confidence,
                mode,
                tuple(passages),
            )
        chosen = self._choose(question, passages)
        citations = self._citations(chosen, passages)
        main = chosen[0]
        if main.chunk.kind == "steps" and _PROCEDURAL.search(question):
            text = self._steps_answer(main, self._procedure(main), lang)
        else:
            text = self._sentences_answer(question, chosen)
        return Answer(question, text, lang, citations, False, confidence, mode, tuple(passages))

    def _choose(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        """Passages the answer is taken from: the best one, or, for a "how do I" question,
        the procedure of the best document (retrieved, or else its first one)."""
        best = passages[0]
        if not _PROCEDURAL.search(question) or best.chunk.kind == "steps":
            return [best]
        for passage in passages[1:]:
            if passage.chunk.kind == "steps" and passage.document.id == best.document.id:
                return [passage, best]
        if self.chunks_of is not None:
            for chunk in self.chunks_of(best.document.id):
                if chunk.kind == "steps":
                    return [Passage(chunk, best.document, best.score, dict(best.scores)), best]
        return [best]

    def _procedure(self, passage: Passage) -> list[Chunk]:
        """The chunk and the ones continuing the same procedure (a long one is cut in parts)."""
        if self.chunks_of is None:
            return [passage.chunk]
        siblings = self.chunks_of(passage.document.id)
        same = [
            chunk
            for chunk in siblings
            if chunk.kind == "steps" and chunk.heading_path == passage.chunk.heading_path
        ]
        # keep the run of consecutive parts that contains the passage
        run: list[Chunk] = []
        for chunk in same:
            if run and chunk.ordinal != run[-1].ordinal + 1:
                if passage.chunk in run:
                    break
                run = []
            run.append(chunk)
        return run if passage.chunk in run else [passage.chunk]

    def _citations(
        self, chosen: list[Passage], passages: Sequence[Passage]
    ) -> tuple[Citation, ...]:
        ordered = list(chosen) + [p for p in passages if p not in chosen]
        citations: list[Citation] = []
        seen_chunks: set[str] = set()
        for passage in ordered:
            if passage.chunk.id in seen_chunks or len(citations) >= self.max_citations:
                continue
            if citations and confidence_of(passage) < self.abstain_below:
                continue
            seen_chunks.add(passage.chunk.id)
            excerpt = " ".join(passage.chunk.text.split())
            citations.append(
                Citation(
                    number=len(citations) + 1,
                    document_id=passage.document.id,
                    chunk_id=passage.chunk.id,
                    title=passage.document.title,
                    source=passage.document.source,
                    heading_path=passage.chunk.heading_path,
                    excerpt=excerpt[:280] + ("…" if len(excerpt) > 280 else ""),
                    score=passage.score,
                    url=passage.document.url,
                )
            )
        return tuple(citations)

    def _steps_answer(self, passage: Passage, parts: list[Chunk], lang: str) -> str:
        lines: list[str] = []
        words = 0
        for part in parts:
            for line in part.text.splitlines():
                if not line.strip():
                    continue
                words += len(line.split())
                if words > self.max_steps_words and lines:
                    lines.append("…")
                    break
                lines.append(line.strip())
            else:
                continue
            break
        where = " › ".join(passage.chunk.heading_path) or passage.document.title
        colon = " :" if lang == "fr" else ":"  # French typography puts a space before it
        intro = f"{message('steps_intro', lang)} — {where} [1]{colon}"
        return intro + "\n" + "\n".join(lines)

    def _sentences_answer(self, question: str, chosen: list[Passage]) -> str:
        terms = set(self._analyzer.tokens(question))
        passage = chosen[0]
        sentences = [s.strip() for s in _SENTENCE.split(passage.chunk.text) if s.strip()]
        if not sentences:
            return f"{passage.chunk.text.strip()} [1]"
        scored = [
            (len(terms & set(self._analyzer.tokens(sentence))), -index, index)
            for index, sentence in enumerate(sentences)
        ]
        best_index = max(scored)[2]
        picked = [best_index]
        words = len(sentences[best_index].split())
        # Add the following sentence(s) for context while short: definitions continue there.
        for index in range(best_index + 1, len(sentences)):
            extra = len(sentences[index].split())
            if words + extra > self.max_words:
                break
            picked.append(index)
            words += extra
            if words > self.max_words // 2:
                break
        return " ".join(sentences[index] for index in picked) + " [1]"
