"""X-X-mono, X-Y and hybrid batch samplers for sentence-transformers' trainer.

With in-batch negatives, the other pairs of a batch are the negatives, so the batch's language
make-up decides what the loss teaches (the paper's §3):

- **X-X-mono**: every pair of the batch in one language, query and passage both in it; the
  language drawn uniformly among the source's languages (the paper's rule), then distinct items.
- **X-Y**: every pair has query language ≠ passage language; each item's ordered pair of
  languages is drawn uniformly among the pairs the item has (``cross_pairs="uniform"``), or with
  each language weighted ∝ 1 / (items having it) (``"balanced"``), so that a language every item
  has does not take most sides.
- **hybrid**: each batch is X-X-mono with probability α, X-Y otherwise (a coin per batch, the paper's
  rule; ``mono_draw="stratified"``: exactly round(α × batches) mono batches per epoch, in random order).
- **standard**: X-X pairs of every language shuffled into the same batches (LAReQA's X-X, what
  sentence-transformers' own sampler does over multilingual pairs): the usual multilingual fine-tuning.

sentence-transformers has no sampler that reads per-row languages (its samplers see only the
dataset), hence this one. Rules it keeps, each tested in ``tests/test_sampling.py``:

- Several sources: each batch comes from one source, drawn with probability ∝ items^(1/T)
  (T = 1: proportional to size, the abstract's "sampled based on dataset size"). A source with
  one language (or no item in two languages) only feeds mono batches, whatever the strategy.
- No batch holds two pairs of one item, nor one text twice (a query, passage or negative equal to
  another pair's): its translations, or an answer sentence shared by two questions (7,400 of XQuAD-R's
  13,090 slots share theirs), would be false negatives. A pass is read in order and a pair that would
  repeat a text in the batch is deferred, keeping its place at the front for the next batch, the way
  sentence-transformers' ``NoDuplicatesBatchSampler`` skips duplicates (it knows no languages). A
  pool whose items fall into fewer groups of shared texts than a batch is refused up front, since a
  full pass then guarantees a full batch.
- Run-out policy: every (source, language) pool and every source's X-Y pool is a shuffled pass
  over its items; a pool used up inside an epoch starts a new shuffled pass, so each item is
  used once before any is used twice, and the language draw stays uniform as the paper states
  (stopping a language instead would skew late batches towards the large languages). An epoch is
  ``items // batch_size`` batches (one pass worth of items), rounded down to a multiple of the
  number of ranks, so ``__len__`` is exact and the same in every epoch.
- Determinism: the batches are a pure function of (seed, epoch) drawn from the sampler's own
  generators, never the trainer's shared one, because under DDP every rank builds its own copy
  and must agree, and a resumed run replays the epoch to skip what it already trained on.
- Pooled negatives (``MultipleNegativesRankingLoss(gather_across_devices=True)``): the batches
  of one step on N ranks form one pooled batch, so with ``pooled_ranks=True`` one choice
  (source, strategy, language) is made per group of N consecutive batches (rank r receives batch
  r of each group) and the group's items are all distinct.
- Memory grows with slots, not language pairs: a mono pool is an array of its items (int32 below 2³¹), a
  pass one in-place shuffle of its positions, or, for a pool above ``LARGE_POOL`` (4,194,304) elements, a keyed
  Feistel permutation evaluated on the fly (the same rule in O(1) memory, with no shuffle at an epoch's start);
  a batch's pairs are drawn as (query slot, passage slot) and read as texts only when the trainer reads the
  batch (:class:`~hybridir.sampling.pairs.PairDataset`).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sentence_transformers.base.sampler import DefaultBatchSampler
from torch.utils.data import SequentialSampler

from hybridir.data.store import gather
from hybridir.sampling.pairs import PairBatch, PairDataset, PairTable
from hybridir.sampling.strategies import check_batch_size, check_cross_pairs, check_mono_draw, check_strategy

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict


class PlannedBatch(NamedTuple):
    strategy: str  # "mono", "cross" or "mixed" (standard's X-X pairs in mixed languages)
    source: int  # code into PairTable.sources
    language: int | None  # the mono batch's language code; None otherwise
    pairs: np.ndarray  # (pairs, 2): each pair's query slot and passage slot


class LanguageBatchSampler(DefaultBatchSampler):
    """Batches of one strategy each, composed from a :class:`PairTable` (see the module docstring).

    The first six arguments are the trainer's (``generator`` is ignored on purpose); the rest
    are keyword-only. ``dataset`` is the :class:`PairDataset` built with ``table``: a batch is a
    :class:`PairBatch` (a sequence of :class:`PairIndex`), which that dataset resolves to texts.
    ``alpha`` is the probability of a mono batch and applies to ``"hybrid"`` only, as does ``mono_draw``.
    ``world_size`` is the number of ranks; ``pooled_ranks`` makes one choice per group of ``world_size``
    consecutive batches. Every batch is full, so ``drop_last`` has nothing to drop.
    """

    def __init__(self, dataset: Dataset, batch_size: int, drop_last: bool = False,
                 valid_label_columns: list[str] | None = None, generator: torch.Generator | None = None,
                 seed: int = 0, *, table: PairTable, strategy: str = "hybrid", alpha: float | None = None,
                 temperature: float = 1.0, world_size: int = 1, pooled_ranks: bool = False,
                 cross_pairs: str = "uniform", mono_draw: str = "coin") -> None:
        self.alpha = check_strategy(strategy, alpha, temperature)
        check_batch_size(batch_size)
        check_cross_pairs(cross_pairs)
        check_mono_draw(mono_draw, strategy)
        self.mono_draw = mono_draw
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be an integer, at least 1, got {world_size!r}")
        _check_pair_dataset(dataset, table)
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        self.table, self.strategy, self.temperature, self.cross_pairs = table, strategy, temperature, cross_pairs
        self.world_size, self.group_size = world_size, world_size if pooled_ranks else 1
        # A pair's clash keys: its item (offset past the text codes) and its texts; a batch holds each key once.
        self._item_key_offset = 0 if table.text_codes is None else int(table.text_codes.max(initial=-1)) + 1
        self._pools = [_SourcePools(table, code) for code in range(len(table.sources))]
        self._check_pool_sizes()
        sizes = np.array([pool.n_items for pool in self._pools], dtype=np.float64)
        log_weights = np.log(sizes) / temperature  # ∝ size^(1/T), in log space: a small T would overflow
        weights = np.exp(log_weights - log_weights.max())
        self.source_probabilities = weights / weights.sum()
        # Generator.choice(p=...) draws one random() and searches this cdf, after checks that cost more than the draw
        self._source_cdf = self.source_probabilities.cumsum()
        self._source_cdf /= self._source_cdf[-1]
        groups = int(sizes.sum()) // (batch_size * self.group_size)
        self._length = groups * self.group_size // world_size * world_size
        if self._length == 0:
            raise ValueError(f"{int(sizes.sum())} items cannot fill one step of {world_size} × {batch_size} pairs; "
                             "lower the batch size or add training data")

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[PairBatch]:
        for batch in self.plan(self.epoch):
            yield PairBatch(batch.pairs)

    def plan(self, epoch: int) -> Iterator[PlannedBatch]:
        """The batches of ``epoch``, with the choice behind each."""
        coin, choice, data = (np.random.default_rng(s) for s in np.random.SeedSequence([self.seed, epoch]).spawn(3))
        size = self.batch_size * self.group_size
        if self.strategy == "standard":
            mixed_cycles = [_Cycle(pool.n_slots, data, self._clash_keys) for pool in self._pools]
            for _ in range(self._length // self.group_size):
                source = self._draw_source(choice)
                pairs = mixed_cycles[source].take(size, self._pools[source].slot_pairs)
                for start in range(0, size, self.batch_size):
                    yield PlannedBatch("mixed", source, None, pairs[start:start + self.batch_size])
            return
        mono_cycles = [{lang: _Cycle(len(items), data, self._clash_keys) for lang, items in pool.mono_items.items()}
                       for pool in self._pools]
        cross_cycles = [_Cycle(len(pool.cross_items), data, self._clash_keys) if len(pool.cross_items) else None
                        for pool in self._pools]
        groups = self._length // self.group_size
        if self.mono_draw == "stratified":  # exactly round(α × groups) mono choices, in a random order
            tosses = coin.permutation(np.arange(groups) < round(self.alpha * groups))
        else:  # the coin is always tossed, from its own stream, so α = 0 and α = 1 replay the pure strategies
            tosses = coin.random(groups) < self.alpha
        for toss in tosses.tolist():
            source = self._draw_source(choice)
            pool = self._pools[source]
            mono = toss or cross_cycles[source] is None
            if mono:
                language = pool.languages[int(choice.integers(len(pool.languages)))]
                pairs = mono_cycles[source][language].take(
                    size, lambda positions: pool.mono_pairs(language, positions))
                strategy = "mono"
            else:
                language, strategy = None, "cross"
                pairs = cross_cycles[source].take(size, lambda positions: self._cross_pairs(pool, positions, data))
            for start in range(0, size, self.batch_size):
                yield PlannedBatch(strategy, source, language, pairs[start:start + self.batch_size])

    def make_up(self, n_batches: int) -> dict:
        """What the first ``n_batches`` batches (epoch after epoch) are made of: strategies, sources,
        mono languages and the X-Y (query-passage) language pairs."""
        strategies, sources, mono_languages, pairs_used = Counter(), Counter(), Counter(), Counter()
        languages = np.asarray(self.table.languages, dtype=object)
        epoch, seen = 0, 0
        while seen < n_batches:
            for batch in itertools.islice(self.plan(epoch), n_batches - seen):
                seen += 1
                strategies[batch.strategy] += 1
                sources[self.table.sources[batch.source]] += 1
                if batch.strategy == "mono":
                    mono_languages[self.table.languages[batch.language]] += 1
                else:
                    query, passage = (languages[self.table.language[batch.pairs[:, side]]] for side in (0, 1))
                    pairs_used.update(f"{q}-{p}" for q, p in zip(query, passage))
            epoch += 1
        return {"batches": n_batches, "batches_per_epoch": self._length, "strategy": dict(strategies),
                "source": dict(sources), "mono_language": dict(sorted(mono_languages.items())),
                "cross_language_pairs": dict(pairs_used.most_common())}

    def _draw_source(self, rng: np.random.Generator) -> int:
        """rng.choice(len(sources), p=source_probabilities), the same draw from the same stream."""
        return int(np.searchsorted(self._source_cdf, rng.random(), side="right"))

    def _clash_keys(self, pairs: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(pairs, keys): each pair's item, its query's text and its passage's (and negative's) texts."""
        items = items.astype(np.int64) + self._item_key_offset
        codes = self.table.text_codes
        if codes is None:
            return items[:, None]
        keys = np.empty((len(items), 1 + codes.shape[1]), dtype=np.int64)
        keys[:, 0], keys[:, 1], keys[:, 2:] = items, codes[pairs[:, 0], 0], codes[pairs[:, 1], 1:]
        return keys

    def _cross_pairs(self, pool: _SourcePools, positions: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One pair per item: an ordered pair of two of its languages (uniformly, or balanced); and the items."""
        items = pool.cross_items[positions]
        starts = self.table.item_start[items]
        if self.cross_pairs == "balanced":
            counts = self.table.item_start[items + 1] - starts
            query, passage = _weighted_pair(self.table.language, pool.language_weight, starts, counts, rng)
        else:
            counts = len(pool.languages) if pool.every_language else self.table.item_start[items + 1] - starts
            draws = rng.random((2, len(positions)))  # = two calls of rng.random(n), in stream order
            query = (draws[0] * counts).astype(np.int64)  # truncation = floor: the draws are ≥ 0
            passage = (draws[1] * (counts - 1)).astype(np.int64)
            passage += passage >= query  # skip the query's own language
        pairs = np.empty((len(items), 2), dtype=np.int64)
        pairs[:, 0], pairs[:, 1] = starts + query, starts + passage
        return pairs, items

    def _check_pool_sizes(self) -> None:
        needed = self.batch_size * self.group_size
        unit = f"batch_size {self.batch_size}" + (f" × {self.group_size} ranks" if self.group_size > 1 else "")
        table = self.table
        if self.strategy == "standard":
            for name, pool in zip(table.sources, self._pools):
                groups = pool.groups(pool.source_slots, pool.n_items, needed, by_item=True)
                if groups < needed:
                    raise ValueError(f"source {name!r} has {pool.n_slots} same-language pairs in {groups} groups of "
                                     f"shared texts and items, fewer than {unit}: a batch could not be filled with "
                                     "distinct items and texts; lower the batch size")
            return
        if self.alpha < 1 and not any(len(pool.cross_items) for pool in self._pools):
            raise ValueError(f"strategy {self.strategy!r} needs X-Y batches, but no training source has an item in "
                             "two languages; use strategy 'mono' or add multilingual data")
        for name, pool in zip(table.sources, self._pools):
            multilingual = len(pool.cross_items) > 0
            if self.alpha > 0 or not multilingual:
                for lang, items in pool.mono_items.items():
                    groups = pool.groups(lambda lang=lang: pool.mono_slots(lang), len(items), needed, by_item=False)
                    if groups < needed:
                        raise ValueError(
                            f"language {table.languages[lang]!r} of source {name!r} has {len(items)} items in "
                            f"{groups} groups of shared texts, fewer than {unit}: a mono batch could not be filled "
                            "with distinct items and texts; lower the batch size or leave that language out of the "
                            "training data")
            if self.alpha < 1 and multilingual:
                groups = pool.groups(pool.cross_slots, len(pool.cross_items), needed, by_item=True)
                if groups < needed:
                    raise ValueError(f"source {name!r} has {len(pool.cross_items)} items in two or more languages in "
                                     f"{groups} groups of shared texts, fewer than {unit}: an X-Y batch could not be "
                                     "filled with distinct items and texts; lower the batch size")


class LanguageSamplerFactory:
    """A ``batch_sampler=`` factory for ``SentenceTransformerTrainingArguments``.

    The trainer calls it once per dataset it batches, training and evaluation alike, with nothing that
    says which, so the factory recognises the datasets it was built from: a :class:`PairDataset` by the table
    it was laid out with, its row order, columns and a sample of its rows (``with_format`` copies included); a
    plain evaluation set by the texts of every row.

    - a training dataset (``train_dataset``; a ``DatasetDict`` with one :class:`PairTable` per
      sub-dataset, batched per sub-dataset and mixed by the trainer's multi-dataset sampler) gets a
      :class:`LanguageBatchSampler`, recorded in :attr:`built` for callbacks and run records;
    - an evaluation dataset named in ``eval_dataset`` gets the same strategy in a fixed order (epoch 0
      of ``eval_seed``, at every evaluation) when ``eval_table`` is given, else sentence-transformers'
      sequential batches, so validation losses compare across evaluations;
    - a dataset that shares rows with, or has the length of, a training dataset but is not it (changed
      after the factory was built: ``.map``, ``.select``, ``.shuffle``, ``.filter``, ``train_test_split``; or a
      plain ``Dataset`` copy, which reads slots, not pairs) is refused: its rows no longer line up with the table;
    - any other dataset gets sequential batches and a one-line warning, which counts the batches that
      then hold a text twice (false negatives in the eval loss).

    The world size is read when the trainer calls the factory, after accelerate has set up the process
    group. An epoch is ``items // batch_size`` batches, not ``len(dataset) // batch_size``: a pair dataset has
    one row per (item, language) slot, so ``num_train_epochs=1`` on MLQA-R's 4,199 slots (1,148 items) is 35 steps
    of 32; set ``max_steps`` to say how long to train.
    """

    def __init__(self, train_dataset: Dataset | DatasetDict, table: PairTable | Mapping[str, PairTable], *,
                 strategy: str = "hybrid", alpha: float | None = None, temperature: float = 1.0,
                 pooled_ranks: bool = False, cross_pairs: str = "uniform", mono_draw: str = "coin",
                 eval_dataset: Dataset | DatasetDict | None = None,
                 eval_table: PairTable | Mapping[str, PairTable] | None = None, eval_seed: int = 0) -> None:
        check_strategy(strategy, alpha, temperature)
        check_cross_pairs(cross_pairs)
        check_mono_draw(mono_draw, strategy)
        if table is None:
            raise ValueError("pass the training data's PairTable (build_pair_dataset returns it beside the dataset)")
        self.options = {"strategy": strategy, "alpha": alpha, "temperature": temperature, "pooled_ranks": pooled_ranks,
                        "cross_pairs": cross_pairs, "mono_draw": mono_draw}
        self.train_datasets = _known_datasets(train_dataset, table, "train_dataset", "table")
        self.eval_datasets = [] if eval_dataset is None else _known_datasets(eval_dataset, eval_table,
                                                                               "eval_dataset", "eval_table")
        self.eval_seed = eval_seed
        self.built: list[LanguageBatchSampler] = []

    def __getstate__(self) -> dict:
        """The trainer pickles its arguments, this factory included, into every checkpoint
        (``training_args.bin``): keep the options there, not a copy of the training data."""
        return {"options": self.options, "train_datasets": None, "eval_datasets": [], "eval_seed": self.eval_seed,
                "built": []}

    def __call__(self, dataset: Dataset, batch_size: int, drop_last: bool,
                 valid_label_columns: list[str] | None = None, generator: torch.Generator | None = None,
                 seed: int = 0) -> DefaultBatchSampler:
        if self.train_datasets is None:
            raise ValueError("this sampler factory was unpickled without its training data; build a new "
                             "LanguageSamplerFactory(dataset, table, ...)")
        for known in self.train_datasets:
            if known.is_carried_by(dataset):
                sampler = LanguageBatchSampler(dataset, batch_size, drop_last, valid_label_columns, generator, seed,
                                               table=known.table, world_size=_world_size(), **self.options)
                self.built.append(sampler)
                return sampler
        for known in self.eval_datasets:
            if known.is_carried_by(dataset):
                if known.table is None:
                    return _sequential(dataset, batch_size, drop_last, valid_label_columns, seed)
                return _FixedOrderSampler(dataset, batch_size, drop_last, valid_label_columns, None, self.eval_seed,
                                          table=known.table, world_size=_world_size(), **self.options)
        for known in self.train_datasets:
            if known.shares_rows_with(dataset):
                raise ValueError(
                    f"the trainer passed a dataset of {len(dataset)} rows that is not the training dataset "
                    f"{known.name} of {known.length} rows this factory was built from but shares its rows or "
                    "length (changed after the factory was built, or a plain Dataset copy, which reads slots, not "
                    "pairs?): pass the PairDataset that build_pair_dataset returned as train_dataset and build "
                    "LanguageSamplerFactory from it, select or split the ParallelQA pairs by id before "
                    "build_pair_dataset, and name an evaluation set with eval_dataset=")
        repeats = _batches_with_repeats(dataset, batch_size)
        warnings.warn(f"hybridir: a dataset of {len(dataset)} rows that LanguageSamplerFactory was not built from "
                      f"gets sequential batches, {repeats} of {math.ceil(len(dataset) / batch_size)} holding a text "
                      "twice; name it with eval_dataset= (and eval_table= to batch it like training), or build the "
                      "factory from it if it is training data", stacklevel=2)
        return _sequential(dataset, batch_size, drop_last, valid_label_columns, seed)


class _FixedOrderSampler(LanguageBatchSampler):
    """An evaluation set batched like training, in the same order at every evaluation (epoch 0)."""

    def set_epoch(self, epoch: int) -> None:
        pass


class _RowTexts:
    """A dataset's rows as one hash per row (in order), to recognise it later."""

    def __init__(self, dataset: Dataset) -> None:
        frame = dataset.to_pandas()  # raw rows: a format or a trainer's transform (dataset_name) is not read
        self.columns = tuple(frame.columns)
        try:
            self.hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        except TypeError:  # a column of lists or dicts: hash its text form
            self.hashes = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, _RowTexts) and self.columns == other.columns
                and np.array_equal(self.hashes, other.hashes))

    def overlaps(self, other: _RowTexts) -> bool:
        return bool(np.isin(other.hashes, self.hashes).any())


# Rows hashed to tell a changed copy of a training dataset from an unrelated one; past this a copy is told by its
# length only (hashing mMARCO's slots would read every text of the corpus).
_HASHED_ROWS = 2_000_000
_SAMPLED_ROWS = 16


class _KnownDataset:
    """A dataset the factory was built from, and how to tell whether a dataset the trainer passes is it."""

    def __init__(self, name: str, dataset: Dataset, table: PairTable | None) -> None:
        self.name, self.table, self.length = name, table, len(dataset)
        self.columns = tuple(dataset.column_names)
        self._dataset, self._rows = dataset, None
        if table is not None:
            _check_pair_dataset(dataset, table, name)
            self._sample = np.unique(np.linspace(0, self.length - 1, _SAMPLED_ROWS).astype(np.int64))
            self._sample_rows = _raw_rows(dataset, self._sample)

    @property
    def rows(self) -> _RowTexts:
        if self._rows is None:
            self._rows = _RowTexts(self._dataset)
        return self._rows

    def is_carried_by(self, dataset: Dataset) -> bool:
        if self.table is None:
            return _RowTexts(dataset) == self.rows
        return (isinstance(dataset, PairDataset) and dataset.table_fingerprint == self.table.fingerprint
                and dataset._indices is None and len(dataset) == self.length
                and tuple(dataset.column_names) == self.columns and _raw_rows(dataset, self._sample) == self._sample_rows)

    def shares_rows_with(self, dataset: Dataset) -> bool:
        if len(dataset) == self.length or (self.table is not None and isinstance(dataset, PairDataset)
                                           and dataset.table_fingerprint == self.table.fingerprint):
            return True
        return self.length <= _HASHED_ROWS and self.rows.overlaps(_RowTexts(dataset))


def _raw_rows(dataset: Dataset, rows: np.ndarray) -> list[dict]:
    """``rows`` of ``dataset``'s Arrow table as stored (no format, no transform); valid without an indices map."""
    return gather(dataset.data.table, rows).to_pylist()


def _known_datasets(dataset: Dataset | DatasetDict, table: PairTable | Mapping[str, PairTable] | None,
                    dataset_argument: str, table_argument: str) -> list[_KnownDataset]:
    """Each (sub-)dataset with its table, checked to line up; a ``DatasetDict`` takes a mapping of tables."""
    from datasets import DatasetDict

    if isinstance(dataset, DatasetDict):
        if table is not None and (not isinstance(table, Mapping) or set(table) != set(dataset)):
            raise ValueError(f"{dataset_argument} is a DatasetDict of {', '.join(dataset)}; pass {table_argument} as "
                             "a dict with one PairTable per name (each from build_pair_dataset)")
        named = [(f"{dataset_argument}[{name!r}]", part, None if table is None else table[name])
                 for name, part in dataset.items()]
    else:
        if isinstance(table, Mapping):
            raise ValueError(f"{table_argument} is a dict but {dataset_argument} is one Dataset; pass its PairTable")
        named = [(dataset_argument, dataset, table)]
    return [_KnownDataset(name, part, part_table) for name, part, part_table in named]


def _batches_with_repeats(dataset: Dataset, batch_size: int) -> int:
    """How many batches of consecutive rows hold one text twice (labels are numbers: not texts)."""
    texts = dataset.to_pandas().select_dtypes(exclude=["number", "bool"]).to_numpy()
    frame = pd.DataFrame({"batch": np.repeat(np.arange(len(texts)) // batch_size, texts.shape[1]),
                          "text": pd.factorize(texts.ravel())[0]})
    return int(frame[frame.duplicated()].batch.nunique())


def _sequential(dataset: Dataset, batch_size: int, drop_last: bool, valid_label_columns: list[str] | None,
                seed: int) -> DefaultBatchSampler:
    return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last,
                               valid_label_columns=valid_label_columns, seed=seed)


def _weighted_pair(language: np.ndarray, weight: np.ndarray, starts: np.ndarray, counts: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per item, two distinct language slots drawn without replacement ∝ the languages' weights
    (Gumbel top-2: the largest and second largest of log weight + Gumbel noise)."""
    slots = np.arange(counts.max())
    valid = slots[None, :] < counts[:, None]
    index = np.where(valid, starts[:, None] + slots[None, :], 0)
    keys = np.log(weight[language[index]]) + rng.gumbel(size=index.shape)
    order = np.argsort(-np.where(valid, keys, -np.inf), axis=1, kind="stable")
    return order[:, 0], order[:, 1]


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def _check_pair_dataset(dataset: Dataset, table: PairTable, name: str = "the dataset") -> None:
    """A sampler's batches are PairIndex sequences: only the PairDataset laid out with ``table`` reads them."""
    if not isinstance(dataset, PairDataset):
        raise ValueError(f"{name} is a {type(dataset).__name__}, but language batches need a PairDataset, which "
                         "composes pairs from its slots when read: pass the dataset build_pair_dataset returned")
    if len(dataset) != len(table) or dataset.table_fingerprint != table.fingerprint:
        raise ValueError(f"{name} has {len(dataset)} rows but was not laid out with its pair table ({len(table)} "
                         "slots); pass the dataset and table of one build_pair_dataset call")


def _slot_index(n: int) -> np.dtype:
    """The smallest integer type that numbers ``n`` slots: a pool of mMARCO's size halves in int32."""
    return np.dtype(np.int32) if n < np.iinfo(np.int32).max else np.dtype(np.int64)


class _SourcePools:
    """One source's pools: its slots (standard), its items per language (mono), its items in two or more
    languages (X-Y); and how many groups of shared texts a pool falls into (a batch can always take one element
    of every group)."""

    def __init__(self, table: PairTable, code: int) -> None:
        self.table = table
        first_item, end_item = table.source_start[code], table.source_start[code + 1]
        self.first_slot, end_slot = int(table.item_start[first_item]), int(table.item_start[end_item])
        self.n_items, self.n_slots = int(end_item - first_item), end_slot - self.first_slot
        languages = table.language[self.first_slot:end_slot]
        slots_per_language = _counts(languages, len(table.languages))
        self.languages = [int(lang) for lang in np.flatnonzero(slots_per_language)]
        # items per language, in item order (a pool's element is its item: its slot is found in the item's short
        # language run, cheaper than searching the slot's item); standard's pool is every slot
        self.mono_items = {lang: table.item_of(_shifted(np.flatnonzero(languages == lang), self.first_slot)
                                               ).astype(_slot_index(end_item)) for lang in self.languages}
        counts = np.diff(table.item_start[first_item:end_item + 1])  # each item's number of languages
        self.max_languages = int(counts.max())
        # every item in every language (mMARCO, XQuAD-R): an item's slot in a language is at a fixed offset
        self.every_language = int(counts.min()) == len(self.languages)
        self.cross_items = (np.flatnonzero(counts >= 2) + first_item).astype(_slot_index(end_item))
        # "balanced" X-Y pairs weigh a language by 1 / (multilingual items having it): every slot's language but
        # those of the items in one language
        single = table.item_start[first_item:end_item][counts == 1]
        have = slots_per_language - _counts(table.language[single], len(table.languages))
        self.language_weight = 1.0 / np.maximum(have, 1)

    def source_slots(self) -> np.ndarray:
        return np.arange(self.first_slot, self.first_slot + self.n_slots)

    def cross_slots(self) -> np.ndarray:
        """The slots of the items in two or more languages, in order."""
        starts = self.table.item_start[self.cross_items]
        counts = self.table.item_start[self.cross_items + 1] - starts
        offsets = np.cumsum(counts) - counts  # where each item's run begins in the result
        return np.repeat(starts - offsets, counts) + np.arange(counts.sum())

    def slot_pairs(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standard's draw: the X-X pair of each slot of the source, and the slots' items."""
        slots = positions + self.first_slot
        return _same_slot(slots), self.table.item_of(slots)

    def mono_pairs(self, language: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A mono draw: the X-X pair in ``language`` of the items at ``positions`` of its pool, and the items."""
        items = self.mono_items[language][positions]
        return _same_slot(self.slot_of(items, language)), items

    def mono_slots(self, language: int) -> np.ndarray:
        return self.slot_of(self.mono_items[language], language)

    def slot_of(self, items: np.ndarray, language: int) -> np.ndarray:
        """The slot of each item in ``language`` (which each has), found in the item's run of slots."""
        starts = self.table.item_start[items]
        if self.every_language:
            return starts + self.languages.index(language)
        width = np.arange(self.max_languages)
        inside = width[None, :] < (self.table.item_start[items + 1] - starts)[:, None]
        window = np.where(inside, starts[:, None] + width[None, :], 0)
        return starts + np.argmax(inside & (self.table.language[window] == language), axis=1)

    def groups(self, pool_slots: Callable[[], np.ndarray], n_elements: int, needed: int, by_item: bool) -> int:
        """The connected components of a pool's ``n_elements`` elements (its slots, or with ``by_item`` their
        items) linked by shared texts, or a lower bound on them when that bound already reaches ``needed``.

        A greedy scan over every element leaves each component with at least one taken element (one not taken
        clashes with a taken one, hence shares its component), so a full pass fills any batch of at most this
        many. Without text codes no two elements share a text, and the pool's slots are never listed."""
        codes = self.table.text_codes
        if codes is None or n_elements < needed:
            return n_elements
        slots = pool_slots()
        keys = codes[slots].astype(np.int64)
        # each repeat of a key joins at most two components; counted over slots first (cheap), which overcounts
        # an item whose own slots share a text, so a bound short of ``needed`` is counted again per item
        merges = int(np.maximum(np.bincount(keys.ravel()) - 1, 0).sum())
        if n_elements - merges >= needed:
            return n_elements - merges
        elements = self.table.item_of(slots) if by_item else np.arange(len(slots))
        if by_item:  # an item's own slots sharing a text link nothing new: count each (item, text) once
            span = int(codes.max()) + 1  # pd.unique hashes; np.unique took 24 s on 14M (item, text) pairs
            pairs = pd.unique(np.repeat(elements, keys.shape[1]) * span + keys.ravel()) % span
            merges = int(np.maximum(np.bincount(pairs) - 1, 0).sum())
            if n_elements - merges >= needed:
                return n_elements - merges
        return _components(elements, codes[slots])


def _components(elements: np.ndarray, keys: np.ndarray) -> int:
    """The connected components of ``elements`` linked by shared keys (row i of ``keys`` is element i's)."""
    element_codes, element_index = np.unique(elements, return_inverse=True)
    key_codes, key_index = np.unique(keys.ravel(), return_inverse=True)
    n = len(element_codes) + len(key_codes)
    edges = coo_matrix((np.ones(keys.size), (np.repeat(element_index, keys.shape[1]),
                                              len(element_codes) + key_index)), shape=(n, n))
    _, labels = connected_components(edges, directed=False)
    return len(np.unique(labels[:len(element_codes)]))


def _counts(codes: np.ndarray, n: int) -> np.ndarray:
    """np.bincount of uint8 codes a block at a time: bincount casts its input to int64, 2.2 GB for mMARCO's slots."""
    block = 1 << 24
    return sum((np.bincount(codes[start:start + block], minlength=n) for start in range(0, len(codes), block)),
               np.zeros(n, dtype=np.int64))


def _shifted(positions: np.ndarray, offset: int) -> np.ndarray:
    positions += offset  # in place: a pool of mMARCO's size is 320 MB as int64
    return positions


def _same_slot(slots: np.ndarray) -> np.ndarray:
    """X-X pairs: each slot as its own query and passage."""
    return np.repeat(slots.astype(np.int64), 2).reshape(-1, 2)


# A pass over a pool larger than this is a keyed Feistel permutation computed on the fly, not a stored shuffle: the
# same rule (each element once per pass, in a random order) in O(1) memory and with no shuffle at an epoch's start
# (shuffling mMARCO's eight 40M-element pools took 20 s and 1.3 GB). LAReQA's pools, far smaller, keep the shuffle.
LARGE_POOL = 1 << 22
_FEISTEL_ROUNDS = 6
_FEISTEL_CHUNK = 1 << 16


class _Cycle:
    """Shuffled passes over a pool's positions ``0..size-1``, read in order, each once per pass; a new pass when
    one is used up.

    ``take`` fills a draw greedily: a position whose pair would repeat a key of the draw (an item, a text) is
    deferred and keeps its place at the front of the queue, so it is used before the rest of its pass. The queue
    is the deferred positions, then the pass from ``cursor`` on.
    """

    def __init__(self, size: int, rng: np.random.Generator,
                 clash_keys: Callable[[np.ndarray, np.ndarray], np.ndarray]):
        self.size, self.rng, self.clash_keys = size, rng, clash_keys
        self.front: list[int] = []
        self._new_pass()

    def _new_pass(self) -> None:
        self.cursor = 0
        if self.size > LARGE_POOL:
            self.order, self.keys = None, self.rng.integers(0, 1 << 63, size=_FEISTEL_ROUNDS, dtype=np.uint64)
            self.computed_from, self.computed = 0, np.empty(0, dtype=np.int64)
        else:  # = rng.permutation(size), whose swaps do not depend on the dtype, without its int64 copy
            self.order = np.arange(self.size, dtype=_slot_index(self.size))
            self.rng.shuffle(self.order)

    def _pass_positions(self, start: int, stop: int) -> np.ndarray:
        if self.order is not None:
            return self.order[start:stop]
        end = self.computed_from + len(self.computed)
        if not self.computed_from <= start <= stop <= end:  # evaluated a chunk at a time: numpy pays per call
            end = min(self.size, max(stop, start + _FEISTEL_CHUNK))
            self.computed_from = start
            self.computed = _feistel(np.arange(start, end, dtype=np.uint64), self.size, self.keys)
        return self.computed[start - self.computed_from:stop - self.computed_from]

    def take(self, n: int, pairs_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """``n`` pairs whose keys are all distinct; ``pairs_of`` maps positions to (query slot, passage slot)
        pairs and their items (it draws an X-Y pair's languages)."""
        taken: list[np.ndarray] = []  # blocks of pairs, concatenated once
        count = 0
        used: set[int] = set()
        deferred: list[int] = []
        new_pass = False
        while count < n:
            if not self.front and self.cursor == self.size:
                if new_pass:  # the pool checks make this unreachable: a whole pass fills a batch
                    raise RuntimeError(f"a whole pass filled only {count} of {n} pairs with distinct texts")
                self._new_pass()
                new_pass = True
            block = self._pop(n - count)
            pairs, items = pairs_of(block)
            keys = self.clash_keys(pairs, items)
            flat = keys.ravel().tolist()
            if len(set(flat)) == len(flat) and used.isdisjoint(flat):  # nothing clashes: the greedy scan takes all
                taken.append(pairs)
                count += len(pairs)
                used.update(flat)
                continue
            kept = []
            for row, (position, row_keys) in enumerate(zip(block.tolist(), keys.tolist())):
                if used.isdisjoint(row_keys):
                    kept.append(row)
                    used.update(row_keys)
                else:
                    deferred.append(position)
            taken.append(pairs[kept])
            count += len(kept)
        self.front[:0] = deferred
        return np.concatenate(taken).astype(np.int64, copy=False).reshape(-1, 2)

    def _pop(self, wanted: int) -> np.ndarray:
        """Up to ``wanted`` positions from the front of the queue."""
        from_front = self.front[:wanted]
        del self.front[:wanted]
        rest = min(wanted - len(from_front), self.size - self.cursor)
        block = self._pass_positions(self.cursor, self.cursor + rest).astype(np.int64)
        self.cursor += rest
        return np.concatenate([np.asarray(from_front, dtype=np.int64), block]) if from_front else block


def _feistel(values: np.ndarray, size: int, keys: np.ndarray) -> np.ndarray:
    """A keyed pseudo-random permutation of ``0..size-1`` evaluated at ``values``: a balanced Feistel network on the
    smallest even number of bits that covers ``size``, walking the cycle until the result falls below ``size``
    (a bijection on the larger domain restricted this way stays one on ``0..size-1``)."""
    half = max(1, (int(size - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)
    shift = np.uint64(half)
    result = values.copy()
    pending = np.ones(len(values), dtype=bool)
    while pending.any():
        x = result[pending]
        left, right = x >> shift, x & mask
        for key in keys:
            left, right = right, left ^ (_mix(right ^ key) & mask)
        result[pending] = (left << shift) | right
        pending[pending] = result[pending] >= size
    return result.astype(np.int64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective scramble of 64-bit words (the Feistel round function)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
