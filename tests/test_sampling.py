"""Batch composition: build_pair_dataset and LanguageBatchSampler keep every rule of their module docstrings.

Fixtures are tiny parallel QA sources whose texts name their item and language ("q:{id}:{lang}",
"p:{id}:{lang}", "n:{id}:{lang}"), so each batch pair's texts prove where they came from; sources are told
apart by their id ranges (0–299, 1000+, 2000+). Statistical checks use fixed seeds and p > 0.001 bounds.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import binomtest, chisquare
from sentence_transformers.base.sampler import DefaultBatchSampler

from hybridir.sampling import LanguageBatchSampler, LanguageSamplerFactory, PairTable, build_pair_dataset
from hybridir.sampling.pairs import PairDataset, PairIndex

# item id -> its languages
BALANCED = {i: ("de", "en", "fr") for i in range(60)}
UNEVEN_SETS = {i: [("de", "en"), ("de", "en", "fr"), ("de", "en", "es", "fr")][i % 3] for i in range(60)}
SKEWED_SIZES = {i: ("en",) + (("de",) if i < 50 else ()) + (("fr",) if i < 20 else ()) for i in range(200)}
RUN_OUT = {i: ("en", "sw") if i < 10 else ("en",) for i in range(400)}  # sw pool and X-Y pool: 10 items
BIG = {i: ("de", "en") for i in range(300)}
SMALL = {1000 + i: ("de", "en") for i in range(100)}
SOLO = {2000 + i: ("en",) for i in range(100)}
ID_RANGES = {"big": range(0, 300), "small": range(1000, 1100), "solo": range(2000, 2100)}


# --- helpers -----------------------------------------------------------------------------------------------


def make_source(name: str, languages_of: dict[int, tuple[str, ...]], negatives: bool = False) -> SimpleNamespace:
    """A ParallelQA stand-in (name, pairs, languages, has_negatives) whose texts name item and language."""
    rows = [{"id": item, "language": lang, "query": f"q:{item}:{lang}", "positive": f"p:{item}:{lang}",
             **({"negative": f"n:{item}:{lang}"} if negatives else {})}
            for item, languages in languages_of.items() for lang in languages]
    pairs = pd.DataFrame(rows)
    return SimpleNamespace(name=name, pairs=pairs, languages=tuple(sorted(pairs["language"].unique())),
                           has_negatives=negatives)


def build(*sources: tuple[str, dict]) -> tuple:
    """(dataset, table, texts) for named sources; texts holds each slot's parsed query and passage."""
    dataset, table = build_pair_dataset([make_source(name, languages_of) for name, languages_of in sources])
    return dataset, table, parse_rows(dataset)


class Texts(NamedTuple):
    """Per dataset row (or per batch pair), the item and language its query text and passage text name."""

    qid: np.ndarray
    qlang: np.ndarray
    pid: np.ndarray
    plang: np.ndarray

    def take(self, pairs: np.ndarray) -> Texts:
        """The texts of (query slot, passage slot) pairs: the query's from one slot, the passage's from the other."""
        return Texts(self.qid[pairs[:, 0]], self.qlang[pairs[:, 0]], self.pid[pairs[:, 1]], self.plang[pairs[:, 1]])


def parse_rows(dataset) -> Texts:
    query = [text.split(":") for text in dataset["query"]]
    passage = [text.split(":") for text in dataset["passage"]]
    return Texts(np.array([int(q[1]) for q in query]), np.array([q[2] for q in query]),
                 np.array([int(p[1]) for p in passage]), np.array([p[2] for p in passage]))


def sampler_for(built: tuple, batch_size: int, **options) -> LanguageBatchSampler:
    dataset, table, _ = built
    return LanguageBatchSampler(dataset, batch_size, table=table, **options)


def plans(sampler: LanguageBatchSampler, epochs: int) -> list:
    return [batch for epoch in range(epochs) for batch in sampler.plan(epoch)]


def yielded(sampler) -> list[list[tuple[int, int]]]:
    """What iterating the sampler gives the trainer, as (query slot, passage slot) per pair (a PairIndex compares
    as its passage slot alone)."""
    return [[(index.query, int(index)) for index in batch] for batch in sampler]


def as_pairs(batch) -> list[tuple[int, int]]:
    return [tuple(pair) for pair in batch.pairs.tolist()]


def check_batch(batch, built: tuple, batch_size: int) -> Texts:
    """The rules every batch keeps, read from its texts: size, one source, distinct items, pure languages."""
    _, table, texts = built
    rows = texts.take(batch.pairs)
    assert len(batch.pairs) == batch_size
    assert (rows.qid == rows.pid).all()  # a passage belongs to its query's item
    assert len(np.unique(rows.qid)) == batch_size  # no two pairs of one item (translations: false negatives)
    assert (table.describe(batch.pairs).source == table.sources[batch.source]).all()
    ids = ID_RANGES.get(table.sources[batch.source], range(0, 10**6))
    assert rows.qid.min() >= ids.start and rows.qid.max() < ids.stop  # the texts prove the source
    if batch.strategy == "mono":
        language = table.languages[batch.language]
        assert (rows.qlang == language).all() and (rows.plang == language).all()
    elif batch.strategy == "mixed":  # standard: X-X pairs, languages mixed
        assert batch.language is None and (rows.qlang == rows.plang).all()
    else:
        assert batch.strategy == "cross" and batch.language is None
        assert (rows.qlang != rows.plang).all()
    return rows


def assert_passes(sequence: list[int], draws: list[list[int]], pool: set[int]) -> None:
    """Run-out policy: the items, in use order, are whole shuffled passes over ``pool`` (each item once before
    any twice), and no draw repeats an item even where a pass ends inside it."""
    size = len(pool)
    assert len(sequence) > 2 * size  # the pool did run out, more than once
    for start in range(0, len(sequence), size):
        chunk = sequence[start:start + size]
        assert len(set(chunk)) == len(chunk) and set(chunk) <= pool
    assert all(len(set(draw)) == len(draw) for draw in draws)
    starts = np.cumsum([0] + [len(draw) for draw in draws[:-1]])
    assert any(start % size + len(draw) > size for start, draw in zip(starts, draws))  # a pass ends mid-draw


@pytest.fixture(scope="module")
def balanced():
    return build(("balanced", BALANCED))


@pytest.fixture(scope="module")
def two_sources():
    return build(("big", BIG), ("small", SMALL))


@pytest.fixture(scope="module")
def with_solo():
    return build(("big", BIG), ("solo", SOLO))


@pytest.fixture(scope="module")
def run_out():
    return build(("runout", RUN_OUT))


# --- build_pair_dataset ------------------------------------------------------------------------------------


@pytest.mark.parametrize("negatives", [False, True])
def test_pair_dataset_has_one_row_per_item_and_language(negatives):
    """Columns are exactly query, passage[, negative]; one row (slot) per (item, language), sorted by (source,
    item, language); the table's metadata agrees with every slot's texts; item k's slots are its language set."""
    first = {i: UNEVEN_SETS[i] for i in range(9)}
    second = {1000 + i: ("en", "zh") for i in range(4)}
    dataset, table = build_pair_dataset([make_source("first", first, negatives),
                                         make_source("second", second, negatives)])
    assert isinstance(table, PairTable) and isinstance(dataset, PairDataset)
    assert dataset.column_names == (["query", "passage", "negative"] if negatives else ["query", "passage"])
    expected = [(name, item, lang) for name, data in (("first", first), ("second", second))
                for item, languages in sorted(data.items()) for lang in sorted(languages)]
    assert len(dataset) == len(table) == len(expected) == 3 * 2 + 3 * 3 + 3 * 4 + 4 * 2
    texts = parse_rows(dataset)
    meta = table.describe(np.column_stack([np.arange(len(table))] * 2))
    assert list(zip(meta.source, meta.id, meta.query_language)) == expected  # sorted, as the layout says
    assert (texts.qid == meta.id.astype(int)).all() and (texts.qlang == meta.query_language).all()
    assert (texts.pid == texts.qid).all() and (texts.plang == texts.qlang).all()
    if negatives:
        assert list(dataset["negative"]) == [f"n:{i}:{p}" for i, p in zip(texts.pid, texts.plang)]
    assert table.languages == ("de", "en", "es", "fr", "zh") and table.sources == ("first", "second")
    assert table.n_items == 13 and list(table.source_start) == [0, 9, 13]
    for item, languages in enumerate([first[i] for i in range(9)] + [second[1000 + i] for i in range(4)]):
        slots = range(table.item_start[item], table.item_start[item + 1])
        assert [table.languages[table.language[slot]] for slot in slots] == sorted(languages)
        assert set(table.item_of(np.array(slots))) == {item}


@pytest.mark.parametrize("negatives", [False, True])
def test_a_pair_index_reads_the_query_from_one_slot_and_the_rest_from_the_other(negatives):
    """dataset[PairIndex] is the pair; a batch of them reads in one __getitems__ call, as the DataLoader reads;
    plain row numbers still read slots; the index survives the offsets of multi-dataset samplers."""
    dataset, table = build_pair_dataset([make_source("a", {7: ("de", "en", "fr")}, negatives)])
    de, en, fr = range(3)
    row = dataset[PairIndex(passage=fr, query=de)]
    assert row == {"query": "q:7:de", "passage": "p:7:fr", **({"negative": "n:7:fr"} if negatives else {})}
    assert list(row) == dataset.column_names
    batch = dataset.__getitems__([PairIndex(en, de), PairIndex(de, de)])
    assert [(r["query"], r["passage"]) for r in batch] == [("q:7:de", "p:7:en"), ("q:7:de", "p:7:de")]
    assert dataset[[PairIndex(en, fr)]]["passage"] == ["p:7:en"]
    assert dataset[0]["query"] == "q:7:de" and dataset.__getitems__([2])[0]["passage"] == "p:7:fr"
    moved = PairIndex(5, 3) + 10
    assert isinstance(moved, PairIndex) and (int(moved), moved.query) == (15, 13)
    assert ((moved - 10).query, 10 + PairIndex(1, 2)) == (3, PairIndex(11, 12))
    import pickle
    assert pickle.loads(pickle.dumps(moved)).query == 13
    with pytest.raises(TypeError, match="mixes PairIndex keys"):
        dataset.__getitems__([PairIndex(0, 1), 2])


def test_pair_table_item_codes_are_global_across_sources():
    """Two sources that reuse the same ids get distinct item codes, so their slots never count as one item."""
    dataset, table = build_pair_dataset([make_source("a", {1: ("en",), 2: ("en",)}),
                                         make_source("b", {1: ("en",), 2: ("en",)})])
    assert table.n_items == 4 and list(table.item_of(np.arange(4))) == [0, 1, 2, 3]
    assert list(table.describe(np.column_stack([np.arange(4)] * 2)).source) == ["a", "a", "b", "b"]


@pytest.mark.parametrize("change, match", [
    (dict(item_start=np.array([0, 2, 2])), "rise by at least 1"),
    (dict(language=np.zeros(3, np.uint8)), "end at the number of slots"),
    (dict(source_start=np.array([0, 1])), "source_start must run from 0 to the number of items"),
    (dict(item_ids=np.array(["a"])), "one id per item"),
    (dict(text_codes=np.zeros((1, 2)))," one row per slot"),
])
def test_an_inconsistent_pair_table_is_refused_in_one_line(change, match):
    base = dict(item_start=np.array([0, 2, 4]), language=np.array([0, 1, 0, 1], np.uint8),
                source_start=np.array([0, 2]), sources=("s",), languages=("de", "en"), item_ids=np.array(["a", "b"]),
                text_codes=None)
    PairTable(**base)
    with pytest.raises(ValueError, match=f"^inconsistent PairTable: .*{match}"):
        PairTable(**(base | change))


@pytest.mark.parametrize("sources, match", [
    ([], r"no training source given"),
    ([make_source("x", {0: ("en",)}), make_source("x", {1: ("en",)})], r"distinct names, got \['x', 'x'\]"),
    ([make_source("a", {0: ("en",)}, negatives=True), make_source("b", {1: ("en",)})],
     r"either every training source has hard negatives or none does"),
    ([make_source("a", {0: ("en",)}),
      SimpleNamespace(name="empty", pairs=pd.DataFrame(columns=["id", "language", "query", "positive"]),
                      languages=(), has_negatives=False)],
     r"training source 'empty' has no pairs"),
    ([SimpleNamespace(name="twice", pairs=pd.concat([make_source("t", {0: ("en", "de")}).pairs] * 2),
                      languages=("de", "en"), has_negatives=False)],
     r"has id 0 in language en twice"),
], ids=["no-sources", "duplicate-names", "mixed-negatives", "empty-source", "repeated-pair"])
def test_pair_dataset_errors(sources, match):
    """Unusable source lists fail with a one-line message naming the problem."""
    with pytest.raises(ValueError, match=match) as error:
        build_pair_dataset(sources)
    assert "\n" not in str(error.value)


# --- composition of every batch ----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["balanced", "two_sources", "with_solo", "run_out"])
@pytest.mark.parametrize("strategy", ["mono", "cross", "hybrid", "standard"])
def test_every_batch_is_pure_single_source_and_item_distinct(fixture, strategy, request):
    """Over many epochs and every strategy: mono batches have query and passage in the batch language, X-Y
    batches have q-lang ≠ p-lang in every pair, no batch holds two pairs of one item, no batch mixes sources,
    and every batch has exactly batch_size rows."""
    built = request.getfixturevalue(fixture)
    batch_size = 4
    sampler = sampler_for(built, batch_size, strategy=strategy, seed=7)
    batches = plans(sampler, 20)
    strategies = Counter(batch.strategy for batch in batches)
    for batch in batches:
        check_batch(batch, built, batch_size)
    if strategy == "standard":
        assert set(strategies) == {"mixed"}
    elif strategy == "mono" or fixture != "with_solo" and strategy == "cross":
        assert set(strategies) == {"mono" if strategy == "mono" else "cross"}
    else:
        assert set(strategies) == {"mono", "cross"}  # hybrid mixes; the solo source forces mono under cross


def test_cross_pairs_use_only_the_item_languages_uniformly():
    """Items with unequal language sets: an X-Y pair uses two of the item's own languages, and its ordered
    (q, p) pair is uniform over the item's ordered pairs (chi-square per language set)."""
    built = build(("uneven", UNEVEN_SETS))
    sampler = sampler_for(built, 6, strategy="cross", seed=3)
    drawn: dict[tuple[str, ...], Counter] = {languages: Counter() for languages in set(UNEVEN_SETS.values())}
    for batch in plans(sampler, 30):  # 10 batches an epoch: every item once per epoch, 600 draws per set
        rows = check_batch(batch, built, 6)
        for item, q, p in zip(rows.qid, rows.qlang, rows.plang):
            languages = UNEVEN_SETS[item]
            assert q in languages and p in languages
            drawn[languages][q, p] += 1
    for languages, counts in drawn.items():
        ordered = list(itertools.permutations(languages, 2))
        assert set(counts) == set(ordered)
        observed = [counts[pair] for pair in ordered]
        assert sum(observed) == 600
        assert chisquare(observed).pvalue > 0.001, (languages, observed)


def test_balanced_cross_pairs_draw_languages_by_inverse_frequency():
    """cross_pairs="balanced": each item's query language is drawn ∝ 1 / (items having the language) among its
    own languages, and the passage language likewise among the rest (chi-square per language set), so the
    rarer languages take more sides than under the uniform draw."""
    built = build(("uneven", UNEVEN_SETS))
    have = Counter(lang for languages in UNEVEN_SETS.values() for lang in languages)  # de, en 60; fr 40; es 20
    sides = {}
    for cross_pairs in ("uniform", "balanced"):
        sampler = sampler_for(built, 6, strategy="cross", seed=3, cross_pairs=cross_pairs)
        queries: dict[tuple[str, ...], Counter] = {languages: Counter() for languages in set(UNEVEN_SETS.values())}
        side = Counter()
        for batch in plans(sampler, 30):
            rows = check_batch(batch, built, 6)
            for item, q, p in zip(rows.qid, rows.qlang, rows.plang):
                assert q != p and {q, p} <= set(UNEVEN_SETS[item])
                queries[UNEVEN_SETS[item]][q] += 1
                side.update((q, p))
        sides[cross_pairs] = side
        if cross_pairs == "balanced":
            for languages, counts in queries.items():
                weights = np.array([1 / have[lang] for lang in languages])
                observed = [counts[lang] for lang in languages]
                expected = weights / weights.sum() * sum(observed)
                assert chisquare(observed, expected).pvalue > 0.001, (languages, observed, expected)
    assert sides["balanced"]["es"] > 1.3 * sides["uniform"]["es"]
    assert sides["balanced"]["en"] < sides["uniform"]["en"]


def test_balanced_cross_pairs_give_english_fewer_sides_on_mlqa_r():
    """MLQA-R: English is in every item, so the uniform draw puts it on about a third of X-Y sides; the
    balanced draw brings it towards the other languages' share."""
    from hybridir.data.parallel import lareqa_parallel

    dataset, table = build_pair_dataset([lareqa_parallel("mlqa-r")])
    share = {}
    for cross_pairs in ("uniform", "balanced"):
        sampler = LanguageBatchSampler(dataset, 32, table=table, strategy="cross", seed=0, cross_pairs=cross_pairs)
        make_up = sampler.make_up(len(sampler) * 3)["cross_language_pairs"]
        english = sum(count * pair.split("-").count("en") for pair, count in make_up.items())
        share[cross_pairs] = english / (2 * sum(make_up.values()))
    assert share["uniform"] > 0.25 and share["balanced"] < share["uniform"] - 0.05, share


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_mono_fraction_is_alpha(balanced, alpha):
    """Hybrid: each batch is mono with probability α (binomial test over 1,500 batches)."""
    batches = plans(sampler_for(balanced, 4, strategy="hybrid", alpha=alpha, seed=11), 100)
    mono = sum(batch.strategy == "mono" for batch in batches)
    assert len(batches) == 1500
    assert binomtest(mono, len(batches), alpha).pvalue > 0.001, mono
    assert binomtest(mono, len(batches), alpha + 0.1).pvalue < 0.001  # the sample tells α apart from α + 0.1


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_stratified_draws_give_exactly_alpha_mono_batches_per_epoch(balanced, alpha):
    """mono_draw="stratified": every epoch holds round(α × batches) mono batches, in an order that changes with
    the epoch and the seed; the coin's share varies around α instead."""
    sampler = sampler_for(balanced, 4, strategy="hybrid", alpha=alpha, seed=11, mono_draw="stratified")
    orders = []
    for epoch in range(6):
        kinds = [batch.strategy for batch in sampler.plan(epoch)]
        assert kinds.count("mono") == round(alpha * len(kinds)) and len(kinds) == 15
        orders.append(tuple(kinds))
    assert len(set(orders)) > 1
    coin = sampler_for(balanced, 4, strategy="hybrid", alpha=alpha, seed=11)
    shares = {[b.strategy for b in coin.plan(epoch)].count("mono") for epoch in range(6)}
    assert len(shares) > 1


def test_standard_batches_mix_every_language_like_shuffled_multilingual_pairs():
    """standard (LAReQA's X-X): same-language pairs of all languages in one batch, each language about as often
    as it has pairs, each pair once per pass; on MLQA-R (batch 32) a batch holds several languages and no id
    twice."""
    built = build(("skewed", SKEWED_SIZES))  # en 200 pairs, de 50, fr 20
    _, table, texts = built
    batches = plans(sampler_for(built, 8, strategy="standard", seed=3), 40)
    languages = Counter(lang for batch in batches for lang in texts.take(batch.pairs).qlang)
    total = sum(languages.values())
    assert chisquare([languages[lang] for lang in ("en", "de", "fr")],
                     [total * n / 270 for n in (200, 50, 20)]).pvalue > 0.001
    assert sum(len(set(texts.take(b.pairs).qlang)) > 1 for b in batches) > 0.9 * len(batches)
    from hybridir.data.parallel import lareqa_parallel

    dataset, table = build_pair_dataset([lareqa_parallel("mlqa-r")])
    for batch in itertools.islice(LanguageBatchSampler(dataset, 32, table=table, strategy="standard").plan(0), 20):
        meta = table.describe(batch.pairs)
        assert meta.id.is_unique and (meta.query_language == meta.passage_language).all()
        assert meta.query_language.nunique() >= 4


@pytest.mark.parametrize("languages_of, epochs", [(BALANCED, 100), (SKEWED_SIZES, 30)], ids=["balanced", "skewed"])
def test_mono_batch_languages_are_uniform(languages_of, epochs):
    """A mono batch's language is uniform over the source's languages, also when languages have very different
    numbers of items (200 en, 50 de, 20 fr): the run-out policy restarts a used-up pool instead of dropping it."""
    built = build(("data", languages_of))
    _, table, _ = built
    batches = plans(sampler_for(built, 4, strategy="mono", seed=5), epochs)
    counts = Counter(table.languages[batch.language] for batch in batches)
    observed = [counts[lang] for lang in table.languages]
    assert len(observed) == 3 and sum(observed) == 1500
    assert chisquare(observed).pvalue > 0.001, observed
    sizes = Counter(lang for languages in languages_of.values() for lang in languages)
    if len(set(sizes.values())) > 1:  # the sample is large enough to reject "proportional to size"
        proportional = np.array([sizes[lang] for lang in table.languages], dtype=float)
        assert chisquare(observed, proportional / proportional.sum() * sum(observed)).pvalue < 1e-6


@pytest.mark.parametrize("large_pool", [None, 8], ids=["shuffled", "feistel"])
def test_run_out_uses_each_item_once_before_any_twice(run_out, large_pool, monkeypatch):
    """Run-out policy in one epoch: the 10-item sw pool and the 10-item X-Y pool are each used up several times;
    each is consumed in whole shuffled passes, and no draw repeats an item even where a pass ends inside it. The
    same holds for passes computed on the fly (pools above LARGE_POOL, lowered here so these pools are)."""
    from hybridir.sampling import samplers

    calls = []
    if large_pool is not None:
        monkeypatch.setattr(samplers, "LARGE_POOL", large_pool)
        feistel = samplers._feistel
        monkeypatch.setattr(samplers, "_feistel", lambda *args: calls.append(1) or feistel(*args))
    for epoch in range(3):
        mono_draws, cross_draws = [], []
        for batch in sampler_for(run_out, 4, strategy="hybrid", seed=2).plan(epoch):
            ids = check_batch(batch, run_out, 4).qid.tolist()
            if batch.strategy == "cross":
                cross_draws.append(ids)
            elif run_out[1].languages[batch.language] == "sw":
                mono_draws.append(ids)
        for draws in (mono_draws, cross_draws):
            assert_passes([item for draw in draws for item in draw], draws, set(range(10)))
    assert bool(calls) == (large_pool is not None)


# --- length ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture, batch_size, world_size, pooled, expected", [
    ("balanced", 4, 1, False, 15),  # 60 items // 4
    ("balanced", 7, 1, False, 8),  # 60 // 7
    ("balanced", 4, 2, False, 14),  # 15 rounded down to a multiple of 2
    ("balanced", 7, 3, False, 6),  # 8 → 6
    ("balanced", 4, 3, True, 15),  # 60 // (4 × 3) = 5 groups of 3
    ("two_sources", 6, 1, False, 66),  # 400 // 6
    ("two_sources", 6, 4, True, 64),  # 400 // 24 = 16 groups of 4
    ("with_solo", 7, 5, False, 55),  # 400 // 7 = 57 → 55
])
def test_len_is_exact_and_the_same_every_epoch(fixture, batch_size, world_size, pooled, expected, request):
    """``__len__`` is items // batch_size rounded down to a multiple of world_size, equals the number of batches
    iterated in every epoch, and every batch has exactly batch_size rows."""
    sampler = sampler_for(request.getfixturevalue(fixture), batch_size, strategy="hybrid", seed=1,
                          world_size=world_size, pooled_ranks=pooled)
    assert len(sampler) == expected
    for epoch in range(4):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == expected
        assert all(len(batch) == batch_size for batch in batches)


# --- sources -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1, 2])
def test_source_frequency_follows_size_to_the_power_one_over_t(two_sources, temperature):
    """Two sources of 300 and 100 items: a batch comes from the big one with probability ∝ size^(1/T), i.e. 0.75
    at T = 1 and 0.634 at T = 2 (binomial test over 3,000 batches); each batch's ids prove its source."""
    expected = {t: 300 ** (1 / t) / (300 ** (1 / t) + 100 ** (1 / t)) for t in (1, 2)}
    sampler = sampler_for(two_sources, 4, strategy="hybrid", temperature=temperature, seed=4)
    assert sampler.source_probabilities == pytest.approx([expected[temperature], 1 - expected[temperature]])
    batches = plans(sampler, 30)
    for batch in batches:
        check_batch(batch, two_sources, 4)  # the ids lie in the batch's source's range
    big = sum(batch.source == 0 for batch in batches)
    assert len(batches) == 3000
    assert binomtest(big, len(batches), expected[temperature]).pvalue > 0.001, big
    other = expected[3 - temperature]
    assert binomtest(big, len(batches), other).pvalue < 1e-6  # the sample separates T = 1 from T = 2


def test_a_small_temperature_concentrates_on_the_largest_source_without_overflow(two_sources):
    """300^(1/0.001) overflows a float; the weights are computed in log space."""
    sampler = sampler_for(two_sources, 4, strategy="hybrid", temperature=0.001, seed=4)
    assert sampler.source_probabilities == pytest.approx([1.0, 0.0])
    assert {batch.source for batch in plans(sampler, 2)} == {0}


def test_monolingual_source_feeds_only_mono_batches(with_solo):
    """A source with one language gives mono batches even under strategy "cross"; the multilingual source still
    gives X-Y batches only."""
    _, table, _ = with_solo
    by_source: dict[str, Counter] = {"big": Counter(), "solo": Counter()}
    for batch in plans(sampler_for(with_solo, 4, strategy="cross", seed=9), 10):
        rows = check_batch(batch, with_solo, 4)
        by_source[table.sources[batch.source]][batch.strategy] += 1
        if batch.strategy == "mono":
            assert set(rows.qlang) == {"en"} and rows.qid.min() >= 2000
    assert set(by_source["solo"]) == {"mono"} and by_source["solo"]["mono"] > 20
    assert set(by_source["big"]) == {"cross"}


# --- determinism -------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_batches_in_separately_built_samplers():
    """The batches are a pure function of (seed, epoch): two samplers over two separately built datasets agree;
    iterating after set_epoch(e) gives plan(e)."""
    first = sampler_for(build(("big", BIG), ("small", SMALL)), 8, strategy="hybrid", seed=13)
    second = sampler_for(build(("big", BIG), ("small", SMALL)), 8, strategy="hybrid", seed=13)
    for epoch in range(3):
        first.set_epoch(epoch)
        second.set_epoch(epoch)
        assert yielded(first) == yielded(second) == [as_pairs(batch) for batch in first.plan(epoch)]


def test_epochs_and_seeds_change_the_order(two_sources):
    """set_epoch gives each epoch its own order, and a different seed a different one."""
    sampler = sampler_for(two_sources, 8, strategy="hybrid", seed=13)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(yielded(sampler))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2] and epochs[0] != epochs[2]
    other = sampler_for(two_sources, 8, strategy="hybrid", seed=14)
    assert yielded(other) != yielded(sampler_for(two_sources, 8, strategy="hybrid", seed=13))


def test_plan_ignores_the_trainer_generator_and_global_rngs(two_sources):
    """The trainer's shared ``generator`` and the global torch / numpy RNGs have no effect on the batches."""
    dataset, table, _ = two_sources
    results = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        sampler = LanguageBatchSampler(dataset, 8, False, None, torch.Generator().manual_seed(seed), 21,
                                       table=table, strategy="hybrid")
        results.append(yielded(sampler))
    assert results[0] == results[1]


@pytest.mark.parametrize("alpha, pure", [(0.0, "cross"), (1.0, "mono")])
def test_hybrid_with_alpha_0_or_1_replays_the_pure_strategy(alpha, pure):
    """Hybrid with α = 0 gives exactly the batches of "cross", and α = 1 those of "mono", for the same seed (the
    mono/X-Y coin has its own random stream)."""
    built = build(("big", BIG), ("small", SMALL), ("solo", SOLO))
    hybrid = sampler_for(built, 4, strategy="hybrid", alpha=alpha, seed=6)
    plain = sampler_for(built, 4, strategy=pure, seed=6)
    for epoch in range(3):
        left, right = list(hybrid.plan(epoch)), list(plain.plan(epoch))
        assert len(left) == len(right) == 125  # 500 items // 4
        for a, b in zip(left, right):
            assert (a.strategy, a.source, a.language) == (b.strategy, b.source, b.language)
            assert (a.pairs == b.pairs).all()
    strategies = {batch.strategy for batch in plain.plan(0)}
    assert strategies == ({"mono"} if pure == "mono" else {"mono", "cross"})  # solo forces mono under cross


# --- pooled ranks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("world_size", [2, 3])
def test_pooled_ranks_share_one_choice_per_group(two_sources, world_size):
    """pooled_ranks with N ranks: each group of N consecutive batches (one step's pooled batch) shares strategy,
    source and language, and the group's items are all distinct; the length is a multiple of N. Without
    pooled_ranks, consecutive batches do not share the choice."""
    sampler = sampler_for(two_sources, 4, strategy="hybrid", seed=8, world_size=world_size, pooled_ranks=True)
    assert len(sampler) % world_size == 0
    for epoch in range(5):
        batches = list(sampler.plan(epoch))
        assert len(batches) == len(sampler)
        for start in range(0, len(batches), world_size):
            group = batches[start:start + world_size]
            assert len({(b.strategy, b.source, b.language) for b in group}) == 1
            ids = [item for b in group for item in check_batch(b, two_sources, 4).qid]
            assert len(set(ids)) == 4 * world_size
    unpooled = list(sampler_for(two_sources, 4, strategy="hybrid", seed=8, world_size=world_size).plan(0))
    assert any(len({(b.strategy, b.source, b.language) for b in unpooled[start:start + world_size]}) > 1
               for start in range(0, len(unpooled), world_size))


# --- errors ------------------------------------------------------------------------------------------------


ALPHA_RANGE = r"alpha is the probability of a mono batch and must lie in \[0, 1\]"


@pytest.mark.parametrize("fixture, batch_size, options, match", [
    ("balanced", 4, {"alpha": -0.1}, ALPHA_RANGE + r", got -0\.1"),
    ("balanced", 4, {"alpha": 1.5}, ALPHA_RANGE + r", got 1\.5"),
    ("balanced", 4, {"alpha": math.nan}, ALPHA_RANGE + r", got nan"),
    ("balanced", 4, {"alpha": True}, ALPHA_RANGE + r", got True"),
    ("balanced", 4, {"alpha": "0.5"}, ALPHA_RANGE + r", got '0\.5'"),
    ("balanced", 4, {"strategy": "mono", "alpha": 0.5}, r"alpha applies to the hybrid strategy only.*'mono'"),
    ("balanced", 4, {"strategy": "cross", "alpha": 0.0}, r"alpha applies to the hybrid strategy only.*'cross'"),
    ("balanced", 4, {"strategy": "mixed"}, r"unknown strategy 'mixed'; choose one of: mono, cross, hybrid, standard"),
    ("balanced", 4, {"mono_draw": "exact"}, r"unknown mono_draw 'exact'; choose one of: coin, stratified"),
    ("balanced", 4, {"strategy": "mono", "mono_draw": "stratified"},
     r"mono_draw 'stratified' applies to the hybrid strategy only \(got strategy 'mono'\)"),
    ("solo", 12, {"strategy": "standard"},
     r"source 'solo' has 10 same-language pairs in 10 groups of shared texts and items, fewer than batch_size 12"),
    ("balanced", 4, {"temperature": 0}, r"temperature must be a positive number.*got 0"),
    ("balanced", 4, {"cross_pairs": "random"}, r"unknown cross_pairs 'random'; choose one of: uniform, balanced"),
    ("balanced", 4, {"temperature": -1.0}, r"temperature must be a positive number.*got -1\.0"),
    ("balanced", 4, {"temperature": True}, r"temperature must be a positive number.*got True"),
    ("balanced", 4, {"world_size": 2.0}, r"world_size must be an integer, at least 1, got 2\.0"),
    ("balanced", 1, {}, r"batch_size must be an integer of at least 2.*got 1"),
    ("balanced", 4, {"world_size": 0}, r"world_size must be an integer, at least 1, got 0"),
    ("run_out", 12, {"strategy": "mono"},
     r"language 'sw' of source 'runout' has 10 items in 10 groups of shared texts, fewer than batch_size 12: a mono batch"),
    ("run_out", 6, {"strategy": "hybrid", "world_size": 2, "pooled_ranks": True},
     r"language 'sw' of source 'runout' has 10 items in 10 groups of shared texts, fewer than batch_size 6 × 2 ranks"),
    ("run_out", 12, {"strategy": "cross"},
     r"source 'runout' has 10 items in two or more languages in 10 groups of shared texts, fewer than batch_size 12: an X-Y batch"),
    ("solo", 4, {"strategy": "mono", "world_size": 3}, r"10 items cannot fill one step of 3 × 4 pairs"),
])
def test_bad_settings_fail_with_one_line_messages(fixture, batch_size, options, match, request):
    """Bad α (out of range, nan, bool, string), α with a pure strategy, unknown strategy, temperature ≤ 0, batch
    size < 2, a language or X-Y pool smaller than a batch, and too few items for one step all fail at
    construction with a one-line message."""
    built = build(("solo", {i: ("en",) for i in range(10)})) if fixture == "solo" else request.getfixturevalue(fixture)
    with pytest.raises(ValueError, match=match) as error:
        sampler_for(built, batch_size, **options)
    assert "\n" not in str(error.value)


def test_dataset_and_table_must_match(balanced):
    """A plain Dataset (it would read a PairIndex as its passage's slot alone) and a pair dataset laid out with
    another table are refused in one line."""
    dataset, table, _ = balanced
    other, _, _ = build(("balanced", {i: ("de", "en", "fr") for i in range(1, 61)}))
    for wrong, match in [(dataset.select(range(len(dataset))), r"^the dataset is a Dataset, but language batches "
                                                                r"need a PairDataset"),
                         (other, r"^the dataset has 180 rows but was not laid out with its pair table \(180 slots\)")]:
        with pytest.raises(ValueError, match=match) as error:
            LanguageBatchSampler(wrong, 4, table=table)
        assert "\n" not in str(error.value)


def test_cross_strategy_does_not_need_full_language_pools():
    """Strategy "cross" never makes mono batches from a multilingual source, so a language pool smaller than a batch
    (sw: 10 items) is no obstacle there (the X-Y pool has 40), while "mono" and "hybrid" refuse it."""
    built = build(("partial", {i: ("en", "sw") if i < 10 else ("de", "en") for i in range(40)}))
    batches = plans(sampler_for(built, 12, strategy="cross"), 3)
    assert len(batches) == 9 and all(check_batch(batch, built, 12) is not None for batch in batches)
    for strategy in ("mono", "hybrid"):
        with pytest.raises(ValueError, match="language 'sw' of source 'partial' has 10 items"):
            sampler_for(built, 12, strategy=strategy)


# --- trainer factory ---------------------------------------------------------------------------------------


def test_factory_gives_the_language_sampler_for_train_and_a_sequential_one_for_eval(balanced):
    """Called with the train dataset, the factory builds (and records) a LanguageBatchSampler with its options;
    called with the eval set it was told of, a plain sampler in order 0..n-1 with the given batch size."""
    dataset, table, _ = balanced
    eval_set = build_pair_dataset([make_source("eval", {1000 + i: ("en",) for i in range(10)})])[0]
    factory = LanguageSamplerFactory(dataset, table, strategy="hybrid", alpha=0.3, temperature=2.0,
                                     eval_dataset=eval_set)
    train = factory(dataset, batch_size=4, drop_last=False, valid_label_columns=None,
                    generator=torch.Generator().manual_seed(0), seed=5)
    assert isinstance(train, LanguageBatchSampler) and factory.built == [train]
    assert (train.alpha, train.temperature, train.seed, train.batch_size) == (0.3, 2.0, 5, 4)
    assert yielded(train) == [as_pairs(batch) for batch in train.plan(0)]
    plain = factory(eval_set, batch_size=4, drop_last=False, valid_label_columns=None, generator=None, seed=5)
    assert type(plain) is DefaultBatchSampler and factory.built == [train]
    assert list(plain) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(ValueError, match=r"unknown strategy 'both'"):
        LanguageSamplerFactory(dataset, table, strategy="both")


# --- real data ---------------------------------------------------------------------------------------------


def test_mlqa_r_hybrid_batches_are_pure_and_item_distinct():
    """MLQA-R (questions with their same-language answer sentence; 1,148 ids in 2–4 languages, en always among
    them), batch size 32, hybrid: every batch is pure, holds distinct ids, and its X-Y pairs involve English at
    the rate the items' language sets imply (2/k for an item in k languages).

    Observed (seed 0, 5 epochs, 2,688 X-Y pairs in 84 X-Y batches of 175): 57.3% of X-Y pairs have English on
    one side (56.9% expected from the drawn items' language sets); each other language is in 22–25% of them.
    English is in every item, yet only in about half of the X-Y pairs, as items in 4 languages dominate.
    """
    from hybridir.data.parallel import lareqa_parallel

    source = lareqa_parallel("mlqa-r")
    pairs = source.pairs
    dataset, table = build_pair_dataset([source])
    sampler = LanguageBatchSampler(dataset, 32, table=table, strategy="hybrid", seed=0)
    assert len(sampler) == pairs.id.nunique() // 32 == 35
    languages_per_item = pairs.groupby("id").language.size()
    english, cross_pairs, expected = 0, 0, 0.0
    for batch in plans(sampler, 5):
        meta = table.describe(batch.pairs)
        assert len(meta) == 32 and meta.id.is_unique
        if batch.strategy == "mono":
            assert set(meta.query_language) == set(meta.passage_language) == {table.languages[batch.language]}
        else:
            assert (meta.query_language != meta.passage_language).all()
            english += int(((meta.query_language == "en") | (meta.passage_language == "en")).sum())
            cross_pairs += len(meta)
            expected += float((2 / languages_per_item[meta.id]).sum())
    share, expected_share = english / cross_pairs, expected / cross_pairs
    assert abs(share - expected_share) < 4 * math.sqrt(expected_share * (1 - expected_share) / cross_pairs)


# --- pools too large to shuffle in memory ------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 17, 1000, 4099])
def test_the_feistel_pass_is_a_permutation_unrelated_to_position(size):
    from scipy.stats import spearmanr

    from hybridir.sampling.samplers import _feistel

    keys = np.random.default_rng(size).integers(0, 1 << 63, size=6, dtype=np.uint64)
    order = _feistel(np.arange(size, dtype=np.uint64), size, keys)
    assert np.array_equal(np.sort(order), np.arange(size))
    if size >= 1000:
        assert abs(spearmanr(np.arange(size), order).statistic) < 0.1
        other = _feistel(np.arange(size, dtype=np.uint64), size, keys[::-1].copy())
        assert (order != other).mean() > 0.9  # other keys, another order
