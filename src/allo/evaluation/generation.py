"""Generated answers measured on PIAF: do they contain the gold answer, and does the
support check catch the sentences the passages do not support?

Two measures, both through the product's own code (``EvaluationIndex`` for retrieval,
``GroundedAnswerer`` for answers, ``SupportChecker`` for the check):

``evaluate_generation``: each question is answered from its retrieved passages; the
report gives the share of answers containing a gold answer (case, accents, spaces and
punctuation normalised), for the model's answers and for the extractive ones on the same
questions, and the shares of abstentions and of extractive fallbacks, and the sentences
removed.

``build_support_set`` + ``evaluate_support``: a labelled set of sentences, each checked
against the passage(s) it is paired with.

- supported: sentences of the gold paragraph (``gold_sentence``), the model's restatement
  of the gold sentence that holds the answer (``paraphrase``) and the sentences of the
  model's answer from the gold paragraph that contain the gold answer (``model_answer``);
- unsupported: sentences of another paragraph of the same article (``other_paragraph``:
  hard negatives, same topic), the gold sentence with one number changed
  (``number_changed``) or with its answer replaced by the answer of another question
  (``answer_swapped``: right topic, wrong fact), the same model sentences checked
  against another paragraph of the article that does not contain the answer
  (``answer_elsewhere``), and the model's answers written from passages without the
  gold paragraph that nevertheless contain the gold answer (``answer_from_memory``).

Labels from a model's output are only as good as the model: a restatement may add a
word, an answer may contain the gold answer and a wrong claim. The thresholds are chosen
on even-numbered questions and the rates reported on odd-numbered ones.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from allo.config import RetrievalMode
from allo.domain import Passage
from allo.errors import AlloError, ModelError
from allo.evaluation.retrieval import EvaluationIndex, Question, load_questions
from allo.gateway.call import Caller, GatewayCall
from allo.gateway.protocol import ChatMessage, ChatRequest, Role
from allo.knowledge.grounded.generator import GroundedAnswerer
from allo.knowledge.grounded.prompt import heading_of
from allo.knowledge.grounded.support import (
    Evidence,
    SentenceCheck,
    SentenceKind,
    SupportChecker,
    claim_text,
    is_declined,
    numbers_in,
    split_sentences,
)
from allo.knowledge.index.analysis import fold_accents

EVAL_CALLER = Caller(user="evaluation", team="evaluation")
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class QaItem:
    """A PIAF question, its position in the file, its gold paragraph and answers."""

    index: int
    text: str
    gold: str
    answers: tuple[str, ...]


def load_qa(path: Path) -> list[QaItem]:
    """``{"question","paragraph_id","answers"}`` lines (``load_questions`` validates them)."""
    questions = load_questions(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = []
    for index, (question, line) in enumerate(zip(questions, lines, strict=True)):
        answers = json.loads(line).get("answers") or []
        items.append(QaItem(index, question.text, question.gold, tuple(map(str, answers))))
    return items


def normalise(text: str) -> str:
    """Lowercase, accents folded, punctuation as spaces, spaces collapsed."""
    folded = fold_accents(text).lower().replace("’", "'")
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether ``text`` contains one of ``answers`` (normalised, on word boundaries)."""
    haystack = f" {normalise(text)} "
    return any(f" {normalise(answer)} " in haystack for answer in answers if normalise(answer))


def passages_for(
    index: EvaluationIndex,
    question: str,
    vector: object,
    mode: RetrievalMode,
    k: int,
    exclude: frozenset[int] = frozenset(),
) -> list[Passage]:
    """The retrieved passages of ``question``, as the knowledge base would give them."""
    hits = index.index.search(question, vector, mode, k, exclude)  # type: ignore[arg-type]
    passages = []
    for hit in hits:
        chunk = index.chunks[hit.position]
        passages.append(
            Passage(chunk, index.index.documents[chunk.document_id], hit.score, hit.scores)
        )
    return passages


# -- generated answers --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    """What happened to one question."""

    index: int
    question: str
    answers: tuple[str, ...]
    abstained: bool
    generated: bool
    fallback: str | None
    text: str
    raw_text: str
    extractive_text: str
    gold_given: bool
    kept: int
    removed: int
    invalid_citations: int
    seconds: float
    error: str = ""

    @property
    def correct(self) -> bool:
        """The answer shown contains a gold answer."""
        return contains_answer(self.text, self.answers)


def evaluate_generation(
    index: EvaluationIndex,
    items: Sequence[QaItem],
    answerer: GroundedAnswerer,
    *,
    model: str | None,
    mode: RetrievalMode = RetrievalMode.HYBRID,
    k: int = 10,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Answer every question with ``model``; the figures and one record per question."""
    vectors = index.query_vectors([_question(item) for item in items])
    records: list[GenerationRecord] = []
    for number, item in enumerate(items):
        vector = None if vectors is None else vectors[number]
        passages = passages_for(index, item.text, vector, mode, k)
        extractive = answerer.extractive.answer(item.text, "fr", passages, mode.value)
        started = time.perf_counter()
        error = ""
        try:
            result = answerer.answer(
                item.text, "fr", passages, mode.value, model=model, caller=EVAL_CALLER
            )
        except AlloError as exc:  # a refusal or a budget: counted, not fatal
            error = f"{type(exc).__name__}: {exc}"
            result = None
        seconds = time.perf_counter() - started
        given = answerer.prompt_for(item.text, "fr", passages, model).passages
        gold_chunks = {
            chunk.id
            for chunk, doc in zip(index.chunks, index.chunk_doc, strict=True)
            if doc == item.gold
        }
        records.append(
            GenerationRecord(
                index=item.index,
                question=item.text,
                answers=item.answers,
                abstained=result.answer.abstained if result else extractive.abstained,
                generated=bool(result and result.generated),
                fallback=result.fallback.value if result and result.fallback else None,
                text=result.answer.text if result else extractive.text,
                raw_text=result.raw_text if result else "",
                extractive_text=extractive.text,
                gold_given=any(p.chunk.id in gold_chunks for p in given),
                kept=result.kept_sentences if result else 0,
                removed=result.removed_sentences if result else 0,
                invalid_citations=result.invalid_citations if result else 0,
                seconds=round(seconds, 2),
                error=error,
            )
        )
        if progress:
            progress(1)
    return {"summary": summarise_generation(records), "records": [asdict(r) for r in records]}


def _question(item: QaItem) -> Question:
    return Question(item.text, item.gold)


def _share(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def summarise_generation(records: Sequence[GenerationRecord]) -> dict[str, object]:
    """The figures of a generation run."""
    answered = [r for r in records if not r.abstained]
    called = [r for r in answered if r.raw_text or r.generated or r.fallback]
    generated = [r for r in answered if r.generated]
    fallbacks: dict[str, int] = {}
    for record in answered:
        if record.fallback:
            fallbacks[record.fallback] = fallbacks.get(record.fallback, 0) + 1
    sentences = sum(r.kept + r.removed for r in called)
    model_seconds = [r.seconds for r in called]
    return {
        "n": len(records),
        "abstention_share": _share(len(records) - len(answered), len(records)),
        "answered": len(answered),
        "generated_share": _share(len(generated), len(answered)),
        "fallback_share": _share(sum(fallbacks.values()), len(answered)),
        "fallbacks": fallbacks,
        "gold_in_answer": _share(sum(r.correct for r in answered), len(answered)),
        "gold_in_generated": _share(sum(r.correct for r in generated), len(generated)),
        "gold_in_raw_model_text": _share(
            sum(contains_answer(r.raw_text, r.answers) for r in called), len(called)
        ),
        "gold_in_extractive": _share(
            sum(contains_answer(r.extractive_text, r.answers) for r in answered), len(answered)
        ),
        "gold_passage_given": _share(sum(r.gold_given for r in answered), len(answered)),
        "mean_sentences_removed": round(sum(r.removed for r in called) / len(called), 3)
        if called
        else 0.0,
        "share_sentences_removed": _share(sum(r.removed for r in called), sentences),
        "invalid_citations": sum(r.invalid_citations for r in called),
        "errors": sum(bool(r.error) for r in records),
        "seconds_per_model_answer_mean": round(statistics.fmean(model_seconds), 2)
        if model_seconds
        else 0.0,
        "seconds_per_model_answer_p50": round(statistics.median(model_seconds), 2)
        if model_seconds
        else 0.0,
    }


# -- the support check's labelled set ------------------------------------------------------

SUPPORTED_KINDS = ("gold_sentence", "paraphrase", "model_answer")
UNSUPPORTED_KINDS = (
    "other_paragraph",
    "number_changed",
    "answer_swapped",
    "answer_elsewhere",
    "answer_from_memory",
)

_RESTATE = {
    "fr": (
        "Reformule la phrase entre balises avec d'autres mots, en une seule phrase, sans "
        "rien ajouter ni retirer. Réponds seulement par la phrase reformulée."
    ),
}


@dataclass(frozen=True, slots=True)
class LabelledSentence:
    """A sentence, the passage texts it is checked against, and whether they support it."""

    index: int
    kind: str
    sentence: str
    texts: tuple[str, ...]
    headings: tuple[str, ...]
    question: str
    supported: bool


@dataclass(slots=True)
class _Paragraphs:
    """PIAF paragraphs by id, and the ids of each article (same title)."""

    text: dict[str, str] = field(default_factory=dict)
    title: dict[str, str] = field(default_factory=dict)
    by_title: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, corpus: Path) -> _Paragraphs:
        paragraphs = cls()
        for line in corpus.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            key = str(record["id"])
            paragraphs.text[key] = str(record["text"])
            paragraphs.title[key] = str(record["title"])
            paragraphs.by_title.setdefault(str(record["title"]), []).append(key)
        return paragraphs


def _change_number(sentence: str, paragraph: str) -> str | None:
    """``sentence`` with its first number changed to one the paragraph never states."""
    match = re.search(r"\d+", sentence)
    if match is None:
        return None
    stated = numbers_in(paragraph)
    value = int(match.group())
    for step in range(1, 20):
        changed = str(value + step).zfill(len(match.group()))
        candidate = sentence[: match.start()] + changed + sentence[match.end() :]
        if not numbers_in(candidate) <= stated:
            return candidate
    return None


def _swap_answer(sentence: str, answer: str, other: str) -> str | None:
    """``sentence`` with its gold ``answer`` replaced by another question's answer."""
    position = sentence.lower().find(answer.lower())
    if position < 0 or not answer.strip():
        return None
    return sentence[:position] + other + sentence[position + len(answer) :]


def _claims(text: str, checker: SupportChecker) -> list[str]:
    """The sentences of a model's answer that assert something."""
    return [
        sentence
        for sentence in split_sentences(text)
        if checker.stems(claim_text(sentence)) and not is_declined(claim_text(sentence))
    ]


def build_support_set(
    index: EvaluationIndex,
    corpus: Path,
    items: Sequence[QaItem],
    answerer: GroundedAnswerer,
    *,
    model: str | None,
    mode: RetrievalMode = RetrievalMode.HYBRID,
    use_model: bool = True,
    progress: Progress | None = None,
) -> list[LabelledSentence]:
    """The labelled sentences of the module docstring, for ``items``.

    With ``use_model`` false only the sentences taken from the corpus are built (no
    model call).
    """
    builder = _SupportSet(index, _Paragraphs.load(corpus), answerer, model, mode, use_model)
    builder.pool = list(items)
    vectors = index.query_vectors([_question(item) for item in items])
    labelled: list[LabelledSentence] = []
    for number, item in enumerate(items):
        labelled += builder.label(item, None if vectors is None else vectors[number])
        if progress:
            progress(1)
    return labelled


@dataclass(slots=True)
class _SupportSet:
    index: EvaluationIndex
    paragraphs: _Paragraphs
    answerer: GroundedAnswerer
    model: str | None
    mode: RetrievalMode
    use_model: bool
    checker: SupportChecker = field(default_factory=SupportChecker)
    failures: int = 0
    pool: list[QaItem] = field(default_factory=list)

    def answer_pool(self, item: QaItem) -> list[str]:
        """Answers of the other questions (about other paragraphs), starting after
        ``item``: a wrong fact of the same kind as a real answer."""
        after = [other for other in self.pool if other.index > item.index]
        before = [other for other in self.pool if other.index < item.index]
        return [o.answers[0] for o in after + before if o.gold != item.gold and o.answers]

    def label(self, item: QaItem, vector: object) -> list[LabelledSentence]:
        gold = self.paragraphs.text.get(item.gold)
        if gold is None:
            return []
        title = self.paragraphs.title[item.gold]
        out: list[LabelledSentence] = []

        def add(kind: str, sentence: str, text: str, supported: bool) -> None:
            out.append(
                LabelledSentence(
                    item.index, kind, sentence, (text,), (title,), item.text, supported
                )
            )

        others = [
            key
            for key in self.paragraphs.by_title.get(title, [])
            if key != item.gold and not contains_answer(self.paragraphs.text[key], item.answers)
        ]
        gold_sentences = split_sentences(gold)
        with_answer = [s for s in gold_sentences if contains_answer(s, item.answers)]
        for sentence in dict.fromkeys((with_answer or gold_sentences)[:1] + gold_sentences[:1]):
            add("gold_sentence", sentence, gold, True)
        if with_answer and numbers_in(with_answer[0]):
            changed = _change_number(with_answer[0], gold)
            if changed:
                add("number_changed", changed, gold, False)
        if with_answer:
            swapped = next(
                (
                    _swap_answer(with_answer[0], item.answers[0], answer)
                    for answer in self.answer_pool(item)
                    if not contains_answer(gold, [answer])
                ),
                None,
            )
            if swapped:
                add("answer_swapped", swapped, gold, False)
        other = self.paragraphs.text[others[0]] if others else None
        if other is not None:
            question_stems = self.checker.stems(item.text)
            ranked = sorted(
                split_sentences(other),
                key=lambda s: len(self.checker.stems(s) & question_stems),
                reverse=True,
            )
            for sentence in ranked[:2]:
                add("other_paragraph", sentence, gold, False)
        if not self.use_model:
            return out
        gold_passages = _paragraph_passages(self.index, item.gold)
        if gold_passages:
            prompt = self.answerer.prompt_for(item.text, "fr", gold_passages, self.model)
            answer = self._complete(prompt.messages)
            for sentence in _claims(answer, self.checker):
                if contains_answer(sentence, item.answers):
                    add("model_answer", sentence, gold, True)
                    if other is not None:
                        add("answer_elsewhere", sentence, other, False)
        if with_answer:
            restate = (
                ChatMessage(Role.SYSTEM, _RESTATE["fr"]),
                ChatMessage(Role.USER, f"<phrase>\n{with_answer[0]}\n</phrase>"),
            )
            for sentence in _claims(self._complete(restate), self.checker)[:1]:
                add("paraphrase", sentence, gold, True)
        hidden = frozenset(
            position for position, doc in enumerate(self.index.chunk_doc) if doc == item.gold
        )
        without = passages_for(self.index, item.text, vector, self.mode, 5, hidden)
        prompt = self.answerer.prompt_for(item.text, "fr", without, self.model)
        if without and not any(contains_answer(text, item.answers) for text in prompt.texts):
            answer = self._complete(prompt.messages)
            headings = tuple(heading_of(passage) for passage in prompt.passages)
            for sentence in _claims(answer, self.checker):
                if contains_answer(sentence, item.answers):
                    out.append(
                        LabelledSentence(
                            item.index,
                            "answer_from_memory",
                            sentence,
                            prompt.texts,
                            headings,
                            item.text,
                            False,
                        )
                    )
        return out

    def _complete(self, messages: tuple[ChatMessage, ...]) -> str:
        """The model's text, or ``""`` when it failed (counted in ``failures``)."""
        call = GatewayCall(ChatRequest(messages, max_tokens=160), EVAL_CALLER, self.model)
        try:
            return self.answerer.gateway.complete(call).completion.text
        except ModelError:
            self.failures += 1
            return ""


def _paragraph_passages(index: EvaluationIndex, paragraph: str) -> list[Passage]:
    """The chunks of a PIAF paragraph as passages, in order."""
    passages = []
    for position, doc in enumerate(index.chunk_doc):
        if doc == paragraph:
            chunk = index.chunks[position]
            document = index.index.documents[chunk.document_id]
            passages.append(Passage(chunk, document, 1.0, {"coverage": 1.0}))
    return passages


def save_labelled(labelled: Sequence[LabelledSentence], path: Path) -> None:
    """Keep a labelled set (model outputs are slow to make) as JSON lines."""
    with path.open("w", encoding="utf-8") as handle:
        for item in labelled:
            handle.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")


def load_labelled(path: Path) -> list[LabelledSentence]:
    """A labelled set saved by ``save_labelled``."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            record["texts"] = tuple(record["texts"])
            record["headings"] = tuple(record["headings"])
            out.append(LabelledSentence(**record))
    return out


def decide(check: SentenceCheck, threshold: float, similarity: float | None, floor: float) -> bool:
    """Whether a checked sentence passes at these thresholds (the checker's own rule)."""
    if check.kind is not SentenceKind.CLAIM:
        return True
    for passage, overlap in check.scores.items():
        if overlap >= threshold:
            return True
        sim = check.similarities.get(passage)
        if similarity is not None and sim is not None and sim >= similarity and overlap >= floor:
            return True
    return False


def _rates(
    pairs: Sequence[tuple[LabelledSentence, SentenceCheck]],
    threshold: float,
    similarity: float | None,
    floor: float,
) -> dict[str, object]:
    positives = [c for s, c in pairs if s.supported]
    negatives = [c for s, c in pairs if not s.supported]
    flagged_pos = sum(not decide(c, threshold, similarity, floor) for c in positives)
    caught = sum(not decide(c, threshold, similarity, floor) for c in negatives)
    by_kind: dict[str, dict[str, float]] = {}
    for kind in (*SUPPORTED_KINDS, *UNSUPPORTED_KINDS):
        group = [(s, c) for s, c in pairs if s.kind == kind]
        if group:
            flagged = sum(not decide(c, threshold, similarity, floor) for _, c in group)
            by_kind[kind] = {"n": len(group), "flagged": _share(flagged, len(group))}
    return {
        "n_supported": len(positives),
        "n_unsupported": len(negatives),
        "catch_rate": _share(caught, len(negatives)),
        "false_flag_rate": _share(flagged_pos, len(positives)),
        "by_kind": by_kind,
    }


Pairs = list[tuple[LabelledSentence, SentenceCheck]]

# Variants of the check measured side by side (each with its own threshold chosen on the
# even half), to show what each part of it contributes.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "plain_coverage": {"novel_weight": 1.0},
    "novel_weight_3": {"novel_weight": 3.0},
    "question_words_known": {"question_is_known": True},
    "no_entity_check": {"check_entities": False},
    "no_negation_check": {"check_negation": False},
    "single_sentences": {"window": 1},
    "exact_stems": {"fuzzy_stems": False},
    "question_names_checked": {"question_entities_ok": False},
    "no_novel_word": {"max_novel": 0},
    "at_most_one_novel_word": {"max_novel": 1},
}


def _checked(labelled: Sequence[LabelledSentence], probe: SupportChecker) -> Pairs:
    """Every labelled sentence checked once (the probe accepts nothing, so ``scores``
    hold what any threshold needs)."""
    cache: dict[tuple[tuple[str, ...], tuple[str, ...], str], Evidence] = {}
    pairs: Pairs = []
    for item in labelled:
        key = (item.texts, item.headings, item.question)
        if key not in cache:
            cache[key] = probe.evidence(item.texts, item.headings, item.question)
        pairs.append((item, probe.check(item.sentence, cache[key])))
    return pairs


def _youden(
    pairs: Pairs, threshold: float, similarity: float | None, floor: float
) -> tuple[float, float]:
    rates = _rates(pairs, threshold, similarity, floor)
    catch = float(rates["catch_rate"])  # type: ignore[arg-type]
    false = float(rates["false_flag_rate"])  # type: ignore[arg-type]
    return catch - false, -false


GRID = [round(0.3 + 0.05 * step, 2) for step in range(14)]


def evaluate_support(
    labelled: Sequence[LabelledSentence], checker: SupportChecker
) -> dict[str, object]:
    """Catch and false-flag rates: thresholds chosen on even questions, reported on odd.

    The lexical threshold maximises catch rate minus false-flag rate on the even half;
    with an embedder, the similarity threshold (over a lexical floor) is chosen the same
    way on top of it. ``variants`` repeats the lexical measure for each of ``VARIANTS``.
    """
    probe = checker.variant(threshold=2.0, similarity_threshold=2.0)
    pairs = _checked(labelled, probe)
    tune = [(s, c) for s, c in pairs if s.index % 2 == 0]
    held = [(s, c) for s, c in pairs if s.index % 2 == 1]
    threshold = max(GRID, key=lambda t: _youden(tune, t, None, 0.0))
    report: dict[str, object] = {
        "lexical": {
            "threshold": threshold,
            "chosen_on_even": _rates(tune, threshold, None, 0.0),
            "held_out_odd": _rates(held, threshold, None, 0.0),
            "curve_odd": [{"threshold": t, **_summary(_rates(held, t, None, 0.0))} for t in GRID],
        },
        "default_threshold": checker.threshold,
        "default_threshold_odd": _rates(held, checker.threshold, None, 0.0),
    }
    if checker.embedder is not None:
        sims = [round(0.80 + 0.01 * step, 2) for step in range(20)]
        best = max(
            ((t, s, f) for t in GRID for s in sims for f in (0.2, 0.3, 0.4)),
            key=lambda combo: _youden(tune, *combo),
        )
        report["embedding"] = {
            "threshold": best[0],
            "similarity_threshold": best[1],
            "floor": best[2],
            "chosen_on_even": _rates(tune, *best),
            "held_out_odd": _rates(held, *best),
        }
    variants: dict[str, object] = {}
    for name, change in VARIANTS.items():
        variant = checker.variant(threshold=2.0, embedder=None, **change)
        checked = _checked(labelled, variant)
        even = [(s, c) for s, c in checked if s.index % 2 == 0]
        odd = [(s, c) for s, c in checked if s.index % 2 == 1]
        chosen = max(GRID, key=lambda t, even=even: _youden(even, t, None, 0.0))  # type: ignore[misc]
        variants[name] = {"threshold": chosen, **_summary(_rates(odd, chosen, None, 0.0))}
    report["variants_odd"] = variants
    return report


def _summary(rates: dict[str, object]) -> dict[str, object]:
    return {"catch_rate": rates["catch_rate"], "false_flag_rate": rates["false_flag_rate"]}
