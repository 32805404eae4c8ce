"""Benchmark: exact faiss (IndexFlatIP) against a numpy matrix product for XQuAD-R Mul. search.

    .venv/bin/python bench/bench_search.py --synthetic
    HYBRIDIR_CACHE_DIR=.cache HYBRIDIR_DATA_DIR=../shared/data \
        .venv/bin/python bench/bench_search.py --model offline

Mul. scores every query (13,090) against every candidate (13,014), and mAP needs the full
ranking. Timed, as the median of ``--repeats`` runs, in blocks of ``--block`` queries (default
1190, one query language, as :func:`~hybridir.evaluation.lareqa.evaluate_lareqa` does):

(i)   ``q @ c.T``: the full score matrix (what the metrics read; they rank internally);
(ii)  faiss ``IndexFlatIP.search(q, k=n_candidates)``: scores and the full sorted ranking;
(iii) ``q @ c.T`` then ``np.argsort(-scores, axis=1)``: the same output as (ii), like for like.

faiss keeps its default thread count. The script checks that faiss's scores equal the matmul
scores of the same candidates to 1e-5. ``--model SPEC`` reads the embeddings from the encoding
cache (see ``bench_metrics.py``); ``--synthetic`` draws random normalised 384-d vectors.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import faiss
import numpy as np

from bench_metrics import cached_lareqa_embeddings  # same folder
from hybridir.provenance import hardware, versions

QUERIES, CANDIDATES, DIM = 13090, 13014, 384


def random_unit(rng: np.random.Generator, rows: int) -> np.ndarray:
    x = rng.standard_normal((rows, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def median_seconds(step, queries: np.ndarray, block: int, repeats: int) -> float:
    """Median over repeats of running ``step`` on every block of queries (results dropped)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(queries), block):
            step(queries[i:i + block])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model spec (e.g. offline): XQuAD-R embeddings from the encoding cache")
    source.add_argument("--synthetic", action="store_true", help="random normalised vectors of XQuAD-R's shapes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--block", type=int, default=1190, help="queries per search call; 0 = all at once")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.synthetic:
        rng = np.random.default_rng(args.seed)
        queries, candidates = random_unit(rng, QUERIES), random_unit(rng, CANDIDATES)
    else:
        _, _, queries, candidates = cached_lareqa_embeddings(args.model)
    queries, candidates = np.ascontiguousarray(queries), np.ascontiguousarray(candidates)
    n, block = len(candidates), args.block or len(queries)

    start = time.perf_counter()
    index = faiss.IndexFlatIP(candidates.shape[1])
    index.add(candidates)
    build_s = time.perf_counter() - start

    # Same scores: faiss's sorted scores against the matmul scores of the candidates it returns.
    probe = queries[:block]
    scores, (found, ids) = probe @ candidates.T, index.search(probe, n)
    diff = float(np.abs(np.take_along_axis(scores, ids, axis=1) - found).max())
    assert (ids >= 0).all() and diff <= 1e-5, f"faiss scores differ from the matmul by {diff:.1e}"
    assert (np.diff(found, axis=1) <= 0).all(), "faiss ranking is not sorted by score"
    del scores, found, ids

    def matmul(q):
        return q @ candidates.T

    def faiss_search(q):
        return index.search(q, n)

    def matmul_argsort(q):
        return np.argsort(-(q @ candidates.T), axis=1)

    matmul_s, faiss_s, argsort_s = (median_seconds(step, queries, block, args.repeats)
                                    for step in (matmul, faiss_search, matmul_argsort))

    print(f"hardware: {hardware()}\nversions: {versions()}")
    print(f"data: {'synthetic' if args.synthetic else f'XQuAD-R, model {args.model}'}, {len(queries)} queries x "
          f"{n} candidates, dim {candidates.shape[1]}; blocks of {block} queries; median of {args.repeats}; "
          f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads, {os.cpu_count()} CPUs")
    print(f"faiss index build (add {n} vectors): {build_s:.3f} s")
    print(f"  (i)   numpy q @ c.T, full score matrix        {matmul_s:8.2f} s")
    print(f"  (ii)  faiss IndexFlatIP.search, k = {n}    {faiss_s:8.2f} s")
    print(f"  (iii) numpy q @ c.T + argsort, full ranking   {argsort_s:8.2f} s")
    print(f"(ii)/(i)   faiss vs matmul scores:  {faiss_s / matmul_s:6.2f}x -> faster: "
          f"{'numpy matmul' if matmul_s < faiss_s else 'faiss'}")
    print(f"(ii)/(iii) faiss vs matmul+argsort: {faiss_s / argsort_s:6.2f}x -> faster: "
          f"{'numpy matmul + argsort' if argsort_s < faiss_s else 'faiss'}")
    print(f"score agreement (first block): max |faiss - matmul| = {diff:.1e} (tolerance 1e-5)")


if __name__ == "__main__":
    main()
