"""What ``hybridir reproduce`` runs: the paper's experiment as a preset of training and evaluation configs.

A preset fixes the shared training settings, the directions (train on one LAReQA dataset, evaluate on
the other), the strategies and seeds, the α sweep, the evaluation subset, the checkpoint curves and the
BEIR check. :func:`hybridir.experiment.runner.stages` expands it into cached stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
    sweep_alphas: tuple[float, ...] = ()  # extra hybrid α in the lead direction, first seed (0, 0.5, 1 = the strategies)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)  # dataset set per direction
    curve_question_ids: int | None = None  # lead-direction subset evaluated at every checkpoint; None = no curves
    beir: tuple[str, ...] = ()  # BEIR datasets for the zero-shot model and the lead direction's first-seed models

    def __post_init__(self) -> None:
        if not self.directions or not self.seeds or not self.strategies:
            raise ValueError(f"preset {self.name!r} needs directions, seeds and strategies")
        for alpha in self.sweep_alphas:
            if not 0 < alpha < 1 or alpha == DEFAULT_ALPHA:
                raise ValueError(f"sweep α must lie strictly between 0 and 1 and differ from {DEFAULT_ALPHA} (0, "
                                 f"{DEFAULT_ALPHA} and 1 are the strategies' own runs), got {alpha}")


# Per-run settings on this CPU (2 cores): a step of batch 32 takes about 2.7 s in bf16 with frozen word
# embeddings; 100 steps are about 2.8 passes over MLQA-R's 1,148 ids (a probe saw the numbers settle
# after about one). Evaluation on the first 300 question ids of each dataset (all languages).
_CPU_TRAINING = TrainingConfig(max_steps=100, batch_size=32, freeze_word_embeddings=True, eval_steps=25,
                               validation_size=512, precision="auto")
_LEAD = Direction("mlqa-r", "xquad-r")  # XQuAD-R's el, ru, th, tr are unseen in training, as el and vi in the paper
_REVERSE = Direction("xquad-r", "mlqa-r")

PRESETS: dict[str, ExperimentPreset] = {
    "smoke": ExperimentPreset(
        name="smoke", description="CI: every stage on tiny real subsets, minutes on 2 cores",
        training=TrainingConfig(max_steps=4, batch_size=8, freeze_word_embeddings=True, eval_steps=2,
                                validation_size=16, max_length=64),
        directions=(_LEAD, _REVERSE), seeds=(0, 1), other_seeds=(0,), sweep_alphas=(0.25,),
        evaluation=EvaluationConfig(max_question_ids=12, per_query=True),
        curve_question_ids=6, beir=()),
    "cpu": ExperimentPreset(
        name="cpu", description="the local reproduction on a laptop CPU (about 2 h on 2 cores with AMX)",
        training=_CPU_TRAINING, directions=(_LEAD, _REVERSE), seeds=(0, 1, 2), other_seeds=(0,),
        sweep_alphas=(0.25, 0.75), evaluation=EvaluationConfig(max_question_ids=300, per_query=True),
        curve_question_ids=60, beir=("scifact",)),
    "paper": ExperimentPreset(
        name="paper", description="the paper's setting on a GPU: xlm-roberta-base, batch 100, full evaluation",
        training=TrainingConfig(model="xlm-roberta-base", batch_size=100, max_steps=3000, eval_steps=100,
                                validation_size=None, max_length=256),
        directions=(_LEAD, _REVERSE), seeds=(0, 1, 2), other_seeds=(0, 1, 2), sweep_alphas=(0.25, 0.75),
        evaluation=EvaluationConfig(per_query=True, batch_size=256), curve_question_ids=200, beir=("scifact",)),
}


def preset_with_model(preset: ExperimentPreset, model: str | None, model_path: str | None) -> ExperimentPreset:
    """The preset with another base model (a hub id or a local folder) for training and zero-shot."""
    if model is None and model_path is None:
        return preset
    training = replace(preset.training, model=model or preset.training.model, model_path=model_path)
    return replace(preset, training=training)
