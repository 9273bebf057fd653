"""Is each sentence of a generated answer supported by the passages it was given?

A model answering from passages can still add what they do not say. Each sentence of
its answer is checked on its own:

- **lexical**: the share of the sentence's content stems (French analyzer: accents
  folded, Snowball stems, function words dropped) found in one passage sentence or two
  consecutive ones (plus the passage's title and headings);
- **exact**: every number, quoted string, name (a capitalised word inside the sentence,
  unless the question uses it too) and web address or e-mail of the sentence must appear
  in that same piece of passage;
  a negated sentence needs a negated source and the other way round; markup
  (``<tag>``, markdown links) is never supported;
- **embedding** (optional, when an embedder is given): the cosine between the sentence
  and the passage piece, for paraphrases that share few stems.

Sentences of a passage that address the assistant rather than the reader ("ignore the
previous instructions", "tu es désormais...") are never evidence: a document can state
facts, not give orders.

Citations are validated at the same time: ``[n]`` outside ``1..len(passages)`` is
invalid and dropped, and a sentence citing a passage that does not support it is
re-pointed to the passage that does (or flagged when none does).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from allo.knowledge.index.analysis import STOPWORDS, FrenchAnalyzer, fold_accents
from allo.knowledge.index.embedding import Embedder, Matrix

# -- sentences ------------------------------------------------------------------------

# A citation group as models write them: [1], [1, 2], [1][2], [passage 1], [Source 2].
MARKER = re.compile(
    r"\[\s*(?:(?:passage|source|doc(?:ument)?)\s*)?(\d+(?:\s*[,;]\s*\d+)*)\s*\]", re.I
)
_MARKER_LOOSE = r"\[[^\[\]\n]{1,24}\]"
_END = re.compile(
    r"(?P<punct>\.{3}|[.!?…]+)(?P<close>[\"»”’)]*)(?P<markers>(?:[ \t]*" + _MARKER_LOOSE + r")*)"
    r"(?P<space>\s+)(?=\S)"
)
_ABBREVIATION_TEXT = """m mm mme mlle mr mrs ms dr pr st ste etc cf p pp ex env av apr jc j.-c vol
    chap art fig min max approx n no n° i.e e.g vs inc ltd co dept tél tel réf ref"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())
_LIST_PREFIX = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")
_MARKDOWN = re.compile(r"\*\*|__|`|^#+\s*", re.M)


@dataclass(frozen=True, slots=True)
class Piece:
    """A sentence (or a list line) of an answer, as written, and what preceded it."""

    text: str
    newline_before: bool = False


def _sentence_ends(line: str) -> Iterable[tuple[int, int]]:
    """(end of a sentence, start of the next) for each confirmed boundary in ``line``.

    A boundary needs the next sentence to have begun, so a stream waits for it; citation
    markers right after the punctuation belong to the sentence they follow.
    """
    for match in _END.finditer(line):
        following = line[match.end()]
        if following == "[":
            continue  # a citation marker still arriving, or one on its own
        if match.group("punct") == "." and not match.group("close"):
            before = line[: match.start()]
            word = before.rsplit(None, 1)[-1].lstrip("(«\"'") if before.strip() else ""
            lowered = word.lower()
            if lowered in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
            ahead = before[: len(before.rstrip()) - len(word)].rstrip()
            if word.isdigit() and len(word) <= 2 and (not ahead or ahead[-1] in ".!?:;"):
                continue  # "1. " numbering a step
            if "." in word and len(word) <= 6 and word.replace(".", "").replace("-", "").isalpha():
                continue  # "J.-C", "i.e"
        yield match.start("space"), match.end()


def scan_sentences(
    text: str, *, final: bool, newline: bool = False
) -> tuple[list[Piece], int, bool]:
    """Complete sentences at the start of ``text``: the pieces, how many characters they
    consumed and whether the next piece starts a new line.

    With ``final`` false (a stream still arriving) the last, maybe unfinished sentence
    is left unconsumed.
    """
    pieces: list[Piece] = []
    position = 0
    while True:
        newline_at = text.find("\n", position)
        line_end = newline_at if newline_at >= 0 else len(text)
        line = text[position:line_end]
        start = 0
        for end, next_start in _sentence_ends(line):
            piece = line[start:end].strip()
            if piece:
                pieces.append(Piece(piece, newline))
                newline = False
            start = next_start
        if newline_at < 0 and not final:
            return pieces, position + start, newline
        piece = line[start:].strip()
        if piece:
            if MARKER.fullmatch(piece) and pieces and not pieces[-1].newline_before:
                previous = pieces.pop()  # "Sentence.\n[1]": the marker is the sentence's
                piece = f"{previous.text} {piece}"
                newline = previous.newline_before
            pieces.append(Piece(piece, newline))
            newline = False
        if newline_at < 0:
            return pieces, len(text), newline
        newline = newline or bool(pieces)
        position = newline_at + 1


_ITEM = re.compile(r"^\s*(?:[-*•·#|]|\d{1,2}[.)]\s)")
_ENDS_SENTENCE = re.compile(r"[.!?…:;»\"”)]\s*$")


def unwrap_lines(text: str) -> str:
    """Prose lines joined where a line break only wraps a sentence (neither line is a
    list item or a heading, and the first does not end a sentence): a document's
    sentence cut over two lines is one sentence, not two."""
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        previous = out[-1]
        if (
            previous.strip()
            and line.strip()
            and not _ENDS_SENTENCE.search(previous)
            and not _ITEM.match(previous)
            and not _ITEM.match(line)
        ):
            out[-1] = f"{previous.rstrip()} {line.lstrip()}"
        else:
            out.append(line)
    return "\n".join(out)


def split_sentences(text: str) -> list[str]:
    """The sentences and list lines of an answer, citation markers kept with each."""
    pieces, _, _ = scan_sentences(text, final=True)
    return [piece.text for piece in pieces]


def cited_numbers(sentence: str) -> list[int]:
    """The passage numbers a sentence cites, in order, each once."""
    numbers: list[int] = []
    for match in MARKER.finditer(sentence):
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            number = int(part)
            if number not in numbers:
                numbers.append(number)
    return numbers


def strip_markers(sentence: str) -> str:
    """The sentence without its citation markers (and the spaces before them)."""
    return re.sub(r"[ \t]*" + MARKER.pattern, "", sentence, flags=re.I).strip()


def claim_text(sentence: str) -> str:
    """What a sentence asserts: markers, list bullets and markdown emphasis removed."""
    return _MARKDOWN.sub("", _LIST_PREFIX.sub("", strip_markers(sentence))).strip()


# -- exact features -------------------------------------------------------------------

_NUMBER = re.compile(r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?")
_QUOTED = re.compile(r"«\s*([^»]{3,300}?)\s*»|“([^”]{3,300})”|\"([^\"]{3,300})\"")
_LINK = re.compile(
    r"https?://[^\s<>\]\)]+|www\.[^\s<>\]\)]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|fr|net|org|io|info|biz|example|xyz|ru|co|uk|de|"
    r"eu|app|dev|ly|me|tk|cn|be|ch|ca|gg|sh|site|online|top|click|link)\b",
    re.I,
)
_MARKUP = re.compile(
    r"<\s*/?\s*[A-Za-z!][^>]*>|‹\s*/?\s*[A-Za-z]|\]\([^)]*\)|javascript:|\bon\w+\s*=\s*[\"']",
    re.I,
)
_NEGATION = re.compile(
    r"\b(?:pas|jamais|aucun|aucune|rien|nullement|not|never|none|nothing|cannot|no)\b|n['’]t\b",
    re.I,
)
_DECLINED = re.compile(
    r"\bje ne (?:sais|connais) pas\b|\bje ne (?:peux|suis) pas (?:en mesure de )?r[ée]pondre"
    r"|\b(?:les|ces|le|ce) passages? ne (?:\w+ )?(?:contien|mentionn|pr[ée]cis|di[st]|donn|"
    r"indiqu|fourni|parl|perme)"
    r"|\baucune? (?:information|passage|mention|r[ée]ponse)\b|\bpas d['’]information"
    r"|\bI (?:do not|don't|cannot|can't) (?:know|answer|find)"
    r"|\b(?:the|these) passages? (?:do(?:es)? not|don't|doesn't) (?:contain|mention|say|provide|"
    r"specify|give|include)|\bno information\b|\bnot (?:mentioned|specified|provided|stated)\b",
    re.I,
)
# Sentences of a document addressed to the assistant, not to its readers.
_AI = r"(?:assistant|chatbot|IA|AI|LLM|bot|robot|mod[èe]le(?: de langue)?|(?:language )?model|GPT)"
_DIRECTIVES = (
    # "ignore / forget the previous instructions", "disregard the passages"
    r"\b(?:ignore[rz]?|ignores|oublie[rz]?|disregard|forget|override|contourne[rz]?)\b"
    r"[^.!?\n]{0,60}\b(?:instructions?|consignes?|r[èe]gles?|rules?|previous|"
    r"pr[ée]c[ée]dente?s?|above|ci-dessus|system|syst[èe]me|passages?|prompt)",
    # talk about the assistant's own rules
    r"\b(?:system prompt|prompt syst[èe]me|invite syst[èe]me|instructions? (?:syst[èe]me|"
    r"pr[ée]c[ée]dentes?|initiales?)|(?:previous|prior|initial|hidden|your|tes|vos) "
    r"(?:instructions|consignes|rules|r[èe]gles)|new rules?|nouvelles? (?:r[èe]gles?|"
    r"consignes?))\b",
    # "you are now...", "tu es désormais..."
    r"\b(?:you are|you're|tu es|vous [êe]tes|tu seras|you will be)\s+(?:now|d[ée]sormais|"
    r"maintenant|dor[ée]navant|from now on)\b",
    # "Assistant: ...", "Dear AI, ...", "the model must..."
    r"(?:^|[.!?]\s+|\b(?:cher|ch[èe]re|dear|hey|h[ée]|attention|to)\s+)(?:l['’]|the )?"
    + _AI
    + r"\s*[,:!]",
    r"\b(?:l['’]|the |cet |this )" + _AI + r"\s+(?:doit|must|should|devra|shall|will)\b",
    r"\b(?:note|message|instructions?|consignes?)\s+(?:to|for|pour|à|a)\s+(?:the |l['’]|les? )?"
    + _AI
    + r"s?\b",
    # "always answer...", "add ... to every answer", "end each answer with..."
    r"\b(?:r[ée]ponds|r[ée]pondez|respond|reply|answer|dis|dites|say|write|[ée]cris|"
    r"[ée]crivez|output|print|affiche[rz]?|ins[èe]re[rz]?|insert|ajoute[rz]?|append|add|"
    r"include|inclus|cite[rz]?|termine[rz]?|finis|end|conclude|commence[rz]?|start|begin)\b"
    r"[^.!?\n]{0,80}\b(?:toujours|always|uniquement|instead|[àa] la place|d[ée]sormais|"
    r"from now on|every (?:answer|reply|response)|chaque r[ée]ponse|toutes? (?:tes|vos|les) "
    r"r[ée]ponses?|each (?:answer|reply|response)|all answers|your (?:answer|reply)|"
    r"ta r[ée]ponse|votre r[ée]ponse)\b",
    # "when the customer asks..., say..."
    r"\b(?:si|quand|lorsque|when|if)\b[^.!?\n]{0,40}\b(?:on te demande|on vous demande|"
    r"(?:un|le) client demande|(?:a|the) (?:user|customer) asks|you are asked|asked about)\b",
    r"\b(?:roleplay|jailbreak|DAN mode|developer mode|mode d[ée]veloppeur)\b",
    # chat-template control text (already neutralised in the prompt: ‹|im_start|›)
    r"[<‹]\|?\s*(?:im_start|im_end|system|endoftext)|\[/?INST\]|<<SYS>>",
)
_DIRECTIVE = re.compile("|".join(_DIRECTIVES), re.I)
_META_WORDS = (
    "passage passages document documents selon après apres indique indiqué indiquent "
    "mentionne mentionné mentionnent précise précisé texte source sources extrait "
    "information informations réponse question according states stated says mentions "
    "mentioned indicated indicates text mentionner préciser indiquer voici voilà effectivement "
    "oui non yes ok okay d'accord bien sûr sure certainly certes here"
)


def _normal_number(raw: str) -> str:
    number = re.sub(r"[ \u00a0\u202f]", "", raw).replace(",", ".")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number


def numbers_in(text: str) -> set[str]:
    """Numbers of ``text`` normalised: "100 000" -> "100000", "14,2" -> "14.2"."""
    return {_normal_number(match.group()) for match in _NUMBER.finditer(text)}


def _fold(text: str) -> str:
    folded = " ".join(fold_accents(text).lower().replace("’", "'").split())
    return re.sub(r" (?=[.,;:!?»)])|(?<=[«(]) ", "", folded)


def quotes_in(text: str) -> set[str]:
    """Quoted strings of ``text`` (folded), which must appear word for word in a source."""
    return {_fold(next(group for group in m.groups() if group)) for m in _QUOTED.finditer(text)}


def links_in(text: str) -> set[str]:
    """Web addresses, domain names and e-mails of ``text``, lowercased, scheme dropped."""
    found = set()
    for match in _LINK.finditer(text):
        link = match.group().lower().rstrip(".,;:!?)»\"'")
        link = re.sub(r"^(?:https?://)?(?:www\.)?", "", link)
        if link:
            found.add(link)
    return found


_ENTITY = re.compile(r"(?<![\w-])[A-ZÀ-ÖØ-Þ][\w-]*\w")
_CLAUSE_START = re.compile(r"(?:^|[.:;!?«\"“(\[])\s*$")


def entities_in(text: str) -> set[str]:
    """Capitalised words of ``text`` that do not start it or a clause: names ("Specioza
    Kazibwe", "Fibre Max"), folded to lowercase; function words are left out."""
    found = set()
    for match in _ENTITY.finditer(text):
        if _CLAUSE_START.search(text[: match.start()]):
            continue
        word = _fold(match.group())
        if word not in STOPWORDS and len(word) > 1:
            found.add(word)
    return found


def _has_word(folded: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded) is not None


def is_negated(text: str) -> bool:
    """Whether ``text`` contains a negation (French or English)."""
    return _NEGATION.search(text) is not None


def is_declined(text: str) -> bool:
    """Whether a sentence says the passages do not answer ("je ne sais pas")."""
    return _DECLINED.search(text) is not None


def is_directive(text: str) -> bool:
    """Whether a passage sentence addresses the assistant (an injected instruction)."""
    return _DIRECTIVE.search(unicodedata.normalize("NFKC", text)) is not None


# -- evidence and checks ------------------------------------------------------------------


@dataclass(slots=True)
class _Window:
    passage: int  # 1-based
    text: str
    folded: str
    stems: frozenset[str]
    numbers: frozenset[str]
    negated: bool
    # per sentence: its stems and, when it is negated, its words as (stem, is negation)
    sentences: tuple[tuple[frozenset[str], tuple[tuple[str, bool], ...]], ...] = ()


@dataclass(slots=True)
class Evidence:
    """The passages of one answer cut into checkable pieces (built once per answer)."""

    texts: tuple[str, ...]
    windows: list[_Window]
    known: frozenset[str] = frozenset()  # stems of the passages and the question
    directives: int = 0
    vectors: Matrix | None = None
    asked_entities: frozenset[str] = frozenset()  # names the question itself uses


class SentenceKind(StrEnum):
    """What a sentence of an answer is, for the check."""

    CLAIM = "claim"  # asserts something: must be supported
    NEUTRAL = "neutral"  # no content word ("Oui.", a lone marker)
    DECLINED = "declined"  # says the passages do not answer


@dataclass(frozen=True, slots=True)
class SentenceCheck:
    """The verdict on one sentence.

    ``cited`` are the valid passage numbers it cited, ``invalid`` those outside the
    passages; ``citations`` what it should cite (the supporting passages among those
    cited, else the best one: ``repointed``). ``reason`` says why a claim is unsupported:
    ``overlap`` (too few of its words in any passage), ``number``, ``quote``, ``link``,
    ``entity`` (a name), ``negation``, ``markup`` or ``novel`` (more than ``max_novel``
    words found in no passage); ``"ok"`` otherwise. ``scores`` (and
    ``similarities`` with an embedder) are the best lexical score (cosine) per passage
    over the pieces that pass the exact checks.
    """

    text: str
    claim: str
    kind: SentenceKind
    supported: bool
    score: float
    passage: int | None
    reason: str
    cited: tuple[int, ...] = ()
    invalid: tuple[int, ...] = ()
    citations: tuple[int, ...] = ()
    repointed: bool = False
    similarity: float | None = None
    scores: dict[int, float] = field(default_factory=dict)
    similarities: dict[int, float] = field(default_factory=dict)


# A claim is supported when its weighted share of content stems found in one passage piece
# reaches this. Chosen on the even-numbered questions of the first 40 of PIAF dev (catch
# rate minus false-flag rate, `allo eval generation`): 0.7; held out on the odd ones it
# caught 93.5 % of the unsupported sentences and flagged 6.1 % of the supported ones.
DEFAULT_THRESHOLD = 0.7


def _negation_differs(stems: frozenset[str], negated: bool, window: _Window) -> bool:
    """A claim adds a negation its source lacks, or drops one that stands among the
    words it takes from its closest source sentence ("Le code n'est jamais envoyé par
    SMS" -> "Le code est envoyé par SMS"). A negation elsewhere in that sentence ("n'ayant
    pas connu son père (Kyle Reese), John...") is about something else."""
    if negated:
        return not window.negated
    closest = max(window.sentences, key=lambda part: len(stems & part[0]), default=None)
    if closest is None or not closest[1] or len(stems & closest[0]) < 2:
        return False
    words = closest[1]
    matched = [position for position, (stem, _) in enumerate(words) if stem in stems]
    return any(
        is_negation and matched[0] - 1 <= position <= matched[-1] + 1
        for position, (_, is_negation) in enumerate(words)
    )


class SupportChecker:
    """Checks answer sentences against passages; cheap to build, no model unless an
    embedder is given (then ``similarity_threshold`` also admits paraphrases whose
    lexical overlap is at least ``floor``).

    The lexical score of a claim against a piece of passage is the share of its content
    stems found there, a stem found in no passage counting ``novel_weight`` times:
    "L'offre Fibre Max est gratuite" must not pass on the strength of three words taken
    from the passage's title."""

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        embedder: Embedder | None = None,
        similarity_threshold: float = 0.9,
        floor: float = 0.3,
        window: int = 2,
        check_negation: bool = True,
        check_entities: bool = True,
        novel_weight: float = 2.0,
        question_is_known: bool = False,
        max_novel: int | None = None,
        fuzzy_stems: bool = True,
        question_entities_ok: bool = True,
    ) -> None:
        self.fuzzy_stems = fuzzy_stems
        self.question_entities_ok = question_entities_ok
        self.max_novel = max_novel
        self.question_is_known = question_is_known
        self.check_entities = check_entities
        self.threshold = threshold
        self.novel_weight = novel_weight
        self.embedder = embedder
        self.similarity_threshold = similarity_threshold
        self.floor = floor
        self.window = window
        self.check_negation = check_negation
        self._analyzer = FrenchAnalyzer()
        self._meta = frozenset(self._analyzer.tokens(_META_WORDS))

    def _words(self, sentence: str) -> tuple[tuple[str, bool], ...]:
        """The words of a negated sentence as (stem or "", is a negation); ``()`` when
        the sentence has no negation."""
        if not is_negated(sentence):
            return ()
        words = []
        for word in re.findall(r"[\w'’]+", sentence.lower()):
            negation = _NEGATION.fullmatch(word) is not None or word.endswith(("n't", "n’t"))
            terms = self._analyzer.tokens(word)
            words.append((terms[0] if terms else "", negation))
        return tuple(words)

    def _covered(self, stems: frozenset[str], found: frozenset[str]) -> int:
        """How many of ``stems`` are in ``found``; with ``fuzzy_stems`` a stem also counts
        when it and one found differ only by an ending of at most two letters, from five
        letters on ("privatise"/"privatis": accents folded before stemming leave some
        endings unstemmed)."""
        exact = stems & found
        if not self.fuzzy_stems:
            return len(exact)
        count = len(exact)
        for stem in stems - exact:
            if len(stem) < 5:
                continue
            for other in found:
                shorter, longer = sorted((stem, other), key=len)
                if (
                    len(shorter) >= 5
                    and len(longer) - len(shorter) <= 2
                    and longer.startswith(shorter)
                ):
                    count += 1
                    break
        return count

    def variant(self, **changes: Any) -> SupportChecker:
        """A checker with the same options but ``changes`` (for measurements)."""
        options: dict[str, Any] = {
            "threshold": self.threshold,
            "embedder": self.embedder,
            "similarity_threshold": self.similarity_threshold,
            "floor": self.floor,
            "window": self.window,
            "check_negation": self.check_negation,
            "check_entities": self.check_entities,
            "novel_weight": self.novel_weight,
            "question_is_known": self.question_is_known,
            "max_novel": self.max_novel,
            "fuzzy_stems": self.fuzzy_stems,
            "question_entities_ok": self.question_entities_ok,
        }
        return SupportChecker(**{**options, **changes})

    def stems(self, text: str) -> frozenset[str]:
        """Content stems of ``text`` (meta words like "passage" or "selon" left out)."""
        return frozenset(self._analyzer.tokens(text)) - self._meta

    def evidence(
        self, texts: Sequence[str], headings: Sequence[str] = (), question: str = ""
    ) -> Evidence:
        """Passages (their text as given to the model) cut into windows of sentences.

        A claim word found in no passage weighs ``novel_weight`` times more when
        missing; with ``question_is_known``, words of the question weigh normally (they
        are never evidence): a question can then make an echoed claim pass more easily.
        """
        windows: list[_Window] = []
        directives = 0
        for number, text in enumerate(texts, start=1):
            heading = headings[number - 1] if number - 1 < len(headings) else ""
            heading_stems = self.stems(heading)
            sentences = []
            for sentence in split_sentences(unwrap_lines(text)):
                if is_directive(sentence):
                    directives += 1
                    continue
                sentences.append(sentence)
            parts = [(self.stems(sentence), self._words(sentence)) for sentence in sentences]
            for start in range(len(sentences)):
                for size in range(1, self.window + 1):
                    if start + size > len(sentences):
                        continue
                    piece = " ".join(sentences[start : start + size])
                    windows.append(
                        _Window(
                            passage=number,
                            text=piece,
                            folded=_fold(f"{heading} {piece}"),
                            stems=self.stems(piece) | heading_stems,
                            numbers=frozenset(numbers_in(f"{heading} {piece}")),
                            negated=is_negated(piece),
                            sentences=tuple(parts[start : start + size]),
                        )
                    )
        asked = self.stems(question) if self.question_is_known else frozenset()
        known = frozenset().union(*(window.stems for window in windows), asked)
        asked_entities = frozenset(entities_in(question)) if self.question_entities_ok else None
        return Evidence(
            tuple(texts), windows, known, directives, asked_entities=asked_entities or frozenset()
        )

    def _vectors(self, evidence: Evidence) -> Matrix | None:
        if self.embedder is None or not evidence.windows:
            return None
        if evidence.vectors is None:
            self.embedder.warm_up()
            evidence.vectors = self.embedder.embed_queries([w.text for w in evidence.windows])
        return evidence.vectors

    def similarities(self, claim: str, evidence: Evidence) -> np.ndarray | None:
        """Cosine of ``claim`` with every window (``None`` without an embedder)."""
        vectors = self._vectors(evidence)
        if vectors is None or self.embedder is None:
            return None
        query = self.embedder.embed_queries([claim])[0]
        return np.asarray(vectors @ query, dtype=np.float64)

    def check(self, sentence: str, evidence: Evidence) -> SentenceCheck:
        """The verdict on one sentence of an answer (markers included)."""
        count = len(evidence.texts)
        numbers = cited_numbers(sentence)
        cited = tuple(n for n in numbers if 1 <= n <= count)
        invalid = tuple(n for n in numbers if not 1 <= n <= count)
        claim = claim_text(sentence)
        stems = self.stems(claim)
        if is_declined(claim):
            return SentenceCheck(
                sentence, claim, SentenceKind.DECLINED, False, 0.0, None, "declined", cited, invalid
            )
        if not stems and not links_in(claim) and not _MARKUP.search(claim):
            return SentenceCheck(
                sentence, claim, SentenceKind.NEUTRAL, True, 1.0, None, "ok", cited, invalid
            )
        if _MARKUP.search(sentence):
            return SentenceCheck(
                sentence, claim, SentenceKind.CLAIM, False, 0.0, None, "markup", cited, invalid
            )
        wanted_numbers = numbers_in(claim)
        wanted_quotes = quotes_in(claim)
        wanted_links = links_in(claim)
        negated = is_negated(claim)
        wanted_entities = (
            entities_in(claim) - evidence.asked_entities if self.check_entities else set()
        )
        similarity = self.similarities(claim, evidence)
        best: dict[int, float] = {}  # passage -> best valid score
        best_sim: dict[int, float] = {}
        top_reason, top_overlap = "overlap", -1.0
        total = sum(1.0 if stem in evidence.known else self.novel_weight for stem in stems)
        novel = len(stems - evidence.known)
        if self.max_novel is not None and novel > self.max_novel:
            return SentenceCheck(
                sentence, claim, SentenceKind.CLAIM, False, 0.0, None, "novel", cited, invalid
            )
        for position, window in enumerate(evidence.windows):
            overlap = self._covered(stems, window.stems) / total if stems else 1.0
            sim = float(similarity[position]) if similarity is not None else None
            reason = "ok"
            if not wanted_numbers <= window.numbers:
                reason = "number"
            elif any(quote not in window.folded for quote in wanted_quotes):
                reason = "quote"
            elif any(link not in window.folded for link in wanted_links):
                reason = "link"
            elif any(not _has_word(window.folded, entity) for entity in wanted_entities):
                reason = "entity"
            elif self.check_negation and _negation_differs(stems, negated, window):
                reason = "negation"
            if reason != "ok":
                if overlap > top_overlap:
                    top_reason, top_overlap = reason, overlap
                continue
            if overlap > top_overlap:
                top_reason, top_overlap = "overlap", overlap
            if overlap > best.get(window.passage, -1.0):
                best[window.passage] = overlap
            if sim is not None and sim > best_sim.get(window.passage, -1.0):
                best_sim[window.passage] = sim
        supporting = [
            number
            for number in sorted(best)
            if best[number] >= self.threshold
            or (
                best_sim.get(number, -1.0) >= self.similarity_threshold
                and best[number] >= self.floor
            )
        ]
        ranked = sorted(best, key=lambda n: (best[n], best_sim.get(n, 0.0)), reverse=True)
        top = ranked[0] if ranked else None
        score = best[top] if top is not None else max(top_overlap, 0.0)
        top_sim = max(best_sim.values()) if best_sim else None
        if not supporting:
            reason = top_reason if top_reason != "ok" else "overlap"
            return SentenceCheck(
                sentence,
                claim,
                SentenceKind.CLAIM,
                False,
                score,
                top,
                reason,
                cited,
                invalid,
                similarity=top_sim,
                scores=best,
                similarities=best_sim,
            )
        kept = tuple(n for n in cited if n in supporting)
        chosen = max(supporting, key=lambda n: (best[n], best_sim.get(n, 0.0)))
        citations = kept or (chosen,)
        return SentenceCheck(
            sentence,
            claim,
            SentenceKind.CLAIM,
            True,
            best[chosen],
            chosen,
            "ok",
            cited,
            invalid,
            citations,
            repointed=not kept,
            similarity=top_sim,
            scores=best,
            similarities=best_sim,
        )

    def check_text(
        self, text: str, texts: Sequence[str], headings: Sequence[str] = ()
    ) -> list[SentenceCheck]:
        """Every sentence of an answer checked against ``texts``."""
        evidence = self.evidence(texts, headings)
        return [self.check(sentence, evidence) for sentence in split_sentences(text)]
