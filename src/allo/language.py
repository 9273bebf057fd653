"""Which language a text is written in, among those Allo serves.

py3langid is tiny and fast (well under a millisecond a text), but unpacking its
LZMA-compressed model takes 0.8 s, most of a short command's start-up. With a cache
folder, the unpacked model is kept there (written once, atomically) and loads in a few
milliseconds. Restricting it to the languages Allo works in avoids absurd guesses on
short questions.
"""

from __future__ import annotations

import lzma
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

SUPPORTED = ("fr", "en", "es", "de", "it", "pt", "nl", "ar")
DEFAULT = "fr"
_CACHE_NAME = "py3langid-0.4.0-model.npz"


class LanguageDetector:
    """Detects languages; ``cache_dir`` (optional) holds the unpacked model."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._identifier: LanguageIdentifier | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now (idempotent)."""
        with self._lock:
            if self._identifier is None:
                identifier = self._load_cached() or LanguageIdentifier.from_model_file(
                    MODEL_FILE, norm_probs=True
                )
                identifier.set_languages(list(SUPPORTED))
                self._identifier = identifier

    def _load_cached(self) -> LanguageIdentifier | None:
        """The identifier from the unpacked copy, made on first use; None if unusable."""
        if self.cache_dir is None:
            return None
        from py3langid import modelio

        path = self.cache_dir / _CACHE_NAME
        try:
            if not path.is_file():
                self._unpack(path)
            with np.load(path, allow_pickle=False) as data:
                return LanguageIdentifier(
                    np.asarray(data["ptc"]),
                    np.asarray(data["pc"]),
                    data["classes"].tolist(),
                    modelio._to_array(data["nextmove"]),
                    data["out_feat"].tolist(),
                    norm_probs=True,
                    tk_row=modelio._to_array(data["nextmove_row"]),
                )
        except (OSError, ValueError, KeyError, AttributeError, lzma.LZMAError):
            return None  # fall back to the packaged file: slower, same answers

    @staticmethod
    def _unpack(path: Path) -> None:
        """Decompress the packaged model to ``path`` atomically (no partial file left)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".langid-")
        try:
            with os.fdopen(handle, "wb") as out, lzma.open(Path(MODEL_DIR) / MODEL_FILE) as source:
                shutil.copyfileobj(source, out, length=1 << 20)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def detect(self, text: str, default: str = DEFAULT) -> str:
        """ISO 639-1 code of ``text``; ``default`` when it is too short or unsure."""
        sample = text.strip()[:2000]
        if len(sample) < 3:
            return default
        self.warm_up()
        assert self._identifier is not None
        language, probability = self._identifier.classify(sample)
        return str(language) if probability >= 0.5 else default


_shared = LanguageDetector()


def detect_language(text: str, default: str = DEFAULT) -> str:
    """Detect with a process-wide detector that has no cache folder."""
    return _shared.detect(text, default)
