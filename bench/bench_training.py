"""Benchmark: the cost of the language batch sampler inside a training step.

    HYBRIDIR_CACHE_DIR=.cache HYBRIDIR_DATA_DIR=../shared/data \
        .venv/bin/python bench/bench_training.py | tee results/bench/bench_training.txt

On MLQA-R's pair dataset with the offline model (batch 32, max length 128, frozen word
embeddings, no validation, no checkpoints), in one run:

(a) the hybrid sampler composing a batch (mean over 20 whole epochs, their set-up included);
(b) a training step with it;
(c) a training step with sentence-transformers' default batch sampler on the same dataset;
(d) the hybrid step again under bf16 autocast (weights and AdamW state stay fp32).

A step's time is the median interval between consecutive ``on_step_end`` calls, so it covers
fetching the batch (sampler, collation, tokenisation) and forward, backward and the optimiser.
The first ``--warmup`` steps are dropped, and the configurations run in interleaved rounds so
drift of the machine hits all of them alike. Goals (issue 7): (a) ≤ 1% of (b); (b) ≤ 1.05 × (c).
The losses of the first steps are printed for fp32 and bf16 (same seed, same batches).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from timed_training import BATCH, StepClock, timed_training  # same folder

from hybridir.data.parallel import lareqa_parallel
from hybridir.models.spec import load_model, resolve_model
from hybridir.provenance import hardware, versions
from hybridir.sampling.pairs import build_pair_dataset
from hybridir.sampling.samplers import LanguageBatchSampler, LanguageSamplerFactory

MAX_LENGTH = 128


def sampler_seconds_per_batch(dataset, table, epochs: int) -> float:
    """Mean time per batch over whole epochs, the per-epoch set-up (every pool's first shuffle) included."""
    sampler = LanguageBatchSampler(dataset, BATCH, table=table, strategy="hybrid", seed=0)
    start = time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for _ in sampler:
            pass
    return (time.perf_counter() - start) / (epochs * len(sampler))


def run_steps(dataset, table, sampler: str, precision: str, steps: int) -> StepClock:
    spec = resolve_model("offline", max_seq_length=MAX_LENGTH)
    model = load_model(spec)
    model[0].auto_model.get_input_embeddings().requires_grad_(False)
    batch_sampler = (LanguageSamplerFactory(dataset, table, strategy="hybrid") if sampler == "hybrid"
                     else "batch_sampler")
    return timed_training(model, spec, dataset, batch_sampler, steps, bf16=precision == "bf16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sampler-epochs", type=int, default=20)
    args = parser.parse_args()

    dataset, table = build_pair_dataset([lareqa_parallel("mlqa-r")])
    print(f"MLQA-R pair dataset: {len(dataset)} slots; batch {BATCH}, max length {MAX_LENGTH}, frozen word embeddings")
    print(f"hardware: {hardware()}\nversions: {versions()}\n")
    per_batch = sampler_seconds_per_batch(dataset, table, args.sampler_epochs)

    configurations = [("default", "fp32"), ("hybrid", "fp32"), ("hybrid", "bf16")]
    intervals: dict[tuple[str, str], list[float]] = {c: [] for c in configurations}
    losses: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for configuration in configurations:
            clock = run_steps(dataset, table, *configuration, steps=args.steps)
            intervals[configuration] += list(np.diff(clock.stamps)[args.warmup:])
            losses.setdefault(configuration, clock.losses)
            print(f"round {round_ + 1}: {configuration[0]:>7} sampler, {configuration[1]}: "
                  f"median step {statistics.median(np.diff(clock.stamps)[args.warmup:]):.3f} s", flush=True)
    step = {c: statistics.median(v) for c, v in intervals.items()}

    print(f"\n(a) hybrid sampler, one batch:             {per_batch * 1e6:10.1f} µs")
    for (sampler, precision), seconds in step.items():
        print(f"    step, {sampler:>7} sampler, {precision}:        {seconds:10.3f} s  (median of {len(intervals[(sampler, precision)])})")
    ours, default, bf16 = step[("hybrid", "fp32")], step[("default", "fp32")], step[("hybrid", "bf16")]
    print(f"\nsampler / step:                       {per_batch / ours:.2e}   (goal ≤ 1e-2)  "
          f"{'OK' if per_batch / ours <= 0.01 else 'MISSED'}")
    print(f"hybrid step / default step:           {ours / default:.3f}      (goal ≤ 1.05)  "
          f"{'OK' if ours / default <= 1.05 else 'MISSED'}")
    print(f"bf16 step / fp32 step (hybrid):       {bf16 / ours:.3f}")
    fp32_losses, bf16_losses = losses[("hybrid", "fp32")], losses[("hybrid", "bf16")]
    print("\nloss per step, hybrid fp32: " + " ".join(f"{x:.4f}" for x in fp32_losses))
    print("loss per step, hybrid bf16: " + " ".join(f"{x:.4f}" for x in bf16_losses))
    print(f"max |Δloss| over {len(fp32_losses)} steps: "
          f"{max(abs(a - b) for a, b in zip(fp32_losses, bf16_losses)):.4f}")


if __name__ == "__main__":
    main()
