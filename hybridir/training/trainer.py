"""One training run: sentence-transformers' trainer with the language batch sampler.

Output folder layout (``hybridir train --output DIR``):

- ``config.json``: the run's :class:`TrainingConfig`, written first; ``--resume`` refuses a different one;
- ``checkpoints/checkpoint-N/``: the trainer's checkpoints (weights, optimiser, scheduler, RNG states);
- ``model/``: the final sentence-transformers model (the best validation checkpoint when validating),
  ready for ``hybridir evaluate --model DIR/model``;
- ``run.json``: the run record: config, data checksums, batch make-up, loss and validation
  curves, wall time, time per step, versions, hardware.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from transformers import TrainerCallback

from hybridir.models.spec import ModelSpec, load_model, resolve_model
from hybridir.provenance import provenance
from hybridir.sampling.pairs import PairTable, build_pair_dataset
from hybridir.sampling.samplers import LanguageBatchSampler, LanguageSamplerFactory
from hybridir.training.callbacks import (DescribedProgressCallback, NonFiniteLossError, SamplerEpochCallback,
                                         StopOnNonFiniteLoss)
from hybridir.training.config import TrainingConfig
from hybridir.training.data import load_training_sources, load_validation

CHECKPOINTS, MODEL, RECORD, CONFIG = "checkpoints", "model", "run.json", "config.json"


def train(config: TrainingConfig, output: Path, resume: bool = False, show_progress: bool = True,
          callbacks: Sequence[TrainerCallback] = ()) -> dict:
    """Train, write ``output`` (see the module docstring) and return the run record.

    ``callbacks`` are extra ``transformers`` trainer callbacks (logging, custom stops).
    """
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    output = Path(output)
    if _launch_rank() == 0:  # one process checks and claims the folder; the process group is not up yet
        _prepare_output(output, config, resume)
    spec = resolve_model(config.model, path=config.model_path, max_seq_length=config.max_length)
    sources = load_training_sources(config)
    dataset, table = build_pair_dataset(sources)
    validation = load_validation(config)
    model = load_model(spec)
    if config.freeze_word_embeddings:
        # Cheap on CPU (the 250k-row table gets no gradient or optimiser state) and keeps the
        # pre-trained cross-lingual alignment of the vocabulary.
        model[0].auto_model.get_input_embeddings().requires_grad_(False)
    loss = MultipleNegativesRankingLoss(model, scale=config.scale, gather_across_devices=config.gather_across_devices)
    factory = LanguageSamplerFactory(dataset, table, strategy=config.strategy, alpha=config.alpha,
                                     temperature=config.source_temperature, pooled_ranks=config.gather_across_devices)
    args = _training_arguments(config, spec, output, factory, has_negatives=sources[0].has_negatives)
    non_finite = StopOnNonFiniteLoss()
    all_callbacks = [SamplerEpochCallback(factory.built), non_finite, *callbacks]
    if validation is not None and config.patience is not None:
        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         eval_dataset=None if validation is None else validation[0],
                                         loss=loss, callbacks=all_callbacks)
    _check_distributed(trainer.args.world_size)
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)  # a dict per step; the progress bar shows the loss instead
    if show_progress:
        sources_text = " + ".join(source.name for source in sources)
        trainer.add_callback(DescribedProgressCallback(f"training {config.strategy} on {sources_text}"))

    start_step = _checkpoint_step(_latest_checkpoint(output)) if resume else 0
    began = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - began
    record = _run_record(config, spec, sources, table, validation, trainer, factory.built, seconds,
                         steps_this_call=trainer.state.global_step - start_step)
    writer = trainer.is_world_process_zero()
    if non_finite.failed_at is not None:
        step, value = non_finite.failed_at
        record["status"] = "diverged"
        if writer:
            _write_json(output / RECORD, record)
        last = _latest_checkpoint(output)
        raise NonFiniteLossError(f"the training loss became {value} at step {step}; stopped without saving it. The "
                                 f"last good checkpoint is {last or 'none (it failed before the first save)'}; "
                                 "lower --lr, or train in fp32 if you used bf16")
    record["status"] = "finished"
    if writer:
        trainer.model.save(str(output / MODEL))
        _write_json(output / RECORD, record)
    trainer.accelerator.wait_for_everyone()  # no rank returns before the model is on disk
    return record


def _launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _launch_rank() -> int:
    """This process's rank as torchrun / accelerate launch set it (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def _check_distributed(trainer_world_size: int) -> None:
    """The trainer must see the process group the sampler sees, or ranks would train on copies of one batch."""
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        launched = torch.distributed.get_world_size()
        if launched != trainer_world_size:
            raise RuntimeError(f"{launched} processes were launched but the trainer runs {trainer_world_size}: "
                               "accelerate did not set up DDP for this process group; launch with torchrun or "
                               "accelerate launch, one process per device")


def _training_arguments(config: TrainingConfig, spec: ModelSpec, output: Path, factory: LanguageSamplerFactory,
                        has_negatives: bool):
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    from hybridir.models.precision import resolve_precision

    precision = resolve_precision(config.precision)

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
        optim="adamw_torch",
        seed=config.seed,
        data_seed=config.seed,
        bf16=precision == "bf16",  # autocast; weights and AdamW state stay fp32
        fp16=precision == "fp16",
        # Without a GPU: bf16 autocast runs on the CPU (AMX), and DDP needs accelerate's CPU (gloo) set-up.
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
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,  # StopOnNonFiniteLoss must see a NaN, not the running mean
        restore_callback_states_from_checkpoint=True,  # early-stopping patience survives a resume
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to="none",
        disable_tqdm=True,  # our own described progress bar replaces the trainer's
    )


def _prepare_output(output: Path, config: TrainingConfig, resume: bool) -> None:
    """Never overwrite a run; resume only the same config."""
    saved = output / CONFIG
    if resume:
        if _latest_checkpoint(output) is None:
            raise FileNotFoundError(f"nothing to resume in {output}: it has no checkpoint; drop --resume to start")
        previous = json.loads(saved.read_text()) if saved.is_file() else None
        current = json.loads(json.dumps(asdict(config)))
        if previous != current:
            changed = sorted(k for k in current if previous is None or previous.get(k) != current.get(k))
            raise ValueError(f"--resume with a different config than {saved} ({', '.join(changed)}); "
                             "use the same options or a new --output")
        return
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} is not empty; pass --resume to continue the run in it, or choose a new "
                              "--output")
    output.mkdir(parents=True, exist_ok=True)
    _write_json(saved, asdict(config))


def _latest_checkpoint(output: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = output / CHECKPOINTS
    found = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    return Path(found) if found else None


def _run_record(config, spec, sources, table, validation, trainer, samplers, seconds, steps_this_call) -> dict:
    state = trainer.state
    history = state.log_history
    record = provenance(asdict(config) | {"model_spec": asdict(spec)},
                        data_checksum=" + ".join(f"{s.name}={s.checksum}" for s in sources),
                        model_fingerprint=spec.fingerprint())
    record.update({
        "seed": config.seed,
        "steps": state.global_step,
        "stopped_early": state.global_step < config.max_steps,
        "best_checkpoint": state.best_model_checkpoint,
        "best_eval_loss": state.best_metric,
        "data": {
            "sources": [{"name": s.name, "checksum": s.checksum, "items": int(s.pairs["id"].nunique()),
                         "languages": list(s.languages)} for s in sources],
            "pair_rows": len(table),
            "validation": None if validation is None else {"pairs": len(validation[0]), "checksum": validation[1]},
        },
        "batches": batch_make_up(samplers[0], table, state.global_step * trainer.args.world_size) if samplers else None,
        "train_loss": [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h],
        "eval_loss": [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in history if "eval_loss" in h],
        "wall_seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / max(steps_this_call, 1), 4),  # evaluations and saves included
    })
    return record


def _checkpoint_step(checkpoint: Path | None) -> int:
    return int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint is not None else 0


def batch_make_up(sampler: LanguageBatchSampler, table: PairTable, n_batches: int) -> dict:
    """What the first ``n_batches`` batches (the ones trained on) were made of, epoch by epoch."""
    strategies, mono_languages, cross_pairs, sources = Counter(), Counter(), Counter(), Counter()
    epoch, seen = 0, 0
    while seen < n_batches:
        for batch in sampler.plan(epoch):
            if seen == n_batches:
                break
            seen += 1
            strategies[batch.strategy] += 1
            sources[table.sources[batch.source]] += 1
            if batch.strategy == "mono":
                mono_languages[table.languages[batch.language]] += 1
            else:
                described = table.describe(batch.rows)
                cross_pairs.update(f"{q}-{p}" for q, p in zip(described.query_language, described.passage_language))
        epoch += 1
    return {"batches": n_batches, "batches_per_epoch": len(sampler), "strategy": dict(strategies),
            "source": dict(sources), "mono_language": dict(sorted(mono_languages.items())),
            "cross_language_pairs": dict(cross_pairs.most_common())}


def _write_json(path: Path, payload: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    temporary.replace(path)
