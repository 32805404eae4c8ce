"""Tests for hybridir.evaluation.metrics: hand-computed cases, then pytrec_eval and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
import scipy.sparse as sp
from sklearn.metrics import average_precision_score

from hybridir.evaluation.metrics import (
    average_precision,
    evaluate_run,
    rank_distance,
    ranking_metrics,
    recall_at_k,
    relevant_ranks,
)

# --------------------------------------------------------------------------- toy cases
# One shared score row; ranking by score descending is c0 (.9), c3 (.7), c2 (.5), c4 (.3),
# c1 (.1), i.e. rank(c0)=1, rank(c3)=2, rank(c2)=3, rank(c4)=4, rank(c1)=5.
ROW = [0.9, 0.1, 0.5, 0.7, 0.3]
# Ties: c0 and c2 both score .5; c0 is listed first so it wins: c1, c0, c2, c3.
TIE_ROW = [0.5, 0.8, 0.5, 0.2, 0.0]

SCORES = np.array([ROW, ROW, ROW, ROW, TIE_ROW, TIE_ROW], dtype=np.float32)
RELEVANT = [
    [2],        # q0: one relevant, rank 3
    [0, 2, 1],  # q1: several relevant, ranks 1, 3, 5 (c1 is the very bottom)
    [],         # q2: none relevant
    [1],        # q3: single relevant at the very bottom, rank 5
    [0],        # q4: tied, relevant listed first, rank 2
    [2],        # q5: tied, relevant listed second, rank 3
]
RELEVANCE = np.zeros(SCORES.shape, dtype=bool)
for q, cands in enumerate(RELEVANT):
    RELEVANCE[q, cands] = True
NAN = np.nan


def test_relevant_ranks_toy():
    # Rows: ascending ranks, right-padded with 0 up to the widest relevant set (3).
    expected = [[3, 0, 0], [1, 3, 5], [0, 0, 0], [5, 0, 0], [2, 0, 0], [3, 0, 0]]
    np.testing.assert_array_equal(relevant_ranks(SCORES, RELEVANCE), expected)


def test_average_precision_toy():
    expected = [
        1 / 3,                        # q0: 1/3
        (1 / 1 + 2 / 3 + 3 / 5) / 3,  # q1: P@1=1, P@3=2/3, P@5=3/5 -> 34/45 = 0.7556
        NAN,                          # q2: no relevant candidate
        1 / 5,                        # q3: bottom of 5
        1 / 2,                        # q4: tie won -> rank 2
        1 / 3,                        # q5: tie lost -> rank 3
    ]
    np.testing.assert_allclose(average_precision(SCORES, RELEVANCE), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k, expected", [
    # q0 rank 3 | q1 ranks 1,3,5 of 3 | q2 none | q3 rank 5 | q4 rank 2 | q5 rank 3
    (1, [0, 1 / 3, NAN, 0, 0, 0]),
    (2, [0, 1 / 3, NAN, 0, 1, 0]),  # the tie decides q4 vs q5
    (3, [1, 2 / 3, NAN, 0, 1, 1]),
    (5, [1, 1, NAN, 1, 1, 1]),
    (10, [1, 1, NAN, 1, 1, 1]),     # k beyond the pool
])
def test_recall_at_k_toy(k, expected):
    np.testing.assert_allclose(recall_at_k(SCORES, RELEVANCE, k), expected, rtol=0, atol=1e-12)


def test_rank_distance_toy():
    # q1: 5 - 1 = 4; a single relevant gives 0; none gives NaN.
    np.testing.assert_array_equal(rank_distance(SCORES, RELEVANCE), [0, 4, NAN, 0, 0, 0])


def test_ranking_metrics_matches_single_metrics():
    out = ranking_metrics(SCORES, RELEVANCE, ks=(1, 10))
    assert list(out) == ["average_precision", "recall@1", "recall@10", "rank_distance"]
    np.testing.assert_array_equal(out["average_precision"], average_precision(SCORES, RELEVANCE))
    np.testing.assert_array_equal(out["recall@1"], recall_at_k(SCORES, RELEVANCE, 1))
    np.testing.assert_array_equal(out["recall@10"], recall_at_k(SCORES, RELEVANCE, 10))
    np.testing.assert_array_equal(out["rank_distance"], rank_distance(SCORES, RELEVANCE))


def test_all_scores_tied_rank_by_index():
    # Every candidate scores 0: the ranking is the listing order, so rank = index + 1.
    scores = np.zeros((1, 6), dtype=np.float32)
    relevance = np.array([[False, True, False, False, True, True]])
    np.testing.assert_array_equal(relevant_ranks(scores, relevance), [[2, 5, 6]])
    # AP = (1/2 + 2/5 + 3/6) / 3 = 1.4 / 3
    np.testing.assert_allclose(average_precision(scores, relevance), [1.4 / 3])


def test_sparse_and_dense_relevance_agree():
    dense = relevant_ranks(SCORES, RELEVANCE)
    np.testing.assert_array_equal(relevant_ranks(SCORES, sp.csr_matrix(RELEVANCE)), dense)
    np.testing.assert_array_equal(relevant_ranks(SCORES, sp.csr_array(RELEVANCE).tocoo()), dense)
    # An explicitly stored False is not relevant.
    stored_false = sp.csr_matrix((np.array([True, False]), (np.array([0, 0]), np.array([2, 0]))),
                                 shape=SCORES.shape)
    np.testing.assert_array_equal(relevant_ranks(SCORES, stored_false)[0], [3])


def test_no_relevant_anywhere():
    ranks = relevant_ranks(SCORES, np.zeros(SCORES.shape, dtype=bool))
    assert ranks.shape == (len(SCORES), 0)
    none = np.zeros(SCORES.shape, dtype=bool)
    assert np.isnan(average_precision(SCORES, none)).all()
    # e.g. an MLQA-R cross block where no query of a small subset has an answer in the target
    for values in ranking_metrics(SCORES, none).values():
        assert values.shape == (len(SCORES),) and np.isnan(values).all()


@pytest.mark.parametrize("scores, relevance, message", [
    (SCORES[:, :4], RELEVANCE, "shape"),
    (SCORES.astype(np.int64), RELEVANCE, "floating point"),
    (SCORES[0], RELEVANCE[0], "2-D"),
    (SCORES.tolist(), RELEVANCE, "2-D numpy array"),
    (SCORES, RELEVANCE.astype(np.int8), "boolean"),
    (SCORES, sp.csr_matrix(RELEVANCE.astype(float)), "boolean"),
    (SCORES, RELEVANCE.tolist(), "relevance must be"),
    (np.where(np.eye(6, 5, dtype=bool), np.nan, SCORES).astype(np.float32), RELEVANCE, "NaN"),
])
def test_bad_inputs(scores, relevance, message):
    with pytest.raises(ValueError, match=message):
        average_precision(scores, relevance)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        recall_at_k(SCORES, RELEVANCE, k)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ranking_metrics(SCORES, RELEVANCE, ks=(1, k))


# ------------------------------------------------------- agreement with pytrec_eval / sklearn
def _reference_ranks(scores: np.ndarray, relevance: np.ndarray) -> list[np.ndarray]:
    """Independent ranks from a full lexicographic sort (score desc, index asc)."""
    n = scores.shape[1]
    out = []
    for row, rel in zip(scores, relevance):
        order = np.lexsort((np.arange(n), -row.astype(np.float64)))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(1, n + 1)
        out.append(np.sort(rank[rel]))
    return out


def _trec_eval(scores: np.ndarray, relevance: np.ndarray, measures: set[str]) -> dict[str, dict[str, float]]:
    """pytrec_eval over the full pool; docids descend as indices ascend, so trec_eval's
    tie rule (docid descending) is our rule (index ascending)."""
    n = scores.shape[1]
    docids = [f"{n - i:08d}" for i in range(n)]
    run = {f"q{q}": dict(zip(docids, row.tolist())) for q, row in enumerate(scores)}
    qrels = {f"q{q}": {docids[c]: 1 for c in np.flatnonzero(rel)} for q, rel in enumerate(relevance)}
    return pytrec_eval.RelevanceEvaluator({q: r for q, r in qrels.items() if r}, measures).evaluate(run)


def _tied_random_scores(rng: np.random.Generator, n_queries: int = 200, n_candidates: int = 3000):
    """Random scores where 300 columns duplicate others (exact ties), and relevance that
    often lands on both copies or on one copy of a tied pair; some queries have none."""
    scores = rng.standard_normal((n_queries, n_candidates)).astype(np.float32)
    src = rng.choice(n_candidates // 2, 300, replace=False)
    dst = n_candidates // 2 + src
    scores[:, dst] = scores[:, src]
    relevance = np.zeros(scores.shape, dtype=bool)
    for q in range(n_queries):
        relevance[q, rng.choice(n_candidates, rng.integers(0, 6), replace=False)] = True
        pair = rng.integers(300)
        relevance[q, [src[pair], dst[pair]][: rng.integers(0, 3)]] = True
    relevance[:5] = False  # a few queries with no relevant candidate
    return scores, relevance


def _multilingual_pool(rng: np.random.Generator, n_languages: int = 11, n_questions: int = 30, dim: int = 16):
    """An XQuAD-R-shaped pool in miniature: each question has one answer per language;
    one language has fewer candidates than questions (answers shared, like th), and some
    candidates are exact duplicates (identical sentences -> identical embeddings)."""
    blocks, answers = [], []
    for lang in range(n_languages):
        n_cands = n_questions - 10 if lang == 0 else n_questions + int(rng.integers(0, 5))
        emb = rng.standard_normal((n_cands, dim)).astype(np.float32)
        emb[-3:] = emb[:3]  # duplicates
        blocks.append(emb / np.linalg.norm(emb, axis=1, keepdims=True))
        answers.append(rng.integers(0, n_cands, n_questions))
    offsets = np.cumsum([0] + [len(b) for b in blocks])
    pool = np.concatenate(blocks)
    queries, relevance = [], []
    for lang in range(n_languages):
        # Queries lean towards their answers so that ranks are not uniformly random.
        q = np.stack([pool[offsets[:-1] + np.array([a[i] for a in answers])].mean(0) for i in range(n_questions)])
        queries.append(q + rng.standard_normal(q.shape).astype(np.float32) * 0.3)
        rel = np.zeros((n_questions, len(pool)), dtype=bool)
        rel[np.arange(n_questions)[:, None], offsets[:-1] + np.stack(answers, axis=1)] = True
        relevance.append(rel)
    return (np.concatenate(queries) @ pool.T).astype(np.float32), np.concatenate(relevance)


@pytest.mark.parametrize("maker", [_tied_random_scores, _multilingual_pool])
def test_agrees_with_pytrec_eval_and_lexsort(maker):
    scores, relevance = maker(np.random.default_rng(7))
    has_ties = any(len(np.unique(row)) < len(row) for row in scores)
    assert has_ties, "fixture must contain tied scores"
    ours = ranking_metrics(scores, relevance, ks=(1, 10))
    ref = _trec_eval(scores, relevance, {"map", "recall_1", "recall_10"})
    judged = relevance.any(axis=1)
    assert set(ref) == {f"q{q}" for q in np.flatnonzero(judged)}
    assert np.isnan(ours["average_precision"][~judged]).all()
    for name, trec in [("average_precision", "map"), ("recall@1", "recall_1"), ("recall@10", "recall_10")]:
        expected = [ref[f"q{q}"][trec] for q in np.flatnonzero(judged)]
        np.testing.assert_allclose(ours[name][judged], expected, rtol=0, atol=1e-9)
    ranks = relevant_ranks(scores, relevance)
    reference = _reference_ranks(scores, relevance)
    for q, expected in enumerate(reference):
        np.testing.assert_array_equal(ranks[q, : len(expected)], expected)
        assert not ranks[q, len(expected):].any()
    distance = [r[-1] - r[0] if len(r) else np.nan for r in reference]
    np.testing.assert_array_equal(ours["rank_distance"], distance)


def test_agrees_with_sklearn_without_ties():
    rng = np.random.default_rng(3)
    n_queries, n_candidates = 100, 2000
    # Distinct scores per row (a permutation), so sklearn's tie handling never matters.
    scores = np.stack([rng.permutation(n_candidates) for _ in range(n_queries)]).astype(np.float32) / n_candidates
    relevance = rng.random(scores.shape) < 0.002
    relevance[np.arange(n_queries), rng.integers(0, n_candidates, n_queries)] = True
    expected = [average_precision_score(rel, row) for row, rel in zip(scores, relevance)]
    np.testing.assert_allclose(average_precision(scores, relevance), expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- evaluate_run
def test_evaluate_run_toy():
    qrels = {"q1": {"a": 2, "b": 0, "c": -1, "d": 1}, "q2": {"a": 0}, "q3": {"x": 1}}
    run = {"q1": {"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.5, "e": 0.7},
           "q2": {"a": 1.0, "b": 0.5},
           "q4": {"a": 1.0}}
    out = evaluate_run(run, qrels, ("map", "ndcg_cut_3", "ndcg_cut_10", "recall_100", "recall_1", "P_1"))
    # q3 has no run and q4 no qrels: both are left out, as pytrec_eval does.
    assert list(out) == ["q1", "q2"]
    # q1 ranking: c (.9, label -1), e (.7, unjudged), then the .5 tie broken by docid
    # descending: d (label 1) before b (label 0), then a (.1, label 2).
    # Relevant (label >= 1): d at rank 3, a at rank 5; |R| = 2.
    q1 = out["q1"]
    assert q1["map"] == pytest.approx((1 / 3 + 2 / 5) / 2)  # 0.3667
    assert q1["recall_100"] == 1.0 and q1["recall_1"] == 0.0 and q1["P_1"] == 0.0
    # Gains max(label, 0): c -> 0, d -> 1 at rank 3, a -> 2 at rank 5.
    # DCG@3 = 1/log2(4) = 0.5; IDCG@3 = 2/log2(2) + 1/log2(3) = 2.6309 -> 0.19005
    assert q1["ndcg_cut_3"] == pytest.approx(0.5 / (2 + 1 / np.log2(3)))
    # DCG@10 = 0.5 + 2/log2(6) = 1.2737; IDCG@10 = IDCG@3 -> 0.48413
    assert q1["ndcg_cut_10"] == pytest.approx((0.5 + 2 / np.log2(6)) / (2 + 1 / np.log2(3)))
    # q2 is judged but has nothing relevant: every metric is 0, not NaN.
    assert out["q2"] == {"map": 0.0, "ndcg_cut_3": 0.0, "ndcg_cut_10": 0.0, "recall_100": 0.0,
                         "recall_1": 0.0, "P_1": 0.0}


def test_evaluate_run_agrees_with_pytrec_eval():
    rng = np.random.default_rng(11)
    n_docs, depth = 1000, 100
    # Docids of varying length so that string order differs from numeric order.
    docids = [f"d{rng.integers(10 ** rng.integers(1, 6))}-{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(150):
        judged = rng.choice(n_docs, rng.integers(1, 40), replace=False)
        qrels[f"q{q}"] = {docids[d]: int(rng.choice([-1, 0, 0, 1, 1, 2, 3])) for d in judged}
        # Retrieve mostly judged docs plus random ones; 2-decimal scores force many ties.
        pool = np.unique(np.concatenate([judged[: rng.integers(0, len(judged) + 1)],
                                         rng.choice(n_docs, depth, replace=False)]))[:depth]
        run[f"q{q}"] = {docids[d]: float(np.round(rng.random(), 2)) for d in pool}
    run["q0"] = {}                                   # empty run
    qrels["q1"] = {docids[0]: 0}                     # judged, nothing relevant
    run["extra"] = {docids[0]: 1.0}                  # not judged: left out
    del run["q2"]                                    # judged, never retrieved: left out
    measures = ("map", "ndcg_cut_10", "ndcg_cut_3", "recall_100", "recall_5", "P_5", "P_1")
    expected = pytrec_eval.RelevanceEvaluator(qrels, set(measures)).evaluate(run)
    ours = evaluate_run(run, qrels, measures)
    assert set(ours) == set(expected)
    for qid, values in expected.items():
        for measure, value in values.items():
            assert ours[qid][measure] == pytest.approx(value, abs=1e-9), (qid, measure)


@pytest.mark.parametrize("metric", ["ndcg", "ndcg_cut_0", "map_5", "recall", "P_0", "mrr_10"])
def test_evaluate_run_bad_metric(metric):
    with pytest.raises(ValueError, match="metric|cutoff"):
        evaluate_run({"q": {"d": 1.0}}, {"q": {"d": 1}}, (metric,))


def test_evaluate_run_nan_score():
    with pytest.raises(ValueError, match="NaN"):
        evaluate_run({"q": {"d": float("nan")}}, {"q": {"d": 1}})


# --------------------------------------------------------------------------- PEER (language fairness)


def test_peer_is_high_when_languages_interleave_and_low_when_one_language_comes_first():
    """Two languages, 20 candidates each, one relevant per language: a ranking that alternates the languages
    gives a high PEER (expected ranks one apart), one that puts every candidate of one language first gives
    PEER near 0; a query with no relevant candidate gets NaN."""
    from hybridir.evaluation.metrics import peer

    languages = np.array(["de"] * 20 + ["en"] * 20)
    order = np.r_[np.arange(20) * 2, np.arange(20) * 2 + 1]  # de at even ranks, en at odd
    interleaved = -order.astype(float)
    segregated = -np.arange(40, dtype=float)  # every de before every en
    relevance = np.zeros((3, 40), bool)
    relevance[:2, [0, 20]] = True
    values = peer(np.stack([interleaved, segregated, segregated]), relevance, languages, k=40)
    assert values[0] > 0.5 and values[1] < 1e-6 and np.isnan(values[2])  # interleaved: en one rank lower


def test_peer_relevant_level_is_a_constant_with_one_answer_per_language():
    """Why PEER_WEIGHTS weighs level 0 only: with one relevant candidate per language (LAReQA), the relevant
    level's Kruskal-Wallis statistic is n − 1 whatever the ranking, so its p-value is the same for every
    ranking (0.44 for 11 languages)."""
    from scipy.stats import chi2

    from hybridir.evaluation.metrics import peer

    rng = np.random.default_rng(0)
    languages = np.repeat([f"l{i}" for i in range(11)], 30)
    relevance = np.zeros((20, len(languages)), bool)
    relevance[:, np.arange(11) * 30] = True  # one answer per language
    values = peer(rng.standard_normal((20, len(languages))), relevance, languages, k=100, weights={1: 1.0})
    np.testing.assert_allclose(values, chi2.sf(10, 10))
    fair = peer(rng.standard_normal((20, len(languages))), relevance, languages, k=100)
    assert fair.std() > 0.05  # level 0 varies with the ranking
