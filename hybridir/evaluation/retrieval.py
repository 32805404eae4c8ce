"""Zero-shot retrieval on a document corpus: BEIR-format datasets and MIRACL.

Documents are encoded as ``title + " " + text`` (BEIR's convention for dense models), searched
exactly by inner product (of normalised vectors: cosine) with faiss, and the top-k run is scored with
trec_eval's definitions (:func:`hybridir.evaluation.metrics.evaluate_run`). A BEIR corpus is held in
memory (``IndexFlatIP``); MIRACL's streams shard by shard (:mod:`hybridir.evaluation.corpus_search`).
The cross-lingual variant pairs queries of one copy (e.g. BEIR-NL) with the corpus of another
(the English original): both must share query and document ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir.data.miracl import MIRACL_CORPUS_HUB_ID
from hybridir.encoding import default_batch_size, encode, encoding_devices
from hybridir.evaluation.corpus_search import SHARD_PASSAGES, Shard, search_corpus, write_run
from hybridir.evaluation.lareqa import TIDY_COLUMNS
from hybridir.evaluation.metrics import evaluate_run
from hybridir.models.spec import ModelSpec

RUN_METRICS = {"ndcg_cut_10": "ndcg@10", "recall_100": "recall@100", "map": "map"}
MIRACL_METRICS = {"ndcg_cut_10": "ndcg@10", "recall_100": "recall@100"}


def document_texts(titles: Sequence[str], texts: Sequence[str]) -> list[str]:
    return [f"{title} {text}".strip() if title else text for title, text in zip(titles, texts)]


def search(query_vectors: np.ndarray, document_vectors: np.ndarray, query_ids: Sequence[str],
           document_ids: Sequence[str], depth: int = 1000) -> dict[str, dict[str, float]]:
    """Exact inner-product top-``depth`` search -> ``{query_id: {doc_id: score}}``."""
    import faiss

    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    index = faiss.IndexFlatIP(document_vectors.shape[1])
    index.add(np.ascontiguousarray(document_vectors, dtype=np.float32))
    scores, rows = index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), min(depth, len(document_ids)))
    document_ids = np.asarray(document_ids, dtype=object)
    return {qid: dict(zip(document_ids[r], s.astype(float))) for qid, r, s in zip(query_ids, rows, scores)}


def evaluate_corpus(model: ModelSpec, queries: pd.DataFrame, corpus: pd.DataFrame,
                    qrels: Mapping[str, Mapping[str, int]], *, dataset: str, query_language: str,
                    candidate_language: str, metrics: Mapping[str, str] = RUN_METRICS, depth: int = 1000,
                    batch_size: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tidy, per-query) for one query set against one corpus held in memory: tidy rows with the LAReQA table's
    columns, and one row per judged query (``query_language``, ``qid``, a column per metric: the units of a
    paired test).

    ``queries`` has columns ``query_id, text``; ``corpus`` has ``doc_id, title, text``.
    Queries without judgements are skipped and counted.
    """
    where = f"{dataset} {query_language}" + (f"→{candidate_language}" if candidate_language != query_language else "")
    judged, skipped = _judged(queries, qrels, dataset)
    query_vectors = encode(model, judged.text.tolist(), "query", batch_size=batch_size, label=f"{where}: queries")
    document_vectors = encode(model, document_texts(corpus.title.tolist(), corpus.text.tolist()), "passage",
                              batch_size=batch_size, label=f"{where}: documents")
    run = search(query_vectors, document_vectors, judged.query_id.tolist(), corpus.doc_id.tolist(), depth)
    return _scored(run, qrels, metrics, dataset=dataset, query_language=query_language,
                   candidate_language=candidate_language, skipped=skipped)


def _judged(queries: pd.DataFrame, qrels: Mapping[str, Mapping[str, int]], dataset: str) -> tuple[pd.DataFrame, int]:
    """The queries with a relevant judgement, and how many were left out."""
    judged = queries.query_id.isin([q for q, docs in qrels.items() if any(v > 0 for v in docs.values())])
    if not judged.any():
        raise ValueError(f"{dataset}: no query has a relevant judgement; check that queries and qrels match")
    return queries[judged], int((~judged).sum())


def _scored(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]],
            metrics: Mapping[str, str], *, dataset: str, query_language: str, candidate_language: str,
            skipped: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    per_query = pd.DataFrame.from_dict(evaluate_run(run, qrels, tuple(metrics)), orient="index")
    tidy = pd.DataFrame([
        {"dataset": dataset, "setting": "mono" if query_language == candidate_language else "cross",
         "query_language": query_language, "candidate_language": candidate_language, "metric": name,
         "value": float(per_query[trec].mean()), "n_queries": len(per_query), "n_skipped": skipped}
        for trec, name in metrics.items()
    ], columns=TIDY_COLUMNS)
    per_query = per_query.rename(columns=dict(metrics)).rename_axis("qid").reset_index()
    return tidy, per_query.assign(query_language=query_language)[["query_language", "qid", *metrics.values()]]


def evaluate_beir(model: ModelSpec, dataset, *, name: str, language: str = "en", corpus_dataset=None,
                  corpus_language: str | None = None, depth: int = 1000,
                  batch_size: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """nDCG@10, Recall@100 and MAP on a :class:`~hybridir.data.beir.BeirDataset`: (tidy, per-query).

    With ``corpus_dataset`` (e.g. the English original of a translated copy), its corpus is searched
    with ``dataset``'s queries: the cross-lingual variant.
    """
    corpus = (corpus_dataset or dataset).corpus
    return evaluate_corpus(model, dataset.queries, corpus, dataset.qrels, dataset=name, query_language=language,
                           candidate_language=corpus_language or language, depth=depth, batch_size=batch_size)


def evaluate_miracl(model: ModelSpec, language: str, corpus_source: str | Path = MIRACL_CORPUS_HUB_ID, *,
                    depth: int = 1000, batch_size: int | None = None, devices: Sequence[str] | None = None,
                    shard_size: int = SHARD_PASSAGES,
                    run_file: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MIRACL dev, one language: nDCG@10 and Recall@100 against the language's passage corpus (tidy, per-query).

    The corpus streams in shards of ``shard_size`` passages, each encoded once per model on ``devices``
    (:func:`hybridir.encoding.encoding_devices`: by default every GPU where there are several) and searched
    exactly in bounded memory (:mod:`hybridir.evaluation.corpus_search`); ``run_file``: also write the top 100 as
    a TREC run.
    """
    from hybridir.data.miracl import count_miracl_passages, load_miracl_qrels, load_miracl_topics, stream_miracl_corpus

    if shard_size < 1:
        raise ValueError(f"--corpus-shard-size must be at least 1 passage, got {shard_size}")
    batch_size = default_batch_size() if batch_size is None else batch_size
    qrels = load_miracl_qrels(language)
    queries, skipped = _judged(load_miracl_topics(language), qrels, "miracl")
    query_vectors = encode(model, queries.text.tolist(), "query", batch_size=batch_size,
                           label=f"miracl {language}: queries")
    shards = (Shard(batch["docid"], document_texts(batch["title"], batch["text"]))
              for batch in stream_miracl_corpus(language, corpus_source, shard_size))
    run = search_corpus(model, query_vectors, queries.query_id.tolist(), shards, depth=depth, batch_size=batch_size,
                        devices=encoding_devices(devices), passages=count_miracl_passages(language, corpus_source),
                        label=f"miracl {language}")
    if run_file is not None:
        write_run(run_file, run)
    return _scored(run, qrels, MIRACL_METRICS, dataset="miracl", query_language=language,
                   candidate_language=language, skipped=skipped)
