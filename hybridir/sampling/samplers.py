"""X-X-mono, X-Y and hybrid batch samplers for sentence-transformers' trainer.

With in-batch negatives, the other pairs of a batch are the negatives, so the batch's language
make-up decides what the loss teaches (the paper's §3):

- **X-X-mono**: every pair of the batch in one language, query and passage both in it; the
  language drawn uniformly among the source's languages (the paper's rule), then distinct items.
- **X-Y**: every pair has query language ≠ passage language; each item's ordered pair of
  languages is drawn uniformly among the pairs the item has (``cross_pairs="uniform"``), or with
  each language weighted ∝ 1 / (items having it) (``"balanced"``), so that a language every item
  has does not take most sides.
- **hybrid**: each batch is X-X-mono with probability α, X-Y otherwise.

sentence-transformers has no sampler that reads per-row languages (its samplers see only the
dataset), hence this one. Rules it keeps, each tested in ``tests/test_sampling.py``:

- Several sources: each batch comes from one source, drawn with probability ∝ items^(1/T)
  (T = 1: proportional to size, the abstract's "sampled based on dataset size"). A source with
  one language (or no item in two languages) only feeds mono batches, whatever the strategy.
- No batch holds two pairs of one item: its translations would be false negatives.
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
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from sentence_transformers.base.sampler import DefaultBatchSampler
from torch.utils.data import SequentialSampler

from hybridir.sampling.pairs import PairTable
from hybridir.sampling.strategies import check_batch_size, check_cross_pairs, check_strategy

if TYPE_CHECKING:
    from datasets import Dataset


class PlannedBatch(NamedTuple):
    strategy: str  # "mono" or "cross"
    source: int  # code into PairTable.sources
    language: int | None  # the mono batch's language code; None for X-Y
    rows: np.ndarray  # dataset rows


class LanguageBatchSampler(DefaultBatchSampler):
    """Batches of one strategy each, composed from a :class:`PairTable` (see the module docstring).

    The first six arguments are the trainer's (``generator`` is ignored on purpose); the rest
    are keyword-only. ``alpha`` is the probability of a mono batch and applies to ``"hybrid"``
    only. ``world_size`` is the number of ranks; ``pooled_ranks`` makes one choice per group of
    ``world_size`` consecutive batches. Every batch is full, so ``drop_last`` has nothing to drop.
    """

    def __init__(self, dataset: Dataset, batch_size: int, drop_last: bool = False,
                 valid_label_columns: list[str] | None = None, generator: torch.Generator | None = None,
                 seed: int = 0, *, table: PairTable, strategy: str = "hybrid", alpha: float | None = None,
                 temperature: float = 1.0, world_size: int = 1, pooled_ranks: bool = False,
                 cross_pairs: str = "uniform") -> None:
        self.alpha = check_strategy(strategy, alpha, temperature)
        check_batch_size(batch_size)
        check_cross_pairs(cross_pairs)
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be an integer, at least 1, got {world_size!r}")
        if len(dataset) != len(table):
            raise ValueError(f"the dataset has {len(dataset)} rows but the pair table {len(table)}; build both "
                             "with build_pair_dataset from the same sources")
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        self.table, self.strategy, self.temperature, self.cross_pairs = table, strategy, temperature, cross_pairs
        self.world_size, self.group_size = world_size, world_size if pooled_ranks else 1
        self._pools = [_SourcePools(table, code) for code in range(len(table.sources))]
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
        mono_cycles = [{lang: _Cycle(rows, data) for lang, rows in pool.mono_rows.items()} for pool in self._pools]
        cross_cycles = [_Cycle(np.arange(len(pool.cross_items)), data) if len(pool.cross_items) else None
                        for pool in self._pools]
        size = self.batch_size * self.group_size
        for _ in range(self._length // self.group_size):
            source = int(choice.choice(len(self._pools), p=self.source_probabilities))
            pool = self._pools[source]
            # The coin is always tossed, from its own stream, so α = 0 and α = 1 replay the pure strategies.
            mono = coin.random() < self.alpha or cross_cycles[source] is None
            if mono:
                language = pool.languages[int(choice.integers(len(pool.languages)))]
                rows = mono_cycles[source][language].take(size)
                strategy = "mono"
            else:
                language, strategy = None, "cross"
                rows = self._cross_rows(pool, cross_cycles[source].take(size), data)
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
        if self.alpha < 1 and not any(len(pool.cross_items) for pool in self._pools):
            raise ValueError(f"strategy {self.strategy!r} needs X-Y batches, but no training source has an item in "
                             "two languages; use strategy 'mono' or add multilingual data")
        needed = self.batch_size * self.group_size
        unit = f"batch_size {self.batch_size}" + (f" × {self.group_size} ranks" if self.group_size > 1 else "")
        for name, pool in zip(self.table.sources, self._pools):
            multilingual = len(pool.cross_items) > 0
            if self.alpha > 0 or not multilingual:
                for lang, rows in pool.mono_rows.items():
                    if len(rows) < needed:
                        raise ValueError(
                            f"language {self.table.languages[lang]!r} of source {name!r} has {len(rows)} items, "
                            f"fewer than {unit}: a mono batch could not be filled with distinct items; lower the "
                            "batch size or leave that language out of the training data")
            if self.alpha < 1 and multilingual and len(pool.cross_items) < needed:
                raise ValueError(f"source {name!r} has {len(pool.cross_items)} items in two or more languages, fewer "
                                 f"than {unit}: an X-Y batch could not be filled; lower the batch size")


class LanguageSamplerFactory:
    """A ``batch_sampler=`` factory for ``SentenceTransformerTrainingArguments``.

    The trainer calls the same factory for its evaluation dataloader: any dataset other than
    ``train_dataset`` gets a plain sampler in a fixed order, so validation losses are comparable
    across evaluations. The world size is read when the trainer calls the factory, after
    accelerate has set up the process group. The training samplers it builds are kept in
    :attr:`built`, for callbacks and run records.
    """

    def __init__(self, train_dataset: Dataset, table: PairTable, *, strategy: str = "hybrid",
                 alpha: float | None = None, temperature: float = 1.0, pooled_ranks: bool = False,
                 cross_pairs: str = "uniform") -> None:
        check_strategy(strategy, alpha, temperature)
        check_cross_pairs(cross_pairs)
        self.train_dataset, self.table = train_dataset, table
        self.options = {"strategy": strategy, "alpha": alpha, "temperature": temperature, "pooled_ranks": pooled_ranks,
                        "cross_pairs": cross_pairs}
        self.built: list[LanguageBatchSampler] = []

    def __getstate__(self) -> dict:
        """The trainer pickles its arguments, this factory included, into every checkpoint
        (``training_args.bin``): keep the options there, not a copy of the training data."""
        return {"options": self.options, "train_dataset": None, "table": None, "built": []}

    def __call__(self, dataset: Dataset, batch_size: int, drop_last: bool,
                 valid_label_columns: list[str] | None = None, generator: torch.Generator | None = None,
                 seed: int = 0) -> DefaultBatchSampler:
        if self.train_dataset is None:
            raise ValueError("this sampler factory was unpickled without its training data; build a new "
                             "LanguageSamplerFactory(dataset, table, ...)")
        train = self.train_dataset
        same = dataset is train or getattr(dataset, "_fingerprint", None) == getattr(train, "_fingerprint", False)
        if not same:
            return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last,
                                       valid_label_columns=valid_label_columns, seed=seed)
        sampler = LanguageBatchSampler(dataset, batch_size, drop_last, valid_label_columns, generator, seed,
                                       table=self.table, world_size=_world_size(), **self.options)
        self.built.append(sampler)
        return sampler


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
    """One source's mono pools (rows per language) and X-Y pool (items in two or more languages)."""

    def __init__(self, table: PairTable, code: int) -> None:
        mono = np.flatnonzero((table.source == code) & table.is_mono)  # sorted by (item, language)
        items, languages = table.item[mono], table.query_language[mono]
        self.n_items = len(np.unique(items))
        self.languages = [int(lang) for lang in np.unique(languages)]
        self.mono_rows = {lang: mono[languages == lang] for lang in self.languages}
        unique_items, starts, counts = np.unique(items, return_index=True, return_counts=True)
        multilingual = counts >= 2
        self.cross_items = unique_items[multilingual]
        self.language_start, self.language_count = starts[multilingual], counts[multilingual]
        self.item_languages = languages  # item k's languages: item_languages[start_k : start_k + count_k]
        # "balanced" X-Y pairs weigh a language by 1 / (multilingual items having it)
        have = np.bincount(languages[np.isin(items, self.cross_items)], minlength=len(table.languages))
        self.language_weight = 1.0 / np.maximum(have, 1)


class _Cycle:
    """Shuffled passes over a pool: each element once per pass, a new pass when one is used up."""

    def __init__(self, elements: np.ndarray, rng: np.random.Generator) -> None:
        self.elements, self.rng = elements, rng
        self.order, self.position = rng.permutation(elements), 0

    def take(self, n: int) -> np.ndarray:
        """``n`` distinct elements (``n`` ≤ the pool size)."""
        taken = self.order[self.position:self.position + n]
        self.position += len(taken)
        if len(taken) < n:
            fresh = self.rng.permutation(self.elements)
            # Elements already in this draw go to the back of the new pass, so a draw never repeats one.
            clash = np.isin(fresh, taken)
            self.order = np.concatenate([fresh[~clash], fresh[clash]])
            self.position = n - len(taken)
            taken = np.concatenate([taken, self.order[:self.position]])
        return taken
