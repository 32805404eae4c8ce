"""What ``hybridir reproduce`` runs: the paper's experiment as a design of training and evaluation configs.

An :class:`ExperimentPreset` fixes the shared training settings, the directions (train on one LAReQA
dataset, evaluate on the other), the strategies and seeds, the α sweep, the evaluation subset, the
checkpoint curves, the BEIR check and the MIRACL evaluation; the named ones are in :mod:`hybridir.presets`.
:func:`hybridir.experiment.runner.stages` expands one into cached stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hybridir.data.miracl import MIRACL_CORPUS_HUB_ID, MIRACL_LANGUAGES
from hybridir.evaluation.run import EvaluationConfig
from hybridir.sampling.strategies import DEFAULT_ALPHA, STRATEGIES
from hybridir.training.config import TrainingConfig


@dataclass(frozen=True)
class Direction:
    """Train on ``train``'s parallel pairs, evaluate on ``evaluate`` (LAReQA datasets)."""

    train: str
    evaluate: str

    @property
    def name(self) -> str:
        return f"{self.train}_to_{self.evaluate}"


@dataclass(frozen=True)
class ExperimentPreset:
    name: str
    description: str
    training: TrainingConfig  # shared settings; strategy, α, seed and training data are set per run
    directions: tuple[Direction, ...]  # the first leads: it gets every seed, the α sweep, curves and BEIR
    seeds: tuple[int, ...]  # lead direction, every strategy
    other_seeds: tuple[int, ...]  # other directions
    strategies: tuple[str, ...] = STRATEGIES
    also_train: tuple[str, ...] = ()  # training sources mixed by size into every run beside the direction's
    sweep_alphas: tuple[float, ...] = ()  # extra hybrid α in the lead direction (0, 0.5, 1 = the strategies)
    sweep_seeds: int = 1  # the α sweep's runs: the lead direction's first N seeds
    stratified_seeds: int = 0  # hybrid with stratified mono draws (mono_draw="stratified"), first N lead seeds
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)  # dataset set per direction
    curve_question_ids: int | None = None  # lead-direction subset evaluated at every checkpoint; None = no curves
    beir: tuple[str, ...] = ()  # BEIR datasets for the zero-shot model and the lead direction's models
    beir_seeds: int = 1  # BEIR evaluates the lead direction's first N seeds of every strategy
    miracl: tuple[str, ...] = ()  # MIRACL dev languages, for the same models as BEIR (the paper's Table 12 with
    # its XLM-R; Table 13 with reproduce --model sentence-transformers/LaBSE)
    miracl_corpus: str = MIRACL_CORPUS_HUB_ID  # hub id or a local folder in the hub's layout

    def __post_init__(self) -> None:
        if not self.directions or not self.seeds or not self.strategies:
            raise ValueError(f"preset {self.name!r} needs directions, seeds and strategies")
        for name in ("sweep_seeds", "stratified_seeds", "beir_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= len(self.seeds):
                raise ValueError(f"preset {self.name!r}: {name} counts lead seeds, from 0 to {len(self.seeds)}; "
                                 f"got {value!r}")
        unknown = sorted(set(self.miracl) - set(MIRACL_LANGUAGES))
        if unknown:
            raise ValueError(f"preset {self.name!r}: MIRACL has no dev language {unknown[0]!r}; choose from: "
                             f"{', '.join(MIRACL_LANGUAGES)}")
        for alpha in self.sweep_alphas:
            if not 0 < alpha < 1 or alpha == DEFAULT_ALPHA:
                raise ValueError(f"sweep α must lie strictly between 0 and 1 and differ from {DEFAULT_ALPHA} (0, "
                                 f"{DEFAULT_ALPHA} and 1 are the strategies' own runs), got {alpha}")


def preset_with_model(preset: ExperimentPreset, model: str | None, model_path: str | None) -> ExperimentPreset:
    """The preset with another base model (a hub id or a local folder) for training and zero-shot."""
    if model is None and model_path is None:
        return preset
    training = replace(preset.training, model=model or preset.training.model, model_path=model_path)
    return replace(preset, training=training)


def preset_with_miracl_corpus(preset: ExperimentPreset, source: str | None) -> ExperimentPreset:
    """The preset with MIRACL's passages read from ``source`` (a local folder in the hub's layout; None keeps
    the preset's); a one-line error for a preset that evaluates no MIRACL language."""
    if source is None:
        return preset
    if not preset.miracl:
        raise ValueError(f"preset {preset.name!r} evaluates no MIRACL language, so --miracl-corpus has nothing to "
                         "read; drop it")
    return replace(preset, miracl_corpus=source)


def preset_with_training_data(preset: ExperimentPreset, also_train: list[str] | None,
                              mmarco_source: str | None) -> ExperimentPreset:
    """The preset with other sources beside each direction's (None keeps the preset's) and mMARCO read from
    ``mmarco_source``; checked as a run's ``--train`` would be, before anything runs."""
    if also_train is not None:
        preset = replace(preset, also_train=tuple(also_train))
    if mmarco_source is not None:
        preset = replace(preset, training=replace(preset.training, mmarco_source=mmarco_source))
    for direction in preset.directions:
        replace(preset.training, train=[direction.train, *preset.also_train])  # raises on a bad source
    return preset
