"""BEIR-format datasets: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hybridir.data import sources

_QRELS_HEADER = ["query-id", "corpus-id", "score"]


@dataclass(frozen=True, eq=False)  # eq=False: comparing DataFrames field by field is ambiguous
class BeirDataset:
    """A BEIR dataset restricted to the queries judged in one split."""

    corpus: pd.DataFrame  # doc_id, title, text
    queries: pd.DataFrame  # query_id, text; only queries with judgements in the split
    qrels: dict[str, dict[str, int]]  # query_id -> doc_id -> relevance
    checksum: str


def load_beir(path_or_name: str | Path, split: str = "test") -> BeirDataset:
    """Load a BEIR dataset from a directory, or by name (``"scifact"``) from the data dir or a download.

    A ``str`` that names a known dataset is resolved by name; anything else is a directory path.
    """
    if isinstance(path_or_name, str) and path_or_name in sources.BEIR_SOURCES:
        root = sources.resolve_beir(path_or_name)
    else:
        root = Path(path_or_name)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory; pass a BEIR dataset directory or one of: "
                                f"{', '.join(sources.BEIR_SOURCES)}")
    corpus_file, queries_file = root / "corpus.jsonl", root / "queries.jsonl"
    for required in (corpus_file, queries_file):
        if not required.is_file():
            raise FileNotFoundError(f"{required} is missing; a BEIR directory holds corpus.jsonl, queries.jsonl "
                                    "and qrels/<split>.tsv")
    splits = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
    if split not in splits:
        available = ", ".join(splits) or "none (no qrels/*.tsv)"
        raise ValueError(f"unknown split {split!r} for {root}; available: {available}")
    qrels_file = root / "qrels" / f"{split}.tsv"
    qrels = _read_qrels(qrels_file)
    corpus = pd.DataFrame(
        [(doc_id, record.get("title") or "", record["text"]) for doc_id, record in _read_jsonl(corpus_file)],
        columns=["doc_id", "title", "text"])
    queries = pd.DataFrame([(query_id, record["text"]) for query_id, record in _read_jsonl(queries_file)],
                           columns=["query_id", "text"])
    missing = sorted(set(qrels) - set(queries["query_id"]))
    if missing:
        raise ValueError(f"{qrels_file}: {len(missing)} judged query ids are not in {queries_file.name} "
                         f"(first: {missing[0]!r})")
    queries = queries[queries["query_id"].isin(qrels)].reset_index(drop=True)
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels,
                       checksum=sources.checksum([corpus_file, queries_file, qrels_file]))


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """Yield ``(_id as str, record)`` per non-blank line; each record needs ``_id`` and ``text``."""
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict) or "_id" not in record or not isinstance(record.get("text"), str):
                raise ValueError(f"{path}:{number}: a BEIR record needs an '_id' and a string 'text'")
            item_id = str(record["_id"])
            if item_id in seen:
                raise ValueError(f"{path}:{number}: id {item_id!r} occurs twice")
            seen.add(item_id)
            yield item_id, record


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
        if header != _QRELS_HEADER:
            raise ValueError(f"{path}:1: expected the header 'query-id<TAB>corpus-id<TAB>score', "
                             f"got {header}")
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3 or not fields[2].lstrip("-").isdigit():
                raise ValueError(f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>integer score', "
                                 f"got {line.rstrip()!r}")
            query_id, doc_id, score = fields
            if doc_id in qrels.setdefault(query_id, {}):
                raise ValueError(f"{path}:{number}: query {query_id!r} judges document {doc_id!r} twice")
            qrels[query_id][doc_id] = int(score)
    return qrels
