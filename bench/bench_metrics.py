"""Benchmark: hybridir's vectorised XQuAD-R metrics against LAReQA's per-query sklearn loop.

    .venv/bin/python bench/bench_metrics.py --synthetic
    HYBRIDIR_CACHE_DIR=.cache HYBRIDIR_DATA_DIR=../shared/data \
        .venv/bin/python bench/bench_metrics.py --model offline [--sklearn-queries 0]   # 0: all queries

Covers all 132 XQuAD-R settings: 11 monolingual and 110 cross-lingual (query language ×
candidate language) blocks, and 11 multilingual ones (each query language against the pooled
13,014 candidates). (a) times :func:`hybridir.evaluation.metrics.ranking_metrics` (AP, R@1,
R@10 and rank distance at once) per block; (b) times ``sklearn.metrics.average_precision_score``
called per query, as the LAReQA/XTREME code does, on ``--sklearn-queries`` random queries per
setting, extrapolated linearly to all queries. Score matrices are computed before either
timer starts. The script asserts that both mAPs agree to 1e-6 on the sampled queries whose
relevant scores are untied (the two tie rules differ; see the metrics module docstring).

``--model SPEC`` (a :func:`~hybridir.models.spec.resolve_model` spec) takes the XQuAD-R
embeddings from the encoding cache through :func:`~hybridir.evaluation.lareqa.embed_lareqa`; it
stops rather than encode unless ``--encode`` is given. There (a) also times the production path,
:func:`~hybridir.evaluation.lareqa.evaluate_lareqa` (score matrices, all 132 settings and rank
distance; checked to give the per-block mAPs), and sets it against the encoding time the cache
recorded (:func:`~hybridir.encoding.encoding_record`); goal: metrics ≤ 2 % of encoding. An
embedding cached without a record (older version) skips that ratio.
``--synthetic`` draws random 384-d embeddings with the real shapes instead.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import average_precision_score

from hybridir.evaluation.metrics import ranking_metrics

# XQuAD-R sizes (LAReQA README): 1190 parallel questions; candidates per language.
QUESTIONS = 1190
CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244,
              "ru": 1219, "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}
DIM = 384


def synthetic(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, sp.csr_matrix]:
    """Random embeddings with XQuAD-R's shapes; each question has one answer per language.

    Answers are drawn with replacement, so, as for th (852 candidates), some candidates answer
    several questions. Queries lean towards their answers and a per-language direction is
    added to everything, so mAP is mid-range and there is some language bias to measure.
    """
    rng = np.random.default_rng(seed)
    langs = list(CANDIDATES)
    lang_dir = rng.standard_normal((len(langs), DIM)) / np.sqrt(DIM)

    def normalise(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    candidates = normalise(np.concatenate([rng.standard_normal((n, DIM)) / np.sqrt(DIM) + 0.3 * lang_dir[i]
                                           for i, n in enumerate(CANDIDATES.values())]))
    offsets = np.cumsum([0, *CANDIDATES.values()])
    answers = np.stack([offsets[i] + rng.integers(0, n, QUESTIONS) for i, n in enumerate(CANDIDATES.values())],
                       axis=1)  # (questions, languages): pool index of each question's answers
    centre = candidates[answers].mean(axis=1)
    queries = normalise(np.concatenate([centre + rng.standard_normal(centre.shape) * 0.02 + 0.1 * lang_dir[i]
                                        for i in range(len(langs))]))
    rows = np.repeat(np.arange(len(langs) * QUESTIONS), len(langs))
    relevance = sp.csr_matrix((np.ones(rows.size, dtype=bool), (rows, np.tile(answers, (len(langs), 1)).ravel())),
                              shape=(len(queries), len(candidates)))
    return (queries, np.repeat(langs, QUESTIONS), candidates, np.repeat(langs, list(CANDIDATES.values())),
            relevance)


def cached_lareqa_embeddings(spec: str, allow_encode: bool = False):
    """(model, XQuAD-R data, question vectors, candidate vectors) from the encoding cache.

    Stops if a role is not cached yet, unless ``allow_encode``: encoding XQuAD-R takes long on a
    CPU, and a second process encoding the same set would share its ``.partial`` shard folder.
    """
    from hybridir.data.lareqa import load_lareqa  # only this mode needs the data and the model
    from hybridir.encoding import encoding_record
    from hybridir.evaluation.lareqa import embed_lareqa
    from hybridir.models.spec import resolve_model

    model = resolve_model(spec)
    data = load_lareqa("xquad-r")
    for role, texts in role_texts(data).items():
        if encoding_record(model, texts, role) is None and not allow_encode:
            raise SystemExit(f"{role} embeddings of XQuAD-R for {spec!r} are not cached; run "
                             "`hybridir evaluate --dataset xquad-r` first or pass --encode")
    queries, candidates = embed_lareqa(model, data)
    return model, data, np.asarray(queries, np.float32), np.asarray(candidates, np.float32)


def role_texts(data) -> dict[str, list[str]]:
    """What embed_lareqa encodes for XQuAD-R, by role (sentence candidates)."""
    return {"query": data.questions.text.tolist(), "passage": data.candidates.sentence.tolist()}


def encoding_seconds(model, data) -> tuple[float | None, str]:
    """Seconds the cached XQuAD-R embeddings took to encode, or None and why not."""
    from hybridir.encoding import encoding_record

    total, notes = 0.0, []
    for role, texts in role_texts(data).items():
        record = encoding_record(model, texts, role)
        if record is None:
            return None, f"no encoding record for the {role} embeddings (cached by an older version)"
        total += record["seconds"]
        notes.append(f"{role} {record['seconds']:.1f} s for {record['texts']} distinct texts"
                     + (f", {record['resumed_shards']} shard(s) resumed, not timed" if record["resumed_shards"] else ""))
    return total, "; ".join(notes)


def has_tie(row: np.ndarray, relevant: np.ndarray) -> bool:
    """Whether any relevant score is shared by another candidate (the tie rules then differ)."""
    return bool((np.count_nonzero(row[None, :] == row[relevant][:, None], axis=1) > 1).any())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model spec (e.g. offline): XQuAD-R embeddings from the encoding cache")
    source.add_argument("--synthetic", action="store_true", help="random embeddings with XQuAD-R's shapes")
    parser.add_argument("--sklearn-queries", type=int, default=100,
                        help="queries per setting for the sklearn loop, extrapolated to all; 0 = all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encode", action="store_true", help="with --model: encode what is not cached")
    args = parser.parse_args()
    if args.sklearn_queries < 0:
        parser.error("--sklearn-queries must be >= 0")

    if args.synthetic:
        queries, q_lang, candidates, c_lang, relevance = synthetic(args.seed)
    else:
        model, data, queries, candidates = cached_lareqa_embeddings(args.model, args.encode)
        q_lang, c_lang = data.questions.language.to_numpy(), data.candidates.language.to_numpy()
        relevance = data.relevance_matrix()
    langs = list(dict.fromkeys(q_lang))
    rng = np.random.default_rng(args.seed)
    ours_s = sklearn_s = sklearn_full_s = 0.0
    summary: dict[str, list[float]] = {"Mo. mAP": [], "Cr. mAP": [], "Mul. mAP": [], "Mo. R@1": [],
                                       "Cr. R@1": [], "Mul. R@10": [], "Mul. rank distance": []}
    compared = tied = settings = 0
    worst = 0.0
    for ql in langs:
        q_rows = np.flatnonzero(q_lang == ql)
        pooled = queries[q_rows] @ candidates.T
        rel_rows = relevance[q_rows]
        blocks = {cl: np.flatnonzero(c_lang == cl) for cl in langs}
        blocks["Mul."] = np.arange(len(candidates))
        for cl, cols in blocks.items():
            scores = np.ascontiguousarray(pooled[:, cols])
            rel = sp.csr_matrix(rel_rows[:, cols])
            dense = rel.toarray()

            start = time.perf_counter()
            metrics = ranking_metrics(scores, rel, ks=(1, 10))
            ours_s += time.perf_counter() - start

            ap = metrics["average_precision"]
            judged = np.flatnonzero(~np.isnan(ap))
            sample = judged if args.sklearn_queries == 0 else rng.permutation(judged)[:args.sklearn_queries]
            start = time.perf_counter()
            reference = np.array([average_precision_score(dense[q], scores[q]) for q in sample])
            elapsed = time.perf_counter() - start
            sklearn_s += elapsed
            sklearn_full_s += elapsed * len(judged) / max(len(sample), 1)

            untied = np.array([not has_tie(scores[q], dense[q]) for q in sample], dtype=bool)
            tied += int((~untied).sum())
            compared += int(untied.sum())
            if untied.any():
                diff = abs(ap[sample[untied]].mean() - reference[untied].mean())
                worst = max(worst, diff)
                assert diff <= 1e-6, f"{ql}->{cl}: mAP differs from sklearn by {diff:.2e}"

            setting = "Mul." if cl == "Mul." else "Mo." if cl == ql else "Cr."
            summary[f"{setting} mAP"].append(np.nanmean(ap))
            summary[f"{setting} R@10" if setting == "Mul." else f"{setting} R@1"].append(
                np.nanmean(metrics["recall@10" if setting == "Mul." else "recall@1"]))
            if setting == "Mul.":
                summary["Mul. rank distance"].append(np.nanmean(metrics["rank_distance"]))
            settings += 1

    production_s = None if args.synthetic else time_production(data, queries, candidates, summary)

    extrapolated = args.sklearn_queries != 0
    print(f"data: {'synthetic' if args.synthetic else f'XQuAD-R, model {args.model}'}, {len(queries)} queries, "
          f"{len(candidates)} candidates, {settings} settings")
    for name, values in summary.items():
        print(f"  {name:<20} {np.mean(values):.4f}  (macro over {len(values)})")
    print(f"(a) ours, ranking_metrics per block (AP, R@1, R@10, rank distance): {ours_s:.2f} s")
    if production_s is not None:
        print(f"(a) ours, production path evaluate_lareqa (score matrices + all {settings} settings): "
              f"{production_s:.2f} s")
    print(f"(b) sklearn AP loop: {sklearn_s:.2f} s measured"
          + (f", {sklearn_full_s:.1f} s extrapolated to all queries ({args.sklearn_queries} per setting sampled)"
             if extrapolated else " on all queries"))
    ratio = sklearn_full_s / ours_s
    print(f"speed-up (b)/(a) per block: {ratio:.0f}x{' (extrapolated)' if extrapolated else ''}; goal >= 20x: "
          f"{'OK' if ratio >= 20 else 'FAIL'}")
    if production_s is not None:
        ratio = sklearn_full_s / production_s
        print(f"speed-up (b)/(a) production path: {ratio:.0f}x; goal >= 20x: {'OK' if ratio >= 20 else 'FAIL'}")
    print(f"mAP agreement: max |ours - sklearn| = {worst:.1e} over {compared} queries; "
          f"{tied} with tied relevant scores left out")
    if production_s is not None:
        encoding_s, note = encoding_seconds(model, data)
        if encoding_s is None:
            print(f"encoding: {note}; metrics/encoding ratio skipped")
        else:
            share = 100 * production_s / encoding_s
            print(f"encoding (from the cache records): {encoding_s:.1f} s ({note})")
            print(f"metrics (evaluate_lareqa) / encoding: {share:.2f}%; goal <= 2%: {'OK' if share <= 2 else 'FAIL'}")


def time_production(data, queries: np.ndarray, candidates: np.ndarray, summary: dict[str, list[float]]) -> float:
    """Seconds evaluate_lareqa takes for all settings; checks it reproduces the per-block mAPs."""
    from hybridir.evaluation.lareqa import evaluate_lareqa

    start = time.perf_counter()
    tidy = evaluate_lareqa(data, queries, candidates)
    seconds = time.perf_counter() - start
    for setting, key in (("mono", "Mo. mAP"), ("cross", "Cr. mAP"), ("multi", "Mul. mAP")):
        value = tidy.value[(tidy.setting == setting) & (tidy.metric == "map")].mean()
        assert abs(value - np.mean(summary[key])) <= 1e-6, f"{key}: evaluate_lareqa {value}, per block {np.mean(summary[key])}"
    return seconds


if __name__ == "__main__":
    main()
