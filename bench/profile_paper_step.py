"""Profile: where a `paper`-shaped training step's time goes on a GPU (one-off; CUDA only).

    HYBRIDIR_DATA_DIR=../shared/data python bench/profile_paper_step.py | tee results/bench/profile_paper_step.txt

The bare loop of ``bench_paper_shape.py`` (XLM-R-base shape, random weights, XLM-R tokenizer, batch
100 of MLQA-R pairs, bf16 autocast), with a CUDA synchronisation between its parts, so each step
splits into tokenising (on the CPU), forward, backward and optimiser (clipping, AdamW, zeroing,
reading the loss). Variants: fused AdamW, frozen word embeddings, one batch tokenised once (no
tokenising in the step); then torch's profiler over three steps. The first variant warms the
process up (CUDA and cuDNN initialisation) and is not a measurement. Medians of steps 6–30.
What it found set ``hybridir.training.trainer.device_loop_settings``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_paper_shape import PAPER, XLMR_BASE, random_xlmr_folder, tokenised_batch  # same folder
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from hybridir.data.parallel import lareqa_parallel
from hybridir.models.spec import load_model, resolve_model
from hybridir.sampling.pairs import build_pair_dataset

WARMUP = 5


def loop(folder: Path, dataset, steps: int, fused: bool = False, freeze: bool = False, profile: bool = False,
         pretokenize: bool = False) -> None:
    spec = resolve_model("xlm-roberta-base", path=folder, max_seq_length=PAPER.training.max_length)
    model = load_model(spec).to("cuda")
    if freeze:
        model[0].auto_model.get_input_embeddings().requires_grad_(False)
    loss_fn = MultipleNegativesRankingLoss(model, scale=PAPER.training.scale)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=PAPER.training.learning_rate,
                                  weight_decay=PAPER.training.weight_decay, fused=fused)
    queries, passages = dataset["query"], dataset["passage"]
    generator = np.random.default_rng(0)

    def batch():
        rows = generator.choice(len(queries), PAPER.training.batch_size, replace=False)
        return tokenised_batch(model, spec, queries, passages, rows, "cuda")

    def step_rest(loss) -> None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()

    fixed = batch() if pretokenize else None
    times, parts = [], {"tok": [], "fwd": [], "bwd": [], "opt": []}
    for step in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        features = fixed if pretokenize else batch()
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(features, None)
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        loss.backward()
        torch.cuda.synchronize()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        torch.cuda.synchronize()
        t4 = time.perf_counter()
        if step >= WARMUP:
            times.append(t4 - t0)
            for name, start, end in (("tok", t0, t1), ("fwd", t1, t2), ("bwd", t2, t3), ("opt", t3, t4)):
                parts[name].append(end - start)
    print(f"fused={fused} freeze={freeze} pretokenized={pretokenize}: step {statistics.median(times):.4f} s | "
          + " ".join(f"{k} {statistics.median(v) * 1000:.1f} ms" for k, v in parts.items())
          + f" | tokens/batch {features[0]['input_ids'].shape} {features[1]['input_ids'].shape} | peak "
          f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB", flush=True)
    if profile:
        from torch.profiler import ProfilerActivity, profile as profiler

        with profiler(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as run:
            for _ in range(3):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = loss_fn(batch(), None)
                step_rest(loss)
        print(run.key_averages().table(sort_by="cuda_time_total", row_limit=15))
    del model, optimizer
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("this profile needs a CUDA GPU")
    dataset, _ = build_pair_dataset([lareqa_parallel("mlqa-r")])
    with tempfile.TemporaryDirectory() as temporary:
        folder = random_xlmr_folder(Path(temporary) / "xlmr-base-random", XLMR_BASE)
        print("cpu threads", torch.get_num_threads())
        loop(folder, dataset, 25)  # warms the process up
        loop(folder, dataset, 30)
        loop(folder, dataset, 30, fused=True)
        loop(folder, dataset, 30, freeze=True)
        loop(folder, dataset, 30, pretokenize=True)
        loop(folder, dataset, 30, fused=True, profile=True)


if __name__ == "__main__":
    main()
