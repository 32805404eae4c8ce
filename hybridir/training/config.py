"""What one training run is: data, sampling, model, optimisation. Validated before anything loads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hybridir.data.lareqa import DATASETS as LAREQA_DATASETS
from hybridir.data.parallel import ISO_639_1, MMARCO_LANGUAGES
from hybridir.models.precision import PRECISIONS, check_precision
from hybridir.options import option
from hybridir.sampling.strategies import (CROSS_PAIRS, MONO_DRAWS, STRATEGIES, check_batch_size, check_cross_pairs,
                                         check_mono_draw, check_strategy)

VALIDATION_NONE = "none"
SQUADSHIFTS_PREFIX = "squadshifts"  # "squadshifts" = new_wiki, or "squadshifts:reddit" etc.
MMARCO = "mmarco"  # "mmarco" = the paper's 7 languages, or "mmarco:de,en" etc.
MMARCO_PAPER_LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "zh")  # paper.md §1.3, Table 9


@dataclass(frozen=True)
class TrainingConfig:
    """Defaults follow the paper where it speaks (AdamW, lr 3e-5, weight decay 0.01, α = 0.5,
    early stopping on English SQuADShifts validation loss) and ``book/training.md`` where it is
    silent (scale 20, warm-up 10%, max length 128, validation subset of 512 pairs). They are the
    ``cpu`` preset's runs (:mod:`hybridir.presets`): 100 steps of 32 with frozen word embeddings."""

    train: list[str] = option(["mlqa-r"], "xquad-r | mlqa-r | mmarco[:LANG,LANG,...] (default the paper's 7) | "
                              "FILE.jsonl (id, language, query, positive[, negative]); several are mixed by size",
                              metavar="SOURCE")
    mmarco_source: str = option("unicamp-dl/mmarco", "mMARCO's hub dataset id, or a local folder in the hub's layout")
    mmarco_queries: int | None = option(None, "mMARCO items: the first triple of each of the first N distinct "
                                              "queries, or all")
    train_languages: list[str] | None = option(None, "keep only these languages of the training data", metavar="LANG")
    strategy: str = option("hybrid", "mono: X-X-mono batches; cross: X-Y batches; hybrid: mono with probability "
                                     "--alpha; standard: same-language pairs of all languages mixed in each batch "
                                     "(usual multilingual fine-tuning)", choices=STRATEGIES)
    alpha: float | None = option(None, "hybrid only: probability of a mono batch (default 0.5)")
    mono_draw: str = option("coin", "hybrid only: coin (each batch mono with probability alpha, the paper) or "
                                    "stratified (exactly round(alpha x batches) mono batches per epoch)",
                            choices=MONO_DRAWS)
    source_temperature: float = option(1.0, "a batch's source is drawn with probability ∝ items^(1/T) (1 = by size)")
    cross_pairs: str = option("uniform", "X-Y pairs' languages: uniform over each item's language pairs, or balanced "
                                         "(each language weighted by 1 / the items that have it, so English stops "
                                         "taking most sides)", choices=CROSS_PAIRS)
    model: str = option("offline", "'offline', a hub id or a local folder")
    model_path: str | None = option(None, "local copy of a hub preset (same layout)")
    seed: int = option(0, "seed of the batches, the model's new weights and dropout")
    max_steps: int = option(100, "training steps (the paper states none)")
    batch_size: int = option(32, "pairs per batch (paper: 100)")
    learning_rate: float = option(3e-5, "AdamW learning rate (paper: 3e-5)", aliases=["--lr"])
    weight_decay: float = option(0.01, "AdamW weight decay (paper: 0.01)")
    warmup_ratio: float = option(0.1, "fraction of the steps with a linear warm-up")
    scale: float = option(20.0, "InfoNCE scale 1/τ on cosine similarities (the paper states none)")
    max_length: int = option(128, "tokens per text")
    freeze_word_embeddings: bool = option(True, "freeze the word embeddings: cheaper on CPU, and keeps the "
                                                "vocabulary's pre-trained cross-lingual alignment")
    precision: str = option("auto", "bf16/fp16: autocast with fp32 weights and optimiser state; auto: bf16 where "
                                    "the hardware has bf16 instructions (AMX or AVX512-BF16 CPUs, recent GPUs), "
                                    "else fp32", choices=PRECISIONS)
    validation: str = option(SQUADSHIFTS_PREFIX, "squadshifts (new_wiki) | squadshifts:NAME | none | FILE.jsonl; the "
                                                 "best checkpoint by validation loss becomes the model")
    validation_size: int | None = option(512, "validation pairs (a fixed subset), or all")
    eval_steps: int = option(25, "validate and save every N steps")
    patience: int | None = option(5, "stop after N validations without improvement, or none")
    gather_across_devices: bool = option(False, "DDP: pool in-batch negatives over ranks (one strategy and language "
                                                "per step)")

    def __post_init__(self) -> None:
        check_strategy(self.strategy, self.alpha, self.source_temperature)
        check_cross_pairs(self.cross_pairs)
        check_mono_draw(self.mono_draw, self.strategy)
        check_batch_size(self.batch_size)
        check_precision(self.precision)  # the machine's side (fp16 needs a GPU) is checked by train(), before any write
        if not self.train:
            raise ValueError("no training data: pass --train xquad-r, mlqa-r, mmarco or a JSONL file")
        for source in self.train:
            if source == MMARCO or source.startswith(MMARCO + ":"):
                mmarco_languages(source)  # raises on a bad language list
                continue
            if source not in LAREQA_DATASETS and not source.endswith(".jsonl"):
                raise ValueError(f"--train {source!r} is neither {', '.join(LAREQA_DATASETS)}, mmarco[:LANGS] nor a "
                                 ".jsonl file")
            if source.endswith(".jsonl") and not Path(source).is_file():
                raise FileNotFoundError(f"--train file {source} does not exist")
        names = [MMARCO if source.startswith(MMARCO + ":") else source for source in self.train]
        if len(set(names)) != len(names):
            raise ValueError(f"--train names a source twice: {self.train}")
        if self.mmarco_queries is not None:
            _positive_int("mmarco_queries", self.mmarco_queries)
        if self.train_languages is not None:
            unknown = [lang for lang in self.train_languages if lang not in ISO_639_1]
            if not self.train_languages or unknown or len(set(self.train_languages)) != len(self.train_languages):
                raise ValueError(f"--train-languages must be distinct ISO 639-1 codes such as de, got "
                                 f"{self.train_languages}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer ≥ 0, got {self.seed!r}")
        _positive_int("max_steps", self.max_steps)
        _positive_int("max_length", self.max_length)
        _positive_int("eval_steps", self.eval_steps)
        if self.patience is not None:
            _positive_int("patience", self.patience)
        if self.validation_size is not None:
            _positive_int("validation_size", self.validation_size)
        for name in ("learning_rate", "scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number ≥ 0, got {self.weight_decay}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio is a fraction of the steps in [0, 1), got {self.warmup_ratio}")
        if not (self.validation in (VALIDATION_NONE, SQUADSHIFTS_PREFIX) or self.validation.endswith(".jsonl")
                or self.validation.startswith(SQUADSHIFTS_PREFIX + ":")):
            raise ValueError(f"--validation {self.validation!r}: use squadshifts, squadshifts:NAME, none or a .jsonl file")
        if self.validation.endswith(".jsonl") and not Path(self.validation).is_file():
            raise FileNotFoundError(f"--validation file {self.validation} does not exist")
        if self.validation == VALIDATION_NONE and self.patience is not None:
            raise ValueError("early stopping needs validation data: drop --patience or pass --validation")

    @property
    def validates(self) -> bool:
        return self.validation != VALIDATION_NONE


def mmarco_languages(source: str) -> tuple[str, ...]:
    """The languages of a ``--train mmarco[:LANG,LANG,...]`` source; ValueError saying what to fix."""
    _, colon, listed = source.partition(":")
    if not colon:
        return MMARCO_PAPER_LANGUAGES
    languages = tuple(listed.split(","))
    unknown = [lang for lang in languages if lang not in MMARCO_LANGUAGES]
    if unknown or len(set(languages)) != len(languages):
        raise ValueError(f"--train {source!r}: give distinct mMARCO languages after the colon, e.g. mmarco:de,en; "
                         f"mMARCO has {', '.join(MMARCO_LANGUAGES)}")
    return languages


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")

