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
  another row's): its translations, or an answer sentence shared by two questions (7,400 of XQuAD-R's
  13,090 rows share theirs), would be false negatives. A pass is read in order and a row that would
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
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sentence_transformers.base.sampler import DefaultBatchSampler
from torch.utils.data import SequentialSampler

from hybridir.sampling.pairs import PairTable
from hybridir.sampling.strategies import check_batch_size, check_cross_pairs, check_mono_draw, check_strategy

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict


class PlannedBatch(NamedTuple):
    strategy: str  # "mono", "cross" or "mixed" (standard's X-X pairs in mixed languages)
    source: int  # code into PairTable.sources
    language: int | None  # the mono batch's language code; None otherwise
    rows: np.ndarray  # dataset rows


class LanguageBatchSampler(DefaultBatchSampler):
    """Batches of one strategy each, composed from a :class:`PairTable` (see the module docstring).

    The first six arguments are the trainer's (``generator`` is ignored on purpose); the rest
    are keyword-only. ``alpha`` is the probability of a mono batch and applies to ``"hybrid"``
    only, as does ``mono_draw``. ``world_size`` is the number of ranks; ``pooled_ranks`` makes one choice per group of
    ``world_size`` consecutive batches. Every batch is full, so ``drop_last`` has nothing to drop.
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
        if len(dataset) != len(table):
            raise ValueError(f"the dataset has {len(dataset)} rows but the pair table {len(table)}; build both "
                             "with build_pair_dataset from the same sources")
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        self.table, self.strategy, self.temperature, self.cross_pairs = table, strategy, temperature, cross_pairs
        self.world_size, self.group_size = world_size, world_size if pooled_ranks else 1
        # A row's clash keys: its item (offset past the text codes) and its texts; a batch holds each key once.
        keys = np.column_stack([table.item + int(table.text_codes.max(initial=-1)) + 1, table.text_codes])
        self._row_keys = keys.tolist()
        self._pools = [_SourcePools(table, code, keys) for code in range(len(table.sources))]
        self._check_pool_sizes()
        sizes = np.array([pool.n_items for pool in self._pools], dtype=np.float64)
        log_weights = np.log(sizes) / temperature  # ∝ size^(1/T), in log space: a small T would overflow
        weights = np.exp(log_weights - log_weights.max())
        self.source_probabilities = weights / weights.sum()
        groups = int(sizes.sum()) // (batch_size * self.group_size)
        self._length = groups * self.group_size // world_size * world_size
        if self._length == 0:
            raise ValueError(f"{int(sizes.sum())} items cannot fill one step of {world_size} × {batch_size} pairs; "
                             "lower the batch size or add training data")
        n_languages = len(table.languages)
        self._keys = (table.item * n_languages + table.query_language) * n_languages + table.passage_language

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.plan(self.epoch):
            yield batch.rows.tolist()

    def plan(self, epoch: int) -> Iterator[PlannedBatch]:
        """The batches of ``epoch``, with the choice behind each."""
        coin, choice, data = (np.random.default_rng(s) for s in np.random.SeedSequence([self.seed, epoch]).spawn(3))
        size = self.batch_size * self.group_size
        if self.strategy == "standard":
            mixed_cycles = [_Cycle(pool.mono_all, data, self._row_keys) for pool in self._pools]
            for _ in range(self._length // self.group_size):
                source = int(choice.choice(len(self._pools), p=self.source_probabilities))
                rows = mixed_cycles[source].take(size, _same_rows)
                for start in range(0, size, self.batch_size):
                    yield PlannedBatch("mixed", source, None, rows[start:start + self.batch_size])
            return
        mono_cycles = [{lang: _Cycle(rows, data, self._row_keys) for lang, rows in pool.mono_rows.items()}
                       for pool in self._pools]
        cross_cycles = [_Cycle(np.arange(len(pool.cross_items)), data, self._row_keys) if len(pool.cross_items)
                        else None for pool in self._pools]
        groups = self._length // self.group_size
        if self.mono_draw == "stratified":  # exactly round(α × groups) mono choices, in a random order
            tosses = coin.permutation(np.arange(groups) < round(self.alpha * groups))
        else:  # the coin is always tossed, from its own stream, so α = 0 and α = 1 replay the pure strategies
            tosses = coin.random(groups) < self.alpha
        for toss in tosses.tolist():
            source = int(choice.choice(len(self._pools), p=self.source_probabilities))
            pool = self._pools[source]
            mono = toss or cross_cycles[source] is None
            if mono:
                language = pool.languages[int(choice.integers(len(pool.languages)))]
                rows = mono_cycles[source][language].take(size, _same_rows)
                strategy = "mono"
            else:
                language, strategy = None, "cross"
                rows = cross_cycles[source].take(size, lambda positions: self._cross_rows(pool, positions, data))
            for start in range(0, size, self.batch_size):
                yield PlannedBatch(strategy, source, language, rows[start:start + self.batch_size])

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
                    query = languages[self.table.query_language[batch.rows]]
                    passage = languages[self.table.passage_language[batch.rows]]
                    pairs_used.update(f"{q}-{p}" for q, p in zip(query, passage))
            epoch += 1
        return {"batches": n_batches, "batches_per_epoch": self._length, "strategy": dict(strategies),
                "source": dict(sources), "mono_language": dict(sorted(mono_languages.items())),
                "cross_language_pairs": dict(pairs_used.most_common())}

    def _cross_rows(self, pool: _SourcePools, positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One row per item: an ordered pair of two of its languages (uniformly, or balanced)."""
        starts, counts = pool.language_start[positions], pool.language_count[positions]
        if self.cross_pairs == "balanced":
            query, passage = _weighted_pair(pool, starts, counts, rng)
        else:
            query = np.floor(rng.random(len(positions)) * counts).astype(np.int64)
            passage = np.floor(rng.random(len(positions)) * (counts - 1)).astype(np.int64)
            passage += passage >= query  # skip the query's own language
        n_languages = len(self.table.languages)
        keys = ((pool.cross_items[positions] * n_languages + pool.item_languages[starts + query]) * n_languages
                + pool.item_languages[starts + passage])
        return np.searchsorted(self._keys, keys)

    def _check_pool_sizes(self) -> None:
        needed = self.batch_size * self.group_size
        unit = f"batch_size {self.batch_size}" + (f" × {self.group_size} ranks" if self.group_size > 1 else "")
        if self.strategy == "standard":
            for name, pool in zip(self.table.sources, self._pools):
                if pool.mixed_groups < needed:
                    raise ValueError(f"source {name!r} has {len(pool.mono_all)} same-language pairs in "
                                     f"{pool.mixed_groups} groups of shared texts and items, fewer than {unit}: a "
                                     "batch could not be filled with distinct items and texts; lower the batch size")
            return
        if self.alpha < 1 and not any(len(pool.cross_items) for pool in self._pools):
            raise ValueError(f"strategy {self.strategy!r} needs X-Y batches, but no training source has an item in "
                             "two languages; use strategy 'mono' or add multilingual data")
        for name, pool in zip(self.table.sources, self._pools):
            multilingual = len(pool.cross_items) > 0
            if self.alpha > 0 or not multilingual:
                for lang, rows in pool.mono_rows.items():
                    if pool.mono_groups[lang] < needed:
                        raise ValueError(
                            f"language {self.table.languages[lang]!r} of source {name!r} has {len(rows)} items "
                            f"in {pool.mono_groups[lang]} groups of shared texts, fewer than {unit}: a mono batch "
                            "could not be filled with distinct items and texts; lower the batch size or leave "
                            "that language out of the training data")
            if self.alpha < 1 and multilingual and pool.cross_groups < needed:
                raise ValueError(f"source {name!r} has {len(pool.cross_items)} items in two or more languages in "
                                 f"{pool.cross_groups} groups of shared texts, fewer than {unit}: an X-Y batch "
                                 "could not be filled with distinct items and texts; lower the batch size")


class LanguageSamplerFactory:
    """A ``batch_sampler=`` factory for ``SentenceTransformerTrainingArguments``.

    The trainer calls it once per dataset it batches, training and evaluation alike, with nothing that
    says which, so the factory recognises the datasets it was built from by their rows (the texts of
    every row, in order, whatever object carries them: a copy, ``with_format``, ``flatten_indices``,
    a reload from disk):

    - a training dataset (``train_dataset``; a ``DatasetDict`` with one :class:`PairTable` per
      sub-dataset, batched per sub-dataset and mixed by the trainer's multi-dataset sampler) gets a
      :class:`LanguageBatchSampler`, recorded in :attr:`built` for callbacks and run records;
    - an evaluation dataset named in ``eval_dataset`` gets the same strategy in a fixed order (epoch 0
      of ``eval_seed``, at every evaluation) when ``eval_table`` is given, else sentence-transformers'
      sequential batches, so validation losses compare across evaluations;
    - a dataset that shares rows with, or has the length of, a training dataset but is not it (changed
      after the factory was built: ``.map``, ``.select``, ``.shuffle``, ``.filter``, ``train_test_split``)
      is refused: its rows no longer line up with the table;
    - any other dataset gets sequential batches and a one-line warning, which counts the batches that
      then hold a text twice (false negatives in the eval loss).

    The world size is read when the trainer calls the factory, after accelerate has set up the process
    group. An epoch is ``items // batch_size`` batches, not ``rows // batch_size``: a pair dataset has one
    row per (item, query language, passage language), so ``num_train_epochs=1`` on MLQA-R's 15,747 rows
    (1,148 items) is 35 steps of 32; set ``max_steps`` to say how long to train.
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
        rows = _RowTexts(dataset)
        for known in self.train_datasets:
            if known.rows == rows:
                sampler = LanguageBatchSampler(dataset, batch_size, drop_last, valid_label_columns, generator, seed,
                                               table=known.table, world_size=_world_size(), **self.options)
                self.built.append(sampler)
                return sampler
        for known in self.eval_datasets:
            if known.rows == rows:
                if known.table is None:
                    return _sequential(dataset, batch_size, drop_last, valid_label_columns, seed)
                return _FixedOrderSampler(dataset, batch_size, drop_last, valid_label_columns, None, self.eval_seed,
                                          table=known.table, world_size=_world_size(), **self.options)
        for known in self.train_datasets:
            if known.rows.overlaps(rows):
                raise ValueError(
                    f"the trainer passed a dataset of {len(rows)} rows that is not the training dataset "
                    f"{known.name} of {len(known.rows)} rows this factory was built from but shares its rows or "
                    "length (changed after the factory was built?): build LanguageSamplerFactory from the dataset "
                    "you pass as train_dataset, select or split the ParallelQA pairs by id before "
                    "build_pair_dataset, and name an evaluation set with eval_dataset=")
        repeats = _batches_with_repeats(dataset, batch_size)
        warnings.warn(f"hybridir: a dataset of {len(rows)} rows that LanguageSamplerFactory was not built from gets "
                      f"sequential batches, {repeats} of {math.ceil(len(rows) / batch_size)} holding a text twice; "
                      "name it with eval_dataset= (and eval_table= to batch it like training), or build the factory "
                      "from it if it is training data", stacklevel=2)
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

    def __len__(self) -> int:
        return len(self.hashes)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, _RowTexts) and self.columns == other.columns
                and np.array_equal(self.hashes, other.hashes))

    def overlaps(self, other: _RowTexts) -> bool:
        return len(self) == len(other) or bool(np.isin(other.hashes, self.hashes).any())



class _KnownDataset(NamedTuple):
    name: str
    rows: _RowTexts
    table: PairTable | None


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
    known = []
    for name, part, part_table in named:
        if part_table is not None and len(part) != len(part_table):
            raise ValueError(f"{name} has {len(part)} rows but its pair table {len(part_table)}; build both with "
                             "build_pair_dataset from the same sources")
        known.append(_KnownDataset(name, _RowTexts(part), part_table))
    return known


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


def _weighted_pair(pool: _SourcePools, starts: np.ndarray, counts: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per item, two distinct language slots drawn without replacement ∝ the languages' weights
    (Gumbel top-2: the largest and second largest of log weight + Gumbel noise)."""
    slots = np.arange(counts.max())
    valid = slots[None, :] < counts[:, None]
    index = np.where(valid, starts[:, None] + slots[None, :], 0)
    keys = np.log(pool.language_weight[pool.item_languages[index]]) + rng.gumbel(size=index.shape)
    order = np.argsort(-np.where(valid, keys, -np.inf), axis=1, kind="stable")
    return order[:, 0], order[:, 1]


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


class _SourcePools:
    """One source's mono pools (rows per language) and X-Y pool (items in two or more languages), and how
    many groups of shared texts each falls into (a batch can always take one element of every group)."""

    def __init__(self, table: PairTable, code: int, keys: np.ndarray) -> None:
        mono = np.flatnonzero((table.source == code) & table.is_mono)  # sorted by (item, language)
        items, languages = table.item[mono], table.query_language[mono]
        self.n_items = len(np.unique(items))
        self.languages = [int(lang) for lang in np.unique(languages)]
        self.mono_rows = {lang: mono[languages == lang] for lang in self.languages}
        self.mono_groups = {lang: _groups(rows, keys[rows]) for lang, rows in self.mono_rows.items()}
        # standard's pool: every same-language pair; a batch holds an item once, so no translation is a negative
        self.mono_all = mono
        self.mixed_groups = _groups(items, keys[mono])
        unique_items, starts, counts = np.unique(items, return_index=True, return_counts=True)
        multilingual = counts >= 2
        self.cross_items = unique_items[multilingual]
        self.language_start, self.language_count = starts[multilingual], counts[multilingual]
        self.item_languages = languages  # item k's languages: item_languages[start_k : start_k + count_k]
        # An X-Y row's texts are its item's mono texts in two languages: items sharing none never clash.
        in_cross = np.isin(items, self.cross_items)
        self.cross_groups = _groups(items[in_cross], keys[mono[in_cross]]) if in_cross.any() else 0
        # "balanced" X-Y pairs weigh a language by 1 / (multilingual items having it)
        have = np.bincount(languages[in_cross], minlength=len(table.languages))
        self.language_weight = 1.0 / np.maximum(have, 1)


def _groups(elements: np.ndarray, keys: np.ndarray) -> int:
    """The connected components of ``elements`` linked by shared keys (row i of ``keys`` is element i's).

    A greedy scan over every element leaves each component with at least one taken element (one not
    taken clashes with a taken one, hence shares its component), so a full pass fills any batch of at
    most this many."""
    element_codes, element_index = np.unique(elements, return_inverse=True)
    key_codes, key_index = np.unique(keys.ravel(), return_inverse=True)
    n = len(element_codes) + len(key_codes)
    edges = coo_matrix((np.ones(keys.size), (np.repeat(element_index, keys.shape[1]),
                                              len(element_codes) + key_index)), shape=(n, n))
    _, labels = connected_components(edges, directed=False)
    return len(np.unique(labels[:len(element_codes)]))


def _same_rows(rows: np.ndarray) -> np.ndarray:
    return rows


class _Cycle:
    """Shuffled passes over a pool, read in order, each element once per pass; a new pass when one is used up.

    ``take`` fills a draw greedily: an element whose row would repeat a key of the draw (an item, a text) is
    deferred and keeps its place at the front of the queue, so it is used before the rest of its pass.
    """

    def __init__(self, elements: np.ndarray, rng: np.random.Generator, row_keys: list[list[int]]) -> None:
        self.elements, self.rng, self.row_keys = elements, rng, row_keys
        self.queue = deque(rng.permutation(elements).tolist())

    def take(self, n: int, rows_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The rows of ``n`` elements whose keys are all distinct; ``rows_of`` maps elements to rows (it
        draws an X-Y row's languages)."""
        taken: list[int] = []
        used: set[int] = set()
        deferred: list[int] = []
        new_pass = False
        while len(taken) < n:
            if not self.queue:
                if new_pass:  # the pool checks make this unreachable: a whole pass fills a batch
                    raise RuntimeError(f"a whole pass filled only {len(taken)} of {n} rows with distinct texts")
                self.queue.extend(self.rng.permutation(self.elements).tolist())
                new_pass = True
            block = np.array([self.queue.popleft() for _ in range(min(n - len(taken), len(self.queue)))])
            for element, row in zip(block.tolist(), rows_of(block).tolist()):
                keys = self.row_keys[row]
                if used.isdisjoint(keys):
                    taken.append(row)
                    used.update(keys)
                else:
                    deferred.append(element)
        self.queue.extendleft(reversed(deferred))
        return np.array(taken, dtype=np.int64)
