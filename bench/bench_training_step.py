"""Benchmark: how close a training step comes to this CPU's matmul peak, and what else buys steps (issue 16).

    HYBRIDIR_DATA_DIR=../shared/data .venv/bin/python bench/bench_training_step.py \
        | tee results/bench/bench_training_step.<machine>.txt

MNRL on MLQA-R pairs, the offline model, batch 32, max length 128, frozen word embeddings, hybrid batches
(seed 0, so every configuration trains on the same batches), through sentence-transformers' trainer as
``hybridir train`` sets it up (``bench/timed_training.py``). In one run, one configuration at a time:

1. **fp32 eager** and **bf16 autocast eager** (the default where bf16 is native): median step, achieved
   GFLOP/s (3 × the forward's matmul FLOPs of the batches), fraction of the bf16 matmul peak; and the
   bf16 step through ``hybridir train`` (validation off), so that our trainer's overhead stays visible.
2. **Causes, measured.** The bf16 step with every dropout at p = 0 — a diagnostic, not a faithful setting:
   it prices dropout (its random masks, and the attention path it forces); and the bf16 step under
   ``torch.compile`` (the trainer's ``torch_compile``; inductor, shapes made dynamic after the first
   recompilation): its compile time and step. AdamW and tokenisation are priced by ``bench/profile_cpu.py``.
3. **Throughput of a preset.** A run is a chain of steps, but a preset is many independent runs: the
   bf16 step on one thread alone, then two single-threaded runs side by side (two processes started
   together), against one two-threaded run: steps per second of the machine.

Ends with a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_precision import MAX_LENGTH, _training_forward_flops, matmul_peak_gflops  # same folder
from timed_training import StepClock, timed_training  # same folder

from hybridir.data.parallel import lareqa_parallel
from hybridir.models.spec import load_model, resolve_model
from hybridir.provenance import hardware, versions
from hybridir.sampling.pairs import build_pair_dataset
from hybridir.sampling.samplers import LanguageSamplerFactory

WARMUP = 5  # steps left out of the median: first allocations, and compilation


def run(steps: int, bf16: bool, dropout: bool = True, compile_model: bool = False) -> dict:
    """Train ``steps`` steps; the median step after the warm-up, the first steps and the last loss."""
    dataset, table = build_pair_dataset([lareqa_parallel("mlqa-r")])
    spec = resolve_model("offline", max_seq_length=MAX_LENGTH)
    model = load_model(spec)
    model[0].auto_model.get_input_embeddings().requires_grad_(False)
    if not dropout:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    flops = 3 * _training_forward_flops(model, dataset, table, spec, steps)  # forward + 2× backward
    extra = {"torch_compile": True} if compile_model else {}
    clock = timed_training(model, spec, dataset, LanguageSamplerFactory(dataset, table, strategy="hybrid"), steps,
                           bf16=bf16, **extra)
    intervals = np.diff(clock.stamps)
    return {"step": statistics.median(intervals[WARMUP:]), "first": intervals[:WARMUP].tolist(), "flops": flops,
            "loss": clock.losses[-1], "began": clock.stamps[0], "ended": clock.stamps[-1]}


def ours(steps: int) -> dict:
    """The same steps through ``hybridir train`` (no validation, one checkpoint at the end)."""
    from hybridir.training.config import TrainingConfig
    from hybridir.training.trainer import train

    clock = StepClock()
    with tempfile.TemporaryDirectory() as folder:
        train(TrainingConfig(max_steps=steps, validation="none", eval_steps=steps, patience=None),
              Path(folder) / "run", show_progress=False, callbacks=[clock])
    return {"step": statistics.median(np.diff(clock.stamps)[WARMUP:steps]), "loss": clock.losses[-1]}


def side_by_side(steps: int) -> list[dict]:
    """Two single-threaded runs started together, each in its own process."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--worker", str(steps)]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate()[0] for worker in workers]
    if any(worker.returncode for worker in workers):
        raise SystemExit("a side-by-side worker failed; run it alone: " + " ".join(command))
    return [json.loads(output.strip().splitlines()[-1]) for output in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # one side-by-side run: prints JSON
    args = parser.parse_args()
    if args.worker:
        torch.set_num_threads(1)
        print(json.dumps(run(args.worker, bf16=True)))
        return
    print(f"hardware: {hardware()}\nversions: {versions()}\ntorch threads: {torch.get_num_threads()}\n")
    peak = matmul_peak_gflops(torch.bfloat16)
    print(f"matmul peak (2048², best of 5): fp32 {matmul_peak_gflops(torch.float32):.1f} GFLOP/s, "
          f"bf16 {peak:.1f} GFLOP/s\n", flush=True)

    def show(label: str, result: dict) -> float:
        fraction = result["flops"] / result["step"] / 1e9 / peak
        print(f"{label:44} median step {result['step']:.3f} s, {result['flops'] / result['step'] / 1e9:6.1f} "
              f"GFLOP/s = {fraction:.2f} of the bf16 peak; first steps {' '.join(f'{s:.1f}' for s in result['first'])} "
              f"s; loss at step {args.steps} {result['loss']:.4f}", flush=True)
        return fraction

    show("fp32 eager", run(args.steps, bf16=False))
    default = run(args.steps, bf16=True)
    fraction = show("bf16 autocast eager (the default)", default)
    trainer = ours(args.steps)
    print(f"{'hybridir train (no validation)':44} median step {trainer['step']:.3f} s = "
          f"{trainer['step'] / default['step']:.3f}x the bare sentence-transformers loop's; loss at step "
          f"{args.steps} {trainer['loss']:.4f}", flush=True)
    no_dropout = show("bf16, dropout p = 0 (diagnostic)", run(args.steps, bf16=True, dropout=False))
    compiled = run(args.steps, bf16=True, compile_model=True)
    show("bf16, torch.compile", compiled)
    print(f"  torch.compile: the first {WARMUP} steps took {sum(compiled['first']):.0f} s "
          f"(eager: {sum(default['first']):.0f} s)")

    torch.set_num_threads(1)
    alone = run(args.steps, bf16=True)
    show("bf16, 1 thread alone", alone)
    torch.set_num_threads(2)
    pair = side_by_side(args.steps)
    for i, result in enumerate(pair):
        show(f"bf16, 1 thread, side by side ({i + 1} of 2)", result)
    # Steps per second of the machine while both ran: each run's steps over the span both were running.
    span = max(r["ended"] for r in pair) - min(r["began"] for r in pair)
    pair_rate = 2 * args.steps / span
    one_rate = 1 / default["step"]
    print(f"\ntwo single-threaded runs side by side: {pair_rate:.3f} steps/s over {span:.0f} s (start-up "
          f"excluded, warm-up included); one two-threaded run: {one_rate:.3f} steps/s (median step)")
    print(f"\nfraction of bf16 peak: training step {fraction:.2f} (bf16 autocast eager); {no_dropout:.2f} with "
          f"dropout off (diagnostic); torch.compile step {compiled['step'] / default['step']:.2f}x eager; "
          f"two single-threaded runs side by side {pair_rate / one_rate:.2f}x the steps/s of one two-threaded run")


if __name__ == "__main__":
    main()
