"""``hybridir reproduce``: a preset expanded into cached, resumable stages that write ``results/<preset>``.

Stages, in the order they run (the lead direction first, so an interrupted run has the headline):

1. ``train``: one run per (direction, strategy, seed) and per sweep α; the model stays in the work
   folder (the cache; checkpoints are deleted once the run has finished), and the run record, config
   and checkpoint curve are copied to ``runs/<direction>/<run>/``. A run with the same config,
   training code (a digest of its source files) and data is not trained again; an interrupted one resumes
   from its last checkpoint.
2. ``evaluate``: the zero-shot model and every trained model on the direction's evaluation dataset,
   with per-query metrics, into ``evaluations/<direction>/<run>/``; skipped when the folder already
   holds this model's (same fingerprint), this config's and this evaluation code's results.
3. ``beir``: the zero-shot model and the lead direction's first-seed models on BEIR, into
   ``beir/<dataset>/<run>/``.

``--jobs N`` runs N runs (a training and its evaluations) at once, each process with 1/N of the threads.

``experiment.json`` records the preset, the jobs and threads per job, each stage's wall time in this
invocation (``seconds``), whether it was cached, the time it took when it was computed
(``computed_seconds``, carried over from the previous record for a cached stage), and the provenance
of the whole run.

The trainer and the evaluation are imported when a stage runs: the report, and so the book's notebooks,
read this module's folder names and should not import torch and sentence-transformers for them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hybridir.evaluation.run import EvaluationConfig, evaluated_model
from hybridir.experiment.design import Direction, ExperimentPreset
from hybridir.models.spec import resolve_model
from hybridir.paths import cache_dir
from hybridir.provenance import EVALUATION_CODE, TRAINING_CODE, code_digest, hardware, portable, versions, write_json
from hybridir.training.config import TrainingConfig

ZERO_SHOT = "zero-shot"
RUNS, EVALUATIONS, BEIR, RECORD = "runs", "evaluations", "beir", "experiment.json"


@dataclass(frozen=True)
class Stage:
    kind: str  # train | evaluate | beir
    direction: Direction | None  # the training direction (None: the zero-shot model on BEIR)
    run: str  # zero-shot, mono-s0, hybrid-a0.25-s0, …
    training: TrainingConfig | None = None  # train stages, and the run an evaluation reads
    evaluation: EvaluationConfig | None = None  # evaluate / beir stages

    @property
    def name(self) -> str:
        where = self.evaluation.dataset if self.kind == "beir" else self.direction.name
        return f"{self.kind} {where} {self.run}"


def run_label(strategy: str, seed: int, alpha: float | None = None) -> str:
    return f"{strategy}-a{alpha:g}-s{seed}" if alpha is not None else f"{strategy}-s{seed}"


def stages(preset: ExperimentPreset) -> list[Stage]:
    """Every stage of ``preset`` in running order; see the module docstring."""
    lead = preset.directions[0]
    trains: list[Stage] = []
    for direction in preset.directions:
        seeds = preset.seeds if direction == lead else preset.other_seeds
        for seed in seeds:
            for strategy in preset.strategies:
                config = replace(preset.training, train=[direction.train], strategy=strategy, seed=seed, alpha=None)
                trains.append(Stage("train", direction, run_label(strategy, seed), training=config))
        if direction == lead:
            for alpha in preset.sweep_alphas:
                config = replace(preset.training, train=[direction.train], strategy="hybrid", seed=seeds[0],
                                 alpha=alpha)
                trains.append(Stage("train", direction, run_label("hybrid", seeds[0], alpha), training=config))
    # Every model reads texts at the base model's length (a trained one would keep its training length).
    length = resolve_model(preset.training.model, path=preset.training.model_path).max_seq_length
    ordered: list[Stage] = []
    for direction in preset.directions:
        evaluation = replace(preset.evaluation, dataset=direction.evaluate, model=preset.training.model,
                             model_path=preset.training.model_path, max_length=length)
        ordered.append(Stage("evaluate", direction, ZERO_SHOT, evaluation=evaluation))
        for train in (stage for stage in trains if stage.direction == direction):
            ordered += [train, Stage("evaluate", direction, train.run, training=train.training, evaluation=evaluation)]
    first_seed = {run_label(strategy, preset.seeds[0]) for strategy in preset.strategies}
    for dataset in preset.beir:
        config = EvaluationConfig(dataset=dataset, model=preset.training.model, model_path=preset.training.model_path,
                                  precision=preset.evaluation.precision, engine=preset.evaluation.engine,
                                  batch_size=preset.evaluation.batch_size, max_length=length)
        ordered.append(Stage("beir", None, ZERO_SHOT, evaluation=config))
        ordered += [Stage("beir", lead, stage.run, training=stage.training, evaluation=config)
                    for stage in trains if stage.direction == lead and stage.run in first_seed]
    return ordered


def reproduce(preset: ExperimentPreset, results: Path, work: Path | None = None, jobs: int = 1) -> dict:
    """Run (or take from the cache) every stage of ``preset``; write ``results``; return the record.

    ``jobs`` > 1 runs that many independent runs at once (a run: its training and its evaluations, in
    order), each in its own process with an equal share of the CPU threads: on 2 cores two single-threaded
    runs side by side made more steps per second than one two-threaded run (bench/bench_training_step.py).
    """
    import torch

    results, work = Path(results), Path(work) if work else cache_dir() / "runs" / preset.name
    if results.exists() and not results.is_dir():
        raise FileExistsError(f"--output {results} is a file; give a folder")
    threads = _threads_per_job(jobs, torch.get_num_threads(), torch.cuda.is_available())
    planned = stages(preset)
    # The base model is needed by every stage: an unreachable hub model fails here, before any folder is made.
    resolve_model(preset.training.model, path=preset.training.model_path).location()
    computed_before = _computed_seconds(results / RECORD)
    results.mkdir(parents=True, exist_ok=True)
    record = {"preset": json.loads(json.dumps(asdict(preset))), "stages": [], "versions": versions(),
              "hardware": hardware(), "jobs": jobs, "threads_per_job": threads}
    began = time.perf_counter()
    numbered = {stage.name: number for number, stage in enumerate(planned, start=1)}
    done: dict[str, dict] = {}

    def finished(entries: list[dict]) -> None:
        for entry in entries:
            entry["computed_seconds"] = computed_before.get(entry["stage"]) if entry["cached"] else entry["seconds"]
            done[entry["stage"]] = entry
        record["stages"] = [done[stage.name] for stage in planned if stage.name in done]
        record["wall_seconds"] = round(time.perf_counter() - began, 1)
        record["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(results / RECORD, record)

    if jobs == 1:  # the plan's order, stage by stage
        for stage in planned:
            finished(_run_group([stage], numbered, len(planned), preset, results, work))
        return record
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: a forked torch process can deadlock in OpenMP and oneDNN.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_use_threads,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(_run_group, group, numbered, len(planned), preset, results, work)
                   for group in _independent_runs(planned)]
        try:
            for future in as_completed(futures):
                finished(future.result())
        except BaseException:  # a failed run (or Ctrl-C): start no other, let the ones under way end, then raise
            for future in futures:
                future.cancel()
            raise
    return record


def _threads_per_job(jobs: int, threads: int, gpu: bool) -> int:
    """Each job's share of the CPU threads; a one-line error for a job count this machine cannot share."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be a positive integer, got {jobs!r}")
    if jobs > 1 and gpu:
        raise ValueError("--jobs > 1 shares the CPU cores between runs; on a GPU use --jobs 1 (or torchrun for DDP)")
    if jobs > threads:
        raise ValueError(f"--jobs {jobs} exceeds this machine's {threads} CPU threads; use at most {threads}")
    return threads // jobs


def _use_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _independent_runs(planned: list[Stage]) -> list[list[Stage]]:
    """The stages grouped by the model they need, in plan order: a training and the evaluations of its
    model form one group (they run in that order); a zero-shot evaluation is a group of its own."""
    groups: dict[tuple, list[Stage]] = {}
    for stage in planned:
        key = (stage.direction.name if stage.direction else None, stage.run) if stage.training else ("zero-shot",
                                                                                                   stage.name)
        groups.setdefault(key, []).append(stage)
    return list(groups.values())


def _run_group(group: list[Stage], numbered: dict[str, int], total: int, preset: ExperimentPreset, results: Path,
               work: Path) -> list[dict]:
    entries = []
    for stage in group:
        print(f"[{numbered[stage.name]}/{total}] {stage.name}", flush=True)
        started = time.perf_counter()
        cached = _run_stage(stage, preset, results, work)
        entries.append({"stage": stage.name, "kind": stage.kind, "run": stage.run, "cached": cached,
                        "seconds": round(time.perf_counter() - started, 1)})
    return entries


def _computed_seconds(record: Path) -> dict[str, float]:
    """Each stage's time when it was computed, from a previous ``experiment.json`` (empty if none)."""
    if not record.is_file():
        return {}
    stages = json.loads(record.read_text()).get("stages", [])
    return {stage["stage"]: stage["computed_seconds"] if "computed_seconds" in stage else stage["seconds"]
            for stage in stages if "computed_seconds" in stage or not stage["cached"]}


def training_folder(stage: Stage, work: Path) -> Path:
    """Where a training stage keeps its model and checkpoints: named by what fixes the run (its config, the
    code that shapes it and its data), so a change to the sampler or trainer trains again."""
    from hybridir.training.data import load_training_sources

    checksums = {source.name: source.checksum for source in load_training_sources(stage.training)}
    identity = {"config": asdict(stage.training), "code": code_digest(TRAINING_CODE), "data": checksums}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return work / stage.direction.name / f"{stage.run}-{key}"


def _run_stage(stage: Stage, preset: ExperimentPreset, results: Path, work: Path) -> bool:
    """Run one stage; True when its output was already there."""
    if stage.kind == "train":
        return _train(stage, preset, results, work)
    model = stage.evaluation.model if stage.training is None else str(training_folder(stage, work) / "model")
    config = replace(stage.evaluation, model=model, model_path=None if stage.training else stage.evaluation.model_path)
    if stage.kind == "evaluate":
        output = results / EVALUATIONS / stage.direction.name / stage.run
    else:
        output = results / BEIR / Path(config.dataset).name / stage.run  # a name, or a directory's name
    if _evaluated(config, output):
        return True
    from hybridir.evaluation.run import run_evaluation

    run_evaluation(config, output)
    return False


def _train(stage: Stage, preset: ExperimentPreset, results: Path, work: Path) -> bool:
    from hybridir.training.callbacks import RetrievalCurveCallback
    from hybridir.training.trainer import CONFIG, RECORD as RUN_RECORD, latest_checkpoint, train

    folder = training_folder(stage, work)
    record = folder / RUN_RECORD
    cached = record.is_file() and json.loads(record.read_text()).get("status") == "finished"
    if not cached:
        callbacks = []
        if preset.curve_question_ids and stage.direction == preset.directions[0]:
            callbacks.append(RetrievalCurveCallback(_curve_data(stage.direction.evaluate, preset.curve_question_ids),
                                                    folder / "curve.csv", _precision(stage.training)))
        resume = latest_checkpoint(folder) is not None
        if not resume and folder.exists():
            shutil.rmtree(folder)  # stopped before its first checkpoint: nothing to keep
        train(stage.training, folder, resume=resume, callbacks=callbacks)
        # A finished run needs only model/: its checkpoints (weights + AdamW state, ~2.5 GB for
        # multilingual-e5-small) would fill a laptop's disk over a preset's 14 runs.
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    target = results / RUNS / stage.direction.name / stage.run
    target.mkdir(parents=True, exist_ok=True)
    for name in (RUN_RECORD, CONFIG, "curve.csv"):
        if (folder / name).is_file():
            shutil.copy2(folder / name, target / name)
    return cached


def _curve_data(dataset: str, question_ids: int):
    from hybridir.data.lareqa import load_lareqa, subset_lareqa

    return subset_lareqa(load_lareqa(dataset), question_ids)


def _precision(config: TrainingConfig) -> str:
    from hybridir.models.precision import resolve_precision

    return resolve_precision(config.precision)


def _evaluated(config: EvaluationConfig, output: Path) -> bool:
    """True when ``output`` holds this config's results for this model (same fingerprint)."""
    saved = output / "provenance.json"
    if not saved.is_file() or not (output / "summary.csv").is_file():
        return False

    previous = json.loads(saved.read_text())
    current = portable(json.loads(json.dumps(asdict(config))))
    fingerprint = evaluated_model(config).fingerprint()
    same_config = {k: v for k, v in previous["config"].items() if k != "model_spec"} == current
    same_code = previous.get("code_digest") == code_digest(EVALUATION_CODE)
    return same_config and same_code and previous["model_fingerprint"] == fingerprint

