"""Benchmark: bf16 against fp32 for encoding and for training, on the same numbers.

    HYBRIDIR_CACHE_DIR=.cache HYBRIDIR_DATA_DIR=../shared/data \
        .venv/bin/python bench/bench_precision.py | tee results/bench/bench_precision.txt

In one run, on this machine:

1. **Peak.** The measured matmul throughput of the machine in fp32 and bf16 (square 2048
   matrices, best of 5), the ceiling for what follows.
2. **Encoding.** Full XQuAD-R (13,090 questions, 13,014 sentence candidates) with the offline
   model in fp32 weights and in bf16 weights: seconds, texts/s, achieved GFLOP/s (the encoder's
   non-embedding matmuls and attention over the padded tokens sentence-transformers actually
   computes), and every Mean-row number of the evaluation (Mo./Cr./Mul. mAP, R@1/R@10, rank
   distance) with its difference. The seconds are those the encoding cache records while this
   run computes the embeddings (the script refuses embeddings cached before it). Goal (issue 8): ≥ 1.6× faster with
   |ΔmAP| ≤ 0.002 and |Δ rank distance| ≤ 1%.
3. **Training.** ``--train-steps`` hybrid steps on MLQA-R (batch 32, max length 128, frozen word
   embeddings, same seed and batches) in fp32, in bf16 autocast over fp32 weights (the trainer's
   ``bf16=True``; AdamW state stays fp32), and with the weights themselves cast to bf16 (AdamW then
   updates bf16 weights): median step time, achieved GFLOP/s and the loss at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from timed_training import BATCH, timed_training  # same folder

from hybridir.data.lareqa import load_lareqa
from hybridir.data.parallel import lareqa_parallel
from hybridir.encoding import encoding_record
from hybridir.evaluation.lareqa import candidate_inputs, embed_lareqa, evaluate_lareqa, summarize
from hybridir.models.spec import load_model, resolve_model
from hybridir.provenance import hardware, versions
from hybridir.sampling.pairs import PairIndex, build_pair_dataset
from hybridir.sampling.samplers import LanguageBatchSampler, LanguageSamplerFactory

MAX_LENGTH = 128


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.matmul(a, b)  # warm-up
    best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def forward_flops(model, token_counts: list[tuple[int, int]]) -> float:
    """Matmul FLOPs of one forward pass over padded batches given as (rows, padded length) pairs:
    2 × non-embedding weights per token, plus attention scores and their weighted sum (4 × length × width)."""
    transformer = model[0].auto_model
    config = transformer.config
    embedding = sum(p.numel() for p in transformer.embeddings.parameters())
    dense = sum(p.numel() for p in transformer.parameters()) - embedding
    flops = 0.0
    for rows, length in token_counts:
        flops += rows * length * (2 * dense + 4 * config.num_hidden_layers * length * config.hidden_size)
    return flops


def padded_batches(model, texts: list[str], prompt: str, batch_size: int = 64) -> list[tuple[int, int]]:
    """(rows, padded length) of each batch as sentence-transformers encodes them: sorted by length."""
    lengths = [len(ids) for ids in model.tokenizer([prompt + t for t in texts], truncation=True,
                                                   max_length=model.max_seq_length)["input_ids"]]
    lengths.sort(reverse=True)
    return [(len(lengths[i:i + batch_size]), lengths[i]) for i in range(0, len(lengths), batch_size)]


def encoding_part(batch_size: int) -> None:
    data = load_lareqa("xquad-r")
    questions, candidates = data.questions.text.tolist(), candidate_inputs(data, "sentence")
    results, seconds, summaries = {}, {}, {}
    for precision in ("fp32", "bf16"):
        spec = resolve_model("offline", precision=precision)
        began = time.perf_counter()
        vectors = embed_lareqa(spec, data, "sentence", batch_size)
        wall = time.perf_counter() - began
        records = [encoding_record(spec, questions, "query"), encoding_record(spec, candidates, "passage")]
        seconds[precision] = sum(r["seconds"] for r in records)
        if wall < seconds[precision] or any(r["resumed_shards"] for r in records):
            raise SystemExit(f"the {precision} embeddings were (partly) cached before this run, so their time is not "
                             "this run's; point HYBRIDIR_CACHE_DIR at an empty folder (the model converts again)")
        texts = sum(r["texts"] for r in records)
        summaries[precision] = summarize(evaluate_lareqa(data, *vectors)).loc["Mean"]
        results[precision] = vectors
        print(f"encoded {texts} distinct texts in {precision}: {seconds[precision]:.1f} s, "
              f"{texts / seconds[precision]:.1f} texts/s", flush=True)
    model = load_model(resolve_model("offline"))
    flops = (forward_flops(model, padded_batches(model, sorted(set(questions)), "query: ", batch_size))
             + forward_flops(model, padded_batches(model, sorted(set(candidates)), "passage: ", batch_size)))
    for precision in ("fp32", "bf16"):
        print(f"  {precision}: achieved {flops / seconds[precision] / 1e9:.1f} GFLOP/s")
    speedup = seconds["fp32"] / seconds["bf16"]
    cosine = min(float((a * b).sum(axis=1).min()) for a, b in zip(results["fp32"], results["bf16"]))
    print(f"\nencoding speed-up bf16 / fp32: {speedup:.2f}x (goal ≥ 1.6)   min cosine fp32 vs bf16: {cosine:.5f}")
    table = summaries["fp32"].to_frame("fp32").assign(bf16=summaries["bf16"])
    table["delta"] = table["bf16"] - table["fp32"]
    table["relative"] = table["delta"] / table["fp32"]
    print("\nXQuAD-R Mean row, fp32 vs bf16 weights:")
    print(table.to_string(float_format=lambda x: f"{x:.5f}"))
    maps = table[table.index.get_level_values("metric") == "map"]
    distance = table[table.index.get_level_values("metric") == "rank_distance"]
    worst_map, worst_rd = maps["delta"].abs().max(), distance["relative"].abs().max()
    verdict = "OK" if speedup >= 1.6 and worst_map <= 0.002 and worst_rd <= 0.01 else "MISSED"
    print(f"\nmax |ΔmAP| {worst_map:.5f} (goal ≤ 0.002), max |Δ rank distance| {worst_rd:.2%} (goal ≤ 1%): {verdict}")


def training_part(steps: int) -> None:
    dataset, table = build_pair_dataset([lareqa_parallel("mlqa-r")])
    spec = resolve_model("offline", max_seq_length=MAX_LENGTH)
    modes = {"fp32": ("fp32", False), "bf16 autocast": ("bf16", False), "bf16 weights": ("fp32", True)}
    step_flops = None
    for mode, (autocast, cast_weights) in modes.items():
        model = load_model(spec)
        model[0].auto_model.get_input_embeddings().requires_grad_(False)
        if cast_weights:
            model.to(torch.bfloat16)
        if step_flops is None:
            step_flops = 3 * _training_forward_flops(model, dataset, table, spec, steps)  # forward + 2× backward
        clock = timed_training(model, spec, dataset, LanguageSamplerFactory(dataset, table, strategy="hybrid"),
                               steps, bf16=autocast == "bf16")
        step = statistics.median(np.diff(clock.stamps)[2:])
        print(f"training {mode:>13}: median step {step:.3f} s, achieved {step_flops / step / 1e9:.1f} GFLOP/s, "
              f"loss at step {steps} {clock.losses[-1]:.4f}, mean of the last 10 {np.mean(clock.losses[-10:]):.4f}",
              flush=True)


def _training_forward_flops(model, dataset, table, spec, steps: int) -> float:
    """Mean forward FLOPs of the first ``steps`` hybrid batches (each column padded to its longest text)."""
    sampler = LanguageBatchSampler(dataset, BATCH, table=table, strategy="hybrid", seed=0)
    batches, total = [b.pairs for _, b in zip(range(steps), sampler.plan(0))], 0.0
    for pairs in batches:
        rows = dataset[[PairIndex(passage, query) for query, passage in pairs.tolist()]]
        for column, prompt in (("query", spec.query_prompt), ("passage", spec.passage_prompt)):
            texts = rows[column]
            total += forward_flops(model, padded_batches(model, texts, prompt, batch_size=len(texts)))
    return total / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64, help="encoding batch size")
    parser.add_argument("--skip-encoding", action="store_true")
    args = parser.parse_args()
    print(f"hardware: {hardware()}\nversions: {versions()}\ntorch threads: {torch.get_num_threads()}\n")
    peaks = {name: matmul_peak_gflops(dtype) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(f"matmul peak (2048², best of 5): fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s "
          f"({peaks['bf16'] / peaks['fp32']:.2f}x)\n", flush=True)
    if not args.skip_encoding:
        encoding_part(args.batch_size)
    print()
    training_part(args.train_steps)


if __name__ == "__main__":
    main()
