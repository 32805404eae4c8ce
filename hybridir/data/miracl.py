"""MIRACL v1.0 dev: topics and qrels from the pinned Anserini files, passages from the hub.

The corpus keeps the hub's layout, ``miracl-corpus-v1.0-{lang}/docs-{n}.jsonl.gz`` with JSON
lines ``{"docid", "title", "text"}``, whether it is read from a local directory or from the
hub repository. Both go through the ``json`` builder of :mod:`datasets`: the hub repository's
own loading script cannot run under ``datasets`` >= 4, which no longer executes scripts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from hybridir import paths
from hybridir.data import sources

if TYPE_CHECKING:  # importing datasets is slow; only the corpus loader needs it
    import datasets

MIRACL_LANGUAGES: tuple[str, ...] = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru",
                                     "sw", "te", "th", "yo", "zh")
MIRACL_CORPUS_HUB_ID = "miracl/miracl-corpus"
_CORPUS_COLUMNS = ["docid", "title", "text"]
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
_TOPICS = "miracl/topics/topics.miracl-v1.0-{}-dev.tsv"
_QRELS = "miracl/qrels/qrels.miracl-v1.0-{}-dev.tsv"


def load_miracl_topics(lang: str) -> pd.DataFrame:
    """Dev topics of ``lang`` in file order: columns ``query_id, text``."""
    path = sources.resolve(_TOPICS.format(_check(lang)))
    rows, seen = [], set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            query_id, tab, text = line.rstrip("\r\n").partition("\t")
            if not (query_id and tab and text.strip()):
                raise ValueError(f"{path}:{number}: expected 'qid<TAB>query', got {line.rstrip()!r}")
            if query_id in seen:
                raise ValueError(f"{path}:{number}: query id {query_id!r} occurs twice")
            seen.add(query_id)
            rows.append((query_id, text))
    return pd.DataFrame(rows, columns=["query_id", "text"])


def load_miracl_qrels(lang: str) -> dict[str, dict[str, int]]:
    """Dev judgements of ``lang``: query id -> docid (``<article>#<passage>``) -> relevance (0 or 1)."""
    path = sources.resolve(_QRELS.format(_check(lang)))
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if len(fields) != 4 or not fields[3].lstrip("-").isdigit():
                raise ValueError(f"{path}:{number}: expected 'qid Q0 docid relevance', got {line.rstrip()!r}")
            query_id, _, doc_id, relevance = fields
            if doc_id in qrels.setdefault(query_id, {}):
                raise ValueError(f"{path}:{number}: query {query_id!r} judges document {doc_id!r} twice")
            qrels[query_id][doc_id] = int(relevance)
    return qrels


def miracl_checksum(languages: list[str] | tuple[str, ...]) -> str:
    """Checksum of the topics and qrels of ``languages`` (the corpus is identified by its source)."""
    return sources.checksum([sources.resolve(template.format(_check(lang)))
                             for lang in languages for template in (_TOPICS, _QRELS)])


def load_miracl_corpus(lang: str, source: str | Path = MIRACL_CORPUS_HUB_ID) -> "datasets.Dataset":
    """The passages of ``lang`` (columns ``docid, title, text``) from a local directory or a hub repository.

    ``source`` is a directory holding ``miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz`` or, if no such
    directory exists, a hub dataset id with that layout (default ``miracl/miracl-corpus``).
    """
    import datasets

    folder = f"miracl-corpus-v1.0-{_check(lang)}"
    cache = str(paths.cache_dir() / "datasets")
    if Path(source).is_dir():
        files = sorted(str(f) for f in (Path(source) / folder).glob("docs-*.jsonl.gz"))
        if not files:
            raise FileNotFoundError(f"no {folder}/docs-*.jsonl.gz under {source}; pass a directory in the layout "
                                    f"of the hub's {MIRACL_CORPUS_HUB_ID}")
        corpus = datasets.load_dataset("json", data_files=files, split="train", cache_dir=cache)
    elif isinstance(source, str) and _HUB_ID.fullmatch(source):
        pattern = f"hf://datasets/{source}/{folder}/docs-*.jsonl.gz"
        try:
            corpus = datasets.load_dataset("json", data_files=pattern, split="train", cache_dir=cache)
        except Exception as exc:  # offline, hub errors and missing files all surface differently
            raise ConnectionError(f"could not load {pattern} from the Hugging Face hub ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}); pass a local corpus "
                                  f"directory with --miracl-corpus DIR (source= in Python) holding "
                                  f"{folder}/docs-*.jsonl.gz") from exc
    else:
        raise FileNotFoundError(f"{source} is neither a directory nor a hub dataset id; pass a local corpus "
                                f"directory holding {folder}/docs-*.jsonl.gz")
    missing = [c for c in _CORPUS_COLUMNS if c not in corpus.column_names]
    if missing:
        raise ValueError(f"the {lang} corpus from {source} lacks the fields {missing}; "
                         f"each JSON line needs {_CORPUS_COLUMNS}")
    return corpus.select_columns(_CORPUS_COLUMNS)


def _check(lang: str) -> str:
    if lang not in MIRACL_LANGUAGES:
        raise ValueError(f"MIRACL has no dev language {lang!r}; choose from: {', '.join(MIRACL_LANGUAGES)}")
    return lang
