"""Retrieval speed at 50,000 chunks, on one core, with bm25s as the peer.

The corpus is built from PIAF's real French paragraphs: each synthetic chunk mixes the
sentences of two paragraphs, so the vocabulary and lengths are real; its vector is the
normalised mean of those paragraphs' e5 vectors (embedding 50,000 chunks would take
20 minutes and measure nothing more about search). Queries are PIAF dev questions,
embedded for real. Ingest and embedding speed are measured on real documents.

    .venv/bin/python benchmarks/retrieval_speed.py --json
"""

from __future__ import annotations

import os

# One core for search, as the target says; set before numpy loads its thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import bm25s  # noqa: E402
import numpy as np  # noqa: E402
import Stemmer  # noqa: E402

from allo.config import EmbedderKind, RetrievalMode, RetrievalSettings, Settings  # noqa: E402
from allo.domain import Chunk, Document  # noqa: E402
from allo.knowledge.index.dense import DenseIndex  # noqa: E402
from allo.knowledge.index.e5_onnx import OnnxE5Embedder  # noqa: E402
from allo.knowledge.index.lexical import LexicalIndex  # noqa: E402
from allo.knowledge.index.retriever import SearchIndex  # noqa: E402
from allo.knowledge.service import KnowledgeBase  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PIAF = ROOT.parent / "shared" / "data" / "qa" / "piaf"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile in milliseconds, rounded."""
    return round(float(np.percentile(np.array(values) * 1000.0, q)), 3)


def build_corpus(paragraphs: list[str], vectors: np.ndarray, size: int, seed: int = 7):  # type: ignore[no-untyped-def]
    """``size`` chunks mixing the sentences of two real paragraphs, with mixed vectors."""
    rng = random.Random(seed)
    sentences = [_SENTENCE.split(text) for text in paragraphs]
    texts: list[str] = []
    mixed = np.empty((size, vectors.shape[1]), dtype=np.float32)
    for number in range(size):
        a, b = rng.randrange(len(paragraphs)), rng.randrange(len(paragraphs))
        picked = rng.sample(sentences[a], min(3, len(sentences[a])))
        picked += rng.sample(sentences[b], min(2, len(sentences[b])))
        texts.append(" ".join(picked))
        vector = 0.6 * vectors[a] + 0.4 * vectors[b]
        mixed[number] = vector / np.linalg.norm(vector)
    return texts, mixed


def time_queries(run, queries: list, repeat: int = 1) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def, type-arg]
    """Queries per second and per-query latencies of ``run`` over ``queries``."""
    latencies = []
    started = time.perf_counter()
    for _ in range(repeat):
        for query in queries:
            t0 = time.perf_counter()
            run(query)
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def cold_ask_seconds(data_dir: Path, runs: int = 3) -> float:
    """Best wall time of ``allo ask`` in a fresh process (the model file already converted)."""
    env = {**os.environ, "ALLO_DATA_DIR": str(data_dir)}
    command = [str(ROOT / ".venv" / "bin" / "allo"), "ask", "Comment configurer ma Livebox 6 ?"]
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return round(best, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=PIAF / "corpus.jsonl")
    parser.add_argument("--questions", type=Path, default=PIAF / "dev_questions.jsonl")
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".allo" / "cache")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    records = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines()]
    paragraphs = [record["text"] for record in records]
    questions = [
        json.loads(line)["question"]
        for line in args.questions.read_text(encoding="utf-8").splitlines()
    ][: args.queries]
    result: dict[str, object] = {"chunks": args.chunks, "queries": len(questions)}

    # -- embedding throughput on real paragraphs (2 threads, as ingestion runs) -----------
    embedder = OnnxE5Embedder(cache_dir=args.cache_dir / "models", threads=2)
    embedder.warm_up()
    t0 = time.perf_counter()
    paragraph_vectors = embedder.embed_passages(paragraphs)
    result["passages_per_second"] = round(len(paragraphs) / (time.perf_counter() - t0), 1)

    # -- ingest: the demo knowledge base, real pipeline, empty store and cache ----------
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "cache").mkdir()
        os.symlink((args.cache_dir / "models").resolve(), data / "cache" / "models")
        kb = KnowledgeBase(Settings(data_dir=data, embedder=EmbedderKind.ONNX))
        kb.warm_up()
        t0 = time.perf_counter()
        report = kb.load_demo()
        seconds = time.perf_counter() - t0
        result["ingest_documents_per_second"] = round(report.loaded / seconds, 2)
        result["ingest_chunks_per_second"] = round(report.chunks / seconds, 1)
        kb.close()
        result["cold_ask_seconds"] = cold_ask_seconds(data)

    # -- the 50k-chunk corpus ------------------------------------------------------------
    texts, vectors = build_corpus(paragraphs, paragraph_vectors, args.chunks)
    t0 = time.perf_counter()
    lexical = LexicalIndex()
    lexical.build(texts)
    result["lexical_build_seconds"] = round(time.perf_counter() - t0, 2)

    qps, latencies = time_queries(lambda q: lexical.search(q, 10), questions, repeat=2)
    result["lexical_qps"] = round(qps, 1)
    result["lexical_p50_ms"] = percentile(latencies, 50)
    result["lexical_p95_ms"] = percentile(latencies, 95)

    # peer: bm25s with its own tokenizer and French Snowball stemmer, one query at a time
    stemmer = Stemmer.Stemmer("french")
    peer = bm25s.BM25(k1=1.2, b=0.75)
    peer.index(
        bm25s.tokenize(texts, stopwords="fr", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )

    def peer_search(query: str) -> None:
        tokens = bm25s.tokenize([query], stopwords="fr", stemmer=stemmer, show_progress=False)
        if tokens.vocab:
            peer.retrieve(tokens, k=10, show_progress=False, n_threads=1)

    peer_qps, peer_latencies = time_queries(peer_search, questions, repeat=2)
    result["peer_lexical_qps"] = round(peer_qps, 1)
    result["peer_lexical_p50_ms"] = percentile(peer_latencies, 50)

    # hybrid: real query embedding (1 thread) + BM25 + exact dense + RRF
    single = OnnxE5Embedder(cache_dir=args.cache_dir / "models", threads=1)
    single.warm_up()
    chunks = [Chunk(id=f"c{i}", document_id="d", ordinal=i, text=t) for i, t in enumerate(texts)]
    document = Document(
        id="d", source="bench", title="", lang="fr", content_hash="", updated_at=datetime.now(UTC)
    )
    index = SearchIndex(chunks, {"d": document}, vectors, RetrievalSettings())

    def hybrid(query: str) -> None:
        vector = single.embed_queries([query])[0]
        index.search(query, vector, RetrievalMode.HYBRID, 10)

    for query in questions[:20]:
        hybrid(query)  # warm-up
    hybrid_qps, hybrid_latencies = time_queries(hybrid, questions[:300])
    result["hybrid_qps"] = round(hybrid_qps, 1)
    result["hybrid_p50_ms"] = percentile(hybrid_latencies, 50)
    result["hybrid_p95_ms"] = percentile(hybrid_latencies, 95)

    # exact vs HNSW dense search, to place the ANN threshold
    query_vectors = single.embed_queries(questions[:200])
    for size in (50_000, 200_000):
        base = np.vstack([vectors] * (size // len(vectors) + 1))[:size]
        noisy = base + np.random.default_rng(1).normal(0, 0.02, base.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        for name, threshold in (("exact", 10**9), ("hnsw", 1)):
            dense = DenseIndex(ann_threshold=threshold)
            t0 = time.perf_counter()
            dense.build(noisy)
            build = time.perf_counter() - t0
            _, dense_latencies = time_queries(
                lambda v, index=dense: index.search(v, 50), list(query_vectors)
            )
            result[f"dense_{name}_{size // 1000}k_p50_ms"] = percentile(dense_latencies, 50)
            result[f"dense_{name}_{size // 1000}k_build_seconds"] = round(build, 2)

    result["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:36} {value}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
