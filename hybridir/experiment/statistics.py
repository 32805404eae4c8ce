"""Significance of a difference between two training strategies, with seeds as a source of noise.

Each strategy gives a (seeds × question ids) matrix of one metric: every seed's model, every question
id of the evaluation set (its value averaged over the id's query languages, so the 11 translations of
one XQuAD-R question count as one unit, not 11 independent ones). Two tests:

- :func:`seed_query_bootstrap` (the one the claims use): a two-level bootstrap that resamples question
  ids (the same ids for both strategies: paired) and, independently, each strategy's seeds. Its
  interval covers the query sampling noise *and* the seed-to-seed noise of training, which a test
  over queries alone ignores (it called seed-to-seed differences significant in a probe). With one
  seed it reduces to a paired bootstrap over queries. scipy's ``bootstrap`` resamples one level only,
  so the two-level resampling is written here (a few lines of numpy).
- :func:`paired_permutation_p`: scipy's paired randomisation test over question ids on the
  seed-averaged values: the usual IR test, shown beside the bootstrap to make the difference visible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats


class Comparison(NamedTuple):
    difference: float  # mean of a − mean of b
    low: float  # 95% bootstrap interval of the difference
    high: float
    p: float  # two-sided bootstrap p-value (seeds × queries)
    p_queries: float  # two-sided paired permutation p-value over queries, seed-averaged values


def _check(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the two strategies were evaluated on different queries ({a.shape[1]} and {b.shape[1]} "
                         "question ids); compare runs on the same evaluation subset")
    if a.shape[1] < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("each strategy needs finite values for at least 2 question ids")
    return a, b


def seed_query_bootstrap(a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0,
                         confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(difference, low, high, p) for mean(a) − mean(b), resampling queries (paired) and seeds.

    ``a``: (seeds_a × queries), ``b``: (seeds_b × queries), columns aligned. p is the two-sided
    bootstrap p-value, 2·min(P*(Δ ≤ 0), P*(Δ ≥ 0)) with the +1 correction, at most 1.
    """
    a, b = _check(a, b)
    rng = np.random.default_rng(seed)
    n_queries = a.shape[1]
    differences = np.empty(n_resamples)
    for start in range(0, n_resamples, 500):  # chunks bound the (chunk × queries) temporaries
        size = min(500, n_resamples - start)
        queries = rng.integers(0, n_queries, size=(size, n_queries))
        seeds_a = rng.integers(0, a.shape[0], size=(size, a.shape[0]))
        seeds_b = rng.integers(0, b.shape[0], size=(size, b.shape[0]))
        # mean over resampled seeds of mean over resampled queries, for each resample
        mean_a = np.stack([a[seeds_a[:, i]][np.arange(size)[:, None], queries].mean(axis=1)
                           for i in range(a.shape[0])]).mean(axis=0)
        mean_b = np.stack([b[seeds_b[:, i]][np.arange(size)[:, None], queries].mean(axis=1)
                           for i in range(b.shape[0])]).mean(axis=0)
        differences[start:start + size] = mean_a - mean_b
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    below, above = (differences <= 0).sum(), (differences >= 0).sum()
    p = min(1.0, 2 * (min(below, above) + 1) / (n_resamples + 1))
    return float(a.mean() - b.mean()), float(low), float(high), float(p)


def paired_permutation_p(a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p of scipy's paired randomisation test over queries, on seed-averaged values."""
    a, b = _check(a, b)
    result = stats.permutation_test((a.mean(axis=0), b.mean(axis=0)), lambda x, y: np.mean(x - y),
                                    permutation_type="samples", n_resamples=n_resamples,
                                    alternative="two-sided", rng=np.random.default_rng(seed))
    return float(result.pvalue)


def compare(a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> Comparison:
    """Both tests for mean(a) − mean(b); see the module docstring."""
    return Comparison(*seed_query_bootstrap(a, b, n_resamples, seed), paired_permutation_p(a, b, n_resamples, seed))
