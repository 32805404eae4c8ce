"""Fine-tuning with controlled in-batch negatives: config, data, callbacks, the run."""

from __future__ import annotations

import importlib

_EXPORTS = {"TrainingConfig": "config", "train": "trainer"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Exports load on first use: the trainer imports torch, which the CLI's --help should not pay for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"hybridir.training.{_EXPORTS[name]}"), name)
