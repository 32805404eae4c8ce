"""Parallel QA data as the trainer's dataset, with the metadata kept beside it.

sentence-transformers tokenizes every non-label column of the training dataset and hands it to
the loss, so the dataset holds exactly ``query, passage[, negative]``. Which item, source and
languages a row has lives in a :class:`PairTable` of integer arrays that only the sampler reads.

Every item (a shared id of one source) gets one row per ordered pair of its languages: (q, q) rows
feed X-X-mono batches, (q, p ≠ q) rows feed X-Y batches. A hard negative, when the data has
one, is taken in the passage language. The table grows with (languages per item)², which is
144k rows for XQuAD-R (1,190 ids × 11²); data with millions of items in many languages would
need rows composed on the fly instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # datasets is heavy to import; only the builder needs it at run time
    from datasets import Dataset

    from hybridir.data.parallel import ParallelQA


@dataclass(frozen=True, eq=False)
class PairTable:
    """Per dataset row: its source, item and languages, as codes into ``sources`` / ``languages``.

    Rows are sorted by (source, item, query language, passage language); items are numbered
    globally, so two sources never share an item code.
    """

    source: np.ndarray  # int64 code into ``sources``
    item: np.ndarray  # int64 global item code
    query_language: np.ndarray  # int64 code into ``languages``
    passage_language: np.ndarray  # int64 code into ``languages``
    sources: tuple[str, ...]
    languages: tuple[str, ...]
    item_ids: tuple[str, ...]  # the data's own id of each global item code
    # (rows, columns) int64: each row's query, passage[, negative] text as a code in one space over all
    # columns (equal codes, equal strings). An answer sentence shared by several questions would be a
    # false negative in a batch that held two of them, so the sampler keeps codes distinct within a batch.
    text_codes: np.ndarray

    def __len__(self) -> int:
        return len(self.item)

    @property
    def is_mono(self) -> np.ndarray:
        return self.query_language == self.passage_language

    def describe(self, rows: Sequence[int] | np.ndarray) -> pd.DataFrame:
        """Readable metadata of ``rows`` (source, id, query_language, passage_language)."""
        rows = np.asarray(rows, dtype=np.int64)
        return pd.DataFrame({
            "source": np.asarray(self.sources, dtype=object)[self.source[rows]],
            "id": np.asarray(self.item_ids, dtype=object)[self.item[rows]],
            "query_language": np.asarray(self.languages, dtype=object)[self.query_language[rows]],
            "passage_language": np.asarray(self.languages, dtype=object)[self.passage_language[rows]],
        })


def build_pair_dataset(sources: Sequence[ParallelQA]) -> tuple[Dataset, PairTable]:
    """The training dataset (``query, passage[, negative]``) and its :class:`PairTable`."""
    from datasets import Dataset

    if not sources:
        raise ValueError("no training source given; pass at least one ParallelQA (e.g. lareqa_parallel('mlqa-r'))")
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"training sources must have distinct names, got {names}")
    with_negatives = {source.name: source.has_negatives for source in sources}
    if len(set(with_negatives.values())) > 1:
        raise ValueError(f"either every training source has hard negatives or none does, got {with_negatives}; "
                         "drop the negative column or add negatives to every source")
    for source in sources:
        if source.pairs.empty:
            raise ValueError(f"training source {source.name!r} has no pairs; remove it or fix its data")
        repeated = source.pairs.duplicated(["id", "language"])
        if repeated.any():
            first = source.pairs[repeated].iloc[0]
            raise ValueError(f"training source {source.name!r} has id {first['id']} in language {first['language']} "
                             "twice; keep one pair per id and language")
    languages = tuple(sorted({lang for source in sources for lang in source.pairs["language"].unique()}))
    frames, item_ids, offset = [], [], 0
    for code, source in enumerate(sources):
        frame, ids = _pair_rows(source, languages, item_offset=offset)
        frames.append(frame.assign(source=code))
        item_ids.extend(ids)
        offset += len(ids)
    rows = pd.concat(frames, ignore_index=True)
    columns = ["query", "passage"] + (["negative"] if sources[0].has_negatives else [])
    codes, _ = pd.factorize(rows[columns].to_numpy().ravel())
    table = PairTable(
        source=rows["source"].to_numpy(np.int64), item=rows["item"].to_numpy(np.int64),
        query_language=rows["query_language"].to_numpy(np.int64),
        passage_language=rows["passage_language"].to_numpy(np.int64),
        sources=tuple(names), languages=languages, item_ids=tuple(item_ids),
        text_codes=codes.astype(np.int64).reshape(len(rows), len(columns)))
    return Dataset.from_pandas(rows[columns], preserve_index=False), table


def _pair_rows(source: ParallelQA, languages: tuple[str, ...], item_offset: int) -> tuple[pd.DataFrame, list[str]]:
    """Every (item, q, p) of one source, sorted, with texts; and the item ids in code order."""
    pairs = source.pairs
    ids = sorted(pairs["id"].unique())
    item_code = {item_id: item_offset + i for i, item_id in enumerate(ids)}
    language_code = {lang: i for i, lang in enumerate(languages)}
    base = pd.DataFrame({"item": pairs["id"].map(item_code).to_numpy(np.int64),
                         "language": pairs["language"].map(language_code).to_numpy(np.int64)})
    queries = base.assign(query=pairs["query"].to_numpy()).rename(columns={"language": "query_language"})
    passages = base.assign(passage=pairs["positive"].to_numpy()).rename(columns={"language": "passage_language"})
    if source.has_negatives:
        passages = passages.assign(negative=pairs["negative"].to_numpy())
    rows = queries.merge(passages, on="item")
    rows = rows.sort_values(["item", "query_language", "passage_language"], kind="stable", ignore_index=True)
    return rows, ids
