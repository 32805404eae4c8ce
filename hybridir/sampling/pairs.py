"""Parallel QA data as the trainer's dataset: one row per slot, training pairs composed when a batch is read.

A *slot* is one item of one source in one language: its query, its passage and, where the data has one, a
hard negative in that language. A training *pair* is two slots of one item: the query of the query-language
slot with the passage (and negative) of the passage-language slot; an X-X pair reads one slot twice.

:func:`build_pair_dataset` returns a :class:`PairDataset` (the slots, a ``datasets.Dataset`` in Arrow) and a
:class:`PairTable` (per-slot integer arrays: which item, which language, codes for the texts). The sampler reads
only the table and hands the trainer one :class:`PairIndex` per pair, which the dataset resolves to texts when
the batch is read. Memory grows with slots (items × languages), never with language pairs: XQuAD-R is 13,090
slots where a row per (item, query language, passage language) was 144k, and mMARCO's 39.8M triples in 7 languages,
were each an item, would be 279M slots rather than 1.95 billion rows.

sentence-transformers tokenizes every non-label column and hands it to the loss, so the dataset holds exactly
``query, passage[, negative]``; which source, item and language a slot has lives in the table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from datasets import Dataset, concatenate_datasets

from hybridir.data.store import ArrowQA

if TYPE_CHECKING:
    from hybridir.data.parallel import ParallelQA


@dataclass(frozen=True, eq=False)
class PairTable:
    """Per slot, its item and language as compact codes; what the sampler reads instead of the texts.

    Slots are sorted by (source, item, language) and items are numbered over all sources, so item ``k``'s slots
    are ``item_start[k]:item_start[k + 1]`` (its language set, in language order) and source ``s``'s items are
    ``source_start[s]:source_start[s + 1]``.
    """

    item_start: np.ndarray  # int64, one more than there are items
    language: np.ndarray  # per slot: a code into ``languages`` (uint8)
    source_start: np.ndarray  # int64, one more than there are sources
    sources: tuple[str, ...]
    languages: tuple[str, ...]
    item_ids: np.ndarray  # the data's own id of each item code
    # (slots, columns): each slot's query, passage[, negative] as codes in one space over all columns, numbered per
    # source in disjoint ranges (within a source, equal codes for equal strings). An answer sentence shared by
    # several questions would be a false negative in a batch that held two of them, so the sampler keeps codes
    # distinct within a batch (one source's). None: no two texts are known equal.
    text_codes: np.ndarray | None

    def __post_init__(self) -> None:
        items = len(self.item_start) - 1
        problems = [
            (len(self.item_start) == 0 or self.item_start[0] != 0 or np.any(np.diff(self.item_start) < 1),
             "item_start must start at 0 and rise by at least 1 per item"),
            (len(self.item_start) > 0 and self.item_start[-1] != len(self.language),
             "item_start must end at the number of slots (len(language))"),
            (len(self.source_start) < 2 or self.source_start[0] != 0 or self.source_start[-1] != items
             or np.any(np.diff(self.source_start) < 1), "source_start must run from 0 to the number of items, rising"),
            (len(self.sources) != len(self.source_start) - 1, "sources must name each source of source_start"),
            (len(self.item_ids) != items, "item_ids must hold one id per item"),
            (self.text_codes is not None and len(self.text_codes) != len(self.language),
             "text_codes must hold one row per slot"),
        ]
        for failed, what in problems:
            if failed:
                raise ValueError(f"inconsistent PairTable: {what}")

    def __len__(self) -> int:
        return len(self.language)

    @property
    def n_items(self) -> int:
        return len(self.item_start) - 1

    @cached_property
    def fingerprint(self) -> str:
        """sha256 (16 hex digits) of the table: a dataset laid out with it carries it, so a sampler never pairs
        the slots of another build."""
        digest = hashlib.sha256()
        ids = pd.util.hash_array(np.asarray(self.item_ids))  # object ids (strings) hash through pandas
        for part in (self.item_start, self.language, self.source_start, ids,
                     np.empty(0) if self.text_codes is None else self.text_codes):
            digest.update(np.ascontiguousarray(part).data)
        digest.update("\0".join(self.sources + ("",) + self.languages).encode())
        return digest.hexdigest()[:16]

    def item_of(self, slots: np.ndarray) -> np.ndarray:
        """The item code of each slot."""
        return np.searchsorted(self.item_start, slots, side="right") - 1

    def describe(self, pairs: np.ndarray) -> pd.DataFrame:
        """Readable metadata (source, id, query_language, passage_language) of (query slot, passage slot) pairs."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        items = self.item_of(pairs[:, 1])
        sources = np.searchsorted(self.source_start, items, side="right") - 1
        languages = np.asarray(self.languages, dtype=object)
        return pd.DataFrame({
            "source": np.asarray(self.sources, dtype=object)[sources],
            "id": self.item_ids[items],
            "query_language": languages[self.language[pairs[:, 0]]],
            "passage_language": languages[self.language[pairs[:, 1]]],
        })


class PairIndex(int):
    """One training pair as an index into its :class:`PairDataset`: the passage's slot, carrying the query's.

    Adding or subtracting an integer moves both slots, so the index survives the offsets that
    sentence-transformers' multi-dataset samplers and torch's ``ConcatDataset`` apply; equality and hashing are
    those of the passage slot.
    """

    query_offset: int

    def __new__(cls, passage: int, query: int) -> PairIndex:
        index = super().__new__(cls, passage)
        index.query_offset = int(query) - int(passage)
        return index

    @property
    def query(self) -> int:
        return int(self) + self.query_offset

    def __add__(self, other: object) -> PairIndex:
        if isinstance(other, PairIndex) or not isinstance(other, (int, np.integer)):
            return NotImplemented
        return PairIndex(int(self) + int(other), self.query + int(other))

    __radd__ = __add__

    def __sub__(self, other: object) -> PairIndex:
        if isinstance(other, PairIndex) or not isinstance(other, (int, np.integer)):
            return NotImplemented
        return PairIndex(int(self) - int(other), self.query - int(other))

    def __reduce__(self) -> tuple:  # DataLoader workers receive their indices pickled
        return PairIndex, (int(self), self.query)

    def __repr__(self) -> str:
        return f"PairIndex(passage={int(self)}, query={self.query})"


class PairBatch(Sequence):
    """A batch of pairs as the sampler yields it: a sequence of :class:`PairIndex` made on demand from one
    (pairs, 2) array of (query slot, passage slot), so a batch the trainer skips on resume costs no objects and
    a batch it reads is resolved from the array in one call."""

    def __init__(self, pairs: np.ndarray) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return PairBatch(self.pairs[position])
        query, passage = self.pairs[position].tolist()
        return PairIndex(passage, query)

    def __iter__(self) -> Iterator[PairIndex]:
        return (PairIndex(passage, query) for query, passage in self.pairs.tolist())

    def __eq__(self, other: object) -> bool:  # both slots of every pair, unlike PairIndex's own equality
        return isinstance(other, PairBatch) and np.array_equal(self.pairs, other.pairs)

    __hash__ = None  # mutable array inside

    def __repr__(self) -> str:
        return f"PairBatch({self.pairs.tolist()})"


class PairDataset(Dataset):
    """The slots as a ``datasets.Dataset`` (row ``i``: slot ``i``'s query, passage[, negative]) that also reads
    pairs: for :class:`PairIndex` keys a row is the pair, its first column (the query) from the query's slot and
    the others from the passage's. Any other key reads slots, as a ``Dataset`` does.

    ``table_fingerprint`` names the :class:`PairTable` the slots were laid out with; copies that keep the class
    (``with_format``, ``rename_column``) keep it, the others are plain ``Dataset`` objects that read slots only.
    """

    table_fingerprint: str | None = None

    @classmethod
    def of(cls, slots: Dataset, table: PairTable) -> PairDataset:
        """``slots`` (one row per slot of ``table``, in its order) as a pair dataset."""
        if len(slots) != len(table):
            raise ValueError(f"the slot dataset has {len(slots)} rows but the table {len(table)} slots; build both "
                             "with build_pair_dataset")
        dataset = cls(slots.data, info=slots.info.copy(), split=slots.split, indices_table=slots._indices,
                      fingerprint=slots._fingerprint)
        dataset.table_fingerprint = table.fingerprint
        return dataset

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, PairIndex):
            return self._pairs([key])[0]
        if _are_pairs(key):
            rows = self._pairs(list(key))
            return {column: [row[column] for row in rows] for column in rows[0]}
        return super().__getitem__(key)

    def __getitems__(self, keys: list) -> list[dict]:
        """A batch's rows; the DataLoader reads a batch through this in one call."""
        if isinstance(keys, PairBatch):
            return self._pairs_of(keys.pairs[:, 0].tolist(), keys.pairs[:, 1].tolist())
        return self._pairs(keys) if _are_pairs(keys) else super().__getitems__(keys)

    def _pairs(self, keys: Sequence[PairIndex]) -> list[dict]:
        return self._pairs_of([key.query for key in keys], [int(key) for key in keys])

    def _pairs_of(self, query_slots: list[int], passage_slots: list[int]) -> list[dict]:
        passages = super().__getitems__(passage_slots)
        queries = super().__getitems__(query_slots)
        first = next(iter(passages[0]))
        return [{first: query[first], **{column: value for column, value in passage.items() if column != first}}
                for query, passage in zip(queries, passages)]


def _are_pairs(keys: Any) -> bool:
    if not isinstance(keys, (list, tuple)) or not keys or not isinstance(keys[0], PairIndex):
        return False
    if not all(isinstance(key, PairIndex) for key in keys):
        raise TypeError("a batch mixes PairIndex keys (pairs) with plain row numbers (slots); read one or the other")
    return True


def build_pair_dataset(sources: Sequence[ParallelQA | ArrowQA]) -> tuple[PairDataset, PairTable]:
    """The training dataset (slots: ``query, passage[, negative]``) and its :class:`PairTable`.

    A :class:`~hybridir.data.parallel.ParallelQA` (a DataFrame) is laid out in memory; an
    :class:`~hybridir.data.store.ArrowQA` (converted into the cache) keeps its texts memory-mapped and brings its
    arrays. Text codes are numbered per source (a batch holds one source's pairs), in disjoint ranges."""
    if not sources:
        raise ValueError("no training source given; pass at least one ParallelQA (e.g. lareqa_parallel('mlqa-r'))")
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"training sources must have distinct names, got {names}")
    with_negatives = {source.name: source.has_negatives for source in sources}
    if len(set(with_negatives.values())) > 1:
        raise ValueError(f"either every training source has hard negatives or none does, got {with_negatives}; "
                         "drop the negative column or add negatives to every source")
    languages = tuple(sorted({lang for source in sources for lang in source.languages}))
    if len(languages) > np.iinfo(np.uint8).max:
        raise ValueError(f"the training sources have {len(languages)} languages; at most 255 are supported")
    parts = [_arrow_slots(source) if isinstance(source, ArrowQA) else _frame_slots(source) for source in sources]
    code_offsets = np.cumsum([0] + [int(part.text_codes.max(initial=-1)) + 1 for part in parts])
    code_type = np.int32 if code_offsets[-1] < np.iinfo(np.int32).max else np.int64
    table = PairTable(
        item_start=np.concatenate([[0], np.cumsum(np.concatenate([part.item_counts for part in parts]))]
                                  ).astype(np.int64),
        language=np.concatenate([np.array([languages.index(lang) for lang in part.languages], dtype=np.uint8)
                                 [part.language] for part in parts]),
        source_start=np.concatenate([[0], np.cumsum([len(part.item_counts) for part in parts])]).astype(np.int64),
        sources=tuple(names), languages=languages,
        item_ids=np.concatenate([np.asarray(part.item_ids, dtype=object) for part in parts]),
        text_codes=np.concatenate([part.text_codes.astype(code_type) + code_type(offset)  # a NumPy int64 offset
                                   for part, offset in zip(parts, code_offsets)]))       # would widen the codes
    slots = parts[0].slots if len(parts) == 1 else concatenate_datasets([part.slots for part in parts])
    return PairDataset.of(slots, table), table


@dataclass(frozen=True)
class _SourceSlots:
    """One source's slots in (item, language) order, its arrays in the source's own codes."""

    slots: Dataset  # query, passage[, negative]
    item_counts: np.ndarray  # slots per item
    language: np.ndarray  # per slot, a code into ``languages``
    languages: tuple[str, ...]
    text_codes: np.ndarray  # (slots, columns), equal codes for equal texts
    item_ids: np.ndarray


def _frame_slots(source: ParallelQA) -> _SourceSlots:
    """A DataFrame source's slots, sorted by (item, language); items numbered in sorted id order."""
    pairs = source.pairs
    if pairs.empty:
        raise ValueError(f"training source {source.name!r} has no pairs; remove it or fix its data")
    repeated = pairs.duplicated(["id", "language"])
    if repeated.any():
        first = pairs[repeated].iloc[0]
        raise ValueError(f"training source {source.name!r} has id {first['id']} in language {first['language']} "
                         "twice; keep one pair per id and language")
    ids = sorted(pairs["id"].unique())
    item_code = {item_id: i for i, item_id in enumerate(ids)}
    language_code = {lang: i for i, lang in enumerate(source.languages)}
    frame = pd.DataFrame({"item": pairs["id"].map(item_code).to_numpy(np.int64),
                          "language": pairs["language"].map(language_code).to_numpy(np.uint8),
                          "query": pairs["query"].to_numpy(), "passage": pairs["positive"].to_numpy()})
    if source.has_negatives:
        frame["negative"] = pairs["negative"].to_numpy()
    frame = frame.sort_values(["item", "language"], kind="stable", ignore_index=True)
    columns = ["query", "passage"] + (["negative"] if source.has_negatives else [])
    codes, _ = pd.factorize(frame[columns].to_numpy().ravel())
    texts = pa.Table.from_pandas(frame[columns], preserve_index=False,  # the type of a converted source's texts
                                 schema=pa.schema([(column, pa.large_string()) for column in columns]))
    return _SourceSlots(slots=Dataset(texts),
                        item_counts=np.bincount(frame["item"]), language=frame["language"].to_numpy(),
                        languages=source.languages, text_codes=codes.reshape(len(frame), len(columns)),
                        item_ids=np.asarray(ids, dtype=object))


def _arrow_slots(source: ArrowQA) -> _SourceSlots:
    """A converted source's slots: its rows (memory-mapped) without the id and language columns."""
    columns = ["query", "positive"] + (["negative"] if source.has_negatives else [])
    return _SourceSlots(slots=source.rows.select_columns(columns).rename_column("positive", "passage"),
                        item_counts=np.diff(source.item_start), language=source.language,
                        languages=source.languages, text_codes=source.text_codes, item_ids=source.item_ids)
