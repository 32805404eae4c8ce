"""Retrieval metrics, vectorised over all queries of a setting.

Two families:

* **Full-ranking metrics** (XQuAD-R, MLQA-R; paper §2.3–2.4): a dense score matrix
  ``scores`` (n_queries × n_candidates) ranks the whole pool, and a boolean ``relevance``
  matrix of the same shape marks each query's relevant candidates.
  :func:`relevant_ranks` finds the 1-based rank of every relevant candidate; the metrics
  :func:`average_precision`, :func:`recall_at_k` and :func:`rank_distance` (or all of them
  at once with :func:`ranking_metrics`) derive from those ranks. They return one value
  per query, NaN for a query with no relevant candidate; callers skip and count those.
* **Language fairness** of a multilingual ranking: :func:`peer`, PEER@k (probability of equal expected
  rank, Yang et al., SIGIR 2024) per query, computed by its authors' ``peer-measure`` package.
* **trec_eval metrics of a top-k run** (BEIR, MIRACL): :func:`evaluate_run` takes
  pytrec_eval-style ``run`` and graded ``qrels`` dicts and reproduces pytrec_eval's
  ``map``, ``ndcg_cut_<k>``, ``recall_<k>`` and ``P_<k>`` exactly.

Ties. Full-ranking metrics order candidates by score descending, then by candidate index
ascending: of two candidates with equal scores, the one listed first wins. Ties do occur in
real data (duplicated sentences have identical embeddings). sklearn's
``average_precision_score``, which LAReQA used, instead scores a tied group as one
threshold, so the two agree only when no relevant candidate is tied.
:func:`evaluate_run` breaks ties as trec_eval does: score descending, then docid
descending as strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import scipy.sparse as sp

# Elements of the (chunk × relevant × candidates) comparison temporaries in relevant_ranks.
# About 1 MB keeps them in cache: of 2^18 … 2^24, 2^20 was fastest on XQuAD-R/MLQA-R shapes.
_CHUNK_ELEMENTS = 1 << 20


def _check_inputs(scores: np.ndarray, relevance: sp.sparray | sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    """Validate a (scores, relevance) pair; return relevance as a canonical CSR matrix."""
    if not isinstance(scores, np.ndarray) or scores.ndim != 2:
        got = f"ndim {scores.ndim}" if isinstance(scores, np.ndarray) else type(scores).__name__
        raise ValueError(f"scores must be a 2-D numpy array (n_queries, n_candidates), got {got}")
    if not np.issubdtype(scores.dtype, np.floating):
        raise ValueError(f"scores must be floating point, got {scores.dtype}; pass scores.astype(np.float32)")
    if sp.issparse(relevance):
        rel = sp.csr_matrix(relevance)
    elif isinstance(relevance, np.ndarray) and relevance.ndim == 2:
        rel = sp.csr_matrix(relevance)
    else:
        got = f"ndim {relevance.ndim}" if isinstance(relevance, np.ndarray) else type(relevance).__name__
        raise ValueError(f"relevance must be a 2-D boolean numpy array or scipy sparse matrix, got {got}")
    if rel.dtype != np.bool_:
        raise ValueError(f"relevance must be boolean, got {rel.dtype}; pass relevance.astype(bool)")
    if rel.shape != scores.shape:
        raise ValueError(f"scores has shape {scores.shape} but relevance has shape {rel.shape}; "
                         "both must be (n_queries, n_candidates)")
    rel = rel.copy()
    rel.sum_duplicates()
    rel.eliminate_zeros()  # explicitly stored False entries are not relevant
    return rel


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def relevant_ranks(scores: np.ndarray, relevance: sp.sparray | sp.spmatrix | np.ndarray) -> np.ndarray:
    """1-based rank of every relevant candidate of every query in the full ranking.

    The ranking orders candidates by score descending, then by candidate index ascending
    (the candidate listed first wins a tie), so

        rank(q, c) = #{c' : s[q,c'] > s[q,c]} + #{c' < c : s[q,c'] == s[q,c]} + 1.

    Counting comparisons against the few relevant scores costs O(n_relevant · n_candidates)
    per query and beats sorting each row; queries go in chunks to bound memory.

    Args:
        scores: (n_queries, n_candidates) floating-point similarities, no NaN.
        relevance: boolean matrix of the same shape, sparse or dense.

    Returns:
        int64 array (n_queries, max_relevant): each row holds that query's relevant ranks in
        ascending order, padded on the right with 0 (never a valid rank).
    """
    rel = _check_inputs(scores, relevance)
    # Row-major: a column selection such as scores[:, mask] is Fortran-ordered, and the per-row
    # comparisons below run about 12x slower on it.
    scores = np.ascontiguousarray(scores)
    n_queries, n_candidates = scores.shape
    counts = np.diff(rel.indptr)
    width = int(counts.max(initial=0))
    # Padded (n_queries, width) indices of each query's relevant candidates; -1 is padding.
    cand = np.full((n_queries, width), -1, dtype=np.int64)
    rows = np.repeat(np.arange(n_queries), counts)
    cand[rows, np.arange(rel.nnz) - rel.indptr[rows]] = rel.indices
    ranks = np.zeros((n_queries, width), dtype=np.int64)
    if width == 0:
        return ranks
    positions = np.arange(n_candidates)
    step = max(1, _CHUNK_ELEMENTS // (width * n_candidates))
    for start in range(0, n_queries, step):
        s = scores[start:start + step]
        if np.isnan(s).any():
            bad = start + int(np.flatnonzero(np.isnan(s).any(axis=1))[0])
            raise ValueError(f"scores contain NaN (first in query row {bad}); replace them before ranking")
        c = cand[start:start + step]
        pad = c < 0
        v = np.take_along_axis(s, np.where(pad, 0, c), axis=1)
        v[pad] = np.nan  # NaN compares False with everything: padding counts nothing
        r = np.count_nonzero(s[:, None, :] > v[:, :, None], axis=2) + 1
        n_equal = np.count_nonzero(s[:, None, :] == v[:, :, None], axis=2)
        # Ties are rare: only for relevant scores shared by another candidate count the
        # equal-scored candidates listed before this one.
        tq, tj = np.nonzero(n_equal > 1)
        if tq.size:
            before = positions < c[tq, tj][:, None]
            r[tq, tj] += np.count_nonzero((s[tq] == v[tq, tj][:, None]) & before, axis=1)
        r[pad] = 0
        ranks[start:start + step] = r
    # Ascending valid ranks, padding last: sort with padding mapped to +inf-like.
    sentinel = np.iinfo(np.int64).max
    ranks = np.sort(np.where(ranks == 0, sentinel, ranks), axis=1)
    ranks[ranks == sentinel] = 0
    return ranks


def _per_query(values: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """values / n_relevant per query, NaN where a query has no relevant candidate."""
    out = np.full(n_relevant.shape, np.nan)
    has = n_relevant > 0
    out[has] = values[has] / n_relevant[has]
    return out


def _average_precision(ranks: np.ndarray) -> np.ndarray:
    valid = ranks > 0
    # The i-th smallest relevant rank r_i is the i-th hit: precision there is i / r_i.
    hits = np.arange(1, ranks.shape[1] + 1)
    precision = np.where(valid, hits / np.where(valid, ranks, 1), 0.0)
    return _per_query(precision.sum(axis=1), valid.sum(axis=1))


def _recall_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    valid = ranks > 0
    return _per_query(np.count_nonzero(valid & (ranks <= k), axis=1).astype(float), valid.sum(axis=1))


def _rank_distance(ranks: np.ndarray) -> np.ndarray:
    n_relevant = np.count_nonzero(ranks, axis=1)
    out = np.full(ranks.shape[0], np.nan)
    has = n_relevant > 0
    if has.any():  # with no relevant candidate anywhere, ranks has no columns to index
        # Rows are ascending with 0-padding on the right: the max is the last valid rank.
        out[has] = ranks[has].max(axis=1) - ranks[has, 0]
    return out


def average_precision(scores: np.ndarray, relevance: sp.sparray | sp.spmatrix | np.ndarray) -> np.ndarray:
    """Full-ranking average precision per query (LAReQA's mAP averages it over queries).

    AP(q) = (1/|R_q|) · Σ_i i / r_i, where r_1 < … < r_|R_q| are the ranks of q's relevant
    candidates (precision at each relevant rank). NaN when |R_q| = 0.
    """
    return _average_precision(relevant_ranks(scores, relevance))


def recall_at_k(scores: np.ndarray, relevance: sp.sparray | sp.spmatrix | np.ndarray, k: int) -> np.ndarray:
    """Recall@k per query: #{relevant with rank ≤ k} / |R_q|. NaN when |R_q| = 0.

    With one relevant candidate, Recall@1 = Hit@1 = P@1 (the paper's Mo./Cr. R@1); in the
    multilingual pool Recall@10 is at most 10/11 on XQuAD-R.
    """
    _check_k(k)
    return _recall_at_k(relevant_ranks(scores, relevance), k)


def rank_distance(scores: np.ndarray, relevance: sp.sparray | sp.spmatrix | np.ndarray) -> np.ndarray:
    """Language-bias rank distance per query (paper §2.4): max_r − min_r over q's relevant ranks.

    0 with a single relevant candidate, NaN with none. The paper averages it per query
    language in the multilingual pool, then over languages.
    """
    return _rank_distance(relevant_ranks(scores, relevance))


def ranking_metrics(scores: np.ndarray, relevance: sp.sparray | sp.spmatrix | np.ndarray,
                    ks: Iterable[int] = (1, 10)) -> dict[str, np.ndarray]:
    """All full-ranking metrics from one rank computation.

    Returns per-query float64 arrays under ``"average_precision"``, ``"recall@<k>"`` for each
    k in ``ks`` and ``"rank_distance"`` (NaN for queries without relevant candidates).
    """
    ks = list(ks)
    for k in ks:
        _check_k(k)
    ranks = relevant_ranks(scores, relevance)
    out = {"average_precision": _average_precision(ranks)}
    out.update({f"recall@{k}": _recall_at_k(ranks, k) for k in ks})
    out["rank_distance"] = _rank_distance(ranks)
    return out


PEER_DEPTH = 100
# PEER weighs each relevance level's Kruskal-Wallis p-value. LAReQA has one answer per language, so the relevant
# level compares groups of one rank each, whose statistic is n - 1 whatever the ranks: a constant. Level 0 (the
# other candidates of the top k) is what varies: do the languages present get equal expected ranks?
PEER_WEIGHTS = {0: 1.0}


def peer(scores: np.ndarray, relevance: sp.sparray | sp.spmatrix | np.ndarray, candidate_language: np.ndarray,
         k: int = PEER_DEPTH, weights: Mapping[int, float] = PEER_WEIGHTS) -> np.ndarray:
    """PEER@k per query (NaN for a query with no relevant candidate), from the top-k ranking of the pool."""
    import ir_measures
    from peer_measure import PEER

    relevance = _check_inputs(scores, relevance)
    _check_k(k)
    if len(candidate_language) != scores.shape[1]:
        raise ValueError(f"{len(candidate_language)} candidate languages for {scores.shape[1]} candidates")
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    mapping = {str(j): str(language) for j, language in enumerate(candidate_language)}
    qrels, run = {}, {}
    for i in range(scores.shape[0]):
        relevant = relevance.indices[relevance.indptr[i]:relevance.indptr[i + 1]]
        if len(relevant) == 0:
            continue
        # PEER keys its levels on the judged labels: one judged non-relevant candidate gives level 0 its key.
        judged = set(relevant.tolist())
        other = next(j for j in range(scores.shape[1]) if j not in judged)
        qrels[str(i)] = {str(j): 1 for j in relevant} | {str(other): 0}
        run[str(i)] = {str(j): float(scores[i, j]) for j in top[i]}
    measure = PEER(weights=dict(weights), lang_mapping=mapping) @ k
    values = np.full(scores.shape[0], np.nan)
    for metric in ir_measures.iter_calc([measure], qrels, run):
        values[int(metric.query_id)] = metric.value
    return values


_RUN_METRIC = re.compile(r"(?P<name>map|ndcg_cut|recall|P)(?:_(?P<k>\d+))?")


def _parse_run_metric(metric: str) -> tuple[str, int | None]:
    m = _RUN_METRIC.fullmatch(metric)
    if m is None or (m["name"] == "map") != (m["k"] is None):
        raise ValueError(f"unknown metric {metric!r}; use 'map', 'ndcg_cut_<k>', 'recall_<k>' or 'P_<k>'")
    k = None if m["k"] is None else int(m["k"])
    if k is not None and k < 1:
        raise ValueError(f"cutoff in {metric!r} must be a positive integer")
    return m["name"], k


def evaluate_run(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]],
                 metrics: Iterable[str] = ("ndcg_cut_10", "recall_100", "map")) -> dict[str, dict[str, float]]:
    """trec_eval metrics of a (top-k) run against graded qrels, matching pytrec_eval.

    Like pytrec_eval, evaluates the queries of ``run`` that have judgments in ``qrels`` and
    returns ``{qid: {metric: value}}``. Each query's run is ranked by score descending, then
    docid descending (trec_eval's tie rule); unjudged documents are non-relevant. A document
    is relevant when its label is ≥ 1; R_q is the set of relevant documents in ``qrels``.

    * ``map``: (1/|R_q|) · Σ over relevant ranks r of P@r (0 when |R_q| = 0).
    * ``recall_<k>``: #{relevant in top k} / |R_q| (0 when |R_q| = 0).
    * ``P_<k>``: #{relevant in top k} / k.
    * ``ndcg_cut_<k>``: DCG@k / IDCG@k with gain max(label, 0) and discount log2(rank + 1);
      IDCG sorts the positive qrels labels; 0 when IDCG = 0.
    """
    parsed = {metric: _parse_run_metric(metric) for metric in metrics}
    qids = [qid for qid in run if qrels.get(qid)]
    if not qids:
        return {}
    depth = max(len(run[qid]) for qid in qids)
    ideal_depth = max([k for name, k in parsed.values() if name == "ndcg_cut"], default=0)
    # labels[i, j]: qrels label of the document at rank j + 1 of query i; padding beyond a
    # short run is 0, which no metric counts (P_k still divides by k, as trec_eval does).
    labels = np.zeros((len(qids), depth), dtype=np.int64)
    ideal = np.zeros((len(qids), ideal_depth), dtype=np.int64)
    n_relevant = np.zeros(len(qids), dtype=np.int64)
    for i, qid in enumerate(qids):
        judged = qrels[qid]
        ranked = sorted(run[qid].items(), key=lambda item: (item[1], item[0]), reverse=True)
        if ranked and np.isnan([score for _, score in ranked]).any():
            raise ValueError(f"run scores of query {qid!r} contain NaN; replace them before evaluating")
        labels[i, :len(ranked)] = [judged.get(doc, 0) for doc, _ in ranked]
        positive = sorted((label for label in judged.values() if label > 0), reverse=True)[:ideal_depth]
        ideal[i, :len(positive)] = positive
        n_relevant[i] = sum(label >= 1 for label in judged.values())

    relevant = labels >= 1
    hits = np.cumsum(relevant, axis=1)
    ranks = np.arange(1, depth + 1)
    discount = 1.0 / np.log2(np.arange(2, max(depth, ideal_depth) + 2))
    has = n_relevant > 0
    results: dict[str, np.ndarray] = {}
    for metric, (name, k) in parsed.items():
        if name == "map":
            values = np.where(relevant, hits / ranks, 0.0).sum(axis=1)
            results[metric] = np.divide(values, n_relevant, out=np.zeros(len(qids)), where=has)
        elif name == "recall":
            values = relevant[:, :k].sum(axis=1).astype(float)
            results[metric] = np.divide(values, n_relevant, out=np.zeros(len(qids)), where=has)
        elif name == "P":
            results[metric] = relevant[:, :k].sum(axis=1) / k
        else:  # ndcg_cut
            dcg = (np.maximum(labels[:, :k], 0) * discount[:min(k, depth)]).sum(axis=1)
            idcg = (ideal[:, :k] * discount[:k]).sum(axis=1)
            results[metric] = np.divide(dcg, idcg, out=np.zeros(len(qids)), where=idcg > 0)
    return {qid: {metric: float(results[metric][i]) for metric in parsed} for i, qid in enumerate(qids)}
