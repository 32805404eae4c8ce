"""Trainer callbacks: sampler epochs on resume, a stop on a non-finite loss, a described progress bar,
retrieval curves at checkpoints."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np
from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback, TrainerControl

from hybridir.data.lareqa import LAReQA
from hybridir.sampling.samplers import LanguageBatchSampler


class SamplerEpochCallback(TrainerCallback):
    """Sets the language sampler's epoch at the start of every epoch.

    The trainer reaches a batch sampler through accelerate's wrappers, except after a
    mid-epoch resume under DDP: there the sampler sits under ``SkipBatchSampler`` →
    ``BatchSamplerShard`` and would replay epoch 0's order in epoch ≥ 1.
    """

    def __init__(self, samplers: list[LanguageBatchSampler]) -> None:
        self.samplers = samplers  # filled by the sampler factory when the trainer builds its dataloader

    def on_epoch_begin(self, args, state, control, **kwargs) -> None:
        epoch = math.floor(state.epoch)  # exact at an epoch's start; a resumed state holds e.g. 1.5 (mid-epoch 1)
        for sampler in self.samplers:
            sampler.set_epoch(epoch)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(TrainerCallback):
    """Stops at the first logged non-finite loss, before it is evaluated or saved.

    Needs ``logging_nan_inf_filter=False`` (the trainer would otherwise log the running mean in
    place of a NaN) and logs every step for the check to see each step's loss.
    """

    def __init__(self) -> None:
        self.failed_at: tuple[int, float] | None = None

    def on_log(self, args, state, control, logs=None, **kwargs) -> TrainerControl:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.failed_at = (state.global_step, loss)
            control.should_training_stop = True
            control.should_save = False
            control.should_evaluate = False
        return control


class StepTimer(TrainerCallback):
    """Wall time between consecutive steps: batch fetching, forward, backward, optimiser."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self.stamps = [time.perf_counter()]

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.stamps.append(time.perf_counter())

    def median_seconds(self) -> float | None:
        """The median step (validations and checkpoint saves are rare outliers), None before two steps."""
        gaps = [b - a for a, b in zip(self.stamps, self.stamps[1:])]
        return round(statistics.median(gaps), 4) if gaps else None


class DescribedProgressCallback(ProgressCallback):
    """The trainer's progress bar, saying what it trains, with the latest losses beside it."""

    def __init__(self, description: str) -> None:
        super().__init__()
        self.description = description

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        super().on_train_begin(args, state, control, **kwargs)
        if self.training_bar is not None:
            self.training_bar.set_description(self.description)

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        if self.training_bar is not None and logs:
            shown = {key: f"{logs[key]:.4f}" for key in ("loss", "eval_loss") if key in logs}
            if shown:
                self.training_bar.set_postfix(shown, refresh=False)


class RetrievalCurveCallback(TrainerCallback):
    """Evaluates the model in training on a fixed LAReQA subset at step 0 and at every checkpoint,
    appending one row per step to ``path`` (Mo./Cr./Mul. mAP, rank distance): how the strategies'
    gaps open or close along training. The subset is encoded in memory, under the run's autocast.
    """

    def __init__(self, data: LAReQA, path: Path, precision: str, batch_size: int = 64) -> None:
        self.data, self.path, self.precision, self.batch_size = data, Path(path), precision, batch_size

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        if state.global_step == 0 and state.is_world_process_zero:  # a resumed run has its step-0 row already
            self._record(model, 0)

    def on_save(self, args, state, control, model=None, **kwargs) -> None:
        if state.is_world_process_zero:
            self._record(model, state.global_step)

    def _record(self, model, step: int) -> None:
        import torch

        from hybridir.evaluation.lareqa import evaluate_lareqa, summarize

        began = time.perf_counter()
        device = next(model.parameters()).device
        half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.autocast(device.type, dtype=half or torch.float32, enabled=half is not None):
            questions, candidates = (
                np.asarray(model.encode(texts, prompt_name=role, batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False), np.float32)
                for texts, role in ((self.data.questions.text.tolist(), "query"),
                                    (self.data.candidates.sentence.tolist(), "passage")))
        mean = summarize(evaluate_lareqa(self.data, questions, candidates)).loc["Mean"]
        row = {"step": step, "mono_map": mean["mono", "map"], "cross_map": mean["cross", "map"],
               "multi_map": mean["multi", "map"], "rank_distance": mean["multi", "rank_distance"],
               "seconds": round(time.perf_counter() - began, 2)}
        new = not self.path.exists()
        with open(self.path, "a") as handle:
            if new:
                handle.write(",".join(row) + "\n")
            handle.write(",".join(str(value) for value in row.values()) + "\n")
