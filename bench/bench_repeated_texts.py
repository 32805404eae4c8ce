"""Benchmark: repeated texts (false negatives) in the language sampler's batches, before and after the rule.

    HYBRIDIR_DATA_DIR=../shared/data .venv/bin/python bench/bench_repeated_texts.py \
        | tee results/bench/bench_repeated_texts.txt

For XQuAD-R and MLQA-R pair datasets, batch 32 and 100, each strategy, 5 epochs (seed 0): the share of
batches holding a text twice (a query, passage or negative equal to another row's) and the mean number of
repeats per batch, under the rule that keeps items only distinct (the sampler before texts were kept
distinct: the same sampler given a table whose texts are all different) and under today's rule; and the
time the sampler takes per batch, in the same run. Ends with one summary line.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from hybridir.data.parallel import lareqa_parallel
from hybridir.provenance import hardware, versions
from hybridir.sampling.pairs import PairDataset, build_pair_dataset
from hybridir.sampling.samplers import LanguageBatchSampler

EPOCHS = 5
STRATEGIES = ("mono", "cross", "hybrid")


def repeats(sampler: LanguageBatchSampler, codes: np.ndarray) -> tuple[float, float, float]:
    """(share of batches with a repeated text, repeats per batch, seconds per batch) over EPOCHS epochs."""
    with_repeat, repeated, batches = 0, 0, 0
    start = time.perf_counter()
    plans = [list(sampler.plan(epoch)) for epoch in range(EPOCHS)]
    seconds = (time.perf_counter() - start) / sum(len(plan) for plan in plans)
    for batch in (batch for plan in plans for batch in plan):
        texts = np.concatenate([codes[batch.pairs[:, 0], :1], codes[batch.pairs[:, 1], 1:]], axis=1).ravel()
        extra = len(texts) - len(np.unique(texts))
        with_repeat += extra > 0
        repeated += extra
        batches += 1
    return with_repeat / batches, repeated / batches, seconds


def main() -> None:
    print(f"hardware: {hardware()}\nversions: {versions()}\n")
    print("batches with a repeated text, and repeats per batch, when the sampler keeps distinct:")
    print(f"{'':24}{'items only':>18}{'items and texts':>20}{'µs per batch':>16}")
    print(f"{'dataset':8} {'batch':>5}  {'strategy':8}{'batches':>10}{'repeats':>8}{'batches':>12}{'repeats':>8}"
          f"{'items':>8}{'texts':>8}")
    worst = 0.0
    for name in ("xquad-r", "mlqa-r"):
        source = lareqa_parallel(name)
        dataset, table = build_pair_dataset([source])
        shared = source.pairs.duplicated(["language", "positive"], keep=False).mean()
        print(f"{name}: {len(source.pairs)} (id, language) slots, {shared:.1%} share their answer sentence with "
              "another id")
        items_only = replace(table, text_codes=None)  # no two texts known equal: only items kept distinct
        items_only_dataset = PairDataset.of(dataset, items_only)
        for batch_size in (32, 100):
            for strategy in STRATEGIES:
                before = repeats(LanguageBatchSampler(items_only_dataset, batch_size, table=items_only,
                                                      strategy=strategy),
                                 table.text_codes)
                after = repeats(LanguageBatchSampler(dataset, batch_size, table=table, strategy=strategy),
                                table.text_codes)
                worst = max(worst, after[0])
                print(f"{name:8} {batch_size:5}  {strategy:8}{before[0]:10.1%}{before[1]:8.2f}{after[0]:12.1%}"
                      f"{after[1]:8.2f}{before[2] * 1e6:8.0f}{after[2] * 1e6:8.0f}")
    print(f"\nsummary: batches with a repeated text under today's rule, worst case over datasets, batch sizes "
          f"and strategies: {worst:.1%}")


if __name__ == "__main__":
    main()
