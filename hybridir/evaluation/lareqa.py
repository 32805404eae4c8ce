"""The LAReQA protocol of the paper: Mo., Cr. and Mul. retrieval on XQuAD-R and MLQA-R.

For each query language X the questions are scored once against the whole pooled candidate set;
the settings are column blocks of that one score matrix:

- **mono**: candidates of language X (11 settings on XQuAD-R, 7 on MLQA-R);
- **cross**: candidates of one other language Y, every ordered pair (110 / 42). An MLQA-R
  question whose answer does not exist in Y has nothing to retrieve there: it is skipped and
  counted (``n_skipped``);
- **multi**: the pooled candidates of all languages (13,014 / 20,534).

mAP is full-ranking average precision; R@1 is reported for mono and cross and R@10 for multi, as
in the paper's tables; rank distance (language bias) is computed in multi. Ties are broken by
candidate order (see :func:`hybridir.evaluation.metrics.relevant_ranks`). Written here because
no library implements this protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir.data.lareqa import LAReQA
from hybridir.encoding import Text, encode
from hybridir.evaluation.metrics import peer, ranking_metrics
from hybridir.models.spec import ModelSpec

SETTINGS = ("mono", "cross", "multi")
CANDIDATE_TEXTS = ("sentence", "sentence+context")
# Which metrics each setting reports, as in the paper's Tables 3-8.
SETTING_METRICS = {
    "mono": ("map", "recall@1"),
    "cross": ("map", "recall@1"),
    "multi": ("map", "recall@10", "rank_distance"),
}
PER_QUERY_COLUMNS = ["map", "recall@1", "recall@10", "rank_distance", "peer", "top_language"]
TIDY_COLUMNS = ["dataset", "setting", "query_language", "candidate_language", "metric", "value",
                "n_queries", "n_skipped"]


def candidate_inputs(data: LAReQA, candidate_text: str = "sentence") -> list[Text]:
    """What the passage encoder reads: the answer sentence, or (sentence, paragraph) as LAReQA's models."""
    if candidate_text == "sentence":
        return data.candidates.sentence.tolist()
    check_candidate_text(candidate_text)
    return list(zip(data.candidates.sentence, data.candidates.context))


def embed_lareqa(model: ModelSpec, data: LAReQA, candidate_text: str = "sentence",
                 batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(question vectors, candidate vectors), rows aligned with ``data.questions`` / ``data.candidates``."""
    candidate_texts = candidate_inputs(data, candidate_text)  # a bad choice fails before any encoding
    where = f"{data.name}, {len(data.languages)} language{'s' if len(data.languages) > 1 else ''}"
    questions = encode(model, data.questions.text.tolist(), "query", batch_size=batch_size,
                       label=f"{where}: questions")
    return questions, encode(model, candidate_texts, "passage", batch_size=batch_size, label=f"{where}: candidates")


def evaluate_lareqa(data: LAReQA, question_vectors: np.ndarray, candidate_vectors: np.ndarray,
                    settings: Iterable[str] = SETTINGS, query_languages: Sequence[str] | None = None) -> pd.DataFrame:
    """Tidy table: one row per (setting, query language, candidate language, metric)."""
    return lareqa_results(data, question_vectors, candidate_vectors, settings, query_languages, per_query=False)[0]


def lareqa_results(data: LAReQA, question_vectors: np.ndarray, candidate_vectors: np.ndarray,
                   settings: Iterable[str] = SETTINGS, query_languages: Sequence[str] | None = None,
                   per_query: bool = True) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(tidy, per-query) from one pass over the score matrices; per-query None without ``per_query`` (PEER and
    the top language, its columns alone, then cost nothing).

    The per-query table has one row per (setting, query language, candidate language, question id)
    with that query's metrics: Cr. has a row per target language where the query has an answer, so
    a test can weigh them as the table does (mean over language pairs). Multi rows add ``peer``
    (PEER@100, language fairness; not one of the paper's metrics, so not in the tidy table) and
    ``top_language``: the language of the query's
    highest-ranked relevant candidate (language bias beyond the mean rank distance). Paired
    significance tests between models take their units from this table.
    """
    settings = check_settings(settings)
    if question_vectors.shape[0] != len(data.questions) or candidate_vectors.shape[0] != len(data.candidates):
        raise ValueError(f"vectors do not match {data.name}: {question_vectors.shape[0]} question and "
                         f"{candidate_vectors.shape[0]} candidate rows for {len(data.questions)} and "
                         f"{len(data.candidates)}; encode the same dataset and languages")
    query_languages = check_languages(data, query_languages)
    question_language = data.questions.language.to_numpy()
    candidate_language = data.candidates.language.to_numpy()
    rows: list[dict] = []
    frames: list[pd.DataFrame] = []
    for x in query_languages:
        question_rows = np.flatnonzero(question_language == x)
        qids = data.questions.qid.to_numpy()[question_rows]
        scores = np.asarray(question_vectors[question_rows], np.float32) @ np.asarray(candidate_vectors, np.float32).T
        relevance = data.relevance_matrix(question_rows)
        blocks = []
        if "mono" in settings:
            blocks.append(("mono", x, candidate_language == x))
        if "cross" in settings:
            blocks += [("cross", y, candidate_language == y) for y in data.languages if y != x]
        if "multi" in settings:
            blocks.append(("multi", "all", np.ones(len(candidate_language), bool)))
        for setting, y, columns in blocks:
            values = ranking_metrics(scores[:, columns], relevance[:, columns], ks=(1, 10))
            answerable = ~np.isnan(values["average_precision"])
            metrics = {metric: values["average_precision" if metric == "map" else metric]
                       for metric in SETTING_METRICS[setting]}
            for metric, value in metrics.items():
                kept = value[answerable]
                rows.append({"dataset": data.name, "setting": setting, "query_language": x,
                             "candidate_language": y, "metric": metric,
                             "value": float(kept.mean()) if len(kept) else np.nan,
                             "n_queries": int(answerable.sum()), "n_skipped": int((~answerable).sum())})
            if not per_query:
                continue
            frame = pd.DataFrame({"qid": qids, **metrics})
            if setting == "multi":
                frame["peer"] = peer(scores, relevance, candidate_language)
                frame["top_language"] = _top_relevant_language(scores, relevance, candidate_language)
            frames.append(frame[answerable].assign(setting=setting, query_language=x, candidate_language=y))
    if not per_query:
        return pd.DataFrame(rows, columns=TIDY_COLUMNS), None
    table = pd.concat(frames, ignore_index=True)
    leading = ["setting", "query_language", "candidate_language", "qid"]
    table = table[leading + [c for c in PER_QUERY_COLUMNS if c in table.columns]]
    return pd.DataFrame(rows, columns=TIDY_COLUMNS), table


def _top_relevant_language(scores: np.ndarray, relevance, candidate_language: np.ndarray) -> np.ndarray:
    """Per query, the language of its best-scored relevant candidate ("" when it has none)."""
    masked = np.where(relevance.toarray(), scores, -np.inf)
    best = masked.argmax(axis=1)
    found = np.isfinite(masked[np.arange(len(best)), best])
    return np.where(found, candidate_language[best], "")


def summarize(tidy: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout: one row per query language plus the macro ``Mean``.

    Columns ``(setting, metric)``; Cr. of a query language is the mean over its target
    languages, so the ``Mean`` of Cr. is the macro average over all ordered pairs.
    """
    per_language = (tidy.groupby(["setting", "metric", "query_language"], sort=False)["value"].mean()
                    .unstack(["setting", "metric"]))
    ordered = [(s, m) for s in SETTINGS for m in SETTING_METRICS[s] if (s, m) in per_language.columns]
    per_language = per_language[ordered]
    per_language.loc["Mean"] = per_language.mean()
    per_language.columns = pd.MultiIndex.from_tuples(ordered, names=["setting", "metric"])
    return per_language


def cross_matrix(tidy: pd.DataFrame, metric: str = "map") -> pd.DataFrame:
    """Query language × candidate language for Cr. (and Mo. on the diagonal)."""
    block = tidy[tidy.setting.isin(["mono", "cross"]) & (tidy.metric == metric)]
    return block.pivot(index="query_language", columns="candidate_language", values="value")


def write_trec_run(path: Path, data: LAReQA, question_vectors: np.ndarray, candidate_vectors: np.ndarray,
                   query_language: str, candidate_languages: Sequence[str] | None = None, depth: int = 100,
                   tag: str = "hybridir") -> Path:
    """A TREC run (``qid Q0 uid rank score tag``) for one query language against the chosen pool."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    check_languages(data, [query_language])
    pool = data.languages if candidate_languages is None else check_languages(data, candidate_languages)
    question_rows = np.flatnonzero(data.questions.language.to_numpy() == query_language)
    columns = np.flatnonzero(data.candidates.language.isin(pool).to_numpy())
    scores = np.asarray(question_vectors[question_rows], np.float32) @ np.asarray(candidate_vectors[columns], np.float32).T
    depth = min(depth, len(columns))
    # stable sort on -score: ties keep candidate order, as in the metrics
    order = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
    qids = data.questions.qid.to_numpy()[question_rows]
    uids = data.candidates.uid.to_numpy()[columns]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for i, qid in enumerate(qids):
            for rank, column in enumerate(order[i], start=1):
                handle.write(f"{query_language}:{qid} Q0 {uids[column]} {rank} {scores[i, column]:.6f} {tag}\n")
    return path


def check_candidate_text(candidate_text: str) -> None:
    if candidate_text not in CANDIDATE_TEXTS:
        raise ValueError(f"unknown candidate text {candidate_text!r}; use one of {', '.join(CANDIDATE_TEXTS)}")


def check_settings(settings: Iterable[str]) -> tuple[str, ...]:
    settings = tuple(settings)
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        raise ValueError(f"unknown setting(s) {unknown or settings}; choose from {', '.join(SETTINGS)}")
    return settings


def check_languages(data: LAReQA, languages: Sequence[str] | None) -> tuple[str, ...]:
    if languages is None:
        return data.languages
    unknown = [lang for lang in languages if lang not in data.languages]
    if unknown:
        raise ValueError(f"{data.name} (as loaded) has no language {', '.join(unknown)}; "
                         f"choose from {', '.join(data.languages)}")
    return tuple(languages)
