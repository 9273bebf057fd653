"""French analysis and BM25 ranking."""

from __future__ import annotations

from allo.knowledge.index.analysis import FrenchAnalyzer, fold_accents
from allo.knowledge.index.lexical import LexicalIndex


def test_accents_case_and_inflections_meet() -> None:
    analyzer = FrenchAnalyzer()
    assert analyzer.tokens("Électricité") == analyzer.tokens("electricite")
    assert analyzer.tokens("configurer") == analyzer.tokens("Configurez")
    assert analyzer.tokens("factures") == analyzer.tokens("facture")
    assert fold_accents("Œuvre à côté") == "Oeuvre a cote"


def test_stopwords_are_dropped_and_hyphenated_words_joined() -> None:
    analyzer = FrenchAnalyzer()
    assert analyzer.tokens("le la les de des et") == []
    assert set(analyzer.tokens("wifi")) <= set(analyzer.tokens("Wi-Fi"))


def test_bm25_ranks_the_matching_text_first() -> None:
    index = LexicalIndex()
    index.build(
        [
            "Changer le mot de passe du Wi-Fi de la box",
            "Lire sa facture et comprendre le prélèvement",
            "Activer une eSIM sur iPhone",
        ]
    )
    assert index.search("mot de passe wifi", 3)[0][0] == 0
    assert index.search("Prélèvements sur mes factures", 3)[0][0] == 1
    assert index.search("e-SIM", 3)[0][0] == 2
    assert index.search("capitale du Pérou", 3) == []


def test_rare_terms_weigh_more() -> None:
    index = LexicalIndex()
    index.build(["box box box internet", "box code PUK", "box wifi", "box tv"])
    assert index.search("box PUK", 1)[0][0] == 1


def test_empty_index() -> None:
    index = LexicalIndex()
    index.build([])
    assert index.search("box", 5) == []


def test_hyphenated_stopwords_make_no_joined_term() -> None:
    analyzer = FrenchAnalyzer()
    # "dois-je", "est-ce", "a-t-il" must not become rare made-up terms such as "doisj"
    assert analyzer.tokens("Que dois-je faire ? Est-ce cassé ? A-t-il répondu ?") == [
        analyzer.tokens("cassé")[0],
        analyzer.tokens("répondu")[0],
    ]
    assert analyzer.tokens("là-bas") == analyzer.tokens("bas")
    # words whose parts all carry meaning still meet their joined spelling
    assert set(analyzer.tokens("wifi")) <= set(analyzer.tokens("Wi-Fi"))
    assert set(analyzer.tokens("esim")) <= set(analyzer.tokens("e-SIM"))
