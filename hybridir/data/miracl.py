"""MIRACL v1.0 dev: topics and qrels from the pinned Anserini files, passages streamed from the hub.

The corpus keeps the hub's layout, ``miracl-corpus-v1.0-{lang}/docs-{n}.jsonl.gz`` with JSON
lines ``{"docid", "title", "text"}``, whether it is read from a local directory or from the
hub repository. Both stream through the ``json`` builder of :mod:`datasets` (the hub repository's
own loading script cannot run under ``datasets`` >= 4, which no longer executes scripts), a batch
at a time: the 15 languages of the paper hold 57.5M passages.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from hybridir.data import sources

MIRACL_LANGUAGES: tuple[str, ...] = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru",
                                     "sw", "te", "th", "yo", "zh")
MIRACL_CORPUS_HUB_ID = "miracl/miracl-corpus"
# Passages per language (the paper's Table 11, equal to the MIRACL v1.0 corpus README): progress and cost only.
MIRACL_PASSAGES = {"ar": 2_061_414, "bn": 297_265, "en": 32_893_221, "es": 10_373_953, "fa": 2_207_172,
                   "fi": 1_883_509, "fr": 14_636_953, "hi": 506_264, "id": 1_446_315, "ja": 6_953_614,
                   "ko": 1_486_752, "ru": 9_543_918, "sw": 131_924, "te": 518_079, "th": 542_166, "zh": 4_934_368}
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


def miracl_corpus_files(lang: str, source: str | Path = MIRACL_CORPUS_HUB_ID) -> list[str]:
    """The corpus files of ``lang`` in the order they are read: a local folder's ``docs-<n>.jsonl.gz`` sorted as
    text, as ``datasets`` sorts the hub's glob pattern, so that a local copy and the hub cut the same shards
    (and share their cached embeddings)."""
    folder = f"miracl-corpus-v1.0-{_check(lang)}"
    if Path(source).is_dir():
        files = sorted((Path(source) / folder).glob("docs-*.jsonl.gz"))
        if not files:
            raise FileNotFoundError(f"no {folder}/docs-*.jsonl.gz under {source}; pass a directory in the layout "
                                    f"of the hub's {MIRACL_CORPUS_HUB_ID}")
        return [str(f) for f in files]
    if isinstance(source, str) and _HUB_ID.fullmatch(source):
        return [f"hf://datasets/{source}/{folder}/docs-*.jsonl.gz"]
    raise FileNotFoundError(f"{source} is neither a directory nor a hub dataset id; pass a local corpus "
                            f"directory holding {folder}/docs-*.jsonl.gz")


def stream_miracl_corpus(lang: str, source: str | Path = MIRACL_CORPUS_HUB_ID,
                         batch_size: int = 16_384) -> Iterator[dict[str, list[str]]]:
    """The passages of ``lang`` in corpus order, ``batch_size`` at a time (``{"docid", "title", "text"}`` lists),
    streamed through :mod:`datasets` from a local directory or a hub repository: never the whole language in
    memory (fr alone holds 14.6M passages).

    ``source`` is a directory holding ``miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz`` or, if no such directory
    exists, a hub dataset id with that layout (default ``miracl/miracl-corpus``).
    """
    import datasets

    files = miracl_corpus_files(lang, source)
    try:
        batches = iter(datasets.load_dataset("json", data_files=files, split="train", streaming=True)
                       .iter(batch_size=batch_size))
        while (batch := next(batches, None)) is not None:
            missing = [c for c in _CORPUS_COLUMNS if c not in batch]
            if missing:
                raise _BadCorpus(f"the {lang} corpus from {source} lacks the fields {missing}; "
                                 f"each JSON line needs {_CORPUS_COLUMNS}")
            for column in _CORPUS_COLUMNS:
                if None in batch[column]:  # a null or absent field in some lines: it would be encoded as "None"
                    doc = batch["docid"][batch[column].index(None)]
                    raise _BadCorpus(f"the {lang} corpus from {source} has a passage ({doc!r}) without a {column}; "
                                     f"each JSON line needs {_CORPUS_COLUMNS} as strings")
            yield {column: batch[column] for column in _CORPUS_COLUMNS}
    except _BadCorpus:
        raise
    except Exception as exc:  # offline, hub errors, bad files and missing files all surface differently
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if Path(source).is_dir():
            raise ValueError(f"could not read the {lang} corpus under {source} ({reason}); check its "
                             f"miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz files (gzipped JSON lines)") from exc
        raise ConnectionError(f"could not load {files[0]} from the Hugging Face hub ({reason}); pass a local "
                              f"corpus directory with --miracl-corpus DIR (source= in Python) holding "
                              f"miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz") from exc


class _BadCorpus(ValueError):
    """A corpus read without error whose records lack a field."""


def count_miracl_passages(lang: str, source: str | Path = MIRACL_CORPUS_HUB_ID) -> int | None:
    """Passages in ``lang``'s corpus, for progress bars and cost estimates: a local folder's lines, counted
    (seconds per million), or MIRACL v1.0's published count for the hub (None where the paper lists none)."""
    files = miracl_corpus_files(lang, source)
    if not Path(source).is_dir():
        return MIRACL_PASSAGES.get(lang) if source == MIRACL_CORPUS_HUB_ID else None
    lines = 0
    for file in files:
        with gzip.open(file, "rb") as handle:
            while block := handle.read(1 << 24):
                lines += block.count(b"\n")
    return lines


def _check(lang: str) -> str:
    if lang not in MIRACL_LANGUAGES:
        raise ValueError(f"MIRACL has no dev language {lang!r}; choose from: {', '.join(MIRACL_LANGUAGES)}")
    return lang
