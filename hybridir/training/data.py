"""The training sources and the validation pairs a :class:`TrainingConfig` names."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

from hybridir.data.lareqa import DATASETS as LAREQA_DATASETS
from hybridir.data.parallel import ParallelQA, lareqa_parallel, load_parallel_jsonl, squadshifts_pairs
from hybridir.data.store import ArrowQA, convert_mmarco, convert_parallel_jsonl
from hybridir.training.config import MMARCO, SQUADSHIFTS_PREFIX, TrainingConfig, mmarco_languages

if TYPE_CHECKING:
    from datasets import Dataset

DEFAULT_SQUADSHIFTS = "new_wiki"  # Wikipedia, the domain closest to the training data; the paper names no subset
VALIDATION_SEED = 0  # every run validates on the same pairs, whatever its own seed


def load_training_sources(config: TrainingConfig) -> list[ParallelQA | ArrowQA]:
    """Each ``--train`` source, restricted to ``--train-languages`` when given; a JSONL file and mMARCO
    converted once into the Arrow cache. Where some sources have hard negatives and others not, none keeps
    them (the trainer's rows share their columns), with a warning."""
    sources = []
    for name in config.train:
        if name in LAREQA_DATASETS:
            data = lareqa_parallel(name)
        elif name == MMARCO or name.startswith(MMARCO + ":"):
            data = convert_mmarco(mmarco_languages(name), config.mmarco_queries, source=config.mmarco_source)
        else:
            data = convert_parallel_jsonl(name)  # once into the cache; then opened memory-mapped
        sources.append(data if config.train_languages is None else restrict_languages(data, config.train_languages))
    with_negatives = [data.name for data in sources if data.has_negatives]
    if with_negatives and len(with_negatives) < len(sources):
        # every row of the trainer's dataset has the same columns: a negative for all or for none
        warnings.warn(f"training without the hard negatives of {', '.join(with_negatives)}: the other sources have "
                      "none; train on sources with negatives only to use them", stacklevel=2)
        sources = [without_negatives(data) for data in sources]
    return sources


def without_negatives(data: ParallelQA | ArrowQA) -> ParallelQA | ArrowQA:
    """``data`` without its hard negatives (and a checksum that says so)."""
    if isinstance(data, ArrowQA):
        return data.without_negatives()
    if not data.has_negatives:
        return data
    return replace(data, pairs=data.pairs.drop(columns="negative"), checksum=f"{data.checksum}:no-negatives")


def restrict_languages(data: ParallelQA | ArrowQA, languages: list[str]) -> ParallelQA | ArrowQA:
    """``data`` with only ``languages``; a language the data lacks is an error, not an empty pool."""
    if isinstance(data, ArrowQA):
        return data.restricted(languages)
    missing = sorted(set(languages) - set(data.languages))
    if missing:
        raise ValueError(f"training source {data.name!r} has no pairs in {', '.join(missing)}; its languages are "
                         f"{', '.join(data.languages)}")
    kept = data.pairs[data.pairs["language"].isin(languages)].reset_index(drop=True)
    return replace(data, pairs=kept, checksum=f"{data.checksum}:languages={'+'.join(sorted(languages))}")


def load_validation(config: TrainingConfig) -> tuple[Dataset, str] | None:
    """(query, passage) validation pairs in a fixed order and their checksum; None without validation."""
    from datasets import Dataset

    if not config.validates:
        return None
    if config.validation.startswith(SQUADSHIFTS_PREFIX):
        _, _, name = config.validation.partition(":")
        data = squadshifts_pairs(name or DEFAULT_SQUADSHIFTS, max_pairs=config.validation_size, seed=VALIDATION_SEED)
        pairs = data.pairs
    else:
        data = load_parallel_jsonl(config.validation)
        # One language per id: translations of one item in a batch would be false negatives.
        pairs = data.pairs.drop_duplicates("id")
        if config.validation_size is not None and len(pairs) > config.validation_size:
            pairs = pairs.sample(n=config.validation_size, random_state=VALIDATION_SEED).sort_index()
    dataset = Dataset.from_dict({"query": pairs["query"].tolist(), "passage": pairs["positive"].tolist()})
    return dataset, f"{data.checksum}:{len(pairs)}-pairs"
