"""The sampler's index at the paper's size, by simulation: build time, memory, time per batch, resume positioning.

The paper trained on mMARCO's 39,780,811 triples in 7 languages and 520,330 translated QA pairs in 9 (paper.md
§1.3). This builds the index the sampler reads for a corpus of that shape — item ids and language sets only, no
texts (so only items must be distinct within a batch) — and reports, beside the same figures for LAReQA's
MLQA-R (with its texts):

- build: the PairTable arrays and the sampler (pools, checks, source weights), in seconds;
- memory: resident set size after the build and its peak, over the process's size before it;
- per batch: the mean time to plan a batch of 100 pairs and hand it to the trainer as PairIndex lists, after the
  epoch's first (which shuffles every pool once: reported apart as "epoch start");
- resume: the time a resumed run takes to position itself at step 1,000,000 (the trainer replays the batches of
  the current epoch before it, so this is epoch start + the replayed batches).

Goals (issue 18): build ≤ 60 s, ≤ 4 GB resident, ≤ 1 ms per batch, resume positioning ≤ 10 s.
Usage: python bench/bench_pair_index.py [--scale 1.0]; --scale shrinks the corpus for a quick look.
Run it alone: two torch processes on two cores slow each other several-fold.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

import numpy as np
import pyarrow as pa
from datasets import Dataset

from hybridir.data.parallel import lareqa_parallel
from hybridir.provenance import hardware, versions
from hybridir.sampling.pairs import PairDataset, PairTable, build_pair_dataset
from hybridir.sampling.samplers import LanguageBatchSampler

BATCH = 100
TIMED_BATCHES = 2000
RESUME_STEP = 1_000_000
PAPER_SOURCES = (("mmarco", 39_780_811, ("ar", "de", "en", "es", "hi", "ru", "zh")),
                 ("translated-qa", 520_330, ("ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh")))


def rss_gb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 1e9


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1e3 / 1e9  # ru_maxrss is in KB on Linux


def paper_shaped(scale: float) -> tuple[PairDataset, PairTable]:
    """The paper's sources as slots: every item in each of its source's languages; no texts (a null column)."""
    languages = tuple(sorted({lang for _, _, langs in PAPER_SOURCES for lang in langs}))
    source_items = [max(1, int(n_items * scale)) for _, n_items, _ in PAPER_SOURCES]
    n_slots = sum(n * len(langs) for n, (_, _, langs) in zip(source_items, PAPER_SOURCES))
    item_start = np.empty(sum(source_items) + 1, dtype=np.int64)
    language = np.empty(n_slots, dtype=np.uint8)
    item, slot = 0, 0
    for n_items, (_, _, langs) in zip(source_items, PAPER_SOURCES):  # filled in place: no copies to measure
        item_start[item:item + n_items] = np.arange(slot, slot + n_items * len(langs), len(langs))
        language[slot:slot + n_items * len(langs)].reshape(n_items, len(langs))[:] = [languages.index(l) for l in langs]
        item, slot = item + n_items, slot + n_items * len(langs)
    item_start[-1] = slot
    table = PairTable(item_start=item_start, language=language,
                      source_start=np.concatenate([[0], np.cumsum(source_items)]).astype(np.int64),
                      sources=tuple(name for name, _, _ in PAPER_SOURCES), languages=languages,
                      item_ids=np.arange(len(item_start) - 1), text_codes=None)
    slots = Dataset(pa.table({"slot": pa.nulls(len(table))}))  # a row per slot, no texts: ids only
    return PairDataset.of(slots, table), table


def measure(name: str, build, batches_per_run: int) -> dict:
    gc.collect()
    before = rss_gb()
    start = time.perf_counter()
    dataset, table = build()
    sampler = LanguageBatchSampler(dataset, BATCH, table=table, strategy="hybrid", seed=0)
    build_s = time.perf_counter() - start
    after = rss_gb()

    epoch_start = time.perf_counter()
    batches = iter(sampler)
    next(batches)
    epoch_start_s = time.perf_counter() - epoch_start
    timed = min(TIMED_BATCHES, len(sampler) - 1, batches_per_run)
    start = time.perf_counter()
    for _ in range(timed):
        next(batches)
    per_batch_ms = (time.perf_counter() - start) / timed * 1e3
    running = rss_gb()

    epoch, replayed = divmod(RESUME_STEP, len(sampler))
    start = time.perf_counter()
    sampler.set_epoch(epoch)
    for _ in zip(range(replayed), sampler):  # what the trainer's skip does on resume
        pass
    resume_s = time.perf_counter() - start
    return {"name": name, "items": table.n_items, "slots": len(table), "languages": len(table.languages),
            "build_s": build_s, "rss_gb": max(after, running) - before, "peak_gb": peak_gb() - before,
            "epoch_start_s": epoch_start_s, "per_batch_ms": per_batch_ms, "batches_per_epoch": len(sampler),
            "resume_epoch": epoch, "replayed": replayed, "resume_s": resume_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the paper's item counts")
    args = parser.parse_args()
    print(f"hardware: {hardware()}\nversions: {versions()}\n")
    print(f"hybrid batches of {BATCH}; resume at step {RESUME_STEP:,}; goals: build <= 60 s, <= 4 GB, "
          "<= 1 ms per batch, resume <= 10 s\n")
    rows = [measure("MLQA-R (with texts)", lambda: build_pair_dataset([lareqa_parallel("mlqa-r")]), TIMED_BATCHES)]
    gc.collect()
    baseline_peak = peak_gb()
    rows.append(measure(f"paper shape x{args.scale:g} (ids only)", lambda: paper_shaped(args.scale), TIMED_BATCHES))
    header = (f"{'corpus':30}{'items':>12}{'slots':>13}{'build s':>9}{'RSS GB':>8}{'peak GB':>9}{'epoch start s':>15}"
              f"{'ms/batch':>10}{'resume s':>10}  replayed")
    print(header)
    for row in rows:
        print(f"{row['name']:30}{row['items']:12,}{row['slots']:13,}{row['build_s']:9.2f}{row['rss_gb']:8.2f}"
              f"{row['peak_gb']:9.2f}{row['epoch_start_s']:15.2f}{row['per_batch_ms']:10.3f}{row['resume_s']:10.2f}"
              f"  {row['replayed']:,} batches of epoch {row['resume_epoch']} ({row['batches_per_epoch']:,} per epoch)")
    paper = rows[-1]
    print(f"\n(peak GB of the paper shape is over the process before it; MLQA-R's run left the peak at "
          f"{baseline_peak:.2f} GB)")
    verdicts = [("build <= 60 s", paper["build_s"] <= 60), ("resident <= 4 GB", paper["peak_gb"] <= 4),
                ("<= 1 ms per batch", paper["per_batch_ms"] <= 1), ("resume <= 10 s", paper["resume_s"] <= 10)]
    print("summary: " + "; ".join(f"{goal}: {'met' if ok else 'NOT met'}" for goal, ok in verdicts))


if __name__ == "__main__":
    main()
