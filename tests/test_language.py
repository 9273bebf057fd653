"""Language detection, with and without the unpacked-model cache."""

from __future__ import annotations

from pathlib import Path

from allo.language import LanguageDetector, detect_language

SAMPLES = {
    "Comment configurer ma Livebox 6 ?": "fr",
    "How do I change my Wi-Fi password?": "en",
    "¿Cómo configuro mi router en casa?": "es",
}


def test_detects_french_and_english() -> None:
    for text, language in SAMPLES.items():
        assert detect_language(text) == language


def test_short_or_empty_text_gets_the_default() -> None:
    assert detect_language("") == "fr"
    assert detect_language("ok", default="en") == "en"


def test_cached_model_gives_the_same_answers(tmp_path: Path) -> None:
    first = LanguageDetector(tmp_path)
    answers = {text: first.detect(text) for text in SAMPLES}
    files = [path.name for path in tmp_path.iterdir()]
    assert files == ["py3langid-0.4.0-model.npz"]  # no temporary file left behind
    second = LanguageDetector(tmp_path)
    assert {text: second.detect(text) for text in SAMPLES} == answers == SAMPLES


def test_unusable_cache_falls_back_to_the_packaged_model(tmp_path: Path) -> None:
    (tmp_path / "py3langid-0.4.0-model.npz").write_bytes(b"not a model")
    assert LanguageDetector(tmp_path).detect("Bonjour, ma facture est fausse") == "fr"
