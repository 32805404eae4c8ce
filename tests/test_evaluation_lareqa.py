"""The LAReQA protocol on the real files, with embeddings whose answers we know."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridir.evaluation.lareqa import (
    candidate_inputs,
    cross_matrix,
    evaluate_lareqa,
    summarize,
    write_trec_run,
)


def oracle_vectors(data, noise: float = 0.0, seed: int = 0, dim: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """One random direction per question id; a candidate is the sum of the directions it answers.

    Several questions can share an answer sentence, so a candidate may answer up to a handful of
    ids: it still scores ≥ 1/√k with each of them, far above the ≈ 0 ± 0.05 of unrelated pairs in
    512 dimensions. Candidates that answer nothing get their own direction. With noise 0 every
    metric is therefore perfect.
    """
    rng = np.random.default_rng(seed)
    ids = {qid: i for i, qid in enumerate(data.questions.qid.unique())}
    directions = rng.normal(size=(len(ids), dim))
    questions = directions[data.questions.qid.map(ids).to_numpy()]
    candidates = rng.normal(size=(len(data.candidates), dim))
    answering = data.relevance.candidate.to_numpy()
    candidates[np.unique(answering)] = 0
    np.add.at(candidates, answering, directions[data.relevance.qid.map(ids).to_numpy()])
    candidates += noise * rng.normal(size=candidates.shape)
    normalise = lambda m: (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)
    return normalise(questions), normalise(candidates)


def test_setting_counts_on_xquad_r(xquad):
    tidy = evaluate_lareqa(xquad, *oracle_vectors(xquad))
    maps = tidy[tidy.metric == "map"]
    assert (maps.setting == "mono").sum() == 11
    assert (maps.setting == "cross").sum() == 110
    assert (maps.setting == "multi").sum() == 11
    assert (tidy.n_queries == 1190).all() and (tidy.n_skipped == 0).all()
    # perfect embeddings: every relevant candidate outranks everything else
    perfect = tidy[tidy.metric.isin(["map", "recall@1"])]
    np.testing.assert_allclose(perfect.value, 1.0)
    multi_recall = tidy[(tidy.metric == "recall@10")].value
    np.testing.assert_allclose(multi_recall, 10 / 11)  # 11 relevant, only 10 fit in the top 10
    rank_distance = tidy[tidy.metric == "rank_distance"].value
    np.testing.assert_allclose(rank_distance, 10)  # the 11 answers fill ranks 1..11


def test_mlqa_r_cross_skips_questions_without_an_answer_in_the_target(mlqa):
    tidy = evaluate_lareqa(mlqa, *oracle_vectors(mlqa), settings=["cross"])
    maps = tidy[tidy.metric == "map"]
    assert len(maps) == 42
    questions = mlqa.questions
    for row in maps.itertuples():
        asked = set(questions.qid[questions.language == row.query_language])
        answered = set(questions.qid[questions.language == row.candidate_language])
        assert row.n_queries == len(asked & answered)
        assert row.n_skipped == len(asked - answered)
    assert maps.n_skipped.sum() > 0


def test_noise_lowers_scores_and_summary_is_the_papers_layout(xquad):
    tidy = evaluate_lareqa(xquad, *oracle_vectors(xquad, noise=2.5))
    summary = summarize(tidy)
    assert list(summary.index) == list(xquad.languages) + ["Mean"]
    assert list(summary.columns) == [("mono", "map"), ("mono", "recall@1"), ("cross", "map"), ("cross", "recall@1"),
                                     ("multi", "map"), ("multi", "recall@10"), ("multi", "rank_distance")]
    assert 0 < summary.loc["Mean", ("mono", "map")] < 1
    # Cr. of a language is the mean over its 10 targets; the Mean row is the macro over all 110 pairs
    cross = tidy[(tidy.setting == "cross") & (tidy.metric == "map")]
    assert summary.loc["de", ("cross", "map")] == pytest.approx(cross[cross.query_language == "de"].value.mean())
    assert summary.loc["Mean", ("cross", "map")] == pytest.approx(cross.value.mean())
    matrix = cross_matrix(tidy)
    assert matrix.shape == (11, 11)
    assert matrix.loc["en", "en"] == pytest.approx(summary.loc["en", ("mono", "map")])


def test_candidate_text_choices(xquad):
    sentences = candidate_inputs(xquad, "sentence")
    pairs = candidate_inputs(xquad, "sentence+context")
    assert len(sentences) == len(pairs) == 13014
    assert all(sentence in context for sentence, context in pairs[:200])
    with pytest.raises(ValueError, match="unknown candidate text"):
        candidate_inputs(xquad, "paragraph")


def test_trec_run_file(xquad, tmp_path):
    questions, candidates = oracle_vectors(xquad)
    path = write_trec_run(tmp_path / "run.trec", xquad, questions, candidates, "de", depth=12)
    run = pd.read_csv(path, sep=" ", header=None, names=["qid", "q0", "uid", "rank", "score", "tag"])
    assert len(run) == 1190 * 12
    first = run[run.qid == run.qid.iloc[0]]
    assert list(first["rank"]) == list(range(1, 13))
    qid = first.qid.iloc[0].split(":", 1)[1]
    relevant_uids = set(xquad.candidates.uid[xquad.relevance.candidate[xquad.relevance.qid == qid]])
    assert set(first.uid.iloc[:11]) == relevant_uids


def test_bad_arguments(xquad):
    questions, candidates = oracle_vectors(xquad)
    with pytest.raises(ValueError, match="unknown setting"):
        evaluate_lareqa(xquad, questions, candidates, settings=["bilingual"])
    with pytest.raises(ValueError, match="no language"):
        evaluate_lareqa(xquad, questions, candidates, query_languages=["fr"])
    with pytest.raises(ValueError, match="do not match"):
        evaluate_lareqa(xquad, questions[:10], candidates)


def test_metrics_agree_with_pytrec_eval_on_real_rankings(xquad):
    """Real model, real XQuAD-R subset, the Mul. pool: our mAP and R@10 against trec_eval's."""
    import pytrec_eval

    from hybridir.data.lareqa import subset_lareqa
    from hybridir.encoding import encode
    from hybridir.evaluation.metrics import ranking_metrics
    from hybridir.models.spec import resolve_model

    data = subset_lareqa(xquad, 30)
    model = resolve_model("offline")
    questions = encode(model, data.questions.text.tolist(), "query", show_progress=False)
    candidates = encode(model, data.candidates.sentence.tolist(), "passage", show_progress=False)
    scores = questions @ candidates.T
    relevance = data.relevance_matrix().toarray()
    ours = ranking_metrics(scores, relevance, ks=(10,))
    # trec_eval breaks ties by docid descending: docids that descend as our indices ascend
    docids = [f"{len(data.candidates) - i:08d}" for i in range(len(data.candidates))]
    run = {str(q): dict(zip(docids, row.astype(float))) for q, row in enumerate(scores)}
    qrels = {str(q): {docids[c]: 1 for c in np.flatnonzero(row)} for q, row in enumerate(relevance)}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recall_10"}).evaluate(run)
    assert len(theirs) == len(data.questions) == 330
    np.testing.assert_allclose(ours["average_precision"], [theirs[str(q)]["map"] for q in range(330)], atol=1e-9)
    np.testing.assert_allclose(ours["recall@10"], [theirs[str(q)]["recall_10"] for q in range(330)], atol=1e-9)
