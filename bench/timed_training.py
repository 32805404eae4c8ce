"""A timed training run for the benchmarks: per-step wall time and loss (imported from this folder).

The benchmarks train with the arguments that matter for speed as ``hybridir train`` sets them
(AdamW, lr 3e-5, weight decay 0.01, 10% warm-up, prompts per column, CPU autocast for bf16) and
without validation or checkpoints, so that only steps are timed.
"""

from __future__ import annotations

import tempfile
import time

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

BATCH = 32


class StepClock(TrainerCallback):
    """A time stamp at the start and after every step (so each interval covers fetching the batch and the
    step), and every logged loss."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.losses: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self.stamps.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.stamps.append(time.perf_counter())

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])


def timed_training(model, spec, dataset, batch_sampler, steps: int, bf16: bool, **arguments) -> StepClock:
    """Train ``model`` for ``steps`` steps of ``BATCH`` pairs; the clock of the run. ``arguments`` add training
    arguments (``torch_compile=True``)."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    clock = StepClock()
    with tempfile.TemporaryDirectory() as folder:
        args = SentenceTransformerTrainingArguments(
            output_dir=folder, max_steps=steps, per_device_train_batch_size=BATCH, learning_rate=3e-5,
            weight_decay=0.01, warmup_steps=0.1, seed=0, bf16=bf16, use_cpu=True, batch_sampler=batch_sampler,
            prompts={"query": spec.query_prompt, "passage": spec.passage_prompt}, save_strategy="no",
            eval_strategy="no", logging_steps=1, report_to="none", disable_tqdm=True, dataloader_pin_memory=False,
            **arguments)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                             loss=MultipleNegativesRankingLoss(model), callbacks=[clock])
        trainer.remove_callback(PrinterCallback)  # a dict per step
        trainer.train()
    return clock
