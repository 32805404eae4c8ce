"""Every preset, defined once: a name means one scale of the companion in every command.

A preset says what ``hybridir train --preset NAME`` trains (the experiment's shared training settings),
what ``hybridir reproduce --preset NAME`` runs (the whole experiment) and what ``hybridir book --preset
NAME`` evaluates zero-shot before the build. A command refuses, in one line, a preset that defines
nothing for it.

- ``smoke``: every stage on tiny real subsets, minutes on 2 CPU cores (CI, ``make book``);
- ``cpu``: the local reproduction on a laptop CPU; its training settings are :class:`TrainingConfig`'s
  defaults, so ``hybridir train`` with no preset trains one of its runs;
- ``conclusive``: the same training, every model on the paper's full evaluation pools, with the seeds the
  verdicts need (8 per strategy in the lead direction, 3 elsewhere) and the standard X-X baseline: many
  hours on 2 cores, run in the background and resumed from its cache;
- ``paper``: the paper's setting on a GPU with the hub: xlm-roberta-base, batch 100, mMARCO in the paper's 7
  languages mixed by size into every run's LAReQA training set, full evaluation, MIRACL in its 15 languages;
- ``full``: the committed zero-shot tables (every question, fp32, reproducible to the digit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from hybridir.evaluation.run import EvaluationConfig
from hybridir.experiment.design import Direction, ExperimentPreset
from hybridir.training.config import TrainingConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    experiment: ExperimentPreset | None = None  # reproduce; its training settings are train's
    zero_shot: Mapping[str, EvaluationConfig] = field(default_factory=dict)  # book: run name -> evaluation

    @property
    def training(self) -> TrainingConfig | None:
        """One run of the experiment, as ``hybridir train --preset`` trains it: its lead direction's data and the
        sources the experiment mixes into every run."""
        if self.experiment is None:
            return None
        training = self.experiment.training
        return replace(training, train=[self.experiment.directions[0].train, *self.experiment.also_train])


def _preset(name: str, description: str, experiment: dict | None = None,
            zero_shot: Mapping[str, EvaluationConfig] | None = None) -> Preset:
    """A preset whose experiment (the ExperimentPreset fields besides name and description) shares its name."""
    design = None if experiment is None else ExperimentPreset(name=name, description=description, **experiment)
    return Preset(name, description, experiment=design, zero_shot=zero_shot or {})


# The 15 languages of the paper's Tables 12-13 (57.5M passages; its Table 11 also lists en, with no results).
PAPER_MIRACL_LANGUAGES = ("ar", "bn", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "zh")
_LEAD = Direction("mlqa-r", "xquad-r")  # XQuAD-R's el, ru, th, tr are unseen in training, as el and vi in the paper
_REVERSE = Direction("xquad-r", "mlqa-r")

PRESETS: dict[str, Preset] = {
    "smoke": _preset(
        "smoke", "CI: every stage on tiny real subsets, minutes on 2 cores",
        experiment=dict(
            training=TrainingConfig(max_steps=4, batch_size=8, eval_steps=2, validation_size=16, max_length=64),
            directions=(_LEAD, _REVERSE), seeds=(0, 1), other_seeds=(0,), sweep_alphas=(0.25,), stratified_seeds=2,
            evaluation=EvaluationConfig(max_question_ids=12, per_query=True), curve_question_ids=6, beir=()),
        zero_shot={"xquad-r": EvaluationConfig(dataset="xquad-r", max_question_ids=70),
                   "mlqa-r": EvaluationConfig(dataset="mlqa-r", max_question_ids=70)}),
    # A step of batch 32 takes about 2.7 s in bf16 with frozen word embeddings on 2 cores with AMX; 100 steps
    # are about 2.8 passes over MLQA-R's 1,148 ids (a probe saw the numbers settle after about one).
    # Evaluation on the first 300 question ids of each dataset (all languages).
    "cpu": _preset(
        "cpu", "the local reproduction on a laptop CPU (about 2 h on 2 cores with AMX)",
        experiment=dict(
            training=TrainingConfig(), directions=(_LEAD, _REVERSE), seeds=(0, 1, 2), other_seeds=(0,),
            strategies=("mono", "cross", "hybrid"),  # its committed results (results/cpu) predate the X-X baseline
            sweep_alphas=(0.25, 0.75), evaluation=EvaluationConfig(max_question_ids=300, per_query=True),
            curve_question_ids=60, beir=("scifact",))),
    # Issue 17's design: the four strategies (standard X-X included) with 8 seeds in the lead direction and 3 in
    # the reverse, the α sweep and BEIR with 3 seeds each, and hybrid with stratified mono draws (8 seeds) to
    # measure what it does to the seed spread; every model on the full pools (every question id, every candidate).
    "conclusive": _preset(
        "conclusive", "the conclusive experiment: full pools, 8 seeds per strategy in the lead direction (many hours "
                      "on 2 cores: run it in the background, it resumes from its cache)",
        experiment=dict(
            training=TrainingConfig(), directions=(_LEAD, _REVERSE), seeds=tuple(range(8)), other_seeds=(0, 1, 2),
            sweep_alphas=(0.25, 0.75), sweep_seeds=3, stratified_seeds=8, beir=("scifact",), beir_seeds=3,
            evaluation=EvaluationConfig(per_query=True), curve_question_ids=60)),
    "paper": _preset(
        "paper", "the paper's setting on a GPU: xlm-roberta-base, batch 100, mMARCO beside LAReQA, full evaluation",
        experiment=dict(
            also_train=("mmarco",),  # the paper's 7 languages; reproduce --also-train changes or drops it
            training=TrainingConfig(model="xlm-roberta-base", batch_size=100, max_steps=3000, eval_steps=100,
                                    validation_size=None, max_length=256, freeze_word_embeddings=False),
            directions=(_LEAD, _REVERSE), seeds=(0, 1, 2), other_seeds=(0, 1, 2), sweep_alphas=(0.25, 0.75),
            evaluation=EvaluationConfig(per_query=True, batch_size=256), curve_question_ids=200,
            beir=("scifact",), miracl=PAPER_MIRACL_LANGUAGES)),
    # fp32 torch in batches of 64: the committed zero-shot reference numbers, reproducible to the last digit.
    "full": _preset(
        "full", "every zero-shot table committed under results/zero-shot (about an hour on 2 CPU cores)",
        zero_shot={
            "xquad-r": EvaluationConfig(dataset="xquad-r", precision="fp32", engine="torch", batch_size=64),
            "xquad-r-context": EvaluationConfig(dataset="xquad-r", candidate_text="sentence+context",
                                                precision="fp32", engine="torch", batch_size=64),
            "mlqa-r": EvaluationConfig(dataset="mlqa-r", precision="fp32", engine="torch", batch_size=64),
            "scifact": EvaluationConfig(dataset="scifact", precision="fp32", engine="torch", batch_size=64),
        }),
}


def names_with(part: str) -> list[str]:
    """The presets that define ``part`` (training, experiment or zero_shot)."""
    return [name for name, preset in PRESETS.items() if getattr(preset, part)]


def preset_part(name: str, part: str):
    """``PRESETS[name]``'s ``part``; a one-line error naming the presets that have one otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    value = getattr(PRESETS[name], part)
    if not value:
        words = {"training": "training", "experiment": "experiment", "zero_shot": "zero-shot evaluations"}[part]
        raise ValueError(f"preset {name!r} defines no {words}; use one of {', '.join(names_with(part))}")
    return value
