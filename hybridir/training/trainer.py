"""One training run: sentence-transformers' trainer with the language batch sampler.

Output folder layout (``hybridir train --output DIR``):

- ``config.json``: what fixes the run: its :class:`TrainingConfig`, the resolved precision, the number
  of processes and the data checksums, written once the inputs have loaded; ``--resume`` refuses a
  run that differs in any of them (the batch plan would differ);
- ``checkpoints/checkpoint-N/``: the trainer's checkpoints (weights, optimiser, scheduler, RNG states);
- ``model/``: the final sentence-transformers model (the best validation checkpoint when validating),
  ready for ``hybridir evaluate --model DIR/model``;
- ``run.json``: the run record: config, data checksums, batch make-up, loss and validation
  curves, wall time, time per step, versions, hardware.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from transformers import EarlyStoppingCallback, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from hybridir.models.precision import resolve_precision
from hybridir.models.spec import ModelSpec, load_model, resolve_model
from hybridir.provenance import TRAINING_CODE, code_digest, portable, provenance, write_json
from hybridir.sampling.pairs import build_pair_dataset
from hybridir.sampling.samplers import LanguageBatchSampler, LanguageSamplerFactory
from hybridir.training.callbacks import (DescribedProgressCallback, NonFiniteLossError, SamplerEpochCallback,
                                         StepTimer, StopOnNonFiniteLoss)
from hybridir.training.config import TrainingConfig
from hybridir.training.data import load_training_sources, load_validation

CHECKPOINTS, MODEL, RECORD, CONFIG = "checkpoints", "model", "run.json", "config.json"


def train(config: TrainingConfig, output: Path, resume: bool = False, show_progress: bool = True,
          callbacks: Sequence[TrainerCallback] = ()) -> dict:
    """Train, write ``output`` (see the module docstring) and return the run record.

    ``callbacks`` are extra ``transformers`` trainer callbacks (logging, custom stops).
    """
    output = Path(output)
    claims = _launch_rank() == 0  # one process checks and claims the folder; the process group is not up yet
    if claims:
        _check_output(output, resume)
    precision = resolve_precision(config.precision)
    spec = resolve_model(config.model, path=config.model_path, max_seq_length=config.max_length)
    sources = load_training_sources(config)
    dataset, table = build_pair_dataset(sources)
    sampler_options = {"strategy": config.strategy, "alpha": config.alpha, "temperature": config.source_temperature,
                       "pooled_ranks": config.gather_across_devices, "cross_pairs": config.cross_pairs,
                       "mono_draw": config.mono_draw}
    # The sampler's checks (a language with fewer items than a batch, …) fail here, before the folder is claimed.
    LanguageBatchSampler(dataset, config.batch_size, table=table, world_size=_launched_world_size(),
                         **sampler_options)
    validation = load_validation(config)
    identity = _run_identity(config, precision, sources, validation)
    created = not output.exists()
    if claims:
        _claim_output(output, identity, resume)
    try:
        fitted = _fit(config, precision, spec, output, dataset, table, sampler_options, sources, validation, resume,
                      show_progress, callbacks)
    except BaseException:
        if claims and not resume and latest_checkpoint(output) is None:
            _release_output(output, created)  # nothing to resume: the same command can be retried as typed
        raise
    trainer, factory, early_stopping = fitted.trainer, fitted.factory, fitted.early_stopping
    writer = trainer.is_world_process_zero()
    state = trainer.state
    record = provenance(identity["config"] | {"model_spec": asdict(spec)}, data_checksum=_data_checksum(identity),
                        model_fingerprint=spec.fingerprint())
    record.update({
        "code_digest": code_digest(TRAINING_CODE),
        "precision": precision,
        "seed": config.seed,
        "steps": state.global_step,
        "early_stopped": early_stopping is not None
                         and early_stopping.early_stopping_patience_counter >= config.patience,
        # Relative to the run folder: a record names no machine's paths.
        "best_checkpoint": _relative(state.best_model_checkpoint, output),
        "best_eval_loss": state.best_metric,
        "data": {
            "sources": [{"name": s.name, "checksum": s.checksum, "items": s.n_items,
                         "languages": list(s.languages)} for s in sources],
            "slots": len(table),
            "validation": None if validation is None else {"pairs": len(validation[0]), "checksum": validation[1]},
        },
        # Every rank trains one batch a step, so the run has used steps × world size of the sampler's batches.
        "batches": factory.built[0].make_up(state.global_step * trainer.args.world_size) if factory.built else None,
        "train_loss": [{"step": h["step"], "loss": h["loss"]} for h in state.log_history if "loss" in h],
        "eval_loss": [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in state.log_history if "eval_loss" in h],
        "wall_seconds": round(fitted.seconds + (_previous_wall_seconds(output) if resume else 0.0), 2),
        "median_step_seconds": fitted.timer.median_seconds(),  # steps only: validations and saves are outliers
    })
    if fitted.non_finite.failed_at is not None:
        step, value = fitted.non_finite.failed_at
        record["status"] = "diverged"
        if writer:
            write_json(output / RECORD, record)
        last = latest_checkpoint(output)
        hint = "; or train in fp32" if precision != "fp32" else ""
        raise NonFiniteLossError(f"the training loss became {value} at step {step}; stopped without saving it. The "
                                 f"last good checkpoint is {last or 'none (it failed before the first save)'}; "
                                 f"start a new --output with a lower --lr{hint}")
    record["status"] = "finished"
    if writer:
        # ST's best-model loading only logs a failure: take the best checkpoint from disk ourselves.
        best = state.best_model_checkpoint
        final = SentenceTransformer(best, device="cpu") if best else trainer.model
        final.save(str(output / MODEL))
        record["trained_model_fingerprint"] = resolve_model(str(output / MODEL)).fingerprint()
        write_json(output / RECORD, record)
    trainer.accelerator.wait_for_everyone()  # no rank returns before the model is on disk
    return record


class _Fitted(NamedTuple):
    trainer: SentenceTransformerTrainer
    factory: LanguageSamplerFactory
    early_stopping: EarlyStoppingCallback | None
    non_finite: StopOnNonFiniteLoss
    timer: StepTimer
    seconds: float


def _fit(config: TrainingConfig, precision: str, spec: ModelSpec, output: Path, dataset, table, sampler_options: dict,
         sources: list, validation: tuple | None, resume: bool, show_progress: bool,
         callbacks: Sequence[TrainerCallback]) -> _Fitted:
    """Load the model and run sentence-transformers' trainer with the language sampler."""
    model = load_model(spec)
    if config.freeze_word_embeddings:
        # Cheap on CPU (the 250k-row table gets no gradient or optimiser state) and keeps the
        # pre-trained cross-lingual alignment of the vocabulary.
        model[0].auto_model.get_input_embeddings().requires_grad_(False)
    loss = MultipleNegativesRankingLoss(model, scale=config.scale, gather_across_devices=config.gather_across_devices)
    factory = LanguageSamplerFactory(dataset, table, **sampler_options,
                                     eval_dataset=None if validation is None else validation[0])
    args = _training_arguments(config, precision, spec, output, factory, has_negatives=sources[0].has_negatives)
    non_finite, timer = StopOnNonFiniteLoss(), StepTimer()
    all_callbacks = [SamplerEpochCallback(factory.built), non_finite, timer, *callbacks]
    early_stopping = None
    if validation is not None and config.patience is not None:
        early_stopping = EarlyStoppingCallback(early_stopping_patience=config.patience)
        all_callbacks.append(early_stopping)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         eval_dataset=None if validation is None else validation[0],
                                         loss=loss, callbacks=all_callbacks)
    _check_distributed(trainer.args.world_size)
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)  # a dict per step; the progress bar shows the loss instead
    if show_progress:
        sources_text = " + ".join(source.name for source in sources)
        trainer.add_callback(DescribedProgressCallback(f"training {config.strategy} on {sources_text}"))
    began = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    return _Fitted(trainer, factory, early_stopping, non_finite, timer, time.perf_counter() - began)


def _relative(path: str | None, output: Path) -> str | None:
    return None if path is None else Path(os.path.relpath(path, output)).as_posix()


def _release_output(output: Path, created: bool) -> None:
    """Remove what a run that failed before its first checkpoint wrote, so that its retry is not refused."""
    if created:
        shutil.rmtree(output, ignore_errors=True)
        return
    (output / CONFIG).unlink(missing_ok=True)
    shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)


def _launched_world_size() -> int:
    """The number of processes torchrun / accelerate launch started (1 when not distributed); read
    before the process group exists, unlike the sampler's world size."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _launch_rank() -> int:
    """This process's rank as torchrun / accelerate launch set it (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def _check_distributed(trainer_world_size: int) -> None:
    """The trainer must see the process group the sampler sees, or ranks would train on copies of one batch."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        launched = torch.distributed.get_world_size()
        if launched != trainer_world_size:
            raise ValueError(f"{launched} processes were launched but the trainer runs {trainer_world_size}: "
                             "accelerate did not set up DDP for this process group; launch with torchrun or "
                             "accelerate launch, one process per device")


def _training_arguments(config: TrainingConfig, precision: str, spec: ModelSpec, output: Path,
                        factory: LanguageSamplerFactory, has_negatives: bool) -> SentenceTransformerTrainingArguments:
    prompts = {"query": spec.query_prompt, "passage": spec.passage_prompt}
    if has_negatives:
        prompts["negative"] = spec.passage_prompt
    validates = config.validates
    return SentenceTransformerTrainingArguments(
        output_dir=str(output / CHECKPOINTS),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,  # validation batches as large as training ones: same negatives
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a fraction of max_steps
        lr_scheduler_type="linear",
        seed=config.seed,
        data_seed=config.seed,
        bf16=precision == "bf16",  # autocast; weights and AdamW state stay fp32
        fp16=precision == "fp16",
        # Without a GPU: bf16 autocast runs on the CPU (AMX, AVX512-BF16); DDP needs accelerate's CPU (gloo) set-up.
        use_cpu=not torch.cuda.is_available() and (precision == "bf16" or _launched_world_size() > 1),
        prompts=prompts,
        batch_sampler=factory,
        eval_strategy="steps" if validates else "no",
        eval_steps=config.eval_steps if validates else None,
        save_strategy="steps",
        save_steps=config.eval_steps,
        save_total_limit=2,  # with load_best_model_at_end: the best and the latest
        load_best_model_at_end=validates,
        metric_for_best_model="eval_loss" if validates else None,
        greater_is_better=False if validates else None,
        logging_steps=1,  # StopOnNonFiniteLoss checks every step's loss, before that step can be saved
        logging_nan_inf_filter=False,  # it must see a NaN, not the running mean
        restore_callback_states_from_checkpoint=True,  # early-stopping patience survives a resume
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to="none",
        disable_tqdm=True,  # our own described progress bar replaces the trainer's
        **device_loop_settings(torch.cuda.is_available()),
    )


def device_loop_settings(cuda: bool) -> dict:
    """Optimiser and data loading for the device. On a GPU the step is host-bound (H200, XLM-R base, batch
    100: tokenising 60 of 155 ms, unfused AdamW 24 ms; results/bench/bench_paper_shape.txt), so batches
    are tokenised by worker processes ahead of the step and AdamW is fused. The workers are started afresh
    each epoch, as the in-process loader takes a seed each epoch, so that the dropout stream, and with it
    the run, stays that of the in-process loader. On a CPU, workers would take the cores the step needs."""
    if cuda:
        return {"optim": "adamw_torch_fused", "dataloader_num_workers": 2}
    return {"optim": "adamw_torch", "dataloader_num_workers": 0}


def _check_output(output: Path, resume: bool) -> None:
    """Never overwrite a run; resume only one that has a checkpoint. Writes nothing."""
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"--output {output} is a file; give a folder")
    if resume:
        if latest_checkpoint(output) is None:
            raise FileNotFoundError(f"nothing to resume in {output}: it has no checkpoint; drop --resume to start")
    elif output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} is not empty; pass --resume to continue the run in it, or choose a new "
                              "--output")


def _run_identity(config: TrainingConfig, precision: str, sources: list, validation: tuple | None) -> dict:
    """What must not change between an interrupted run and its resume (it fixes the batch plan)."""
    identity = {"config": portable(asdict(config)), "precision": precision, "world_size": _launched_world_size(),
                "data": {source.name: source.checksum for source in sources},
                "validation": None if validation is None else validation[1]}
    return json.loads(json.dumps(identity))  # JSON types, as read back from config.json


def _claim_output(output: Path, identity: dict, resume: bool) -> None:
    """Write ``config.json`` once the inputs have loaded, so a failed start leaves the folder free."""
    saved = output / CONFIG
    if resume:
        previous = json.loads(saved.read_text()) if saved.is_file() else {}
        changed = _differences(previous, identity)
        if changed:
            raise ValueError(f"--resume with a different run than {saved} ({', '.join(changed)}); use the same "
                             "options, data and number of processes, or a new --output")
        return
    output.mkdir(parents=True, exist_ok=True)
    write_json(saved, identity)


def _differences(previous: dict, current: dict) -> list[str]:
    names = []
    for key in sorted(set(previous) | set(current)):
        old, new = previous.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict) and key == "config":
            names += [name for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
        elif old != new:
            names.append(key)
    return names


def _data_checksum(identity: dict) -> str:
    return " + ".join(f"{name}={checksum}" for name, checksum in identity["data"].items())


def _previous_wall_seconds(output: Path) -> float:
    """Wall time of the segments before a resume, from their run record (0 if they left none)."""
    record = output / RECORD
    return float(json.loads(record.read_text()).get("wall_seconds", 0.0)) if record.is_file() else 0.0


def latest_checkpoint(output: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = output / CHECKPOINTS
    found = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    return Path(found) if found else None

