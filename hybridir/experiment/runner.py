"""``hybridir reproduce``: a preset expanded into cached, resumable stages that write ``results/<preset>``.

Three kinds of stage (:func:`stages` gives their order: each run's training followed by its evaluations, the
runs an interrupted experiment most needs first):

1. ``train``: one run per (direction, strategy, seed), per sweep α and per stratified hybrid seed; the model
   stays in the work folder (the cache; checkpoints are deleted once the run has finished), and the run
   record, config and checkpoint curve are copied to ``runs/<direction>/<run>/``. A run with the same config,
   training code (a digest of its source files) and data is not trained again; an interrupted one resumes
   from its last checkpoint. Nor is a run whose record and every evaluation ``results`` already holds (same
   config, code and data; one model behind them all), when the work folder lacks its model: an experiment
   whose results folder is committed continues on another machine without training those runs again.
2. ``evaluate``: the zero-shot model and every trained model on the direction's evaluation dataset,
   with per-query metrics, into ``evaluations/<direction>/<run>/``; skipped when the folder already
   holds this model's (same fingerprint), this config's and this evaluation code's results.
3. ``beir``: the zero-shot model and the lead direction's models of the first ``beir_seeds`` seeds on BEIR,
   into ``beir/<dataset>/<run>/``.
4. ``miracl``: the same models on MIRACL dev (the preset's languages; the paper's Tables 12-13), the corpus
   streamed and searched shard by shard, into ``miracl/<run>/``.

What ``auto`` resolves to on a machine (training and evaluation precision, the engine, the encoding batch) is
pinned when an experiment starts and recorded (``pinned`` in ``experiment.json``); a resumed experiment keeps
it, on any machine, or stops with a one-line error, so no table mixes precisions.

``--jobs N`` runs N runs (a training and its evaluations) at once, each process with 1/N of the threads.

``experiment.json`` records the preset, the jobs and threads per job, each stage's wall time in this
invocation (``seconds``), whether it was cached, the time it took when it was computed
(``computed_seconds``, wall, and ``cpu_seconds``, the CPU time of its process: a paused or crowded stage's wall
time grows, its CPU time does not; both carried over from the previous record for a cached stage), the machine
that computed it (``hardware``, read from the stage's own output: an experiment resumed elsewhere names each
stage's machine), and the provenance of this invocation.

The trainer and the evaluation are imported when a stage runs: the report, and so the book's notebooks,
read this module's folder names and should not import torch and sentence-transformers for them.
"""

from __future__ import annotations

import hashlib
import json
import os
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
RUNS, EVALUATIONS, BEIR, MIRACL, RECORD = "runs", "evaluations", "beir", "miracl", "experiment.json"


@dataclass(frozen=True)
class Stage:
    kind: str  # train | evaluate | beir | miracl
    direction: Direction | None  # the training direction (None: the zero-shot model on BEIR or MIRACL)
    run: str  # zero-shot, mono-s0, hybrid-a0.25-s0, …
    training: TrainingConfig | None = None  # train stages, and the run an evaluation reads
    evaluation: EvaluationConfig | None = None  # evaluate / beir / miracl stages

    @property
    def name(self) -> str:
        if self.kind == "miracl":
            return f"miracl {self.run}"
        where = self.evaluation.dataset if self.kind == "beir" else self.direction.name
        return f"{self.kind} {where} {self.run}"


def run_label(strategy: str, seed: int, alpha: float | None = None, mono_draw: str = "coin") -> str:
    """mono-s0, hybrid-a0.25-s0 (an α of the sweep), hybrid-stratified-s0 (stratified mono draws)."""
    variant = (f"-a{alpha:g}" if alpha is not None else "") + (f"-{mono_draw}" if mono_draw != "coin" else "")
    return f"{strategy}{variant}-s{seed}"


def stages(preset: ExperimentPreset) -> list[Stage]:
    """Every stage of ``preset`` in running order: the zero-shot evaluations, then each run's training followed
    by its evaluations (LAReQA, then BEIR and MIRACL for the lead's first ``beir_seeds`` seeds), the runs ordered
    by what an interrupted experiment most needs: the lead direction's strategies seed by seed, the other
    directions', the α sweep, the stratified hybrid runs."""
    lead = preset.directions[0]

    def training(direction: Direction, strategy: str, seed: int, **changes) -> TrainingConfig:
        return replace(preset.training, train=[direction.train, *preset.also_train], strategy=strategy, seed=seed,
                       **({"alpha": None} | changes))

    main, variants = [], []  # (direction, run label, config)
    for direction in preset.directions:
        for seed in preset.seeds if direction == lead else preset.other_seeds:
            main += [(direction, run_label(strategy, seed), training(direction, strategy, seed))
                     for strategy in preset.strategies]
    for seed in preset.seeds[:preset.sweep_seeds]:
        variants += [(lead, run_label("hybrid", seed, alpha), training(lead, "hybrid", seed, alpha=alpha))
                     for alpha in preset.sweep_alphas]
    variants += [(lead, run_label("hybrid", seed, mono_draw="stratified"),
                  training(lead, "hybrid", seed, mono_draw="stratified"))
                 for seed in preset.seeds[:preset.stratified_seeds]]
    # Every model reads texts at the base model's length (a trained one would keep its training length).
    length = resolve_model(preset.training.model, path=preset.training.model_path).max_seq_length
    base = dict(model=preset.training.model, model_path=preset.training.model_path, max_length=length)
    evaluations = {direction: replace(preset.evaluation, dataset=direction.evaluate, **base)
                   for direction in preset.directions}
    shared = dict(precision=preset.evaluation.precision, engine=preset.evaluation.engine,
                  batch_size=preset.evaluation.batch_size, per_query=preset.evaluation.per_query, **base)
    corpora = [EvaluationConfig(dataset=dataset, **shared) for dataset in preset.beir]  # BEIR, then MIRACL
    if preset.miracl:
        corpora.append(EvaluationConfig(dataset="miracl", languages=list(preset.miracl),
                                        miracl_corpus=preset.miracl_corpus, **shared))
    beir_runs = {run_label(strategy, seed) for strategy in preset.strategies for seed in preset.seeds[:preset.beir_seeds]}
    ordered = [Stage("evaluate", direction, ZERO_SHOT, evaluation=evaluations[direction])
               for direction in preset.directions]
    ordered += [Stage(_kind(config), None, ZERO_SHOT, evaluation=config) for config in corpora]
    for direction, run, config in main + variants:
        ordered += [Stage("train", direction, run, training=config),
                    Stage("evaluate", direction, run, training=config, evaluation=evaluations[direction])]
        if direction == lead and run in beir_runs:
            ordered += [Stage(_kind(evaluation), lead, run, training=config, evaluation=evaluation)
                        for evaluation in corpora]
    return ordered


def _kind(after_training: EvaluationConfig) -> str:
    return "miracl" if after_training.dataset == "miracl" else "beir"


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
    previous = json.loads((results / RECORD).read_text()) if (results / RECORD).is_file() else {}
    pinned = pin_machine_choices(preset, previous.get("pinned"), results)
    code = {"training": code_digest(TRAINING_CODE), "evaluation": code_digest(EVALUATION_CODE)}
    _warn_changed_code(previous.get("code", {}), code, results)
    preset = with_pinned(preset, pinned)
    planned = stages(preset)
    # The base model is needed by every stage: an unreachable hub model fails here, before any folder is made.
    resolve_model(preset.training.model, path=preset.training.model_path).location()
    computed_before = _computed_before(results / RECORD)
    results.mkdir(parents=True, exist_ok=True)
    record = {"preset": json.loads(json.dumps(asdict(preset))), "pinned": pinned, "code": code, "stages": [],
              "versions": versions(), "hardware": hardware(), "jobs": jobs, "threads_per_job": threads}
    began = time.perf_counter()
    numbered = {stage.name: number for number, stage in enumerate(planned, start=1)}
    done: dict[str, dict] = {}

    def finished(entries: list[dict]) -> None:
        for entry in entries:
            if entry["cached"]:
                before = computed_before.get(entry["stage"], {})
                entry |= {key: before.get(key) for key in ("computed_seconds", "cpu_seconds")}
            else:
                entry["computed_seconds"] = entry["seconds"]
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


# The choices that ``auto`` (or an unset batch) resolves per machine. An experiment fixes them when it starts and
# keeps them through every resumption, so one table never mixes bf16- and fp32-trained models.
PINNED = ("training_precision", "evaluation_precision", "evaluation_engine", "encoding_batch_size")


def pin_machine_choices(preset: ExperimentPreset, previous: dict | None, results: Path) -> dict:
    """The machine-dependent choices of this experiment: those recorded when it started (``previous``, from
    ``results``' experiment.json), else this machine's resolution of the preset's. A one-line error where the
    preset now asks for another value, or where this machine cannot run the recorded one at speed."""
    from hybridir.encoding import default_batch_size
    from hybridir.models.engine import resolve_engine
    from hybridir.models.precision import cpu_has_native_bf16, resolve_precision

    asked = {"training_precision": preset.training.precision, "evaluation_precision": preset.evaluation.precision,
             "evaluation_engine": preset.evaluation.engine, "encoding_batch_size": preset.evaluation.batch_size}
    if previous:
        for name, value in asked.items():
            if value not in ("auto", None) and value != previous.get(name):
                raise ValueError(f"{results} was started with {name} {previous.get(name)}, the preset now asks for "
                                 f"{value}: resume with the settings it started with, or give a new --output")
        import torch

        bf16 = [name for name in PINNED[:2] if previous.get(name) == "bf16"]
        native = torch.cuda.is_bf16_supported(including_emulation=False) if torch.cuda.is_available() \
            else cpu_has_native_bf16()
        if bf16 and not native:
            raise RuntimeError(f"{results} was started with {' and '.join(bf16)} bf16, which this machine only "
                               "emulates (hundreds of times slower): resume it on a machine with AMX, AVX512-BF16 or "
                               "a recent GPU, or give a new --output")
        return {name: previous[name] for name in PINNED}
    evaluation_precision = resolve_precision(preset.evaluation.precision)
    return {"training_precision": resolve_precision(preset.training.precision),
            "evaluation_precision": evaluation_precision,
            "evaluation_engine": resolve_engine(preset.evaluation.engine, evaluation_precision),
            "encoding_batch_size": preset.evaluation.batch_size or default_batch_size()}


def _warn_changed_code(previous: dict, current: dict, results: Path) -> None:
    """One line per part whose code changed since the experiment's last invocation: its cached stages are
    computed again (a run takes minutes to hours), which a long experiment should not meet by surprise."""
    import warnings

    stages_of = {"training": "run is trained", "evaluation": "model is evaluated"}
    for part, digest in current.items():
        if previous.get(part) not in (None, digest):
            warnings.warn(f"hybridir: {part} code changed since {results} was last run (digest {previous[part]} → "
                          f"{digest}): every cached {stages_of[part]} again; check out the commit it ran with to "
                          "resume without that", stacklevel=3)


def with_pinned(preset: ExperimentPreset, pinned: dict) -> ExperimentPreset:
    """``preset`` with the pinned choices written into its training and evaluation configs."""
    training = replace(preset.training, precision=pinned["training_precision"])
    evaluation = replace(preset.evaluation, precision=pinned["evaluation_precision"],
                         engine=pinned["evaluation_engine"], batch_size=pinned["encoding_batch_size"])
    return replace(preset, training=training, evaluation=evaluation)


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
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        cached = _run_stage(stage, preset, results, work)
        entries.append({"stage": stage.name, "kind": stage.kind, "run": stage.run, "cached": cached,
                        "seconds": round(time.perf_counter() - started, 1),
                        "cpu_seconds": round(_cpu_seconds() - cpu_started, 1),
                        "hardware": _stage_hardware(stage, results)})
    return entries


def _cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (user + system, all threads)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _stage_hardware(stage: Stage, results: Path) -> dict | None:
    """The machine that computed ``stage``, from its output's provenance (a run's record, an evaluation's
    provenance.json); None where the output names none."""
    from hybridir.training.trainer import RECORD as RUN_RECORD

    output = _output(stage, results) / (RUN_RECORD if stage.kind == "train" else "provenance.json")
    try:
        return json.loads(output.read_text()).get("hardware")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _computed_before(record: Path) -> dict[str, dict]:
    """Each stage's times when it was computed (``computed_seconds``, ``cpu_seconds``), from a previous
    ``experiment.json`` (empty if none); a record from before a time was kept gives None for it."""
    if not record.is_file():
        return {}
    stages = json.loads(record.read_text()).get("stages", [])
    return {stage["stage"]: {"computed_seconds": stage["computed_seconds"] if "computed_seconds" in stage
                             else stage["seconds"], "cpu_seconds": stage.get("cpu_seconds")}
            for stage in stages if "computed_seconds" in stage or not stage["cached"]}


def training_folder(stage: Stage, work: Path, identity: dict | None = None) -> Path:
    """Where a training stage keeps its model and checkpoints: named by what fixes the run (its config, the
    code that shapes it and its data; ``identity``, where already computed), so a change to the sampler or
    trainer trains again."""
    identity = identity or _training_identity(stage)
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return work / stage.direction.name / f"{stage.run}-{key}"


def _training_identity(stage: Stage) -> dict:
    """What fixes a training run: its config, the code that shapes it and the checksums of its data."""
    from hybridir.training.data import load_training_sources

    checksums = {source.name: source.checksum for source in load_training_sources(stage.training)}
    return {"config": asdict(stage.training), "code": code_digest(TRAINING_CODE), "data": checksums}


def _run_stage(stage: Stage, preset: ExperimentPreset, results: Path, work: Path) -> bool:
    """Run one stage; True when its output was already there."""
    if stage.kind == "train":
        return _train(stage, preset, results, work)
    model = stage.evaluation.model if stage.training is None else str(training_folder(stage, work) / "model")
    config = _evaluation_config(stage, model)
    output = _output(stage, results)
    held = stage.training is None or Path(model).is_dir()
    if _evaluated(config, output, model_held=held):
        return True
    if not held:
        raise FileNotFoundError(f"{stage.name} needs {model}, which this machine does not hold: rerun the "
                                "experiment so that its training stage trains it again")
    from hybridir.evaluation.run import run_evaluation

    run_evaluation(config, output)
    return False


def _evaluation_config(stage: Stage, model: str) -> EvaluationConfig:
    """An evaluation stage's config on ``model``: a trained run's folder, or the preset's model as given."""
    return replace(stage.evaluation, model=model, model_path=None if stage.training else stage.evaluation.model_path)


def _output(stage: Stage, results: Path) -> Path:
    """Where a stage writes in ``results``: a training its run's record, an evaluation its tables."""
    if stage.kind == "train":
        return results / RUNS / stage.direction.name / stage.run
    if stage.kind == "evaluate":
        return results / EVALUATIONS / stage.direction.name / stage.run
    if stage.kind == "miracl":
        return results / MIRACL / stage.run
    return results / BEIR / Path(stage.evaluation.dataset).name / stage.run  # a name, or a directory's name


def _train(stage: Stage, preset: ExperimentPreset, results: Path, work: Path) -> bool:
    from hybridir.training.callbacks import RetrievalCurveCallback
    from hybridir.training.trainer import CONFIG, RECORD as RUN_RECORD, latest_checkpoint, train

    folder = training_folder(stage, work)
    record = folder / RUN_RECORD
    # A finished record whose model was deleted (to free a disk) is trained again, not taken as done.
    cached = _finished(record) and (folder / "model").is_dir()
    target = _output(stage, results)
    if not cached and _held_in_results(stage, preset, results, work):
        return True  # a run continued on another machine: its results are all there, its model is not needed
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
    target.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG, "curve.csv", RUN_RECORD):  # the record last: it marks the copy complete
        if (folder / name).is_file():
            temporary = target / f"{name}.tmp"
            shutil.copy2(folder / name, temporary)
            temporary.replace(target / name)
    return cached


def _finished(record: Path) -> bool:
    """True when ``record`` (a run.json) is a whole file saying the run finished."""
    try:
        return json.loads(record.read_text()).get("status") == "finished"
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def _held_in_results(stage: Stage, preset: ExperimentPreset, results: Path, work: Path) -> bool:
    """True when ``results`` holds this training's finished record and every evaluation of its model: the work
    folder (models, checkpoints) stays on the machine that trained it, the results folder travels (committed),
    so an experiment continued elsewhere does not train again a run that only its models would need."""
    from hybridir.training.trainer import RECORD as RUN_RECORD

    record = _output(stage, results) / RUN_RECORD
    if not _finished(record):
        return False
    saved, identity = json.loads(record.read_text()), _training_identity(stage)
    saved_data = {source["name"]: source["checksum"] for source in saved.get("data", {}).get("sources", [])}
    same_config = {k: v for k, v in saved.get("config", {}).items() if k != "model_spec"} == \
        portable(json.loads(json.dumps(identity["config"], default=str)))
    if not (same_config and saved.get("code_digest") == identity["code"] and saved_data == identity["data"]):
        return False  # the record is another training's (an older config, code or data)
    model = str(training_folder(stage, work, identity) / "model")
    evaluations = [later for later in stages(preset) if later.kind != "train" and later.training == stage.training
                   and later.direction == stage.direction and later.run == stage.run]
    outputs = [_output(later, results) for later in evaluations]
    if not all(_evaluated(_evaluation_config(later, model), output, model_held=False)
               for later, output in zip(evaluations, outputs)):
        return False
    # One set of weights behind every evaluation: a retraining stopped while re-evaluating leaves two.
    return len({json.loads((output / "provenance.json").read_text())["model_fingerprint"] for output in outputs}) <= 1


def _curve_data(dataset: str, question_ids: int):
    from hybridir.data.lareqa import load_lareqa, subset_lareqa

    return subset_lareqa(load_lareqa(dataset), question_ids)


def _precision(config: TrainingConfig) -> str:
    from hybridir.models.precision import resolve_precision

    return resolve_precision(config.precision)


def _evaluated(config: EvaluationConfig, output: Path, model_held: bool = True) -> bool:
    """True when ``output`` holds this config's results for this model (same fingerprint). A trained model this
    machine does not hold (``model_held`` False) cannot be fingerprinted; its folder's name, in the config,
    carries the training's identity (config, code, data: :func:`training_folder`), which then stands for it."""
    saved = output / "provenance.json"
    if not saved.is_file() or not (output / "summary.csv").is_file():
        return False
    try:
        previous = json.loads(saved.read_text())
    except json.JSONDecodeError:  # a write cut off: evaluate again
        return False
    current = portable(json.loads(json.dumps(asdict(config))))
    same_config = {k: v for k, v in previous["config"].items() if k != "model_spec"} == current
    same_code = previous.get("code_digest") == code_digest(EVALUATION_CODE)
    if not (same_config and same_code):
        return False
    return not model_held or previous["model_fingerprint"] == evaluated_model(config).fingerprint()

