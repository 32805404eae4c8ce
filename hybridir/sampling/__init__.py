"""In-batch negative control: which (query, passage) pairs share a batch.

:mod:`~hybridir.sampling.pairs` lays parallel QA data out as the trainer's dataset (one row per
(item, query language, passage language)) plus the metadata the sampler needs;
:mod:`~hybridir.sampling.samplers` composes the batches: X-X-mono, X-Y or hybrid;
:mod:`~hybridir.sampling.strategies` names the strategies and checks their settings.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PairTable": "pairs", "build_pair_dataset": "pairs",
    "LanguageBatchSampler": "samplers", "LanguageSamplerFactory": "samplers", "PlannedBatch": "samplers",
    "STRATEGIES": "strategies", "DEFAULT_ALPHA": "strategies", "check_strategy": "strategies",
    "check_batch_size": "strategies",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Exports load on first use: the samplers import torch, which the CLI's --help should not pay for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"hybridir.sampling.{_EXPORTS[name]}"), name)
